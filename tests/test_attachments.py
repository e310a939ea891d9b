"""Attachment mail through Trac's real attachment model: files added to or
removed from a ticket are mailed once per recipient, in Trac 1.6's own
format (compared with Trac's ``TicketFormatter``), threaded under the
ticket; Trac's own attachment notifier sends nothing."""

import io
import json
from collections import Counter

import pytest
import trac.ticket.web_ui  # noqa: F401  (registers Trac's ticket templates)
from trac.attachment import Attachment
from trac.notification.mail import EmailDistributor, create_message_id
from trac.ticket.model import Ticket
from trac.ticket.notification import TicketChangeEvent, TicketFormatter
from trac.wiki.model import WikiPage

from tests.support.policies import enable_hide_ticket_policy
from tests.support.tickets import create_ticket
from tests.support.tickets import mails_by_recipient as delivered
from tests.support.users import full_name, users
from tracnotify import outbox
from tracnotify.event import (
    ATTACHMENT_ADDED,
    ATTACHMENT_DELETED,
    CHANGED,
    TicketEvent,
)
from tracnotify.mail.format import TicketMailFormatter
from tracnotify.mail.pipeline import snapshot_ticket

USERS = users('alice', 'joe', 'bob', 'hidden')
LONG_DESCRIPTION = ('The log of the crash, with every thread, taken right '
                    'after the server stopped answering. ') * 3
WIDE = '日本語のファイルの説明、とても長いです。' * 4


def as_upgraded(env):
    """The stub as a real upgraded site runs: ``trac-admin upgrade`` wrote
    ``emaildistributor = disabled``, which the stub read too early."""
    env.disable_component(EmailDistributor)
    return env


@pytest.fixture
def env(sink_env):
    return as_upgraded(sink_env(USERS))


def attach(env, ticket_id, filename='crash.log', author='bob',
           description='', realm='ticket') -> Attachment:
    """Attach a small file, like the web upload does."""
    attachment = Attachment(env, realm, ticket_id)
    attachment.author = author
    attachment.description = description
    data = b'some bytes\n'
    attachment.insert(filename, io.BytesIO(data), len(data))
    return attachment


def events(env, kind=None):
    rows = env.db_query('SELECT payload FROM tracnotify_event WHERE state<>%s'
                        ' ORDER BY id', (outbox.OFF,))
    found = [TicketEvent.from_json(payload) for payload, in rows]
    return [e for e in found if kind is None or e.kind == kind]


def ours(env, event):
    rendered = TicketMailFormatter(env, snapshot_ticket(env, event)).render(
        event)
    return rendered.subject, rendered.body


def tracs(env, ticket_id, category, attachment):
    """Trac 1.6's subject and body (as ``TicketAttachmentNotifier`` asks)."""
    ticket = Ticket(env, ticket_id)
    time = attachment.date if category == 'attachment added' else None
    tevent = TicketChangeEvent(category, ticket, time, ticket['reporter'],
                               attachment=attachment)
    formatter = TicketFormatter(env)
    body = formatter.format('email', 'text/plain', tevent).decode('utf-8')
    return formatter._format_subj(tevent), body


def assert_same_as_trac(env, event, attachment) -> str:
    category = {ATTACHMENT_ADDED: 'attachment added',
                ATTACHMENT_DELETED: 'attachment deleted'}[event.kind]
    subject, body = ours(env, event)
    trac_subject, trac_body = tracs(env, event.ticket_id, category,
                                    attachment)
    assert body == trac_body
    assert subject == trac_subject
    return body


# Body and subject: Trac's own ---------------------------------------------

def test_added_body_is_tracs(env):
    ticket = create_ticket(env, owner='joe', cc='carol@example.com')
    attachment = attach(env, ticket.id, description='The server log.')
    event, = events(env, ATTACHMENT_ADDED)
    body = assert_same_as_trac(env, event, attachment)
    assert 'Changes (by %s):\n\n' % full_name('bob') + \
        ' * Attachment "crash.log" added.\n\n The server log.\n' in body
    assert '\n-- \nTicket URL: <http://trac.example.org/ticket/1>\n' in body


