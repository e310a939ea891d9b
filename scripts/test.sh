#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, starts
# PostgreSQL on 127.0.0.1, runs ruff and pytest (SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-dev.sh
if command -v pg_ctlcluster >/dev/null 2>&1; then
  TRACNOTIFY_PG_URI="$(./scripts/start-postgres.sh)"
  export TRACNOTIFY_PG_URI
  echo "== PostgreSQL: $TRACNOTIFY_PG_URI"
else
  echo "== PostgreSQL not available: database tests run on SQLite only"
fi
.venv/bin/ruff check tracnotify tests bench
.venv/bin/python -m pytest -p no:cacheprovider "$@" tests
