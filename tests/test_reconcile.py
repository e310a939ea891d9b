"""No change lost between Trac's commit and the outbox insert (issue 11,
item 5): the reconciler records what a killed process left behind, exactly
once, with the snapshot its listener would have taken."""

import collections
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from trac.env import Environment

from tests.support.disk_env import drop_disk_env, make_disk_env
from tests.support.live_trac import trac_admin
from tests.support.tickets import change_ticket, create_ticket
from tracnotify import outbox
from tracnotify.event import TicketEvent
from tracnotify.listener import TicketMailListener
from tracnotify.outbox import reconcile

PG_URI = os.environ.get('TRACNOTIFY_PG_URI', '')
BACKENDS = ['sqlite'] + (['postgres'] if PG_URI else [])
LATER = reconcile.GRACE_SECONDS * reconcile.US + 1

# A script that saves through Trac's model API and is killed with SIGKILL
# after Trac's commit, just before tracnotify's outbox insert.
KILLED_SCRIPT = textwrap.dedent('''
    import os, signal, sys
    from trac.env import Environment
    from trac.ticket.model import Ticket
    import tracnotify.outbox

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    env = Environment(sys.argv[1])
    tracnotify.outbox.add_event = killed
    if sys.argv[2] == 'create':
        ticket = Ticket(env)
        ticket.populate({'summary': 'Made by a dying script',
                         'reporter': 'alice', 'cc': 'carol@example.com'})
        ticket.insert()
    else:
        ticket = Ticket(env, int(sys.argv[2]))
        ticket['priority'] = 'critical'
        ticket.save_changes('bob', 'Changed by a dying script')
    print('not killed')
''')


def run_killed(path, what):
    proc = subprocess.run([sys.executable, '-c', KILLED_SCRIPT, path, what],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr


def events(env):
    """The events that may be mailed (not those kept as made while mail
    was off)."""
    return env.db_query('SELECT kind, ticket, change_key FROM '
                        'tracnotify_event WHERE state<>%s ORDER BY id',
                        (outbox.OFF,))


@pytest.fixture(params=BACKENDS)
def disk_env(request, tmp_path, smtp_sink):
    sink = smtp_sink()
    path = make_disk_env(str(tmp_path), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'worker',
        'always_notify_reporter': 'true', 'batch_window': '0'},
        PG_URI if request.param == 'postgres' else None)
    yield path, sink
    drop_disk_env(path)


def test_script_killed_after_commit_still_mails_once(disk_env):
    path, sink = disk_env
    run_killed(path, 'create')
    env = Environment(path)
    try:
        ticket_id, = [t for t, in env.db_query('SELECT id FROM ticket')]
        run_killed(path, str(ticket_id))
        assert events(env) == []            # both changes lost so far
        # a delivery pass once the listener's grace time is over
        assert reconcile.reconcile(env, outbox.now_us() + LATER) == 2
        assert reconcile.reconcile(env, outbox.now_us() + LATER) == 0
    finally:
        env.shutdown()
    trac_admin(path, 'notify', 'send')
    trac_admin(path, 'notify', 'send')      # and again: nothing twice
    got = collections.Counter(
        (r, m.message['X-Trac-Notification-Type'])
        for m in sink.received for r in m.rcpt_tos)
    assert got == {('alice@example.org', 'ticket_created'): 1,
                   ('carol@example.com', 'ticket_created'): 1,
                   ('alice@example.org', 'ticket_changed'): 1,
                   ('bob@example.org', 'ticket_changed'): 1,
                   ('carol@example.com', 'ticket_changed'): 1}
    changed = [m.message for m in sink.received
               if m.message['X-Trac-Notification-Type'] == 'ticket_changed']
    body = changed[0].get_content()
    assert 'Changed by a dying script' in body
    assert 'critical' in body


def test_listener_and_reconciler_never_both_record(make_env):
    env = make_env()
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, comment='Seen by the listener.')
    assert len(events(env)) == 2
    assert reconcile.reconcile(env, outbox.now_us() + LATER) == 0
    assert len(events(env)) == 2


