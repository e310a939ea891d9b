"""Any Unicode in any field of a ticket (RTL, combining marks, emoji, wide
East-Asian characters, control characters, very long words) gives mail that
the ``email`` package parses back without defects, that carries only the
headers tracnotify writes, whose lines stay within RFC 5322's 998 octets
(headers folded), and whose text decodes back to what the formatter wrote,
under each ``mime_encoding``.  Property-based (hypothesis)."""

import email
import email.policy
import os
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.envs import make_stub_env
from tests.support.users import users
from tracnotify.config import load_config
from tracnotify.event import CHANGED, COMMENT, CREATED, TicketEvent
from tracnotify.mail.chrome import MAX_SUBJECT_CHARS, clean_header_text
from tracnotify.mail.format import TicketMailFormatter
from tracnotify.mail.message import MailHeaders, encode_shared_part
from tracnotify.mail.pipeline import build_messages, snapshot_ticket

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.reuse, Phase.generate]
                if os.environ.get("FUZZ_NO_SHRINK") else list(Phase),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

#: pieces that have broken mail software before
NASTY = [
    '\u202e', '\u202d', '\u200f', '\u061c', 'مرحبا', 'שלום',      # RTL
    'e\u0301', 'Z\u0351\u0358\u0331\u036a', '\u0300',              # combining
    '👩\u200d👩\u200d👧', '🇫🇷', '\U0001f600', '\ufe0f',              # emoji
    '日本語', 'ｶﾀｶﾅ', '한국어', '\u3000', '…', '±',                   # wide
    '\x00', '\x1b[31m', '\x07', '\r', '\n', '\r\n', '\x0b', '\x0c',   # control
    '\x85', '\u2028', '\u2029', '\t', '\x7f', '\ufeff', '\ufffd',
    '=?utf-8?q?=0D=0ABcc:_x@evil?=', '\r\nBcc: evil@example.com',
    '\nX-Evil: 1', ': ', '"', '<', '>', '=', '=20', '.', '\n.\n', ' ',
    'x' * 1200, 'ü' * 700, '日' * 600, 'a b ' * 30,                 # long
]
text = st.one_of(
    st.text(st.characters(blacklist_categories=('Cs',)), max_size=200),
    st.lists(st.sampled_from(NASTY), max_size=12).map(''.join),
    st.lists(st.one_of(st.sampled_from(NASTY),
                       st.text(st.characters(blacklist_categories=('Cs',)),
                               max_size=20)),
             max_size=8).map(''.join),
)
ALLOWED = {
    'to', 'cc', 'from', 'reply-to', 'subject', 'date', 'message-id',
    'in-reply-to', 'references', 'mime-version', 'content-type',
    'content-transfer-encoding', 'auto-submitted', 'precedence', 'list-id',
    'list-unsubscribe', 'list-unsubscribe-post', 'x-mailer', 'x-url',
    'x-trac-version', 'x-trac-project', 'x-trac-realm', 'x-trac-ticket-id',
    'x-trac-ticket-url', 'x-trac-notification-type',
    'x-trac-notification-reason',
}
ENCODINGS = ('none', 'base64', 'qp')


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    env = make_stub_env(str(tmp_path_factory.mktemp('fuzzmail')), None,
                        {'smtp_always_cc': 'watch@example.com'})
    env.insert_users(list(users('alice', 'bob')))
    yield env
    env.reset_db()
    env.shutdown()


def normalised(text: str) -> str:
    """*text* as a MIME text part carries it: each line (ended by a lone
    CR, LF or CRLF) ends with a line break."""
    return ''.join(line.decode('utf-8') + '\n'
                   for line in text.encode('utf-8').splitlines())


def words(header: str) -> str:
    """A header's text without its spaces: the ``email`` package folds and
    unfolds the space next to an encoded-word lossily (a space may double
    or vanish there); every other character comes back unchanged."""
    return ''.join(str(header).split())


