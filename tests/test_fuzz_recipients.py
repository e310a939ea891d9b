"""The recipient side under fuzzed input (hypothesis): cc strings,
usernames and addresses with quotes, comments, IDN domains and UTF-8 local
parts never raise; every address that comes out is one the ``email``
package writes into a To/Cc header and reads back unchanged, and nothing
in it can add a header."""

import email
import email.policy
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.envs import make_stub_env
from tracnotify.config import load_config
from tracnotify.event import CREATED, TicketEvent
from tracnotify.mail.addresses import needs_smtputf8, normalize_address
from tracnotify.mail.message import (
    AddressError,
    Recipient,
    build_copies,
    make_address,
)
from tracnotify.mail.pipeline import snapshot_ticket
from tracnotify.mail.recipients import RecipientResolver

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

LOCAL = st.one_of(
    st.sampled_from(['alice', 'bob', 'o\'hara', 'a.b+tag', '"quoted name"',
                     '"a\\"b"', 'jörg', 'δοκιμή', '用户', 'x' * 70, '',
                     '=?utf-8?q?=0D=0ABcc:_x?=', 'a(comment)', '.dot.',
                     'a..b', '-', '!#$%&*+/=?^_`{|}~']),
    st.text(st.characters(blacklist_categories=('Cs',)), max_size=12))
DOMAIN = st.one_of(
    st.sampled_from(['example.org', 'bücher.example', '例え.テスト',
                     'xn--bcher-kva.example', 'EXAMPLE.ORG', 'localhost',
                     '[127.0.0.1]', 'a' * 64 + '.org', '-bad-.org', '',
                     'example.org.', 'exa mple.org', 'ex\r\nBcc: y.org']),
    st.text(st.characters(blacklist_categories=('Cs',)), max_size=12))
ADDRESS = st.one_of(
    st.builds('{}@{}'.format, LOCAL, DOMAIN),
    st.builds('{} <{}@{}>'.format, st.text(max_size=10), LOCAL, DOMAIN),
    st.builds('{}@{} ({})'.format, LOCAL, DOMAIN, st.text(max_size=10)),
    LOCAL,                                   # a username or a short name
)
SEPARATORS = st.sampled_from([', ', ',', ';', ' ', '\n', '\r\n', ',,', '\t'])
CC = st.lists(st.tuples(ADDRESS, SEPARATORS), max_size=8).map(
    lambda items: ''.join(a + s for a, s in items))


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    env = make_stub_env(str(tmp_path_factory.mktemp('fuzzrcpt')), None, {})
    env.insert_users([('alice', 'Alice', 'alice@example.net'),
                      ('jörg', 'Jörg', 'joerg@example.net'),
                      ('nomail', 'No Mail', '')])
    yield env
    env.reset_db()
    env.shutdown()


def assert_header_safe(recipients, config) -> None:
    """Each copy's To/Cc parse back to exactly the chosen addresses (a
    copy to an internationalised local part in UTF-8, RFC 6532, listing
    every address; the others in ASCII, listing the ASCII ones)."""
    shared = b'Subject: x\r\n\r\nbody\r\n'
    for recipient, data in build_copies(shared, recipients, config):
        utf8 = needs_smtputf8(recipient.address)
        raw = data.encode('utf-8' if utf8 else 'ascii')
        msg = email.message_from_string(raw.decode('utf-8'),
                                        policy=email.policy.default)
        assert set(k.lower() for k in msg.keys()) <= {
            'to', 'cc', 'subject', 'x-trac-notification-reason'}
        shown = [a.addr_spec.lower() for name in ('To', 'Cc')
                 for a in (msg[name].addresses if msg[name] else ())]
        if recipient.visibility != 'bcc' and not config.use_public_cc:
            assert shown == [normalize_address(recipient.address).lower()]
        if config.use_public_cc:
            assert sorted(shown) == sorted(
                normalize_address(r.address).lower() for r in recipients
                if r.visibility != 'bcc' and
                (utf8 or not needs_smtputf8(r.address)))


@FUZZ
@given(cc=CC, reporter=ADDRESS, owner=ADDRESS, author=ADDRESS,
       public=st.booleans(), short=st.booleans())
def test_any_cc_reporter_owner_gives_safe_recipients(env, cc, reporter,
                                                     owner, author, public,
                                                     short):
    config = replace(load_config(env), use_public_cc=public,
                     use_short_addr=short)
    event = TicketEvent(kind=CREATED, ticket_id=1,
                        time=int(time.time() * 1e6), author=author,
                        values={'summary': 's', 'reporter': reporter,
                                'owner': owner, 'cc': cc, 'status': 'new'})
    recipients = RecipientResolver(env, config).resolve(
        event, snapshot_ticket(env, event))
    keys = [r.address.lower() for r in recipients]
    assert len(keys) == len(set(keys)), 'each address once'
    for recipient in recipients:
        # the domain in ASCII (punycode); a non-ASCII local part only as
        # an SMTPUTF8 address
        assert recipient.address.rpartition('@')[2].isascii()
        assert not any(c in recipient.address for c in ' \t\r\n<>,;"()')
        make_address(recipient.address,            # does not raise
                     utf8=needs_smtputf8(recipient.address))
    assert_header_safe(recipients, config)


@FUZZ
@given(address=ADDRESS, name=st.text(max_size=30))
def test_make_address_accepts_only_what_round_trips(address, name):
    try:
        made = make_address(address, name)
    except AddressError:
        return
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg['To'] = made
    raw = msg.as_bytes()
    assert raw.isascii() and raw.count(b'\r\n') == raw.count(b'\n')
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert list(parsed.keys()) == ['To']
    addresses = parsed['To'].addresses
    assert len(addresses) == 1
    assert addresses[0].addr_spec == made.addr_spec
    # a short address (use_short_addr) is local on purpose
    assert [str(d) for d in parsed['To'].defects] == (
        [] if '@' in made.addr_spec else
        ['addr-spec local part with no domain'])


@FUZZ
@given(addresses=st.lists(ADDRESS, max_size=6), public=st.booleans())
def test_build_copies_with_fuzzed_recipients(env, addresses, public):
    recipients = []
    for i, address in enumerate(addresses):
        try:
            make_address(address)
        except AddressError:
            continue
        if address.lower() in {r.address.lower() for r in recipients}:
            continue
        recipients.append(Recipient(address, 'cc',
                                    ('to', 'cc', 'bcc')[i % 3]))
    assert_header_safe(recipients,
                       replace(load_config(env), use_public_cc=public))
