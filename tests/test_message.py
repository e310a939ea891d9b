"""The delivered message: headers that cannot be injected, each
mime_encoding decoding back to the original text, threading and the
X-Trac-* headers, From/Reply-To; parsed from what a real SMTP server got."""

import email
import email.policy
import functools

import pytest
from trac.notification.mail import create_message_id

from tests.support.tickets import (
    add_users,
    change_ticket,
    create_ticket,
    deliver_to_sink,
)
from tests.support.users import users
from tracnotify.config import load_config
from tracnotify.event import TicketEvent
from tracnotify.mail.chrome import footer
from tracnotify.mail.format import TicketMailFormatter
from tracnotify.mail.pipeline import build_messages, snapshot_ticket

TEXT = 'Grüße 日本語 ✓'
USERS = users('alice', 'joe')


@pytest.fixture
def env_for(sink_env):
    return functools.partial(sink_env, USERS)


def delivered(env, sink):
    return deliver_to_sink(env, sink, check_errors=True)


# Header injection ----------------------------------------------------------

INJECTION = 'Hello\r\nBcc: evil@example.com\r\nX-Evil: 1\nX-Evil2: 2\rZ'


def test_summary_cannot_inject_headers(env_for, sink):
    env = env_for()
    add_users(env, ('mallory', 'Mal\r\nX-Evil: 3', 'mallory@example.org'))
    ticket = create_ticket(env, summary=INJECTION, keywords=INJECTION,
                           cc='carol@example.com\r\nX-Evil: 4')
    change_ticket(env, ticket.id, author='mallory', comment=INJECTION,
                  summary=INJECTION + ' again')
    env.config.set('notification', 'smtp_from_author_name', 'true')
    received = delivered(env, sink)
    assert len(received) >= 4
    for item in received:
        head = item.data.split(b'\r\n\r\n', 1)[0]
        names = [line.split(b':', 1)[0].lower()
                 for line in head.split(b'\r\n')
                 if line and line[:1] not in b' \t']
        assert b'bcc' not in names
        assert not [n for n in names if n.startswith(b'x-evil')]
        assert '\n' not in item.message['Subject']
        assert item.message['Subject'].endswith(
            'Hello Bcc: evil@example.com X-Evil: 1 X-Evil2: 2 Z' +
            (' again (was: Hello Bcc: evil@example.com X-Evil: 1 X-Evil2: '
             '2 Z)' if item.message['Subject'].startswith('Re:') else ''))


def test_author_name_in_from_header(env_for, sink):
    env = env_for(smtp_from_author_name='true', smtp_from_name='Tracker')
    ticket = create_ticket(env)
    change_ticket(env, ticket.id, author='joe', comment='x')
    froms = {str(r.message['From']) for r in delivered(env, sink)
             if r.message['X-Trac-Notification-Type'] == 'ticket_comment'}
    assert froms == {'"Joe Owner (via Tracker)" <trac@example.org>'}


def test_from_and_reply_to(env_for, sink):
    env = env_for(smtp_from_name='The Tracker',
                  smtp_replyto='replies@example.org')
    create_ticket(env)
    message = delivered(env, sink)[0].message
    assert str(message['From']) == 'The Tracker <trac@example.org>'
    assert str(message['Reply-To']) == 'replies@example.org'
    assert message['Date']


# mime_encoding ---------------------------------------------------------------

def rendered_body(env) -> str:
    """The body of ticket #1's creation, as the formatter renders it."""
    (payload,), = env.db_query(
        "SELECT payload FROM tracnotify_event ORDER BY id LIMIT 1")
    event = TicketEvent.from_json(payload)
    return TicketMailFormatter(env, snapshot_ticket(env, event)).render(
        event).body


