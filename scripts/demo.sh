#!/usr/bin/env bash
# Demo on a fresh machine: installs tracnotify and Trac 1.6 into ./.venv,
# creates a Trac environment in ./demo/env with the plugin enabled, starts a
# local SMTP sink on 127.0.0.1, creates a ticket and changes it, and prints
# what happened to the mail: sent by the script's own delivery thread right
# after each change (delivery = inline), then, with delivery = worker, kept
# in the outbox until `trac-admin ENV notify send`.
#
#   ./scripts/demo.sh            the above, then stops the sink
#   ./scripts/demo.sh --serve    the above, then serves the environment with
#                                tracd on 127.0.0.1 (log in as alice / demo,
#                                an admin, or bob / demo) so that the links
#                                in the mails work; Ctrl-C stops everything
#
# TRACNOTIFY_DEMO_DIR (default ./demo) is where it all goes;
# TRACNOTIFY_DEMO_PORT (default 8000, or a free one) is tracd's port.
set -euo pipefail
serve=""
case "${1:-}" in
  --serve) serve=1 ;;
  "") ;;
  *) echo "usage: $0 [--serve]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
if [ "${TRACNOTIFY_SKIP_SETUP:-}" != "1" ]; then
  .venv/bin/pip install -q Trac==1.6 Genshi Babel aiosmtpd
  .venv/bin/pip install -q -e . >/dev/null
fi
py=$(pwd)/.venv/bin/python
admin=$(pwd)/.venv/bin/trac-admin
demo="${TRACNOTIFY_DEMO_DIR:-demo}"
env=$demo/env
smtp_port=$($py -c 'from tests.support.smtp_sink import free_port; print(free_port())')
web_port="${TRACNOTIFY_DEMO_PORT:-}"
if [ -z "$web_port" ]; then
  web_port=$($py - <<'PY'
import socket
from tests.support.smtp_sink import free_port
with socket.socket() as s:
    try:
        s.bind(('127.0.0.1', 8000))
        print(8000)
    except OSError:
        print(free_port())
PY
)
fi
base_url="http://127.0.0.1:$web_port/demo"

sink="" tracd=""
cleanup() {
  trap - EXIT INT TERM
  for pid in $tracd $sink; do kill "$pid" 2>/dev/null || true; done
  for pid in $tracd $sink; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; echo "== stopping"; exit 0' INT TERM

rm -rf "$demo"; mkdir -p "$demo"
echo "== trac-admin $env initenv"
$admin "$env" initenv "tracnotify demo" sqlite:db/trac.db >/dev/null
cat >> "$env/conf/trac.ini" <<INI

[components]
tracnotify.* = enabled
INI
$py - "$env" "$smtp_port" "$base_url" <<'PY'
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
ini.set('trac', 'base_url', sys.argv[3])
ini.save()
PY
echo "== trac-admin $env upgrade (creates tracnotify's outbox tables)"
$admin "$env" upgrade >/dev/null
$admin "$env" permission add alice TRAC_ADMIN
$admin "$env" session add alice "Alice Liddell" alice@demo.example
$admin "$env" session add bob "Bob Builder" bob@demo.example
echo "== SMTP sink on 127.0.0.1:$smtp_port (writes $demo/mail.log)"
$py -m tests.support.smtp_sink --port "$smtp_port" > "$demo/mail.log" 2>&1 &
sink=$!
for _ in $(seq 100); do grep -q listening "$demo/mail.log" && break; sleep 0.1; done

mails() { grep -c '^MAIL FROM:' "$demo/mail.log" || true; }

echo "== a script: alice creates ticket #1, bob accepts it with a comment"
echo "   (delivery = inline: the script's own delivery thread mails each"
echo "   change right after its commit, and makes one last pass as it exits)"
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
env.shutdown()
PY
echo "   the sink has received $(mails) mails"
echo "== trac-admin $env notify status"
$admin "$env" notify status

echo "== with [notification] delivery = worker, bob closes the ticket"
echo "   (nothing is mailed until a worker or notify send runs)"
$admin "$env" config set notification delivery worker
$py - "$env" <<'PY'
import sys
from trac.env import Environment
from trac.ticket.model import Ticket
env = Environment(sys.argv[1])
t = Ticket(env, 1)
t['status'] = 'closed'
t['resolution'] = 'fixed'
t.save_changes('bob', 'Fire is out.')
env.shutdown()
PY
echo "   the sink has received $(mails) mails; the change waits in the outbox:"
$admin "$env" notify status | grep '^Pending'
echo "== trac-admin $env notify send"
before=$(mails)
$admin "$env" notify send
for _ in $(seq 50); do [ "$(mails)" -gt "$before" ] && break; sleep 0.1; done
$admin "$env" config set notification delivery inline
echo "== the $(mails) mails received by the SMTP sink ($demo/mail.log)"
cat "$demo/mail.log"

if [ -z "$serve" ]; then
  echo "== done: the links above point at $base_url; ./scripts/demo.sh --serve serves it"
  exit 0
fi
$py - "$demo/htpasswd" <<'PY'
import base64, hashlib, sys
with open(sys.argv[1], 'w') as f:
    for user in ('alice', 'bob'):
        digest = base64.b64encode(hashlib.sha1(b'demo').digest()).decode()
        f.write('%s:{SHA}%s\n' % (user, digest))
PY
$py -m trac.web.standalone --hostname=127.0.0.1 --port="$web_port" \
  --single-env --base-path=/demo \
  --basic-auth="*,$demo/htpasswd,tracnotify demo" "$env" \
  > "$demo/tracd.log" 2>&1 &
tracd=$!
for _ in $(seq 100); do
  $py -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "$base_url" 2>/dev/null && break
  kill -0 "$tracd" 2>/dev/null || { cat "$demo/tracd.log"; exit 1; }
  sleep 0.2
done
cat <<TXT
== serving $base_url (tracd, log in $demo/tracd.log)
   log in as alice / demo (admin: Admin -> Notification) or bob / demo
   ticket:       $base_url/ticket/1
   preferences:  $base_url/prefs/notification
   new mails:    tail -f $demo/mail.log
   press Ctrl-C to stop tracd and the SMTP sink
TXT
wait "$tracd"