def test_deleted_body_is_tracs(env):
    ticket = create_ticket(env, owner='joe')
    attachment = attach(env, ticket.id)
    attachment.delete()
    event, = events(env, ATTACHMENT_DELETED)
    body = assert_same_as_trac(env, event, attachment)
    assert ' * Attachment "crash.log" removed.\n' in body


@pytest.mark.parametrize('filename, description', [
    ('x' * 90 + '.txt', LONG_DESCRIPTION),
    ('日本語の名前.txt', WIDE),
    ('report.pdf', 'first line\nsecond line\n\nthird paragraph'),
])
def test_long_and_wide_names_and_descriptions_wrap_like_trac(
        env, filename, description):
    ticket = create_ticket(env, summary=WIDE[:30], owner='joe')
    attachment = attach(env, ticket.id, filename=filename,
                        description=description)
    event, = events(env, ATTACHMENT_ADDED)
    assert_same_as_trac(env, event, attachment)


def test_ambiguous_width_double(make_env):
    env = make_env(ambiguous_char_width='double')
    ticket = create_ticket(env, keywords='±§° ×÷')
    attachment = attach(env, ticket.id, description='±§° ' * 30)
    event, = events(env, ATTACHMENT_ADDED)
    assert_same_as_trac(env, event, attachment)


@pytest.mark.parametrize('full_names, addresses, shown', [
    ('true', 'false', full_name('bob')),
    ('false', 'false', 'bob'),
])
def test_author_shown_as_trac_shows_it(env, full_names, addresses, shown):
    env.config.set('trac', 'show_full_names', full_names)
    env.config.set('trac', 'show_email_addresses', addresses)
    ticket = create_ticket(env)
    attachment = attach(env, ticket.id)
    event, = events(env, ATTACHMENT_ADDED)
    body = assert_same_as_trac(env, event, attachment)
    assert 'Changes (by %s):' % shown in body


def test_author_as_email_address(env):
    env.config.set('trac', 'show_email_addresses', 'true')
    ticket = create_ticket(env)
    attachment = attach(env, ticket.id, author='someone@example.com')
    event, = events(env, ATTACHMENT_ADDED)
    body = assert_same_as_trac(env, event, attachment)
    assert 'Changes (by someone@example.com):' in body


# Mail: once per recipient, threaded, typed --------------------------------

def test_one_mail_per_recipient_threaded_under_the_ticket(env, sink):
    ticket = create_ticket(env, owner='joe', cc='carol@example.com')
    created = delivered(env, sink)
    root = created['alice@example.net'][0]['Message-ID']
    assert root == create_message_id(env, '%08d' % ticket.id,
                                     'trac@example.org', None, 'alice')

    sink.received.clear()
    attachment = attach(env, ticket.id, description='The server log.')
    assert not sink.received, "Trac's own notifier must not send"
    mails = delivered(env, sink)
    assert Counter({r: len(m) for r, m in mails.items()}) == {
        'alice@example.net': 1, 'joe@example.net': 1,
        'carol@example.com': 1, 'bob@example.net': 1}
    reasons = {r: m[0]['X-Trac-Notification-Reason']
               for r, m in mails.items()}
    assert reasons['bob@example.net'] == 'updater'
    assert reasons['carol@example.com'] == 'cc'
    message = mails['joe@example.net'][0]
    assert message['X-Trac-Notification-Type'] == 'attachment_added'
    assert message['In-Reply-To'] == message['References'] == root
    assert message['Message-ID'] != root
    assert message['Subject'] == 'Re: [Test Project] #1: Test'
    assert message['X-Trac-Ticket-ID'] == str(ticket.id)
    body = message.get_content().replace('\r\n', '\n')
    # Trac's body, then at most lines that tracnotify adds below its footer
    assert body.startswith(assert_same_as_trac(
        env, events(env, ATTACHMENT_ADDED)[0], attachment) + '\n')

    sink.received.clear()
    attachment.delete()
    assert not sink.received
    mails = delivered(env, sink)
    assert {r: len(m) for r, m in mails.items()} == {
        'alice@example.net': 1, 'joe@example.net': 1,
        'carol@example.com': 1, 'bob@example.net': 1}
    deleted = mails['joe@example.net'][0]
    assert deleted['X-Trac-Notification-Type'] == 'attachment_deleted'
    assert deleted['In-Reply-To'] == root
    assert deleted['Message-ID'] not in (root, message['Message-ID'])


