"""Fenced leases: a worker that lost its lease cannot record over another's.

Every state change of a claimed row is conditional on the claim's lease
token; lease times come from the database's clock, not the worker's; slow
sends and long expansions renew their lease, so that a second worker does
not take (and mail) what the first is still working on.  On SQLite (a
file: threads need connections of their own) and on PostgreSQL.
"""

import collections
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from trac.env import Environment
from trac.ticket.model import Ticket

from tests.support.disk_env import drop_disk_env, make_disk_env
from tests.support.envs import make_stub_env
from tests.support.smtp_sink import SinkHandler, SmtpSink
from tests.support.tickets import change_ticket, create_ticket, deliver
from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.mail.coalesce import HOLD, Coalescer
from tracnotify.outbox import NewMessage, clock


@pytest.fixture
def env_for(backend, make_env, tmp_path):
    """Factory: an environment whose database several threads may use
    (make_env's SQLite is one in-memory connection)."""
    envs = []

    def factory(**options):
        if backend == 'postgres':
            return make_env(**options)
        path = str(tmp_path / ('threaded%d' % len(envs)))
        os.makedirs(os.path.join(path, 'db'))
        env = make_stub_env(path, 'sqlite:db/trac.db', options)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.shutdown()


def start_worker(path: str) -> subprocess.Popen:
    """``trac-admin ENV notify worker`` in a process of its own."""
    return subprocess.Popen([sys.executable, '-m', 'trac.admin.console',
                             path, 'notify', 'worker'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen) -> str:
    """SIGTERM, then its output."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out.decode('utf-8', 'replace')


def expire_leases(env, table: str) -> None:
    """What the passing of the lease time does (on the database's clock)."""
    env.db_transaction('UPDATE %s SET lease_until=%%s '
                       'WHERE lease_owner IS NOT NULL' % table,
                       (clock.db_now_us(env) - 1,))


def one_message(env) -> int:
    """A ticket whose change gives one message (to its reporter)."""
    create_ticket(env)
    Deliverer(env).expand_events(PassReport())
    (count,), = env.db_query('SELECT COUNT(*) FROM tracnotify_message')
    assert count == 1
    return env.db_query('SELECT id FROM tracnotify_message')[0][0]


def state_of(env, message_id: int) -> tuple:
    return env.db_query("""SELECT state, attempts, lease_owner
                           FROM tracnotify_message WHERE id=%s""",
                        (message_id,))[0]


# The state changes, one by one ---------------------------------------------

def test_a_stale_failure_cannot_turn_a_sent_message_back_to_pending(
        make_env):
    env = make_env()
    message_id = one_message(env)
    slow = outbox.claim_messages(env, 10)
    expire_leases(env, 'tracnotify_message')
    fast = outbox.claim_messages(env, 10)
    assert [m.id for m in fast] == [message_id] and fast.token != slow.token
    assert outbox.mark_sent(env, [message_id], fast.token) == [message_id]
    # the slow worker's 451 comes back after the other delivered the mail
    assert outbox.mark_failed(env, slow[0], '451 try later', False, 5, 1,
                              slow.token) is None
    assert outbox.mark_sent(env, [message_id], slow.token) == []
    assert outbox.release(env, [message_id], slow.token) == 0
    assert state_of(env, message_id) == (outbox.SENT, 1, None)
    assert deliver(env).attempted == 0


def test_a_stale_worker_cannot_release_or_fail_a_message_another_holds(
        make_env):
    env = make_env()
    message_id = one_message(env)
    slow = outbox.claim_messages(env, 10)
    expire_leases(env, 'tracnotify_message')
    fast = outbox.claim_messages(env, 10)
    assert outbox.release(env, [message_id], slow.token) == 0
    assert outbox.mark_failed(env, slow[0], '550 no', True, 5, 1,
                              slow.token) is None
    assert state_of(env, message_id) == (outbox.PENDING, 0, fast.token)
    assert outbox.release(env, [message_id], fast.token) == 1
    assert state_of(env, message_id) == (outbox.PENDING, 0, None)


def test_a_stale_expansion_is_dropped(make_env):
    env = make_env()
    create_ticket(env)
    slow = outbox.claim_events(env, 10)
    expire_leases(env, 'tracnotify_event')
    fast = outbox.claim_events(env, 10)
    event_id = slow[0][0]
    assert [row[0] for row in fast] == [event_id]
    message = NewMessage(ticket=1, kind='ticket_created', msgid='<x@y>',
                         sender='trac@example.org',
                         recipient='alice@example.org', reason='reporter',
                         subject='s', message='Subject: s\r\n\r\nb\r\n')
    with pytest.raises(outbox.LeaseLost):
        outbox.complete_event(env, event_id, [message], slow.token)
    assert not outbox.fail_event(env, event_id, 0, 'boom', 5, slow.token)
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_message') == [(0,)]
    assert outbox.complete_event(env, event_id, [message], fast.token) == 1
    assert env.db_query('SELECT state, lease_owner FROM tracnotify_event') \
        == [(outbox.DONE, None)]
    with pytest.raises(outbox.LeaseLost):   # done: nobody completes it again
        outbox.complete_event(env, event_id, [message], fast.token)
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_message') == [(1,)]


def test_a_stale_batch_hold_leaves_the_new_owner_alone(make_env):
    env = make_env(batch_window='30')
    ids = [create_ticket(env).id for _ in range(3)]
    Deliverer(env).expand_events(PassReport())
    for ticket_id in ids[:2]:            # one batch of changes by bob
        change_ticket(env, ticket_id, author='bob', comment='Both')
    expire_leases(env, 'tracnotify_event')   # their recording holds, too
    slow = outbox.claim_events(env, 10)
    expire_leases(env, 'tracnotify_event')
    fast = outbox.claim_events(env, 10)
    # bob's script goes on: the batch stays open (coalesce.py)
    change_ticket(env, ids[2], author='bob', comment='Third')
    first_two = 'SELECT lease_owner FROM tracnotify_event WHERE id IN ' \
        '(%s, %s)' % (slow[0].id, slow[1].id)
    # the slow worker finds the batch open and would hold it
    Coalescer(env, load_config(env)).split(slow)
    assert {owner for owner, in env.db_query(first_two)} == {fast.token}
    Coalescer(env, load_config(env)).split(fast)
    assert {owner for owner, in env.db_query(first_two)} == {HOLD}


# The database's clock --------------------------------------------------------

def test_a_worker_whose_clock_is_an_hour_ahead_cannot_steal_a_live_lease(
        make_env, monkeypatch):
    env = make_env(outbox_lease_seconds='60')
    create_ticket(env)
    create_ticket(env)
    first = outbox.claim_events(env, 1)
    assert len(first) == 1
    Deliverer(env).expand_events(PassReport())    # the second event
    messages = outbox.claim_messages(env, 10)
    assert len(messages) == 1
    real = time.time
    monkeypatch.setattr(time, 'time', lambda: real() + 3600)
    assert outbox.claim_events(env, 10) == []
    assert outbox.claim_messages(env, 10) == []
    monkeypatch.setattr(time, 'time', lambda: real() - 3600)
    expire_leases(env, 'tracnotify_message')       # ran out: claimable
    assert [m.id for m in outbox.claim_messages(env, 10)] == \
        [messages[0].id]


def test_database_clock_is_the_servers(make_env):
    env = make_env()
    before = int(time.time() * 1e6)
    now = clock.db_now_us(env)
    after = int(time.time() * 1e6)
    # same machine: the same time, to SQLite's millisecond
    assert before - 2000 <= now <= after + 2000


# Slow sends and long expansions renew their lease ----------------------------

class SlowFirstReply(SinkHandler):
    """The first DATA takes *slow* seconds and is answered 451; the others
    are quick and accepted."""

    def __init__(self, slow: float) -> None:
        super().__init__()
        self.slow = slow
        self.calls = 0

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(self.slow)
            return '451 4.3.0 try again later'
        return await super().handle_DATA(server, session, envelope)


def test_a_slow_451_does_not_let_a_second_worker_send_a_second_copy(
        env_for):
    handler = SlowFirstReply(slow=2.5)
    with SmtpSink(handler=handler) as sink:
        env = env_for(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                      outbox_lease_seconds='1', outbox_retry_delay='1')
        one_message(env)
        slow = threading.Thread(target=deliver, args=(env,))
        slow.start()
        time.sleep(1.3)                  # the first worker's lease ran out
        deadline = time.monotonic() + 6
        while slow.is_alive() and time.monotonic() < deadline:
            deliver(env)                 # a second worker, looking again
            time.sleep(0.1)
        slow.join()
        time.sleep(1.2)                  # the retry delay of the 451
        deadline = time.monotonic() + 10
        while not sink.received and time.monotonic() < deadline:
            deliver(env)
            time.sleep(0.2)
        for _ in range(3):
            env.db_transaction('UPDATE tracnotify_message SET next_attempt=0')
            deliver(env)
        assert len(sink.received) == 1, [r.rcpt_tos for r in sink.received]
        assert env.db_query('SELECT state FROM tracnotify_message') == \
            [(outbox.SENT,)]


def test_an_expansion_longer_than_the_lease_is_done_once(env_for,
                                                          monkeypatch):
    env = env_for(outbox_lease_seconds='1')
    for n in range(4):
        create_ticket(env, cc='watcher%d@example.org' % n)
    from tracnotify.mail import pipeline
    real = pipeline.build_messages

    def slow_build(*args, **kwargs):
        time.sleep(0.6)                  # a change to many recipients
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline, 'build_messages', slow_build)
    first = threading.Thread(
        target=lambda: Deliverer(env).expand_events(PassReport()))
    first.start()
    while not env.db_query('SELECT id FROM tracnotify_event '
                           'WHERE lease_owner IS NOT NULL'):
        time.sleep(0.01)                 # the first worker claimed them all
    while first.is_alive():              # a second worker, looking again
        Deliverer(env).expand_events(PassReport())
        time.sleep(0.05)
    first.join()
    Deliverer(env).expand_events(PassReport())
    copies = collections.Counter(env.db_query(
        'SELECT ticket, recipient FROM tracnotify_message'))
    assert len(copies) == 8              # reporter and watcher, 4 tickets
    assert set(copies.values()) == {1}, copies


# Two `notify worker` processes, a 1 s lease, a slow SMTP server -------------

def test_two_workers_with_a_short_lease_and_a_slow_server_send_once(
        backend, tmp_path, smtp_sink):
    sink = smtp_sink()
    sink.handler.delay = 0.3             # 5 messages a batch: 1.5 s > lease
    path = make_disk_env(str(tmp_path), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'worker',
        'outbox_batch_size': '5', 'outbox_lease_seconds': '1',
        'outbox_poll_interval': '1', 'outbox_retry_delay': '1',
        'smtp_connections': '1',
    }, os.environ['TRACNOTIFY_PG_URI'] if backend == 'postgres' else None)
    try:
        env = Environment(path)
        expected = set()
        for n in range(2):
            ticket = Ticket(env)
            cc = ['cc%d-%02d@example.org' % (n, i) for i in range(9)]
            ticket.populate({'summary': 'Slow %d' % n, 'reporter': 'alice',
                             'cc': ', '.join(cc)})
            ticket.insert()
            expected |= {(r, ticket.id) for r in cc + ['alice@example.org']}
        env.shutdown()
        workers = [start_worker(path) for _ in range(2)]
        try:
            deadline = time.monotonic() + 90
            while len(sink.received) < len(expected) and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.5)              # time for a second copy, if any
        finally:
            outputs = [stop_worker(w) for w in workers]
        copies = collections.Counter(
            (m.rcpt_tos[0], int(m.message['X-Trac-Ticket-ID']))
            for m in sink.received)
        assert set(copies) == expected, outputs
        assert max(copies.values()) == 1, \
            {k: n for k, n in copies.items() if n > 1}
        env = Environment(path)
        rows = env.db_query('SELECT state, attempts, lease_owner '
                            'FROM tracnotify_message')
        env.shutdown()
        # sent once each, never back to pending
        assert collections.Counter(rows) == {(outbox.SENT, 1, None):
                                             len(expected)}
    finally:
        drop_disk_env(path)
