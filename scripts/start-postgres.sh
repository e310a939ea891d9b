#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1 for the tests (Debian's
# postgresql package).
#
#   start-postgres.sh            start it unless one answers on the port,
#                                print the TRACNOTIFY_PG_URI to use
#   start-postgres.sh --running  exit 0 when a server answers on the port
#   start-postgres.sh --stop     stop the server of the data folder and
#                                delete the folder
#
# PGPORT_TRACNOTIFY (default 54329) and PGDATA_TRACNOTIFY (default
# /tmp/tracnotify-pg) choose the port and the data folder.  Developers share
# the default one (each pytest run works in a schema of its own); it keeps
# running until `start-postgres.sh --stop`.  ./scripts/test.sh starts a
# private one only when none answers, and stops it when it ends.
set -euo pipefail
port="${PGPORT_TRACNOTIFY:-54329}"
dir="${PGDATA_TRACNOTIFY:-/tmp/tracnotify-pg}"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
run_as=""
if [ "$(id -u)" = "0" ]; then run_as="runuser -u postgres --"; fi
running() { $run_as "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q 2>/dev/null; }
case "${1:-}" in
  --running) running; exit ;;
  --stop)
    if [ -f "$dir/postmaster.pid" ]; then
      $run_as "$bin/pg_ctl" -D "$dir" -w -m fast stop >/dev/null
    fi
    rm -rf "$dir"
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--running|--stop]" >&2; exit 2 ;;
esac
if ! running; then
  if [ -f "$dir/postmaster.pid" ] && $run_as "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    echo "$0: a server runs on $dir but not on port $port: set PGDATA_TRACNOTIFY" >&2
    exit 1
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  [ -n "$run_as" ] && chown postgres "$dir"
  $run_as "$bin/initdb" -D "$dir" -U postgres -A trust >/dev/null
  # the Unix socket stays in the data folder: nothing of it in /tmp
  $run_as "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c max_connections=200" start >/dev/null
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
