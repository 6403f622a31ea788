"""A finding's evidence and status in words, shared by the text-based formats.

Known evidence keys (those the built-in rules and policies produce) become sentences a
reviewer reads; any other key a plugin adds is shown generically as ``key: value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from metaqore.gate.verdict import Finding, Status

# Lists longer than this (a cycle through thousands of artifacts) are shown head … tail.
MAX_LISTED = 40

# Keys rendered by a dedicated sentence below; everything else is generic.
_KNOWN = frozenset(
    {
        "cycle",
        "cycle_length",
        "members",
        "member_count",
        "agents",
        "versions",
        "iteration",
        "more_rivals",
        "missing",
        "needed_by",
        "declared_version",
        "expected_version",
        "stored_content_hash",
        "content_hash",
        "policy",
        "provider",
        "unknown_provider",
        "sensitivity",
        "sensitivity_source",
        "allowed",
        "auto_resolution",
        "resolved_version",
        "merged_with",
        "supersedes",
    }
)


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def quoted(ids: Iterable[Any]) -> str:
    return ", ".join(f"'{item}'" for item in ids)


def shorten(items: Sequence[Any], limit: int = MAX_LISTED) -> list[str]:
    """``items`` as text, the middle elided when there are more than ``limit``."""
    if len(items) <= limit:
        return [str(item) for item in items]
    half = limit // 2
    hidden = len(items) - 2 * half
    return [
        *(str(item) for item in items[:half]),
        f"… {hidden} more …",
        *(str(item) for item in items[-half:]),
    ]


def value_text(value: Any) -> str:
    """A plain-data evidence value in words."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={value_text(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(shorten([value_text(item) for item in value])) or "none"
    return str(value)


def cycle_text(cycle: Sequence[Any]) -> str:
    """``a → b → c → a``: the path closes on its first member."""
    names = [str(item) for item in cycle]
    if names and (len(names) == 1 or names[0] != names[-1]):
        names.append(names[0])
    return " → ".join(shorten(names))


def evidence_lines(finding: Finding) -> list[str]:
    """The evidence behind ``finding``, one sentence per line."""
    evidence = finding.evidence
    lines: list[str] = []
    cycle = evidence.get("cycle")
    if isinstance(cycle, list) and cycle:
        text = cycle_text(cycle)
        if evidence.get("cycle_length"):
            text += f" ({evidence['cycle_length']} artifacts long)"
        lines.append(f"cycle: {text}")
        members = evidence.get("members")
        count = evidence.get("member_count") or (len(members) if isinstance(members, list) else 0)
        if isinstance(members, list) and (
            count > len(members) or set(map(str, members)) != set(map(str, cycle))
        ):
            names = ", ".join(shorten([str(m) for m in members]))
            more = f", … {count - len(members)} more" if count > len(members) else ""
            lines.append(f"mutually dependent ({count}): {names}{more}")
    elif "members" in evidence:
        lines.append(f"members: {value_text(evidence['members'])}")
    lines.extend(_competition(evidence))
    if "missing" in evidence:
        line = f"missing: '{evidence['missing']}'"
        if evidence.get("needed_by") is not None:
            line += f", needed by '{evidence['needed_by']}'"
        lines.append(line)
    elif evidence.get("needed_by") is not None:
        lines.append(f"needed by: '{evidence['needed_by']}'")
    if "declared_version" in evidence or "expected_version" in evidence:
        lines.append(
            f"version: declared {value_text(evidence.get('declared_version'))}, "
            f"expected {value_text(evidence.get('expected_version'))}"
        )
    if evidence.get("stored_content_hash"):
        lines.append(
            f"content: {value_text(evidence.get('content_hash'))} declared, "
            f"{evidence['stored_content_hash']} already recorded for this version"
        )
    elif evidence.get("content_hash") and finding.kind == "conflict":
        lines.append(f"content: {evidence['content_hash']}")
    lines.extend(_routing(evidence))
    lines.extend(_resolution(evidence))
    for key, value in evidence.items():
        if key not in _KNOWN and value is not None:
            lines.append(f"{key}: {value_text(value)}")
    return lines