def test_listener_coming_second_records_nothing(make_env, caplog,
                                                monkeypatch):
    """A process slower than the grace time: the reconciler was first."""
    env = make_env()
    ticket = create_ticket(env)
    late = []
    monkeypatch.setattr(TicketMailListener, '_record',
                        lambda self, event: late.append(event))
    change_ticket(env, ticket.id, author='bob', comment='Slow process.')
    monkeypatch.undo()
    assert reconcile.reconcile(env, outbox.now_us() + LATER) == 1
    with caplog.at_level(logging.INFO):
        TicketMailListener(env)._record(late[0])     # the listener, late
    assert [k for k, _t, _c in events(env)] == ['ticket_created',
                                                'ticket_comment']
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def comparable(payload):
    """A snapshot with fields that are empty and fields that are absent
    alike (a new ticket's listener sees only the fields it was given; the
    mail shows both as empty)."""
    data = json.loads(payload)
    data['values'] = {k: v for k, v in data['values'].items()
                      if v not in ('', None)}
    return data


def test_rebuilt_snapshot_is_the_listeners(make_env):
    """Creation and two changes, rebuilt after all three happened: each as
    its listener saw it (the ticket as it was at that change)."""
    env = make_env()
    ticket = create_ticket(env, owner='alice', cc='carol@example.com')
    change_ticket(env, ticket.id, author='bob', comment='Mine now.',
                  owner='bob', priority='critical')
    change_ticket(env, ticket.id, author='dora', comment='Me too.',
                  cc='carol@example.com, dora@example.com')
    change_ticket(env, ticket.id, author='erin', comment='Just a word.')
    recorded = env.db_query('SELECT change_key, payload FROM '
                            'tracnotify_event ORDER BY id')
    assert len(recorded) == 4
    for key, payload in recorded:
        ticket_id, time_us, kind = key.split(':')
        rebuilt = reconcile.snapshot_event(env, int(ticket_id), int(time_us),
                                           kind == 'c')
        assert comparable(rebuilt.to_json()) == comparable(payload), key
    assert TicketEvent.from_json(recorded[1][1]).values['owner'] == 'bob'


def test_history_and_changes_without_mail_are_never_mailed(make_env):
    env = make_env()
    ticket = create_ticket(env)            # before the mark: history
    env.db_transaction('DELETE FROM tracnotify_event')
    reconcile.start_mark(env, outbox.now_us() + 1)
    env.config.set('notification', 'smtp_enabled', 'false')
    change_ticket(env, ticket.id, comment='No mail wanted.')
    assert events(env) == []
    # passes while mail is off only move the mark
    assert reconcile.reconcile(env, outbox.now_us() + LATER, record=False) \
        == 0
    env.config.set('notification', 'smtp_enabled', 'true')
    assert reconcile.reconcile(env, outbox.now_us() + 2 * LATER) == 0
    assert events(env) == []


def test_change_made_while_mail_was_off_is_not_mailed_later(make_env):
    """No delivery pass ran while smtp_enabled was false (a busy tracd, a
    cron worker): the change is still not mailed once mail is back on."""
    env = make_env()
    ticket = create_ticket(env)
    env.config.set('notification', 'smtp_enabled', 'false')
    change_ticket(env, ticket.id, comment='No mail wanted.')
    env.config.set('notification', 'smtp_enabled', 'true')
    assert reconcile.reconcile(env, outbox.now_us() + LATER) == 0
    assert [k for k, _t, _c in events(env)] == ['ticket_created']
    assert outbox.counts(env)['events'] == 1


def test_each_pass_looks_at_a_bounded_window(make_env, monkeypatch):
    env = make_env()
    ids = [create_ticket(env, summary='T%d' % i).id for i in range(5)]
    for ticket_id in ids:
        change_ticket(env, ticket_id, comment='Change.')
    env.db_transaction('DELETE FROM tracnotify_event')   # all lost
    monkeypatch.setattr(reconcile, 'MAX_ROWS', 2)
    later = outbox.now_us() + LATER
    found = []
    for _pass in range(20):
        found.append(reconcile.reconcile(env, later))
        if not found[-1]:
            break
    assert sum(found) == 10
    assert max(found) <= 4         # two history rows (or tickets) a pass
    assert len(events(env)) == 10
