#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests and print
# the TRACNOTIFY_PG_URI to use. Needs Debian's postgresql package.
set -euo pipefail
port="${PGPORT_TRACNOTIFY:-54329}"
dir="${PGDATA_TRACNOTIFY:-/tmp/tracnotify-pg}"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
run_as=""
if [ "$(id -u)" = "0" ]; then run_as="runuser -u postgres --"; fi
if ! $run_as "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q 2>/dev/null; then
  rm -rf "$dir"; mkdir -p "$dir"
  [ -n "$run_as" ] && chown postgres "$dir"
  $run_as "$bin/initdb" -D "$dir" -U postgres -A trust >/dev/null
  $run_as "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w \
    -o "-h 127.0.0.1 -p $port -k /tmp -c fsync=off -c synchronous_commit=off -c max_connections=200" start >/dev/null
fi
$run_as "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtc \
  "SELECT 1 FROM pg_roles WHERE rolname='tracnotify'" | grep -q 1 ||
  $run_as "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc \
  "CREATE ROLE tracnotify LOGIN PASSWORD 'tracnotify' SUPERUSER"
$run_as "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtc \
  "SELECT 1 FROM pg_database WHERE datname='tracnotify'" | grep -q 1 ||
  $run_as "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc \
  "CREATE DATABASE tracnotify OWNER tracnotify"
echo "postgres://tracnotify:tracnotify@127.0.0.1:$port/tracnotify?schema=tractest"
