"""A file uploaded to a ticket through a real tracd, and removed again, is
mailed once per recipient — Trac's own attachment notifier sends nothing —
with the body Trac 1.6's ``TicketFormatter`` writes, threaded under the
ticket's first mail."""

import collections
import time
from contextlib import contextmanager

import pytest
from trac.attachment import Attachment
from trac.env import Environment
from trac.ticket.model import Ticket
from trac.ticket.notification import TicketChangeEvent, TicketFormatter

RECIPIENTS = {'alice@example.org': 1, 'bob@example.org': 1,
              'carol@example.com': 1}


@pytest.fixture(scope='module')
def site(start_site):
    return start_site(always_notify_reporter='true')


def new_mails(sink, before, expected, timeout=20.0):
    """The mails after the first *before*, once *expected* have come; a
    short wait then proves that no duplicates follow."""
    sink.wait_for(before + expected, timeout)
    time.sleep(1.5)
    return sink.received[before:]


def per_recipient(mails):
    return collections.Counter(r for m in mails for r in m.rcpt_tos)


def body_of(mail) -> str:
    """The text: Trac's body, then at most tracnotify's own lines below."""
    return mail.message.get_content().replace('\r\n', '\n')


@contextmanager
def trac_env(trac):
    env = Environment(trac.env_path)
    try:
        yield env
    finally:
        env.shutdown()


def tracs_body(env, ticket_id, category, attachment) -> str:
    """What Trac 1.6 itself writes for this attachment change."""
    ticket = Ticket(env, ticket_id)
    event = TicketChangeEvent(category, ticket, attachment.date,
                              ticket['reporter'], attachment=attachment)
    return TicketFormatter(env).format('email', 'text/plain',
                                       event).decode('utf-8')


def test_upload_and_removal_one_mail_per_recipient_in_tracs_format(site):
    trac, sink = site
    before = len(sink.received)
    ticket_id = trac.client('alice').create_ticket(
        summary='Crashes on start', description='See the log.',
        cc='carol@example.com')
    created = new_mails(sink, before, 2)
    root = created[0].message['Message-ID']

    before = len(sink.received)
    trac.client('bob').attach_file(
        ticket_id, 'crash.log', b'Traceback (most recent call last):\n',
        description='The log of the crash, taken right after the server '
                    'stopped answering, with every thread in it.')
    mails = new_mails(sink, before, 3)
    assert per_recipient(mails) == RECIPIENTS
    with trac_env(trac) as env:
        attachment = Attachment(env, 'ticket', ticket_id, 'crash.log')
        expected = tracs_body(env, ticket_id, 'attachment added', attachment)
    assert ' * Attachment "crash.log" added.' in expected
    for mail in mails:
        message = mail.message
        assert message['X-Trac-Notification-Type'] == 'attachment_added'
        assert message['In-Reply-To'] == message['References'] == root
        assert message['Subject'] == \
            'Re: [Live Project] #%d: Crashes on start' % ticket_id
        assert body_of(mail).startswith(expected + '\n')

    before = len(sink.received)
    trac.client('admin').delete_attachment(ticket_id, 'crash.log')
    mails = new_mails(sink, before, 3)
    assert per_recipient(mails) == RECIPIENTS
    with trac_env(trac) as env:
        expected = tracs_body(env, ticket_id, 'attachment deleted',
                              attachment)
    assert ' * Attachment "crash.log" removed.' in expected
    for mail in mails:
        assert mail.message['X-Trac-Notification-Type'] == \
            'attachment_deleted'
        assert mail.message['In-Reply-To'] == root
        assert body_of(mail).startswith(expected + '\n')
    assert 'ERROR' not in trac.trac_log()