@pytest.mark.parametrize('encoding, cte', [
    ('base64', 'base64'),
    ('qp', 'quoted-printable'),
    ('none', 'quoted-printable'),   # never raw 8-bit
])
def test_mime_encoding_decodes_back(env_for, sink, encoding, cte):
    env = env_for(mime_encoding=encoding)
    create_ticket(env, summary=TEXT, description=TEXT + ' — ' + TEXT)
    item, = delivered(env, sink)
    assert item.data.isascii(), 'no raw 8-bit data on the wire'
    message = item.message
    assert message['Content-Transfer-Encoding'] == cte
    assert message.get_content_charset() == 'utf-8'
    reparsed = email.message_from_bytes(item.data,
                                        policy=email.policy.default)
    # MIME text travels with CRLF line ends; the text itself is the same
    body = reparsed.get_content().replace('\r\n', '\n')
    assert body == rendered_body(env) + footer(env) + '\n'
    assert body.startswith('#1: ' + TEXT + '\n')
    assert '\n ' + TEXT + ' — ' + TEXT + '\n' in body
    assert reparsed['Subject'] == '[Test Project] #1: ' + TEXT


def test_mime_encoding_none_keeps_ascii_text_7bit(env_for, sink):
    env = env_for(mime_encoding='none')
    create_ticket(env)
    message = delivered(env, sink)[0].message
    assert message['Content-Transfer-Encoding'] == '7bit'
    assert 'The description.' in message.get_content()


# Threading and X-Trac headers ------------------------------------------------

def test_threading_headers(env_for, sink):
    env = env_for()
    ticket = create_ticket(env, owner='joe', cc='carol@example.com')
    created = delivered(env, sink)
    change_ticket(env, ticket.id, author='joe', comment='First comment',
                  priority='minor')
    changed = delivered(env, sink)
    change_ticket(env, ticket.id, author='joe', comment='Second comment')
    commented = delivered(env, sink)

    root = create_message_id(env, '%08d' % ticket.id, 'trac@example.org',
                             None, 'alice')
    assert {r.message['Message-ID'] for r in created} == {root}
    for item in created:
        assert item.message['In-Reply-To'] is None
        assert item.message['X-Trac-Notification-Type'] == 'ticket_created'
        assert item.message['X-Trac-Ticket-URL'] == \
            'http://trac.example.org/ticket/1'
    ids = set()
    for batch, cnum, kind in ((changed, 1, 'ticket_changed'),
                              (commented, 2, 'ticket_comment')):
        msgids = {r.message['Message-ID'] for r in batch}
        assert len(msgids) == 1, 'one Message-ID per change'
        ids |= msgids
        for item in batch:
            message = item.message
            assert message['In-Reply-To'] == root
            assert message['References'] == root
            assert message['X-Trac-Ticket-ID'] == str(ticket.id)
            assert message['X-Trac-Ticket-URL'] == \
                'http://trac.example.org/ticket/1#comment:%d' % cnum
            assert message['X-Trac-Notification-Type'] == kind
    assert len(ids) == 2 and root not in ids
    for item in created + changed + commented:
        assert item.message['Auto-Submitted'] == 'auto-generated'
        assert item.message['Precedence'] == 'bulk'


def test_message_id_is_stable_per_change(env_for):
    env = env_for()
    ticket = create_ticket(env)
    change_ticket(env, ticket.id, author='joe', comment='x')
    config = load_config(env)
    for payload, in env.db_query(
            "SELECT payload FROM tracnotify_event ORDER BY id"):
        first = build_messages(env, config, TicketEvent.from_json(payload))
        again = build_messages(env, config, TicketEvent.from_json(payload))
        assert {m.msgid for m in first} == {m.msgid for m in again}
        assert len({m.msgid for m in first}) == 1


def test_each_recipient_has_its_own_envelope(env_for, sink):
    env = env_for()
    create_ticket(env, owner='joe', cc='carol@example.com')
    received = delivered(env, sink)
    assert sorted(r.rcpt_tos[0] for r in received) == [
        'alice@example.net', 'carol@example.com', 'joe@example.net']
    for item in received:
        assert item.mail_from == 'trac@example.org'
        assert [a.addr_spec for a in item.message['To'].addresses] == \
            item.rcpt_tos
