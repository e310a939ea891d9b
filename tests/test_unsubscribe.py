"""Unsubscribe tokens, List-* headers, the never-mail list and the schema
upgrade, on a real Trac environment (SQLite and PostgreSQL) and a real SMTP
server."""

import hashlib
import logging
import re

import pytest
from trac.db.api import DatabaseManager
from trac.test import MockRequest
from trac.web.api import RequestDone

from tests.support.tickets import change_ticket, create_ticket, deliver_to_sink
from tests.support.users import users
from tracnotify.config import load_config
from tracnotify.mail import chrome, confirmation
from tracnotify.mail import suppression as unsubscribe
from tracnotify.schema import SCHEMA_NAME, SCHEMA_V2, SCHEMA_VERSION, TracnotifySetup
from tracnotify.web.unsubscribe import UnsubscribeModule

URL_RE = re.compile(r'^<(http://trac\.example\.org/tracnotify/unsubscribe/'
                    r'([A-Za-z0-9_-]+))>$')


@pytest.fixture
def env(sink_env):
    return sink_env(users('alice'))


def delivered(env, sink):
    return {m.rcpt_tos[0]: m for m in deliver_to_sink(env, sink, True)}


def token_of(mail) -> str:
    match = URL_RE.match(mail.message['List-Unsubscribe'])
    assert match, mail.message['List-Unsubscribe']
    return match.group(2)


# Tokens ------------------------------------------------------------------------

def test_tokens_are_random_long_and_stored_hashed(env):
    tokens = unsubscribe.issue_tokens(env, ['a@example.com', 'B@Example.com'])
    assert len(set(tokens.values())) == 2
    for address, token in tokens.items():
        assert len(token) >= 32 and unsubscribe.TOKEN_RE.match(token)
        assert unsubscribe.TOKEN_BYTES * 8 >= 128
        assert unsubscribe.address_for_token(env, token) == address.lower()
    rows = env.db_query('SELECT token_hash, address FROM '
                        'tracnotify_unsub_token')
    stored = ' '.join(h + a for h, a in rows)
    for token in tokens.values():
        assert token not in stored              # only the hash is kept
        assert hashlib.sha256(token.encode()).hexdigest() in stored


def test_wrong_malformed_and_expired_tokens_are_refused(env):
    token = unsubscribe.issue_tokens(env, ['a@example.com'])['a@example.com']
    flipped = token[:-1] + ('A' if token[-1] != 'A' else 'B')
    for bad in (flipped, '', 'short', token + "' OR 1=1 --", '../' + token):
        assert unsubscribe.address_for_token(env, bad) is None
    env.db_transaction('UPDATE tracnotify_unsub_token SET created=%s',
                       (unsubscribe.now_us() - (unsubscribe.TOKEN_DAYS + 1) *
                        86400 * 1000000,))
    assert unsubscribe.address_for_token(env, token) is None
    assert unsubscribe.purge_tokens(env) == 1


# Headers --------------------------------------------------------------------------

def test_every_copy_has_list_headers_and_its_own_token(env, sink):
    create_ticket(env, cc='carol@example.com')
    mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net', 'carol@example.com'}
    tokens = {}
    for rcpt, mail in mails.items():
        msg = mail.message
        assert msg['List-Id'] == \
            '"Test Project" <test-project.trac.example.org>'
        assert msg['List-Unsubscribe-Post'] == 'List-Unsubscribe=One-Click'
        tokens[rcpt] = token_of(mail)
        assert unsubscribe.address_for_token(env, tokens[rcpt]) == rcpt
        raw = mail.data.decode('ascii')
        assert 'List-Unsubscribe: <http://trac.example.org/tracnotify/' \
            'unsubscribe/%s>\r\n' % tokens[rcpt] in raw  # one line, not encoded
        body = msg.get_content()
        assert 'To stop these e-mails: ' \
            '<http://trac.example.org/tracnotify/unsubscribe>' in body
        assert tokens[rcpt] not in body     # the body is shared by all
    assert tokens['alice@example.net'] != tokens['carol@example.com']


@pytest.mark.parametrize('base_url, name, expected', [
    ('http://trac.example.org/', 'Test Project',
     '"Test Project" <test-project.trac.example.org>'),
    ('https://example.org/trac/projects/Alpha', 'Alpha',
     '"Alpha" <alpha.alpha.projects.trac.example.org>'),
    ('', '', '<trac.localhost>'),
    ('http://bücher.example/', 'Bücher & Co', '"Bücher & Co" '
     '<bucher-co.xn--bcher-kva.example>'),
])
def test_list_id_is_stable_and_derived(env, base_url, name, expected):
    env.config.set('trac', 'base_url', base_url)
    env.config.set('project', 'name', name)
    assert chrome.list_id(env, load_config(env)) == expected
    assert chrome.list_id(env, load_config(env)) == expected


