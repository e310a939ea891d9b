"""Every change path sends one mail per recipient through a real tracd.

A real Trac site (``trac-admin initenv`` + ``tracd``) with tracnotify
enabled and ``smtp_enabled = true``, a real SMTP server: the web form, batch
modify, ``trac-admin`` (inside its own open transaction) all produce exactly
one message per recipient (a batch modify: one listing all its tickets) —
Trac's built-in notifier sends nothing — and a slow SMTP server never holds
up the ticket save.
"""

import collections
import getpass
import time

import pytest

from tests.support.live_trac import trac_admin


@pytest.fixture(scope='module')
def site(start_site):
    return start_site(always_notify_reporter='true',
                      always_notify_owner='true',
                      batch_window='3')     # short, to keep the test fast


def new_mails(sink, before, expected, timeout=20.0):
    """The mails after the first *before*, once *expected* have come; then
    a short wait proves that no more (duplicates) follow."""
    sink.wait_for(before + expected, timeout)
    time.sleep(1.5)
    return sink.received[before:]


def per_recipient(mails):
    return collections.Counter(r for m in mails for r in m.rcpt_tos)


def test_web_form_create_and_change_one_mail_per_recipient(site):
    trac, sink = site
    alice = trac.client('alice')
    before = len(sink.received)
    ticket_id = alice.create_ticket(summary='Web form ticket',
                                    description='Made in a browser form.',
                                    cc='carol@example.com')
    mails = new_mails(sink, before, 2)
    assert per_recipient(mails) == {'alice@example.org': 1,
                                    'carol@example.com': 1}
    assert all(m.message['X-Trac-Notification-Type'] == 'ticket_created'
               for m in mails)

    before = len(sink.received)
    trac.client('bob').change_ticket(ticket_id, comment='On it.',
                                     owner='bob')
    mails = new_mails(sink, before, 3)
    assert per_recipient(mails) == {'alice@example.org': 1,
                                    'bob@example.org': 1,
                                    'carol@example.com': 1}
    body = mails[0].message.get_content().replace('\r\n', '\n')
    assert 'Changes (by Bob):' in body
    assert ' * owner:  (none) => Bob' in body, body
    assert 'Ticket URL: <%s/ticket/%d#comment:1>' % (trac.url, ticket_id) \
        in body
    assert 'ERROR' not in trac.trac_log()


def test_batch_modify_one_mail_per_recipient_listing_the_tickets(site):
    """A batch modify is not a flood: each recipient gets one mail listing
    every ticket (``batch_window``), not one mail per ticket."""
    trac, sink = site
    alice = trac.client('alice')
    ids = [alice.create_ticket(summary='Batch %d' % i) for i in (1, 2, 3)]
    sink.wait_for(len(sink.received) + 3)
    time.sleep(1.5)
    before = len(sink.received)
    trac.client('bob').batch_modify(ids, comment='Batch!', priority='minor')
    mails = new_mails(sink, before, 2, timeout=30)
    assert per_recipient(mails) == {'alice@example.org': 1,
                                    'bob@example.org': 1}
    descr = ', '.join('#%d' % i for i in ids)
    for mail in mails:
        assert mail.message['Subject'] == \
            '[Live Project] Batch modify: %s' % descr
        assert mail.message['X-Trac-Notification-Type'] == 'batchmodify'
        body = mail.message.get_content().replace('\r\n', '\n')
        assert body.startswith('Batch modification to %s by Bob:' % descr)
        for ticket_id in ids:
            assert '#%d: Batch' % ticket_id in body
            assert 'Ticket URL: <%s/ticket/%d#comment:1>' % (
                trac.url, ticket_id) in body
        assert body.count(' * priority:  major => minor') == 3
        assert body.count('Batch!') == 3
    assert 'ERROR' not in trac.trac_log()


def test_trac_admin_changes_inside_its_transaction_are_mailed(site):
    trac, sink = site
    alice = trac.client('alice')
    ticket_id = alice.create_ticket(summary='Milestone ticket',
                                    milestone='milestone1')
    sink.wait_for(len(sink.received) + 1)
    time.sleep(1.5)
    before = len(sink.received)
    trac_admin(trac.env_path, 'milestone', 'rename', 'milestone1',
               'renamed-milestone')
    mails = new_mails(sink, before, 2)
    # trac-admin acts as the system user, who is the updater
    assert per_recipient(mails) == {'alice@example.org': 1,
                                    '%s@example.org' % getpass.getuser(): 1}
    body = mails[0].message.get_content().replace('\r\n', '\n')
    assert '* milestone:  milestone1 => renamed-milestone' in body

    before = len(sink.received)
    trac_admin(trac.env_path, 'ticket', 'remove', str(ticket_id))
    mails = new_mails(sink, before, 2)
    assert mails[0].message['X-Trac-Notification-Type'] == 'ticket_deleted'
    assert 'This ticket has been deleted.' in \
        mails[0].message.get_content()


def test_preferences_notifications_page_still_works(site):
    trac, _sink = site
    html = trac.client('alice').get('/prefs/notification')
    assert 'Ticket that I reported is modified' in html
    assert 'ERROR' not in trac.trac_log()


def test_slow_smtp_server_does_not_hold_up_the_save(site):
    trac, sink = site
    alice = trac.client('alice')
    ticket_id = alice.create_ticket(summary='Slow server')
    sink.wait_for(len(sink.received) + 1)
    time.sleep(1.5)
    before = len(sink.received)
    sink.handler.delay = 3.0
    try:
        alice.change_ticket(ticket_id, comment='Saved at once')
        # the save has returned; the server still holds the first DATA
        assert len(sink.received) == before
        mails = new_mails(sink, before, 1, timeout=30)
    finally:
        sink.handler.delay = 0.0
    assert per_recipient(mails) == {'alice@example.org': 1}
