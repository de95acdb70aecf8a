#!/bin/sh
# The official postgres image's start-up, as far as docker-compose.benchmark.yml
# relies on it, on Debian's PostgreSQL: on an empty $PGDATA, a cluster whose
# superuser is $POSTGRES_USER with $POSTGRES_PASSWORD and a database
# $POSTGRES_DB, passwords required over TCP; then the server in the foreground.
set -eu

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres() { runuser -u postgres -- "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    as_postgres "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust >&2
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    # As the official image: the database is made by a server on the Unix
    # socket only, so nothing counts it as ready over TCP before it exists.
    as_postgres "$bin/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >&2
    as_postgres "$bin/psql" -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
        -c "CREATE DATABASE \"$POSTGRES_DB\"" >&2
    as_postgres "$bin/pg_ctl" -D "$PGDATA" -w stop >&2
fi

exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