def _competition(evidence: Mapping[str, Any]) -> list[str]:
    agents = evidence.get("agents")
    versions = evidence.get("versions")
    if agents is None and versions is None:
        return (
            [f"iteration: {value_text(evidence['iteration'])}"] if "iteration" in evidence else []
        )
    where = ""
    if "iteration" in evidence:
        iteration = evidence["iteration"]
        where = " (no iteration)" if iteration is None else f" in iteration {iteration}"
    agent_list = list(agents) if isinstance(agents, list) else []
    version_items = list(versions.items()) if isinstance(versions, Mapping) else []
    if agent_list and len(agent_list) == len(version_items):
        parties = [
            f"{agent} ('{artifact}' v{version})"
            for agent, (artifact, version) in zip(agent_list, version_items, strict=True)
        ]
    else:
        parties = [str(agent) for agent in agent_list]
        parties += [f"'{artifact}' v{version}" for artifact, version in version_items]
    more = evidence.get("more_rivals")
    text = ", ".join(shorten(parties))
    if isinstance(more, int) and more > 0:
        text += f" and {plural(more, 'more rival')}"
    return [f"competing agents{where}: {text}"]


def _routing(evidence: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if "policy" in evidence:
        lines.append(f"policy: {evidence['policy']}")
    if "provider" in evidence:
        line = f"provider: {evidence['provider']}"
        if evidence.get("unknown_provider"):
            line += " (not a known provider)"
        lines.append(line)
    if "sensitivity" in evidence:
        line = f"sensitivity: {evidence['sensitivity']}"
        if evidence.get("sensitivity_source"):
            line += f", inherited from upstream artifact '{evidence['sensitivity_source']}'"
        lines.append(line)
    elif evidence.get("sensitivity_source"):
        lines.append(
            f"sensitivity inherited from upstream artifact '{evidence['sensitivity_source']}'"
        )
    if "allowed" in evidence:
        # Routing vetoes list providers; transition vetoes list the statuses allowed next.
        what = "allowed providers" if "provider" in evidence else "allowed next"
        lines.append(f"{what}: {value_text(evidence['allowed'])}")
    return lines


def _resolution(evidence: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if "resolved_version" in evidence:
        lines.append(f"resolved: version set to {evidence['resolved_version']}")
    if evidence.get("merged_with"):
        lines.append(f"merged with: {quoted(evidence['merged_with'])}")
    if evidence.get("supersedes"):
        lines.append(f"supersedes: {quoted(evidence['supersedes'])}")
    return lines


def status_tag(finding: Finding) -> str | None:
    """``[waived by alice until 2026-12-31: reason]`` and the like; None when blocking."""
    status = finding.status
    if status is Status.BLOCKING:
        return None
    if status is Status.WAIVED:
        waiver = finding.waived_by or {}
        by = waiver.get("approved_by") or "unknown"
        until = waiver.get("expires")
        text = f"waived by {by}" + (f" until {until}" if until else "")
        if waiver.get("reason"):
            text += f": {waiver['reason']}"
        return f"[{text}]"
    if status is Status.WARNING:
        return "[below threshold]"
    if status is Status.AUTO_RESOLVED:
        how = finding.evidence.get("auto_resolution") or finding.strategy or "auto"
        return f"[auto-resolved: {how}]"
    return f"[{status.value}]"


def waiver_text(waiver: Mapping[str, Any]) -> str:
    """One waiver of the hygiene report in words."""
    text = (
        f"{waiver.get('rule')} on {waiver.get('project')}/{waiver.get('artifact')} "
        f"(approved by {waiver.get('approved_by')}, expires {waiver.get('expires')})"
    )
    if waiver.get("reason"):
        text += f": {waiver['reason']}"
    if waiver.get("content_hash"):
        now = waiver.get("current_content_hash")
        text += f" — bound to {waiver['content_hash']}"
        if "current_content_hash" in waiver:
            text += f", content is now {now or 'gone'}"
    return text


WAIVER_SECTIONS = (
    ("unused", "unused (matched no finding)"),
    ("stale", "stale (the waived content changed)"),
    ("expired", "expired (no longer applied)"),
)


__all__ = [
    "MAX_LISTED",
    "WAIVER_SECTIONS",
    "cycle_text",
    "evidence_lines",
    "plural",
    "quoted",
    "shorten",
    "status_tag",
    "value_text",
    "waiver_text",
]
