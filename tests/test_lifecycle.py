"""The in-process delivery thread has one owner: its environment object.

Real environments on disk (``trac-admin initenv``), real SMTP servers, and
Trac's own ``open_environment`` cache (what tracd uses) for reloads.
"""

import glob
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from trac.db.api import DatabaseManager
from trac.env import Environment, env_cache, open_environment

from tests.support.disk_env import make_disk_env
from tests.support.live_trac import trac_admin
from tests.support.smtp_sink import SinkHandler
from tests.support.tickets import create_ticket
from tracnotify.delivery.service import THREAD_NAME, DeliveryService

SCRIPT = textwrap.dedent('''
    import sys
    from trac.env import Environment
    from trac.ticket.model import Ticket
    env = Environment(sys.argv[1])
    for i in range(int(sys.argv[2])):
        ticket = Ticket(env)
        ticket.populate({'summary': 'Scripted %d' % i, 'reporter': 'alice'})
        ticket.insert()
    env.shutdown()
''')


def site(tmp_path, sink, **notification) -> str:
    """An environment on disk that delivers to *sink* from its own thread."""
    options = {'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
               'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
               'smtp_default_domain': 'example.org', 'delivery': 'inline',
               'batch_window': '0', 'outbox_poll_interval': '1'}
    options.update(notification)
    return make_disk_env(str(tmp_path), options)


def delivery_threads(before=()):
    """The live delivery threads of this process, except *before*."""
    return [t for t in threading.enumerate()
            if t.name == THREAD_NAME and t.is_alive() and t not in before]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def outbox_state(path: str) -> dict:
    """Leased events and messages, and what is not sent, read straight from
    the SQLite file (not through Trac's pool)."""
    with sqlite3.connect(os.path.join(path, 'db', 'trac.db')) as db:
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            'leased_events': one('SELECT COUNT(*) FROM tracnotify_event '
                                 'WHERE lease_owner IS NOT NULL'),
            'leased_messages': one('SELECT COUNT(*) FROM tracnotify_message '
                                   'WHERE lease_owner IS NOT NULL'),
            'pending_events': one("SELECT COUNT(*) FROM tracnotify_event "
                                  "WHERE state='pending'"),
            'unsent': one("SELECT COUNT(*) FROM tracnotify_message "
                          "WHERE state!='sent'"),
        }


CLEAN = {'leased_events': 0, 'leased_messages': 0, 'pending_events': 0,
         'unsent': 0}


