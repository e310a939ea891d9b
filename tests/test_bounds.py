"""Outsized changes still make mail, cut where they must be, with a notice:
a 1 MB description or comment (also as one 1 MB word), a 10,000-character
subject, 10,000 cc entries, 5,000 custom field changes.  Only content and
limits are checked here; ``python -m bench.bounds`` measures time and
memory."""

import email
import email.policy

import pytest

from bench.bounds import CC_ENTRIES, CUSTOM_FIELDS, OPTIONS, SCENARIOS, make_env
from tracnotify.config import load_config
from tracnotify.mail.chrome import MAX_SUBJECT_CHARS
from tracnotify.mail.format import MAX_TEXT_CHARS
from tracnotify.mail.message import MAX_PUBLIC_ADDRESSES
from tracnotify.mail.pipeline import build_messages

#: largest copy we accept for any of these changes (the text limits above,
#: a few of them per mail, encoded)
MAX_MESSAGE_BYTES = 4 * MAX_TEXT_CHARS + 20000


def build(name):
    env = make_env(OPTIONS.get(name))
    try:
        return build_messages(env, load_config(env), SCENARIOS[name](env))
    finally:
        env.reset_db()
        env.shutdown()


def parsed(message):
    raw = message.text.encode('utf-8')
    assert max(len(line) for line in raw.split(b'\r\n')) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return msg, msg.get_body(('plain',)).get_content()


@pytest.mark.parametrize('name, omitted', [
    ('1MB description', 999990 - MAX_TEXT_CHARS),      # 55,555 x 18
    ('1MB one-word description', 1000000 - MAX_TEXT_CHARS),
    ('1MB comment', 999990 - MAX_TEXT_CHARS),
])
def test_megabyte_text_is_cut_with_a_notice(name, omitted):
    messages = build(name)
    assert len(messages) == 3                   # reporter, owner, updater
    for message in messages:
        assert len(message.text) < MAX_MESSAGE_BYTES
        _msg, body = parsed(message)
        notice = '[... %d characters omitted; see the ticket]' % omitted
        assert notice in body
        assert body.rstrip().endswith('<http://trac.example.org>') or \
            'Ticket URL: <http://trac.example.org/ticket/1' in body, \
            'the footer (and the link to the ticket) is still there'


def test_megabyte_description_change_keeps_old_and_new_cut():
    message = build('1MB description change')[0]
    assert len(message.text) < MAX_MESSAGE_BYTES
    _msg, body = parsed(message)
    assert body.count('characters omitted; see the ticket]') == 2
    assert 'Old description:' in body and 'New description:' in body


def test_ten_thousand_character_subject():
    message = build('10,000-char subject')[0]
    msg, body = parsed(message)
    assert len(msg['Subject']) <= MAX_SUBJECT_CHARS
    assert msg['Subject'].endswith('\u2026')
    head = message.text.split('\r\n\r\n', 1)[0]
    assert max(len(line) for line in head.split('\r\n')
               if not line.startswith('List-Unsubscribe:')) <= 78
    assert ('word ' * 100) in ' '.join(body.split())   # the body keeps it


def test_ten_thousand_cc_added_each_gets_a_small_mail():
    messages = build('10,000 cc added (public cc)')
    assert len(messages) == CC_ENTRIES + 3
    assert len({m.recipient for m in messages}) == len(messages)
    largest = max(messages, key=lambda m: len(m.text))
    assert len(largest.text) < 10000
    msg, body = parsed(largest)
    # over MAX_PUBLIC_ADDRESSES: each copy names only its own recipient
    assert CC_ENTRIES > MAX_PUBLIC_ADDRESSES
    assert msg['Cc'] is None and len(msg['To'].addresses) == 1
    assert '[... %d more]' % (CC_ENTRIES - 100) in ' '.join(body.split())


def test_five_thousand_custom_field_changes():
    message = build('5,000 custom field changes')[0]
    assert len(message.text) < MAX_MESSAGE_BYTES
    _msg, body = parsed(message)
    assert 'characters omitted; see the ticket]' in body
    assert '* f0000:  old value 0 => new value 0' in body
    assert '* f%04d:' % (CUSTOM_FIELDS - 1) not in body
