"""Several worker processes, one queue; a worker killed with kill -9.

Real ``trac-admin ENV notify worker`` processes against one environment on
disk (SQLite, and PostgreSQL when available), a real SMTP server.  Nothing
is sent twice by concurrent workers; a worker killed in the middle of a batch
loses nothing, and the only duplicates are messages of its in-flight batch,
with the same Message-ID.
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

from tests.support.disk_env import drop_disk_env, make_disk_env
from tests.support.sockets import local_tcp_ports

PG_URI = os.environ.get('TRACNOTIFY_PG_URI', '')
BACKENDS = ['sqlite'] + (['postgres'] if PG_URI else [])


@pytest.fixture(params=BACKENDS)
def disk_env(request, tmp_path, smtp_sink):
    sink = smtp_sink()
    options = {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'worker',
        'outbox_batch_size': '10', 'outbox_lease_seconds': '3',
        'outbox_poll_interval': '1', 'outbox_retry_delay': '1',
    }
    path = make_disk_env(str(tmp_path), options,
                         PG_URI if request.param == 'postgres' else None)
    yield path, sink
    drop_disk_env(path)


def start_worker(path):
    return subprocess.Popen([sys.executable, '-m', 'trac.admin.console',
                             path, 'notify', 'worker'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def ticket_with_cc(path, count):
    """One ticket whose cc list has *count* addresses: count+1 messages."""
    env = Environment(path)
    ticket = Ticket(env)
    ticket.populate({'summary': 'Many watchers', 'reporter': 'alice',
                     'cc': ', '.join('cc%03d@example.org' % i
                                     for i in range(count))})
    ticket.insert()
    env.shutdown()
    return {'alice@example.org'} | {'cc%03d@example.org' % i
                                    for i in range(count)}


def wait_for_all(sink, expected, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = {r for m in sink.received for r in m.rcpt_tos}
        if expected <= got:
            return
        time.sleep(0.1)
    raise AssertionError('missing: %s' % sorted(expected - got)[:10])


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.decode()


def test_three_workers_send_each_message_exactly_once(disk_env):
    path, sink = disk_env
    expected = ticket_with_cc(path, 150)
    workers = [start_worker(path) for _ in range(3)]
    try:
        wait_for_all(sink, expected)
        time.sleep(1.5)
    finally:
        results = [stop(w) for w in workers]
    counts = collections.Counter(r for m in sink.received for r in m.rcpt_tos)
    assert set(counts) == expected
    assert max(counts.values()) == 1
    for code, out in results:
        assert code == 0, out
        assert 'worker stopped' in out


def test_worker_killed_mid_batch_loses_nothing(disk_env):
    path, sink = disk_env
    sink.handler.delay = 0.05
    expected = ticket_with_cc(path, 60)
    victim = start_worker(path)
    sink.wait_for(15, timeout=60)
    victim.kill()                       # kill -9 in the middle of a batch
    victim.wait(10)
    in_flight_before = len(sink.received)
    survivor = start_worker(path)
    try:
        wait_for_all(sink, expected)
    finally:
        code, out = stop(survivor)
    assert code == 0, out
    copies = collections.defaultdict(list)
    for mail in sink.received:
        copies[mail.rcpt_tos[0]].append(mail.message['Message-ID'])
    assert set(copies) == expected
    duplicates = {r: ids for r, ids in copies.items() if len(ids) > 1}
    # only the killed worker's in-flight batch (10 messages) may repeat ...
    assert len(duplicates) <= 10, duplicates
    # ... and a repeat is the same message (same Message-ID)
    assert all(len(set(ids)) == 1 for ids in duplicates.values())
    assert in_flight_before < len(expected) + 1


def test_sigterm_finishes_the_batch_in_flight(disk_env):
    path, sink = disk_env
    sink.handler.delay = 0.05
    ticket_with_cc(path, 40)
    worker = start_worker(path)
    sink.wait_for(3, timeout=60)
    code, out = stop(worker, signal.SIGTERM)
    assert code == 0, out
    env = Environment(path)
    try:
        leased = env.db_query("""SELECT COUNT(*) FROM tracnotify_message
                                 WHERE lease_owner IS NOT NULL""")[0][0]
        sent = env.db_query("""SELECT COUNT(*) FROM tracnotify_message
                               WHERE state='sent'""")[0][0]
    finally:
        env.shutdown()
    assert leased == 0                  # nothing left half-claimed
    assert sent == len(sink.received)   # every delivered mail is recorded
    assert sent % 10 == 0               # whole batches only


def test_worker_survives_database_dropping_its_connections(disk_env):
    path, sink = disk_env
    ini = open(os.path.join(path, 'conf', 'trac.ini')).read()
    if 'postgres://' not in ini:
        pytest.skip('connections are dropped by servers, not SQLite files')
    first = ticket_with_cc(path, 2)
    worker = start_worker(path)
    try:
        wait_for_all(sink, first)
        ports = sorted(local_tcp_ports(worker.pid))
        assert ports, 'the worker holds no database connection'
        env = Environment(path)
        # what an idle-timeout would do, to the worker's connections only
        # (other test runs share the server)
        with env.db_transaction as db:
            dropped = db("""SELECT pg_terminate_backend(pid)
                            FROM pg_stat_activity
                            WHERE pid<>pg_backend_pid()
                            AND client_port IN (%s)"""
                         % ','.join('%d' % p for p in ports))
        env.shutdown()
        assert dropped, 'no connection of the worker was dropped'
        second = {'cc%03d@example.org' % i for i in range(5, 8)}
        env = Environment(path)
        ticket = Ticket(env)
        ticket.populate({'summary': 'After the drop', 'reporter': 'bob',
                         'cc': ', '.join(sorted(second))})
        ticket.insert()
        env.shutdown()
        wait_for_all(sink, second, timeout=60)
    finally:
        code, out = stop(worker)
    assert code == 0, out
