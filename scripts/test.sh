#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, runs ruff
# and pytest (SQLite, and PostgreSQL when Debian's postgresql is there).
#
# PostgreSQL: TRACNOTIFY_PG_URI when set; else the server answering on
# PGPORT_TRACNOTIFY (default 54329), left running as found (other
# developers may use it); else a private server on that port with its
# data in a temporary folder, stopped and deleted when this script ends
# (also on Ctrl-C).  Scratch files go under pytest's own temporary folders.
# TRACNOTIFY_SKIP_SETUP=1 skips ./scripts/setup-dev.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${TRACNOTIFY_SKIP_SETUP:-}" != "1" ]; then ./scripts/setup-dev.sh; fi
pgdir=""
stop_postgres() {
  if [ -n "$pgdir" ]; then
    echo "== stopping the PostgreSQL server this run started"
    PGDATA_TRACNOTIFY="$pgdir" PGPORT_TRACNOTIFY="$PGPORT_TRACNOTIFY" \
      ./scripts/start-postgres.sh --stop || true
    pgdir=""
  fi
}
trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "${TRACNOTIFY_PG_URI:-}" ]; then
  echo "== PostgreSQL: $TRACNOTIFY_PG_URI (given)"
elif command -v pg_ctlcluster >/dev/null 2>&1; then
  export PGPORT_TRACNOTIFY="${PGPORT_TRACNOTIFY:-54329}"
  if ./scripts/start-postgres.sh --running; then
    echo "== PostgreSQL: the server already running on port $PGPORT_TRACNOTIFY (left running)"
  else
    pgdir=$(mktemp -d "${TMPDIR:-/tmp}/tracnotify-pg-XXXXXX")
    export PGDATA_TRACNOTIFY="$pgdir"
    echo "== PostgreSQL: a private server on port $PGPORT_TRACNOTIFY (stopped at the end)"
  fi
  TRACNOTIFY_PG_URI="$(./scripts/start-postgres.sh)"
  export TRACNOTIFY_PG_URI
else
  echo "== PostgreSQL not available: database tests run on SQLite only"
fi
.venv/bin/ruff check tracnotify tests bench
.venv/bin/python -m pytest -p no:cacheprovider "$@" tests