def test_long_list_id_fits_one_header_line(env):
    env.config.set('trac', 'base_url', 'https://' + 'very-long-host.' * 6 +
                   'example.org/' + 'deep/path/' * 8)
    ident = chrome.list_id(env, load_config(env)).split('<', 1)[1].rstrip('>')
    assert len(ident) <= 70 and '..' not in ident


# The never-mail list -------------------------------------------------------------

def test_suppressed_address_gets_nothing_others_still_do(env, sink, caplog):
    ticket = create_ticket(env, cc='carol@example.com')
    delivered(env, sink)
    unsubscribe.suppress(env, 'Carol@Example.com', unsubscribe.UNSUBSCRIBED,
                         author='one-click')
    change_ticket(env, ticket.id, author='alice', comment='Hello')
    with caplog.at_level(logging.INFO):
        assert set(delivered(env, sink)) == {'alice@example.net'}
    assert 'no mail to carol@example.com (cc): on the never-mail list ' \
        '(unsubscribed)' in caplog.text
    assert unsubscribe.unsuppress(env, 'carol@example.com')
    change_ticket(env, ticket.id, author='alice', comment='Again')
    assert set(delivered(env, sink)) == {'alice@example.net',
                                         'carol@example.com'}


def test_scope_is_every_mail_even_always_bcc(sink_env, sink):
    env = sink_env(smtp_always_bcc='list@example.com',
                   smtp_always_cc='boss@example.com')
    unsubscribe.suppress(env, 'list@example.com', unsubscribe.ADMIN, 'admin')
    unsubscribe.suppress(env, 'boss@example.com', unsubscribe.UNSUBSCRIBED)
    create_ticket(env, reporter='dave@example.com')
    assert set(delivered(env, sink)) == {'dave@example.com'}


def test_list_addresses_get_no_one_click_token(sink_env, sink):
    """A member of a list (smtp_always_cc/bcc) must not stop the whole
    list with one click: list copies carry no token and no one-click
    header, wherever the list address appears (also in a ticket's cc);
    everyone else keeps their own."""
    env = sink_env(smtp_always_cc='list@example.com',
                   smtp_always_bcc='Archive@Example.com')
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, author='alice', comment='To the list',
                  cc='carol@example.com, archive@example.com')
    received = deliver_to_sink(env, sink, True)
    by_address = {}
    for mail in received:
        by_address.setdefault(mail.rcpt_tos[0].lower(), []).append(mail)
    assert {'list@example.com', 'archive@example.com',
            'carol@example.com'} <= set(by_address)
    for address in ('list@example.com', 'archive@example.com'):
        for mail in by_address[address]:
            assert mail.message['List-Unsubscribe'] is None
            assert mail.message['List-Unsubscribe-Post'] is None
            assert mail.message['List-Id']          # filters still work
    stored = {a for a, in env.db_query(
        'SELECT address FROM tracnotify_unsub_token')}
    assert stored == set(by_address) - {'list@example.com',
                                        'archive@example.com'}
    assert 'carol@example.com' in stored
    for address in stored:
        for mail in by_address[address]:
            assert unsubscribe.address_for_token(env, token_of(mail)) == \
                address


def test_admin_entry_wins_over_self_service(env):
    address = 'x@example.com'
    assert unsubscribe.suppress(env, address, unsubscribe.ADMIN, 'admin',
                                'bounces')
    # an unsubscribe link cannot downgrade, a resubscribe cannot lift it
    assert not unsubscribe.suppress(env, address, unsubscribe.UNSUBSCRIBED)
    assert not unsubscribe.unsuppress(env, address,
                                      only_reason=unsubscribe.UNSUBSCRIBED)
    assert unsubscribe.suppression(env, 'X@example.com') == unsubscribe.ADMIN
    assert [r[:2] for r in unsubscribe.list_suppressed(env)] == \
        [(address, 'admin')]
    assert unsubscribe.unsuppress(env, address)       # the admin can
    assert unsubscribe.suppression(env, address) is None


# Schema ----------------------------------------------------------------------------

def test_upgrade_from_version_1_adds_the_tables(env):
    dbm = DatabaseManager(env)
    dbm.drop_tables([t.name for t in SCHEMA_V2])
    dbm.set_database_version(1, SCHEMA_NAME)
    setup = TracnotifySetup(env)
    assert setup.environment_needs_upgrade()
    setup.upgrade_environment()
    assert dbm.get_database_version(SCHEMA_NAME) == SCHEMA_VERSION
    assert not setup.environment_needs_upgrade()
    unsubscribe.suppress(env, 'a@example.com', unsubscribe.ADMIN)
    assert unsubscribe.issue_tokens(env, ['a@example.com'])