def test_permission_check_per_recipient(env, sink):
    enable_hide_ticket_policy(env)  # 'hidden' may not view ticket #1
    first = create_ticket(env, cc='hidden')
    second = create_ticket(env, cc='hidden')
    delivered(env, sink)
    attach(env, first.id)
    attach(env, second.id)
    mails = delivered(env, sink)
    assert [m['X-Trac-Ticket-ID'] for m in mails['hidden@example.net']] \
        == [str(second.id)]
    assert len(mails['alice@example.net']) == 2


def test_unwatched_wiki_and_milestone_attachments_send_nothing(env, sink):
    # wiki pages have mail of their own (tests/test_wiki_mail.py), for
    # their watchers: this page has none
    page = WikiPage(env, 'SomePage')
    page.text = 'text'
    page.save('alice', 'new page')
    attach(env, 'SomePage', realm='wiki').delete()
    attach(env, 'milestone1', realm='milestone')
    kinds = [kind for kind, in env.db_query(
        'SELECT kind FROM tracnotify_event ORDER BY id')]
    assert kinds == ['wiki_created', 'wiki_attachment_added',
                     'wiki_attachment_deleted']
    assert delivered(env, sink) == {}


def test_attachments_removed_with_their_ticket_send_only_the_deletion(
        env, sink):
    ticket = create_ticket(env, owner='joe')
    attach(env, ticket.id, filename='a.txt')
    attach(env, ticket.id, filename='b.txt')
    delivered(env, sink)
    Ticket(env, ticket.id).delete()
    mails = delivered(env, sink)
    kinds = Counter(m['X-Trac-Notification-Type']
                    for messages in mails.values() for m in messages)
    assert kinds == {'ticket_deleted': len(mails)}


def test_nothing_without_smtp_enabled(make_env):
    env = make_env(smtp_enabled='false')
    ticket = create_ticket(env)
    attach(env, ticket.id)
    assert events(env) == []


def test_listener_never_breaks_the_upload(env, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError('outbox is on fire')
    monkeypatch.setattr(outbox, 'add_event', broken)
    ticket = create_ticket(env)
    attachment = attach(env, ticket.id)
    assert [a.filename for a in Attachment.select(env, 'ticket', ticket.id)] \
        == ['crash.log']
    attachment.delete()
    assert list(Attachment.select(env, 'ticket', ticket.id)) == []
    assert caplog.text.count('could not record attachment_') == 2


# Payloads -------------------------------------------------------------------

def test_payload_round_trip_and_older_payloads_still_load(env):
    ticket = create_ticket(env)
    attach(env, ticket.id, description='d')
    event, = events(env, ATTACHMENT_ADDED)
    assert (event.filename, event.attachment_description,
            event.attachment_author, event.author) == \
        ('crash.log', 'd', 'bob', 'bob')
    assert TicketEvent.from_json(event.to_json()) == event

    old = {'kind': CHANGED, 'ticket_id': 1, 'time': 1, 'author': 'a',
           'values': {}, 'old_values': {}, 'comment': 'c', 'cnum': None,
           'old_comment': None}
    loaded = TicketEvent.from_json(json.dumps(old))
    assert loaded.filename is None and not loaded.is_attachment
    # a newer payload with fields this version does not know still loads
    old['added_later'] = 'x'
    assert TicketEvent.from_json(json.dumps(old)) == loaded
