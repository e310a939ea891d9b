"""``batch_window`` groups a script's changes under the default
``delivery = inline`` (issue 11, item 8): a real script process changes
three tickets one second apart and exits; each recipient gets one batch
mail, sent by the script's own last pass as it ends."""

import collections
import os
import subprocess
import sys
import textwrap

import pytest
from trac.env import Environment
from trac.ticket.model import Ticket

from tests.support.disk_env import drop_disk_env, make_disk_env
from tests.support.live_trac import trac_admin
from tests.support.smtp_sink import SmtpSink
from tracnotify.delivery.service import DeliveryService

PG_URI = os.environ.get('TRACNOTIFY_PG_URI', '')
BACKENDS = ['sqlite'] + (['postgres'] if PG_URI else [])

SCRIPT = textwrap.dedent('''
    import sys, time
    from trac.env import Environment
    from trac.ticket.model import Ticket

    env = Environment(sys.argv[1])
    for n, ticket_id in enumerate(sys.argv[3:]):
        if n:
            time.sleep(1)
        ticket = Ticket(env, int(ticket_id))
        ticket['priority'] = 'minor'
        ticket.save_changes('bob', 'Triaged by a script.')
    if sys.argv[2] == 'shutdown':
        env.shutdown()              # as Trac's own scripts do; or just exit
''')


@pytest.fixture(params=BACKENDS)
def site(request, tmp_path):
    sink = SmtpSink().start()
    path = make_disk_env(str(tmp_path), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'inline',
        'batch_window': '10', 'always_notify_reporter': 'true'},
        PG_URI if request.param == 'postgres' else None)
    env = Environment(path)
    ids = []
    for n in range(3):
        ticket = Ticket(env)
        ticket.populate({'summary': 'Ticket %d' % n, 'reporter': 'alice',
                         'cc': 'watcher@example.com'})
        ids.append(ticket.insert())
    DeliveryService(env).stop()     # this process sends nothing more
    env.shutdown()
    trac_admin(path, 'notify', 'send')        # the creations
    sink.received.clear()
    yield path, sink, ids
    drop_disk_env(path)
    sink.stop()


def test_script_changes_one_second_apart_are_one_mail(site):
    """The script ends without ``env.shutdown()``: its holds are released
    at exit.  (With ``env.shutdown()``, the same through the wrapped
    shutdown: tracnotify's own delivery thread then has to survive the
    pool closing, issue 11 item 1.)"""
    path, sink, ids = site
    subprocess.run([sys.executable, '-c', SCRIPT, path, 'exit'] +
                   [str(i) for i in ids], check=True, timeout=60)
    # the script's own last pass sent it: no other process ran
    got = collections.Counter((r, m.message['X-Trac-Notification-Type'])
                              for m in sink.received for r in m.rcpt_tos)
    assert got == {('alice@example.org', 'batchmodify'): 1,
                   ('watcher@example.com', 'batchmodify'): 1,
                   ('bob@example.org', 'batchmodify'): 1}
    mail = sink.received[0].message
    assert mail['Subject'] == '[Worker Project] Batch modify: %s' % \
        ', '.join('#%d' % i for i in ids)
    trac_admin(path, 'notify', 'send')
    assert len(sink.received) == 3            # nothing twice