# Proof of control: the confirmation mail ---------------------------------------------

def test_confirmation_mail_goes_through_the_outbox_and_changes_nothing(env,
                                                                        sink):
    outcome = confirmation.request_confirmation(
        env, load_config(env), 'Bob@Example.com', confirmation.UNSUBSCRIBE,
        'alice')
    assert outcome == confirmation.SENT
    assert unsubscribe.suppression(env, 'bob@example.com') is None
    (mail,) = deliver_to_sink(env, sink, True)
    assert mail.rcpt_tos == ['bob@example.com']
    message = mail.message
    assert message['Subject'] == \
        '[Test Project] Confirm: no more e-mail to bob@example.com'
    assert message['X-Trac-Notification-Reason'] == 'confirm'
    assert message['List-Unsubscribe'] is None
    body = message.get_content()
    assert '"alice"' in body
    token = re.search(r'/tracnotify/unsubscribe/([A-Za-z0-9_-]+)',
                      body).group(1)
    assert unsubscribe.address_for_token(env, token) == 'bob@example.com'
    assert unsubscribe.suppression(env, 'bob@example.com') is None


def test_confirmations_are_limited_per_address_and_need_mail_on(env,
                                                                make_env):
    config = load_config(env)
    for _i in range(confirmation.MAX_PER_HOUR):
        assert confirmation.request_confirmation(
            env, config, 'bob@example.com', confirmation.RESUBSCRIBE,
            'alice') == confirmation.SENT
    assert confirmation.request_confirmation(
        env, config, 'BOB@example.com', confirmation.UNSUBSCRIBE,
        'alice') == confirmation.LIMITED
    assert confirmation.request_confirmation(
        env, config, 'carol@example.com', confirmation.UNSUBSCRIBE,
        'alice') == confirmation.SENT
    assert confirmation.request_confirmation(
        env, config, 'a..b@example.com', confirmation.UNSUBSCRIBE,
        'alice') == confirmation.BAD_ADDRESS
    off = make_env(smtp_enabled='false')
    assert confirmation.request_confirmation(
        off, load_config(off), 'bob@example.com', confirmation.UNSUBSCRIBE,
        'alice') == confirmation.CANNOT_SEND


def test_token_state_tells_expired_from_unknown(env):
    token = unsubscribe.issue_tokens(env, ['a@example.com'])['a@example.com']
    assert unsubscribe.token_state(env, token) == (unsubscribe.VALID,
                                                   'a@example.com')
    env.db_transaction('UPDATE tracnotify_unsub_token SET created=%s',
                       (unsubscribe.now_us() - (unsubscribe.TOKEN_DAYS + 1) *
                        86400 * 1000000,))
    assert unsubscribe.token_state(env, token) == (unsubscribe.EXPIRED, None)
    assert unsubscribe.token_state(env, 'x' * 32) == (unsubscribe.UNKNOWN,
                                                      None)


def press(env, address: str, action: str):
    """alice, with *address* in her preferences, presses a button of the
    logged-in unsubscribe page."""
    req = MockRequest(env, authname='alice', method='POST',
                      path_info='/tracnotify/unsubscribe',
                      args={'action': action})
    req.session['email'] = address
    module = UnsubscribeModule(env)
    assert module.match_request(req)
    with pytest.raises(RequestDone):
        module.process_request(req)
    return req


def queued_to(env, address: str) -> int:
    return env.db_query('SELECT COUNT(*) FROM tracnotify_message '
                        'WHERE recipient=%s', (address,))[0][0]


def test_the_page_mails_a_link_and_never_acts_itself(env):
    req = press(env, 'bob@example.com', 'unsubscribe')
    assert req.chrome['notices'] and not req.chrome['warnings']
    assert queued_to(env, 'bob@example.com') == 1
    assert unsubscribe.suppression(env, 'bob@example.com') is None
    unsubscribe.suppress(env, 'bob@example.com', unsubscribe.UNSUBSCRIBED)
    press(env, 'bob@example.com', 'unsubscribe')      # already: no mail
    assert queued_to(env, 'bob@example.com') == 1
    press(env, 'bob@example.com', 'resubscribe')
    assert queued_to(env, 'bob@example.com') == 2
    assert unsubscribe.suppression(env, 'bob@example.com') == \
        unsubscribe.UNSUBSCRIBED
    # an address the admin listed is never mailed, not even a link
    unsubscribe.suppress(env, 'x@example.com', unsubscribe.ADMIN, 'admin')
    press(env, 'x@example.com', 'resubscribe')
    assert queued_to(env, 'x@example.com') == 0
    assert unsubscribe.suppression(env, 'x@example.com') == unsubscribe.ADMIN
