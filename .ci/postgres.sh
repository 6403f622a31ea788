# Start/stop a throw-away PostgreSQL server (sourced by .ci/run).
# The server is metaqore.testing.postgres.PostgresServer (the same one the test suite and
# the benchmarks start by themselves): initdb + pg_ctl from PATH or
# /usr/lib/postgresql/*/bin, a temporary data directory, a free port on 127.0.0.1, password
# authentication over TCP, durability off. As root it runs as the 'postgres' user.
# start_postgres exports METAQORE_TEST_POSTGRES_DSN (and METAQORE_TEST_POSTGRES_DIR).
# Needs the project installed (.ci/run does it) in .venv, or else in the python on PATH.

_metaqore_python() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -x "$root/.venv/bin/python" ]; then
        echo "$root/.venv/bin/python"
    else
        command -v python3 || command -v python
    fi
}

start_postgres() {
    local exports
    if ! exports=$("$(_metaqore_python)" -m metaqore.testing.postgres start); then
        echo "PostgreSQL could not be started: cannot run the PostgreSQL suite" >&2
        return 1
    fi
    eval "$exports"
}

stop_postgres() {
    if [ -n "${METAQORE_TEST_POSTGRES_DIR:-}" ]; then
        "$(_metaqore_python)" -m metaqore.testing.postgres stop "$METAQORE_TEST_POSTGRES_DIR" || true
        unset METAQORE_TEST_POSTGRES_DIR
    fi
}
