"""``notify send`` after an outage, ``notify send --now``, and the argument
check of ``notify worker`` (issue 11, item 9)."""

import re
import subprocess
import sys

from trac.admin.api import AdminCommandManager
from trac.admin.console import TracAdmin

from tests.support.disk_env import make_disk_env
from tests.support.smtp_sink import SmtpSink, free_port
from tests.support.tickets import create_ticket
from tracnotify.outbox import maintenance as queue_admin


def run(env, *args):
    return AdminCommandManager(env).execute_command(*args)


def exit_status(env, line: str) -> int:
    admin = TracAdmin()
    admin.env_set(env.path, env)
    return admin.onecmd(line)


def test_send_says_what_waits_and_send_now_sends_it(make_env, capsys):
    port = free_port()                       # nothing listens: an outage
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(port),
                   outbox_retry_delay='600')
    create_ticket(env, cc='carol@example.com')
    assert exit_status(env, 'notify send') == 2
    capsys.readouterr()
    with SmtpSink(port=port) as sink:        # the server is back
        run(env, 'notify', 'send')
        out = capsys.readouterr().out.splitlines()
        assert re.match(r'^Sent 0, retrying 0, dead 0; 2 waiting for a '
                        r'retry, next at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d',
                        out[0]), out
        assert out[1] == '"notify send --now" sends them now.'
        assert sink.received == []
        run(env, 'notify', 'send', '--now')
        assert capsys.readouterr().out.strip() == \
            'Sent 2, retrying 0, dead 0'
        assert sorted(r for m in sink.received for r in m.rcpt_tos) == \
            ['alice@example.org', 'carol@example.com']
    assert queue_admin.waiting(env) == (0, None)


def test_send_now_keeps_the_attempt_count_and_leaves_dead_mail(make_env):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()),
                   outbox_retry_delay='600')
    create_ticket(env)
    assert exit_status(env, 'notify send') == 2
    n, first = queue_admin.waiting(env)
    assert n == 1 and first is not None
    assert queue_admin.make_due(env) == 1
    assert queue_admin.waiting(env) == (0, None)
    (message,) = queue_admin.list_queue(env)
    assert (message.status, message.attempts) == ('retrying', 1)
    env.db_transaction("UPDATE tracnotify_message SET state='dead'")
    assert queue_admin.make_due(env) == 0


def test_send_refuses_unknown_arguments(make_env):
    env = make_env()
    assert exit_status(env, 'notify send --bogus') == 2


def test_worker_refuses_unknown_arguments(tmp_path):
    """They used to be ignored: the worker ran forever."""
    path = make_disk_env(str(tmp_path), {'smtp_enabled': 'true',
                                         'delivery': 'worker'})
    for args in (['--bogus'], ['once'], ['--once', '--once']):
        done = subprocess.run(
            [sys.executable, '-m', 'trac.admin.console', path, 'notify',
             'worker'] + args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert 'Unknown arguments: %s' % ' '.join(args) in done.stderr
        assert 'notify worker [--once]' in done.stdout + done.stderr
