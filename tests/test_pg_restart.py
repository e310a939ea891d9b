"""A PostgreSQL restart while ``notify worker`` processes send.

On a private server (``tests/support/private_pg.py``; the shared one of the
test run is never restarted): ``pg_ctl restart -m fast`` in the middle of a
send drops every connection.  The results of a batch the SMTP server
accepted are kept in memory and recorded once the database is back, so no
copy is sent twice; a worker started while the database is down waits for
it instead of exiting.
"""

import collections
import os
import signal
import subprocess
import sys
import time

import pytest
from trac.env import Environment
from trac.ticket.model import Ticket

from tests.support.disk_env import make_disk_env
from tests.support.private_pg import PrivatePostgres, postgres_bin

pytestmark = pytest.mark.skipif(postgres_bin() is None,
                                reason='PostgreSQL is not installed')


@pytest.fixture
def private_pg():
    with PrivatePostgres() as pg:
        yield pg


def worker_env(tmp_path, sink, pg) -> str:
    return make_disk_env(str(tmp_path), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'worker',
        'outbox_batch_size': '10', 'outbox_lease_seconds': '3',
        'outbox_poll_interval': '1', 'outbox_retry_delay': '1',
        'smtp_connections': '1',
    }, pg.uri)


def start_worker(path: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'trac.admin.console',
                             path, 'notify', 'worker'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen) -> tuple:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode('utf-8', 'replace')


def new_ticket(path: str, summary: str, cc: list) -> int:
    env = Environment(path)
    try:
        ticket = Ticket(env)
        ticket.populate({'summary': summary, 'reporter': 'alice',
                         'cc': ', '.join(cc)})
        return ticket.insert()
    finally:
        env.shutdown()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)


def test_restart_while_three_workers_send_sends_no_copy_twice(
        tmp_path, smtp_sink, private_pg):
    sink = smtp_sink()
    sink.handler.delay = 0.02
    path = worker_env(tmp_path, sink, private_pg)
    cc = ['cc%03d@example.org' % i for i in range(239)]
    new_ticket(path, 'Many watchers', cc)
    expected = set(cc) | {'alice@example.org'}
    workers = [start_worker(path) for _ in range(3)]
    try:
        wait_until(lambda: len(sink.received) >= 60, 90, 'the first mails')
        private_pg.restart()             # every connection is dropped
        restarted_at = len(sink.received)
        wait_until(lambda: {r for m in sink.received for r in m.rcpt_tos}
                   >= expected, 90, 'every recipient')
        time.sleep(4.5)                  # a lost result's lease runs out
    finally:
        outputs = [stop_worker(w) for w in workers]
    copies = collections.Counter(m.rcpt_tos[0] for m in sink.received)
    assert set(copies) == expected
    assert restarted_at < len(expected), 'the restart came too late'
    assert max(copies.values()) == 1, (
        {r: n for r, n in copies.items() if n > 1}, outputs)
    env = Environment(path)
    try:
        rows = env.db_query('SELECT state, attempts, lease_owner '
                            'FROM tracnotify_message')
    finally:
        env.shutdown()
    assert collections.Counter(rows) == {('sent', 1, None): len(expected)}
    for code, out in outputs:
        assert code == 0, out


def test_worker_started_while_the_database_is_down_waits_for_it(
        tmp_path, smtp_sink, private_pg):
    sink = smtp_sink()
    path = worker_env(tmp_path, sink, private_pg)
    private_pg.stop()
    worker = start_worker(path)
    log = os.path.join(path, 'log', 'trac.log')

    def waiting() -> bool:
        assert worker.poll() is None, stop_worker(worker)
        with open(log, encoding='utf-8') as f:
            return f.read().count('the database is unreachable') >= 2
    try:
        wait_until(waiting, 60, 'the worker to wait for the database')
        private_pg.start()
        new_ticket(path, 'After the outage', ['bob@example.org'])
        wait_until(lambda: len(sink.received) >= 2, 60, 'the mail')
    finally:
        code, out = stop_worker(worker)
    assert code == 0, out
    assert 'database is unreachable' in out
    assert sorted(m.rcpt_tos[0] for m in sink.received) == \
        ['alice@example.org', 'bob@example.org']
