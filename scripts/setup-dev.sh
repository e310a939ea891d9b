#!/usr/bin/env bash
# Create ./.venv with tracnotify (editable), Trac 1.6 and the test tools, and
# install the Debian packages the tests use (PostgreSQL, Chromium, msmtp,
# postfix, dovecot)
# when they are missing and we are allowed to (root).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v msmtp >/dev/null 2>&1 || need_apt+=(msmtp)
command -v patch >/dev/null 2>&1 || need_apt+=(patch)
# inbound mail tests: a real MTA piping to `notify receive`, a real IMAP server
command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ] || need_apt+=(postfix)
[ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = "0" ]; then
  echo "== apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -r requirements-test.txt
.venv/bin/pip install -q --no-build-isolation -e . 2>/dev/null ||
  .venv/bin/pip install -q -e .
