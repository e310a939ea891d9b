"""VERP: with bounce_address, each copy's envelope sender names the copy
(an HMAC of its message id under the environment's secret); From and
Reply-To stay as they were; without it, the envelope sender is smtp_from."""

import os
import shutil

import pytest

from tests.support.tickets import add_users, change_ticket, create_ticket, deliver
from tests.support.users import users
from tracnotify.config import load_config
from tracnotify.mail import verp

BOUNCE = 'trac+bounce-{token}@example.org'
MSMTP = shutil.which('msmtp') or '/usr/bin/msmtp'


def message_ids(env) -> dict:
    """``{(recipient, Message-ID header): tracnotify_message.id}``."""
    return {(r, m): i for i, r, m in env.db_query(
        'SELECT m.id, m.recipient, COALESCE(m.msgid, b.msgid) '
        'FROM tracnotify_message m '
        'LEFT JOIN tracnotify_body b ON b.id=m.body_id')}


def test_each_copy_has_its_own_envelope_sender(make_env, smtp_sink):
    sink = smtp_sink()
    env = make_env(smtp_port=str(sink.port), smtp_server='127.0.0.1',
                   bounce_address=BOUNCE)
    add_users(env, *users('alice'))
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, comment='Looks good')
    report = deliver(env)
    assert report.sent == len(sink.received) == 5
    ids = message_ids(env)
    secret = verp.read_secret(env)
    senders = set()
    for item in sink.received:
        msg = item.message
        row = ids[(item.rcpt_tos[0], msg['Message-ID'])]
        assert item.mail_from == 'trac+bounce-%s@example.org' % \
            verp.make_token(secret, row)
        assert verp.check_token(secret, verp.find_token(
            BOUNCE, [item.mail_from])) == row
        assert msg['From'].addresses[0].addr_spec == 'trac@example.org'
        assert msg['Reply-To'] == 'trac@example.org'
        assert 'bounce' not in item.data.decode().lower()
        senders.add(item.mail_from)
    assert len(senders) == 5


def test_without_bounce_address_the_envelope_is_smtp_from(make_env,
                                                          smtp_sink):
    sink = smtp_sink()
    env = make_env(smtp_port=str(sink.port), smtp_server='127.0.0.1')
    create_ticket(env, cc='carol@example.com')
    assert deliver(env).sent == len(sink.received) == 2
    assert {r.mail_from for r in sink.received} == {'trac@example.org'}


@pytest.mark.skipif(not os.path.exists(MSMTP), reason='msmtp is missing')
def test_sendmail_gets_the_verp_sender_as_f(make_env, smtp_sink):
    sink = smtp_sink()
    env = make_env(mail_transport='sendmail', sendmail_path=MSMTP,
                   sendmail_args='--host=127.0.0.1 --port=%d -f {sender}'
                   % sink.port, bounce_address=BOUNCE)
    create_ticket(env, cc='carol@example.com')
    report = deliver(env)
    received = sink.wait_for(report.sent)
    assert report.sent == len(received) == 2
    secret = verp.read_secret(env)
    ids = message_ids(env)
    for item in received:
        row = ids[(item.rcpt_tos[0], item.message['Message-ID'])]
        assert item.mail_from == verp.envelope_sender(BOUNCE, secret, row)


def test_the_secret_is_made_once_per_environment(make_env):
    env = make_env()
    first = verp.read_secret(env)
    assert len(first) == 64
    assert verp.read_secret(env) == first
    other = make_env()
    assert verp.read_secret(other) != first


def test_forged_and_altered_tokens_are_refused():
    secret = b'k' * 64
    token = verp.make_token(secret, 42)
    assert verp.check_token(secret, token) == 42
    assert verp.check_token(secret, token.upper()) == 42   # case folded
    number, mac = token.split('-')
    assert verp.check_token(secret, '43-' + mac) is None
    assert verp.check_token(secret, '42-' + mac[:-1] + (
        '0' if mac[-1] != '0' else '1')) is None
    assert verp.check_token(b'x' * 64, token) is None
    for junk in ('', '42', '42-', '-abc', '42-zz' + mac[2:], token + '0'):
        assert verp.check_token(secret, junk) is None


def test_find_token_in_headers_and_envelopes():
    secret = b's' * 64
    token = verp.make_token(secret, 7)
    address = verp.envelope_sender(BOUNCE, secret, 7)
    assert verp.find_token(BOUNCE, [address]) == token
    assert verp.find_token(BOUNCE, ['<%s>' % address.upper()]) == token
    assert verp.find_token(BOUNCE, ['Trac <%s>' % address]) == token
    assert verp.find_token(BOUNCE, ['nobody@example.org', address]) == token
    assert verp.find_token(BOUNCE, ['x' + address]) is None
    assert verp.find_token(BOUNCE, [address.replace('example.org',
                                                    'example.org.evil')]) \
        is None
    assert verp.find_token(BOUNCE, ['trac@example.org']) is None


@pytest.mark.parametrize('value, error', [
    ('trac+bounce@example.org', 'must contain {token} once'),
    ('trac+{token}-{token}@example.org', 'must contain {token} once'),
    ('trac@{token}.example.org', 'needs {token} in the part before the @'),
    ('trac {token}@example.org', 'is not an e-mail address'),
])
def test_bad_bounce_address_is_a_message_and_verp_is_off(make_env, value,
                                                        error):
    env = make_env(bounce_address=value)
    config = load_config(env)
    assert config.bounce_address == ''
    assert any(error in e and 'bounce_address' in e for e in config.errors)


def test_good_bounce_address_is_read(make_env):
    config = load_config(make_env(bounce_address=' %s ' % BOUNCE))
    assert config.bounce_address == BOUNCE and config.errors == []
