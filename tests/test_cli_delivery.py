"""Changes made by short-lived processes (a script, trac-admin) are mailed
by that process before it exits, with no web server or worker running."""

import subprocess
import sys
import textwrap

from tests.support.disk_env import make_disk_env
from tests.support.live_trac import trac_admin


def site(tmp_path, sink):
    return make_disk_env(str(tmp_path), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'inline',
        'batch_window': '0'})


def test_a_script_mails_its_change_before_it_exits(tmp_path, sink):
    path = site(tmp_path, sink)
    script = textwrap.dedent('''
        import sys
        from trac.env import Environment
        from trac.ticket.model import Ticket
        env = Environment(sys.argv[1])
        ticket = Ticket(env)
        ticket.populate({'summary': 'From a script', 'reporter': 'alice',
                         'cc': 'carol@example.com'})
        ticket.insert()
    ''')
    subprocess.run([sys.executable, '-c', script, path], check=True,
                   timeout=60)
    # the process has exited: whatever arrived was sent by it
    assert sorted(r for m in sink.received for r in m.rcpt_tos) == \
        ['alice@example.org', 'carol@example.com']


def test_trac_admin_mails_its_change_before_it_exits(tmp_path, sink):
    path = site(tmp_path, sink)
    script = ('import sys\nfrom trac.env import Environment\n'
              'from trac.ticket.model import Ticket\n'
              'env = Environment(sys.argv[1])\nt = Ticket(env)\n'
              "t.populate({'summary': 'x', 'reporter': 'alice', "
              "'cc': 'carol@example.com'})\n"
              't.insert()\n')
    subprocess.run([sys.executable, '-c', script, path], check=True,
                   timeout=60)
    sink.received.clear()
    trac_admin(path, 'ticket', 'remove', '1')
    assert [m.message['X-Trac-Notification-Type'] for m in sink.received] \
        == ['ticket_deleted']