def check_wire(data: str) -> email.message.EmailMessage:
    """What any message tracnotify produces must satisfy; returns it
    parsed."""
    raw = data.encode('utf-8')
    assert raw.isascii(), 'no raw 8-bit data'
    assert raw.endswith(b'\r\n')
    lines = raw[:-2].split(b'\r\n')
    assert not [line for line in lines if b'\r' in line or b'\n' in line], \
        'bare CR or LF'
    assert max(len(line) for line in lines) <= 998
    head = raw.split(b'\r\n\r\n', 1)[0].split(b'\r\n')
    for line in head:
        # folded, except one-word URLs (List-Unsubscribe, X-Trac-Ticket-URL)
        assert len(line) <= 78 or b'://' in line or b'<' in line, line
    names = [line.split(b':', 1)[0].decode().lower()
             for line in head if line[:1] not in (b' ', b'\t')]
    assert set(names) <= ALLOWED, set(names) - ALLOWED
    assert len(names) == len(set(names)), 'a header twice'
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for part in msg.walk():
        assert not part.defects, part.defects
        for name in part.keys():
            value = part[name]
            assert '\n' not in str(value) and '\r' not in str(value)
            assert not getattr(value, 'defects', ()), (name, value.defects)
    return msg


def make_event(kind, summary, description, comment, keywords, author,
               old_summary) -> TicketEvent:
    values = {'summary': summary, 'reporter': 'alice', 'owner': author,
              'description': description, 'keywords': keywords,
              'status': 'new', 'priority': 'major', 'type': 'defect',
              'component': '', 'milestone': '', 'version': '', 'cc': '',
              'resolution': ''}
    old = {}
    if kind == CHANGED:
        old = {'summary': old_summary, 'keywords': keywords + 'x',
               'description': old_summary}
    return TicketEvent(kind=kind, ticket_id=1, time=int(time.time() * 1e6),
                       author=author, values=values, old_values=old,
                       comment=comment if kind != CREATED else '',
                       cnum=None if kind == CREATED else 1)


@FUZZ
@given(kind=st.sampled_from([CREATED, CHANGED, COMMENT]),
       summary=text, description=text, comment=text, keywords=text,
       author=st.one_of(st.sampled_from(['bob', 'alice', '']), text),
       old_summary=text, encoding=st.sampled_from(ENCODINGS),
       fmt=st.sampled_from(['text', 'both']))
def test_any_text_in_any_field_makes_sound_mail(env, kind, summary,
                                                description, comment,
                                                keywords, author, old_summary,
                                                encoding, fmt):
    config = replace(load_config(env), mime_encoding=encoding,
                     default_format=fmt, smtp_from_author_name=True)
    event = make_event(kind, summary, description, comment, keywords,
                       author, old_summary)
    rendered = TicketMailFormatter(env, snapshot_ticket(env, event)).render(
        event)
    assert len(rendered.subject) <= MAX_SUBJECT_CHARS
    messages = build_messages(env, config, event)
    assert messages, 'always_cc gets every change'
    for message in messages:
        msg = check_wire(message.text)
        assert message.subject == rendered.subject
        assert words(msg['Subject']) == words(rendered.subject)
        assert msg['X-Trac-Ticket-ID'] == '1'
        plain = msg.get_body(('plain',))
        if encoding != 'none':
            assert plain['Content-Transfer-Encoding'] == \
                {'qp': 'quoted-printable'}.get(encoding, encoding)
        got = plain.get_content().replace('\r\n', '\n')
        assert got.startswith(normalised(rendered.body)[:-1]), \
            'the text decodes back to what the formatter wrote'


headers = st.builds(
    MailHeaders, from_name=text, from_addr=st.just('trac@example.org'),
    reply_to=st.just('reply@example.org'), subject=text,
    msgid=st.just('<123.456@example.org>'), root_msgid=st.none(),
    date=st.just(0.0),
    extra=st.lists(st.tuples(st.sampled_from(['X-Trac-Project', 'X-URL']),
                             text), max_size=2, unique_by=lambda t: t[0]))


@FUZZ
@given(headers=headers, body=text, encoding=st.sampled_from(ENCODINGS))
def test_any_body_round_trips_through_each_mime_encoding(env, headers, body,
                                                         encoding):
    config = replace(load_config(env), mime_encoding=encoding)
    raw = encode_shared_part(headers, body, config)
    msg = check_wire(b'To: x@example.org\r\n'.decode() + raw.decode('ascii'))
    assert msg.get_content().replace('\r\n', '\n') == \
        (normalised(body) or '\n')
    assert words(msg['Subject']) == words(clean_header_text(headers.subject))
    assert words(msg['From'].addresses[0].display_name) == \
        words(clean_header_text(headers.from_name, 200))
