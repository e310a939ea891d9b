"""A running tracd while its trac.ini is edited (issue 11, item 2).

Trac reloads the environment on the first request after trac.ini changed;
the old environment's delivery thread must stop, and every pass must use
the settings of the moment.  Threads are counted as the operating system
sees them (``/proc/PID/task/*/comm``): the delivery thread names itself
``tracnotify-dlv``.
"""

import glob
import os
import sqlite3
import time

import pytest

from tests.support.live_trac import trac_admin
from tests.support.smtp_sink import SmtpSink, free_port

pytestmark = pytest.mark.skipif(not os.path.isdir('/proc/self/task'),
                                reason='threads are counted in /proc')


def thread_names(pid: int) -> list:
    names = []
    for comm in glob.glob('/proc/%d/task/*/comm' % pid):
        try:
            with open(comm) as f:
                names.append(f.read().strip())
        except OSError:      # a thread that just ended
            pass
    return names


def delivery_threads(pid: int) -> int:
    """How many threads of *pid* are delivery threads: named
    ``tracnotify-dlv`` in two looks half a second apart (by thread id).  A
    thread the delivery thread starts (a lease keeper, an SMTP sender) is
    born with its creator's native name on Linux and carries it until its
    first statement renames it (tracnotify/threadname.py): in one look at
    that moment it would count as a second delivery thread.  A delivery
    thread that outlived a reload is named so in both looks."""
    def named() -> set:
        found = set()
        for comm in glob.glob('/proc/%d/task/*/comm' % pid):
            try:
                with open(comm) as f:
                    if f.read().strip() == 'tracnotify-dlv':
                        found.add(comm.split('/')[-2])
            except OSError:      # a thread that just ended
                pass
        return found
    first = named()
    time.sleep(0.5)
    return len(first & named())


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_settings_changes_take_effect_in_a_running_tracd(start_site):
    trac, first = start_site()
    second = SmtpSink().start()
    try:
        check_reloads(trac, first, second)
    finally:
        second.stop()


def check_reloads(trac, first, second):
    pid = trac.proc.pid
    delivery = lambda: delivery_threads(pid)  # noqa: E731
    alice = trac.client('alice')
    set_option = lambda name, value: trac_admin(  # noqa: E731
        trac.env_path, 'config', 'set', 'notification', name, value)

    alice.create_ticket(summary='Before any edit', cc='carol@example.com')
    assert len(first.wait_for(2, 20)) == 2
    assert wait_until(lambda: delivery() == 1)
    time.sleep(1)                   # request threads have ended
    baseline = len(thread_names(pid))

    # each edit reloads the environment at the next request: one thread
    for poll in ('2', '3', '1', '2', '1'):
        set_option('outbox_poll_interval', poll)
        trac.client().get('/')
        assert delivery() <= 1
        assert wait_until(lambda: delivery() == 1, 5)
    assert wait_until(lambda: len(thread_names(pid)) <= baseline, 5), \
        thread_names(pid)

    # a wrong port, repaired: the thread uses the new one for the retry,
    # with no web request in between (no reload)
    set_option('smtp_port', str(free_port()))
    alice.create_ticket(summary='Second', cc='carol@example.com')
    db = os.path.join(trac.env_path, 'db', 'trac.db')

    def retrying() -> int:
        with sqlite3.connect(db) as cnx:
            return cnx.execute("SELECT COUNT(*) FROM tracnotify_message "
                               "WHERE state='pending' AND attempts>0"
                               ).fetchone()[0]
    assert wait_until(lambda: retrying() == 2, 20)
    set_option('smtp_port', str(second.port))
    trac_admin(trac.env_path, 'notify', 'retry', 'all')
    assert len(second.wait_for(2, 20)) == 2
    assert delivery() == 1

    # the next change after a reload: the new relay only
    alice.create_ticket(summary='Third', cc='carol@example.com')
    assert len(second.wait_for(4, 20)) == 4
    assert len(first.received) == 2

    # smtp_enabled = false: nothing is sent
    set_option('smtp_enabled', 'false')
    alice.create_ticket(summary='Not mailed', cc='carol@example.com')
    time.sleep(2.5)
    assert len(second.received) == 4
    assert delivery() <= 1

    # delivery = worker: tracd delivers nothing, `notify send` does
    set_option('smtp_enabled', 'true')
    set_option('delivery', 'worker')
    alice.create_ticket(summary='For the worker', cc='carol@example.com')
    assert wait_until(lambda: delivery() == 0, 5)
    time.sleep(2.5)
    assert len(second.received) == 4
    trac_admin(trac.env_path, 'notify', 'send')
    subjects = {m.message['Subject'] for m in second.received[4:]}
    assert len(second.received) == 6
    assert all('For the worker' in s for s in subjects), subjects
    assert len(first.received) == 2
