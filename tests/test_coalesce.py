"""Batch changes are not a flood (tracnotify.coalesce), on a real Trac
environment (SQLite and PostgreSQL) and a real SMTP server.

Trac's batch modify saves every ticket with one change time, in one
transaction: these tests do exactly that (``save_changes(when=...)``);
``tests/e2e/test_change_paths.py`` does it through the web.
"""

import functools
from datetime import timedelta

import pytest
from trac.ticket.model import Ticket
from trac.util.datefmt import datetime_now, to_utimestamp, utc

from tests.support.mails import text_of as body
from tests.support.policies import enable_hide_ticket_policy
from tests.support.tickets import batch_modify, by_recipient, create_ticket, deliver
from tests.support.users import users
from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.event import CHANGED, TicketEvent
from tracnotify.listener import TicketMailListener, WebRequestMarker, _web
from tracnotify.mail.coalesce import Coalescer, group_events, process_hold_owner
from tracnotify.outbox import clock

USERS = users('alice', 'bob', 'hidden')


@pytest.fixture
def env_for(sink_env):
    return functools.partial(sink_env, USERS, always_notify_reporter='true')


def three_tickets(env, sink, **values):
    ids = [create_ticket(env, summary='Ticket %d' % i, **values).id
           for i in (1, 2, 3)]
    deliver(env)
    sink.received.clear()
    return ids


def test_batch_modify_sends_one_mail_per_recipient(env_for, sink):
    env = env_for(batch_window='5')
    ids = three_tickets(env, sink, cc='carol@example.com')
    batch_modify(env, ids, datetime_now(utc) - timedelta(seconds=6),
                 priority='minor')
    report = deliver(env)
    assert report.events == 3
    mails = by_recipient(sink.received)
    assert {r: len(m) for r, m in mails.items()} == {
        'alice@example.net': 1, 'bob@example.net': 1,
        'carol@example.com': 1}
    mail = mails['carol@example.com'][0]
    assert mail['Subject'] == '[Test Project] Batch modify: #1, #2, #3'
    assert mail['X-Trac-Notification-Type'] == 'batchmodify'
    assert mail['List-Unsubscribe'].startswith(
        '<http://trac.example.org/tracnotify/unsubscribe/')
    text = body(mail)
    assert text.startswith('Batch modification to #1, #2, #3 by Bob '
                           'Updater:\n\n#1: Ticket 1\n')
    for ticket_id in ids:
        # each ticket's block, as in its normal mail
        assert '#%d: Ticket %d\n' % (ticket_id, ticket_id) in text
        assert 'Ticket URL: <http://trac.example.org/ticket/%d#comment:1>' \
            % ticket_id in text
    assert text.count('Changes (by Bob Updater):') == 3
    assert text.count(' * priority:  major => minor') == 3
    assert text.count('Batch!') == 3
    assert '-- \nTickets URL: <http://trac.example.org/query?id=1%2C2%2C3>' \
        '\nTest Project <' in text
    assert 'To stop these e-mails: <' in text
    assert outbox.counts(env)['events'] == 0


def test_batch_waits_for_its_window_then_goes_out_once(env_for, sink):
    env = env_for(batch_window='30')
    ids = three_tickets(env, sink)
    when = datetime_now(utc)
    batch_modify(env, ids, when, priority='minor')
    report = deliver(env)                 # the window is still open
    assert report.events == 0 and sink.received == []
    held = env.db_query('SELECT lease_owner, lease_until FROM '
                        'tracnotify_event WHERE state=%s', ('pending',))
    assert len(held) == 3
    # made outside a web request: held while its process may add to it
    assert {owner for owner, _until in held} == {process_hold_owner()}
    assert {until for _owner, until in held} == {to_utimestamp(when) +
                                                 30 * 1000000 + 1}
    # the window closes: whoever claims any event of the batch gets it all
    # (31 s later: the hold leases, on the database's clock, ran out)
    later = to_utimestamp(when) + 31 * 1000000
    env.db_transaction('UPDATE tracnotify_event SET lease_until=%s',
                       (clock.db_now_us(env) - 1,))
    claimed = outbox.claim_events(env, 1)
    assert len(claimed) == 1
    singles, batches = Coalescer(env, load_config(env),
                                 now_us=later).split(claimed)
    assert singles == [] and len(batches) == 1
    assert sorted(c.event.ticket_id for c in batches[0]) == ids
    deliverer = Deliverer(env)
    report = PassReport()
    deliverer._expand_batch(batches[0], claimed, report)
    deliverer.send_due(report)
    assert deliver(env).events == 0
    mails = by_recipient(sink.received)
    assert {r: len(m) for r, m in mails.items()} == {
        'alice@example.net': 1, 'bob@example.net': 1}
    assert outbox.counts(env)['events'] == 0


def test_recipient_sees_only_the_tickets_they_may_view(env_for, sink):
    env = env_for(batch_window='5')
    enable_hide_ticket_policy(env)          # 'hidden' may not view #1
    ids = three_tickets(env, sink, cc='hidden')
    batch_modify(env, ids, datetime_now(utc) - timedelta(seconds=6),
                 comment='Secret fix')
    deliver(env)
    mails = by_recipient(sink.received)
    assert len(mails['hidden@example.net']) == 1
    mail = mails['hidden@example.net'][0]
    assert mail['Subject'] == '[Test Project] Batch modify: #2, #3'
    text = body(mail)
    assert '#1: Ticket 1' not in text and 'ticket/1' not in text
    assert '#2: Ticket 2' in text and '#3: Ticket 3' in text
    assert mails['alice@example.net'][0]['Subject'] == \
        '[Test Project] Batch modify: #1, #2, #3'


