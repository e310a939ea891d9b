#!/usr/bin/env bash
# Demo on a fresh machine: installs tracnotify and Trac 1.6 into ./.venv,
# creates a Trac environment in ./demo/env with the plugin enabled, starts a
# local SMTP sink on 127.0.0.1, creates a ticket, changes it, delivers the
# outbox and prints the mails that arrived.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q Trac==1.6 Genshi Babel aiosmtpd
.venv/bin/pip install -q -e . >/dev/null
py=.venv/bin/python
admin=.venv/bin/trac-admin
port=$($py -c 'from tests.support.smtp_sink import free_port; print(free_port())')
env=demo/env
rm -rf demo; mkdir -p demo
echo "== trac-admin $env initenv"
$admin "$env" initenv "tracnotify demo" sqlite:db/trac.db >/dev/null
cat >> "$env/conf/trac.ini" <<INI

[components]
tracnotify.* = enabled
INI
$py - "$env" "$port" <<'PY'
import sys
from trac.config import Configuration
ini = Configuration(sys.argv[1] + '/conf/trac.ini')
for name, value in {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': sys.argv[2], 'smtp_from': 'trac@demo.example',
        'smtp_replyto': 'trac@demo.example',
        'smtp_default_domain': 'demo.example',
        'smtp_always_bcc': 'archive@demo.example'}.items():
    ini.set('notification', name, value)
ini.set('notification-subscriber', 'always_notify_reporter',
        'TicketReporterSubscriber')
ini.set('notification-subscriber', 'always_notify_owner',
        'TicketOwnerSubscriber')
ini.set('trac', 'base_url', 'http://127.0.0.1:8000/demo')
ini.save()
PY
echo "== trac-admin $env upgrade (creates tracnotify's outbox tables)"
$admin "$env" upgrade
$admin "$env" permission add authenticated TICKET_MODIFY >/dev/null 2>&1 || true
$admin "$env" session add alice "Alice Liddell" alice@demo.example
$admin "$env" session add bob "Bob Builder" bob@demo.example
echo "== SMTP sink on 127.0.0.1:$port"
$py -m tests.support.smtp_sink --port "$port" > demo/mail.log 2>&1 &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening demo/mail.log && break; sleep 0.1; done
echo "== a ticket is created by alice, then changed by bob"
$py - "$env" <<'PY'
import sys
from trac.env import Environment
from trac.ticket.model import Ticket
env = Environment(sys.argv[1])
t = Ticket(env)
t.populate({'summary': 'The printer is on fire', 'reporter': 'alice',
            'description': 'Smoke is coming out of the paper tray.',
            'cc': 'carol@demo.example', 'priority': 'critical'})
t.insert()
t = Ticket(env, t.id)
t['owner'] = 'bob'
t['status'] = 'accepted'
t.save_changes('bob', 'Fire extinguisher is on its way.')
print('ticket #%d created and changed' % t.id)
PY
echo "== trac-admin $env notify send"
$admin "$env" notify send
sleep 0.5
echo "== mails received by the SMTP sink"
cat demo/mail.log