def test_a_script_that_saves_many_tickets_and_shuts_down_never_crashes(
        tmp_path, sink):
    """Issue 11, item 1: the thread used to be inside a query while
    env.shutdown() closed the pool (SIGSEGV in most runs, leases left)."""
    path = site(tmp_path, sink)
    trac_admin(path, 'config', 'set', 'trac', 'database',
               'sqlite:db/trac.db?synchronous=off')   # fast commits
    runs = int(os.environ.get('TRACNOTIFY_SHUTDOWN_RUNS', '10'))
    tickets = 100
    for run in range(runs):
        done = subprocess.run([sys.executable, '-c', SCRIPT, path,
                               str(tickets)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (run, done.returncode, done.stderr)
        assert 'Traceback' not in done.stderr, (run, done.stderr)
        # the process is gone: all its mail went out, nothing is leased
        assert len(sink.received) == tickets * (run + 1), run
        assert outbox_state(path) == CLEAN, run


def test_env_shutdown_stops_and_joins_the_thread(tmp_path, sink):
    before = delivery_threads()
    path = site(tmp_path, sink)
    env = Environment(path)
    create_ticket(env, cc='carol@example.com')
    assert len(delivery_threads(before)) == 1
    env.shutdown()
    assert delivery_threads(before) == []
    # its last pass mailed the change and left no lease
    assert sorted(r for m in sink.received for r in m.rcpt_tos) == \
        ['alice@example.org', 'carol@example.com']
    assert outbox_state(path) == CLEAN


def test_the_thread_has_a_native_name(tmp_path, sink):
    """So that ``ps -L`` / ``/proc/PID/task/*/comm`` can count it."""
    def native_names():
        names = []
        for comm in glob.glob('/proc/self/task/*/comm'):
            try:
                with open(comm) as f:
                    names.append(f.read().strip())
            except OSError:
                pass
        return names
    if not os.path.isdir('/proc/self/task'):
        pytest.skip('no /proc')
    already = native_names().count(THREAD_NAME)
    env = Environment(site(tmp_path, sink))
    try:
        create_ticket(env)
        assert wait_until(
            lambda: native_names().count(THREAD_NAME) == already + 1)
    finally:
        env.shutdown()
    # joined; the operating system's thread ends a moment later
    assert wait_until(lambda: native_names().count(THREAD_NAME) == already,
                      2)


def test_a_reload_retires_the_old_environment_thread(tmp_path, sink):
    """What tracd does when trac.ini changes: open_environment shuts the
    old environment down and makes a new one.  One thread, always."""
    before = delivery_threads()
    path = site(tmp_path, sink)
    try:
        for poll in ('2', '3', '1'):
            env = open_environment(path, use_cache=True)
            DeliveryService(env).pre_process_request(None, None)
            assert wait_until(lambda: len(delivery_threads(before)) == 1)
            trac_admin(path, 'config', 'set', 'notification',
                       'outbox_poll_interval', poll)
            new = open_environment(path, use_cache=True)
            assert new is not env
            # the old thread was stopped and joined during the reload
            assert delivery_threads(before) == []
            assert not DeliveryService(env).running
            DeliveryService(env).wake()             # a late save: no thread
            assert delivery_threads(before) == []
        create_ticket(new)
        assert len(delivery_threads(before)) == 1
        assert len(sink.wait_for(1)) == 1
    finally:
        cached = env_cache.pop(path, None)
        if cached is not None:
            cached.shutdown()
    assert delivery_threads(before) == []


def test_each_pass_reads_trac_ini_afresh(tmp_path, smtp_sink):
    """An edited trac.ini counts for the next pass, reload or not: a new
    relay, smtp_enabled = false, delivery = worker."""
    first, second = smtp_sink(), smtp_sink()
    before = delivery_threads()
    path = site(tmp_path, first)
    env = Environment(path)
    try:
        create_ticket(env)
        assert len(first.wait_for(1)) == 1
        trac_admin(path, 'config', 'set', 'notification', 'smtp_port',
                   str(second.port))
        create_ticket(env)
        assert len(second.wait_for(1)) == 1
        assert len(first.received) == 1

        trac_admin(path, 'config', 'set', 'notification', 'smtp_enabled',
                   'false')
        create_ticket(env)          # recorded (this env still says true)
        time.sleep(2.5)             # two polls
        assert len(second.received) == 1

        trac_admin(path, 'config', 'set', 'notification', 'delivery',
                   'worker')
        assert wait_until(lambda: delivery_threads(before) == [], 5)
        create_ticket(env)
        assert delivery_threads(before) == []
        assert len(second.received) == 1
    finally:
        env.shutdown()


def test_an_environment_dropped_without_shutdown_ends_its_thread(tmp_path,
                                                                 sink):
    """In a process of its own: pytest's log capture keeps references to
    whatever a log line named."""
    script = textwrap.dedent('''
        import gc, sys, threading, time
        from trac.env import Environment
        from trac.ticket.model import Ticket
        env = Environment(sys.argv[1])
        ticket = Ticket(env)
        ticket.populate({'summary': 'Dropped', 'reporter': 'alice'})
        ticket.insert()
        while env.db_query("SELECT COUNT(*) FROM tracnotify_message "
                           "WHERE state='sent'")[0][0] == 0:
            time.sleep(0.05)
        del env, ticket
        deadline = time.monotonic() + 5
        ours = lambda: [t for t in threading.enumerate()
                        if t.name.startswith('tracnotify')]
        while time.monotonic() < deadline and ours():
            gc.collect()     # as the interpreter does, now and then
            time.sleep(0.05)
        print(len(ours()))
    ''')
    done = subprocess.run([sys.executable, '-c', script,
                           site(tmp_path, sink)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '0'
    assert len(sink.received) == 1


def test_closing_the_pool_waits_for_the_batch_in_flight(tmp_path,
                                                        smtp_sink):
    """Trac's pool is shared by the whole process: closing it (here
    DatabaseManager.shutdown, as upgrades and reset_db do) pauses the
    thread after its batch, records that batch, then lets it go on."""
    slow = smtp_sink(handler=SinkHandler(delay=1.0))
    path = site(tmp_path, slow)
    env = Environment(path)
    try:
        create_ticket(env)
        assert wait_until(
            lambda: outbox_state(path)['leased_messages'] == 1)
        DatabaseManager(env).shutdown()
        assert outbox_state(path) == CLEAN
        assert len(slow.received) == 1
        assert DeliveryService(env).running
    finally:
        env.shutdown()