def test_one_visible_ticket_gets_its_normal_mail(env_for, sink):
    env = env_for(batch_window='5')
    ids = three_tickets(env, sink)
    first = Ticket(env, ids[0])
    first['cc'] = 'carol@example.com'
    first.save_changes('alice', when=datetime_now(utc) -
                         timedelta(seconds=60))
    deliver(env)
    sink.received.clear()
    batch_modify(env, ids, datetime_now(utc) - timedelta(seconds=6),
                 priority='minor')
    deliver(env)
    mails = by_recipient(sink.received)
    carol = mails['carol@example.com']
    assert len(carol) == 1
    assert carol[0]['Subject'] == 'Re: [Test Project] #1: Ticket 1'
    assert carol[0]['X-Trac-Ticket-ID'] == '1'
    assert mails['bob@example.net'][0]['Subject'].endswith(
        'Batch modify: #1, #2, #3')


def test_window_zero_is_one_mail_per_ticket(env_for, sink):
    env = env_for(batch_window='0')
    ids = three_tickets(env, sink)
    batch_modify(env, ids, datetime_now(utc), priority='minor')
    deliver(env)
    mails = by_recipient(sink.received)
    assert sorted(m['X-Trac-Ticket-ID'] for m in mails['bob@example.net']) \
        == ['1', '2', '3']


@pytest.fixture
def web_thread():
    """Changes made in this test are made as in a web request."""
    def factory(env):
        WebRequestMarker(env).pre_process_request(None, None)
    yield factory
    _web.serving = False


def test_single_changes_are_not_delayed(env_for, sink, web_thread):
    env = env_for(batch_window='600')
    web_thread(env)
    ids = three_tickets(env, sink)
    now = datetime_now(utc)
    # one ticket changed twice by bob, another by alice: no batch
    for author, ticket_id, delta in (('bob', ids[0], 0), ('bob', ids[0], 1),
                                     ('alice', ids[1], 2)):
        ticket = Ticket(env, ticket_id)
        ticket['keywords'] = 'k%d' % delta
        ticket.save_changes(author, when=now + timedelta(seconds=delta))
    report = deliver(env)
    assert report.events == 3
    assert all(m['X-Trac-Notification-Type'] == 'ticket_changed'
               for m in (i.message for i in sink.received))


def test_groups_span_the_window_from_their_first_change():
    def event(author, ticket_id, seconds):
        return TicketEvent(kind=CHANGED, ticket_id=ticket_id,
                           time=seconds * 1000000, author=author, values={})
    events = list(enumerate([event('bob', 1, 0), event('bob', 2, 0),
                             event('bob', 3, 9), event('bob', 4, 11),
                             event('ann', 5, 1)]))
    groups = group_events(events, 10 * 1000000)
    assert sorted(sorted(i for i, _e in g) for g in groups) == \
        [[0, 1, 2], [3], [4]]


def test_script_changes_wait_for_their_process(env_for, sink):
    """Changes made outside a web request are held while their process
    may add to the batch; released (its environment shut down, or the
    process exits), they go out as one batch at once."""
    env = env_for(batch_window='600')
    ids = three_tickets(env, sink)
    for ticket_id in ids[:2]:
        ticket = Ticket(env, ticket_id)
        ticket['priority'] = 'minor'
        ticket.save_changes('bob', 'Scripted.')
    assert deliver(env).events == 0 and sink.received == []
    TicketMailListener(env).release_holds()
    assert deliver(env).events == 2
    mails = by_recipient(sink.received)
    assert {r: len(m) for r, m in mails.items()} == {
        'alice@example.net': 1, 'bob@example.net': 1}
    assert mails['alice@example.net'][0]['X-Trac-Notification-Type'] == \
        'batchmodify'


def test_a_batch_stays_open_while_another_process_records_it(
        env_for, sink, web_thread):
    env = env_for(batch_window='600')
    ids = three_tickets(env, sink)
    ticket = Ticket(env, ids[1])
    ticket['priority'] = 'minor'
    ticket.save_changes('bob', 'From a script.')       # held by "us"
    other = 'tracnotify-batch-recording:1:another'      # another process
    env.db_transaction("UPDATE tracnotify_event SET lease_owner=%s "
                       "WHERE state='pending'", (other,))
    web_thread(env)
    ticket = Ticket(env, ids[0])
    ticket['priority'] = 'minor'
    ticket.save_changes('bob', 'From the web.')         # not held
    assert deliver(env).events == 0 and sink.received == []  # waits
    # the other process's hold runs out (and with it the re-held event's),
    # by the database's clock: leases are compared with it (SQLite's has
    # millisecond steps, behind time.time() for up to 1 ms)
    env.db_transaction("UPDATE tracnotify_event SET lease_until=%s "
                       "WHERE state='pending'", (clock.db_now_us(env) - 1,))
    assert deliver(env).events == 2
    assert {m.message['X-Trac-Notification-Type'] for m in sink.received} \
        == {'batchmodify'}
