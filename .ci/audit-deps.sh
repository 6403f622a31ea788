#!/usr/bin/env bash
# Audit the locked dependency set (requirements/lock.txt) for known vulnerabilities.
#
#   bash .ci/audit-deps.sh                 audit the lock (CI calls this)
#   bash .ci/audit-deps.sh --update-lock   re-resolve '.[dev]' with pip and rewrite the lock
#   bash .ci/audit-deps.sh --evaluate F    judge a pip-audit JSON report F (used by the tests)
#
# Exit codes: 0 no known vulnerability; 1 a known vulnerability (the table says which and
# the fixed versions); 2 the audit could not be completed -- the vulnerability service is
# unreachable, or some dependency could not be looked up. pip-audit itself exits 0 when it
# could look nothing up; this script never does: an audit that did not happen fails.
# METAQORE_AUDIT_ALLOW_UNREACHABLE=1 turns exit 2 into a loud warning and exit 0 (for
# machines that cannot reach any vulnerability service; never set it in CI by default).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
LOCK=requirements/lock.txt
PIP_AUDIT_VERSION=2.10.1
[ -x "$PY" ] || PY=${PYTHON:-python3}

# Judge one pip-audit JSON report: prints what it found, exits 0, 1 or 2.
evaluate() {
    "$PY" - "$1" <<'PYTHON'
import json, sys

try:
    with open(sys.argv[1], encoding="utf-8") as stream:
        report = json.load(stream)
    dependencies = report["dependencies"]
except (OSError, ValueError, KeyError, TypeError) as exc:
    print(f"audit-deps: no usable pip-audit report ({exc})")
    sys.exit(2)
vulnerable = [d for d in dependencies if d.get("vulns")]
skipped = [d for d in dependencies if d.get("skip_reason")]
audited = len(dependencies) - len(skipped)
for dependency in vulnerable:
    for vuln in dependency["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
        aliases = ", ".join(vuln.get("aliases") or [])
        print(
            f"VULNERABLE {dependency['name']}=={dependency.get('version', '?')}: {vuln['id']}"
            + (f" ({aliases})" if aliases else "")
            + f" -- fixed in: {fixes}"
        )
if vulnerable:
    count = sum(len(d["vulns"]) for d in vulnerable)
    print(f"audit-deps: {count} known vulnerabilit{'y' if count == 1 else 'ies'} "
          f"in {len(vulnerable)} of {len(dependencies)} locked dependencies")
    sys.exit(1)
if skipped or not dependencies:
    for dependency in skipped[:5]:
        print(f"  not audited: {dependency['name']}: {dependency['skip_reason']}")
    if len(skipped) > 5:
        print(f"  ... and {len(skipped) - 5} more")
    print(f"audit-deps: AUDIT INCOMPLETE: {len(skipped)} of {len(dependencies)} locked "
          "dependencies could not be looked up (vulnerability service unreachable?)")
    sys.exit(2)
print(f"audit-deps: no known vulnerabilities in {audited} locked dependencies")
PYTHON
}

update_lock() {
    local report
    report=$(mktemp)
    # (This machine's pip configuration warns about every ignored index location.)
    "$PY" -m pip install --quiet --dry-run --ignore-installed --report "$report" '.[dev]' \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    "$PY" - "$report" "$LOCK" <<'PYTHON'
import json, sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
lines = [
    "# The dependency set of `pip install -e '.[dev]'`, resolved by pip for CPython 3.11 on",
    "# Linux x86_64: exact versions and the sha256 of the file pip chose. pip-audit checks",
    "# these versions (.ci/audit-deps.sh). Regenerate: bash .ci/audit-deps.sh --update-lock",
]
for item in sorted(report["install"], key=lambda i: i["metadata"]["name"].lower()):
    meta = item["metadata"]
    if item.get("is_direct"):  # metaqore itself
        continue
    hashes = item.get("download_info", {}).get("archive_info", {}).get("hashes", {})
    line = f"{meta['name']}=={meta['version']}"
    if "sha256" in hashes:
        line += f" \\\n    --hash=sha256:{hashes['sha256']}"
    lines.append(line)
with open(sys.argv[2], "w", encoding="utf-8") as stream:
    stream.write("\n".join(lines) + "\n")
print(f"audit-deps: wrote {sys.argv[2]} ({len(lines) - 3} packages)")
PYTHON
    rm -f "$report"
}

case "${1:-}" in
    --evaluate) evaluate "$2"; exit $? ;;
    --update-lock) update_lock; exit 0 ;;
    "") ;;
    *) echo "usage: $0 [--update-lock | --evaluate REPORT]" >&2; exit 2 ;;
esac

[ -f "$LOCK" ] || { echo "audit-deps: $LOCK is missing (bash $0 --update-lock)" >&2; exit 2; }
if ! "$PY" -m pip_audit --version 2>/dev/null | grep -q "$PIP_AUDIT_VERSION"; then
    "$PY" -m pip install --quiet "pip-audit==$PIP_AUDIT_VERSION" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=2
# PyPI's advisory data first; OSV when PyPI could not answer for every dependency.
for service in pypi osv; do
    echo "== pip-audit ($service) over $LOCK"
    if ! "$PY" -m pip_audit --requirement "$LOCK" --disable-pip --vulnerability-service "$service" \
        --format json --output "$work/$service.json" --progress-spinner off \
        >"$work/$service.log" 2>&1; then
        # pip-audit exits 1 on findings too; a crash leaves no report (evaluate says so).
        grep -v '^WARNING' "$work/$service.log" | tail -n 3 || true
    fi
    set +e
    evaluate "$work/$service.json"
    status=$?
    set -e
    [ "$status" -eq 2 ] || break
done

if [ "$status" -eq 2 ]; then
    echo "audit-deps: FAILED: no vulnerability service could be reached for every locked"
    echo "audit-deps: dependency, so nothing is known about their vulnerabilities."
    if [ "${METAQORE_AUDIT_ALLOW_UNREACHABLE:-0}" = "1" ]; then
        echo "audit-deps: METAQORE_AUDIT_ALLOW_UNREACHABLE=1: continuing WITHOUT a dependency audit"
        exit 0
    fi
fi
exit "$status"
