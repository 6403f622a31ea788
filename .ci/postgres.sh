# Start/stop a throw-away PostgreSQL server (sourced by .ci/run).
# initdb refuses to run as root, so as root the server runs as the 'postgres' user.

_pg_run() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local initdb
    initdb=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n 1 || true)
    if [ -z "$initdb" ]; then
        echo "PostgreSQL (initdb) is not installed: cannot run the PostgreSQL suite" >&2
        return 1
    fi
    PGBIN=$(dirname "$(readlink -f "$initdb")")
    PGDATA=$(mktemp -d /tmp/metaqore-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
    PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    _pg_run "$PGBIN/initdb" -D "$PGDATA/data" -U metaqore --auth=trust -E UTF8 >/dev/null
    _pg_run "$PGBIN/pg_ctl" -D "$PGDATA/data" -l "$PGDATA/server.log" -w -t 60 \
        -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null
    _pg_run "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U metaqore metaqore_test
    export METAQORE_TEST_POSTGRES_DSN="postgresql+psycopg://metaqore@127.0.0.1:$PGPORT/metaqore_test"
    echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on port $PGPORT"
}

stop_postgres() {
    if [ -n "${PGDATA:-}" ] && [ -d "$PGDATA/data" ]; then
        _pg_run "$PGBIN/pg_ctl" -D "$PGDATA/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PGDATA"
    fi
}
