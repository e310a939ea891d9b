"""Non-ASCII addresses never vanish (issue 12, items 8 and 13): a user's
``ivan@пример.example`` and ``info@münchen.example`` in cc go out in
punycode; ``jörg@example.org`` in cc goes out with SMTPUTF8 (RFC 6531) to a
real SMTP server that offers it, and is recorded dead with the reason by
one that does not."""

import email
import email.policy

import pytest
from trac.web.session import DetachedSession

from tests.support.tickets import add_users, create_ticket, deliver
from tests.support.users import users
from tracnotify.mail.addresses import ascii_domain, international_address
from tracnotify.mail.message import AddressError, make_address

USERS = users('alice', 'ivan')
CC = 'info@münchen.example, jörg@example.org, bob@example.com'
IVAN = 'ivan@xn--e1afmkfd.example'
INFO = 'info@xn--mnchen-3ya.example'
JOERG = 'jörg@example.org'


@pytest.fixture
def intl_env(make_env, smtp_sink):
    def factory(smtputf8: bool):
        sink = smtp_sink(smtputf8=smtputf8)
        env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
        add_users(env, *USERS)
        return env, sink
    return factory


def outcome(env):
    return {recipient: (state, last_error or '') for recipient, state,
            last_error in env.db_query(
                'SELECT recipient, state, last_error FROM tracnotify_message')}


def utf8_message(data: bytes):
    """A message with UTF-8 headers (RFC 6532), parsed as text."""
    return email.message_from_string(data.decode('utf-8'),
                                     policy=email.policy.default)


def received(sink):
    return {item.rcpt_tos[0]: item for item in sink.received}


def test_with_smtputf8_every_address_gets_its_mail(intl_env):
    env, sink = intl_env(smtputf8=True)
    create_ticket(env, reporter='ivan', cc=CC)
    deliver(env)
    got = received(sink)
    assert sorted(got) == sorted([IVAN, INFO, JOERG, 'bob@example.com'])
    assert {state for state, _e in outcome(env).values()} == {'sent'}
    # IDN domains in punycode: plain ASCII mail, as to anyone
    for rcpt in (IVAN, INFO, 'bob@example.com'):
        assert got[rcpt].data.isascii()
        assert [a.addr_spec for a in got[rcpt].message['To'].addresses] == \
            [rcpt]
    # the internationalised local part: UTF-8 in the envelope and To
    joerg = got[JOERG]
    assert joerg.mail_from == 'trac@example.org'
    assert 'To: jörg@example.org\r\n'.encode('utf-8') in joerg.data
    message = utf8_message(joerg.data)
    assert str(message['To']) == JOERG
    assert message['Subject'] == got[INFO].message['Subject']
    assert message.get_content() == got[INFO].message.get_content()


def test_without_smtputf8_the_local_part_is_dead_with_the_reason(intl_env):
    env, sink = intl_env(smtputf8=False)
    create_ticket(env, reporter='ivan', cc=CC)
    report = deliver(env)
    assert sorted(received(sink)) == sorted([IVAN, INFO, 'bob@example.com'])
    states = outcome(env)
    assert states[JOERG][0] == 'dead'
    assert 'SMTPUTF8' in states[JOERG][1]
    assert {states[r][0] for r in (IVAN, INFO, 'bob@example.com')} == \
        {'sent'}
    assert report is not None


def test_public_cc_lists_only_what_each_copy_can_carry(make_env, smtp_sink):
    sink = smtp_sink(smtputf8=True)
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   use_public_cc='true')
    add_users(env, *USERS)
    create_ticket(env, reporter='ivan', cc=CC)
    deliver(env)
    got = received(sink)
    assert len(got) == 4
    cc_of_bob = [a.addr_spec for a in got['bob@example.com'].message['Cc']
                 .addresses]
    assert INFO in cc_of_bob and JOERG not in cc_of_bob
    assert got['bob@example.com'].data.isascii()
    cc_of_joerg = [a.addr_spec for a in
                   utf8_message(got[JOERG].data)['Cc'].addresses]
    assert JOERG in cc_of_joerg and INFO in cc_of_joerg


def test_user_rules_count_for_internationalised_users(intl_env):
    """Ivan's own "never" rule for reporter mail wins, as it would for an
    ASCII address."""
    from trac.notification.model import Subscription
    env, sink = intl_env(smtputf8=True)
    Subscription.add(env, {'sid': 'ivan', 'authenticated': 1,
                           'distributor': 'email', 'format': None,
                           'adverb': 'never',
                           'class': 'TicketReporterSubscriber'})
    create_ticket(env, reporter='ivan', cc='bob@example.com')
    deliver(env)
    assert sorted(received(sink)) == ['bob@example.com']


def test_watchers_and_updaters_with_idn_addresses(intl_env):
    from tests.support.tickets import change_ticket
    env, sink = intl_env(smtputf8=True)
    session = DetachedSession(env, 'ivan')
    session.save()
    ticket = create_ticket(env, cc='bob@example.com')
    deliver(env)
    sink.received.clear()
    change_ticket(env, ticket.id, author='ivan', comment='Привет')
    deliver(env)
    assert IVAN in received(sink)     # the updater


# The address functions -------------------------------------------------------

def test_idna_2008_not_2003():
    # IDNA 2003 (Python's codec) maps ß to ss: another domain
    assert ascii_domain('faß.de') == 'xn--fa-hia.de'
    assert make_address('x@faß.de').domain == 'xn--fa-hia.de'
    assert make_address('x@MÜNCHEN.example').domain == \
        'xn--mnchen-3ya.example'
    assert make_address('x@my_host.example').domain == 'my_host.example'
    with pytest.raises(AddressError):
        make_address('x@\u2764.example\u0000')
    with pytest.raises(AddressError):
        make_address('x@%s.example' % ('a' * 64))


def test_local_parts():
    assert make_address(JOERG, utf8=True).username == 'jörg'
    with pytest.raises(AddressError):
        make_address(JOERG)              # ASCII-only headers: no
    for bad in ('jö rg@example.org', 'jö\u200brg@example.org',
                '.jörg@example.org', 'jö..rg@example.org'):
        with pytest.raises(AddressError):
            make_address(bad, utf8=True)


@pytest.mark.parametrize('candidate, found', [
    ('info@münchen.example', 'info@münchen.example'),
    ('Info <info@münchen.example>', 'info@münchen.example'),
    (JOERG, JOERG),
    ('bob@example.com', None),        # Trac's to match
    ('jörg', None),
    ('jörg@', None),
    ('a@b@münchen.example', None),
    ('x@münchen', None),              # no dot: not a mail domain
])
def test_international_address(candidate, found):
    assert international_address(candidate) == found


def test_ignore_domains_in_either_form():
    assert international_address('info@münchen.example',
                                 ['xn--mnchen-3ya.example']) is None
    assert international_address('info@münchen.example',
                                 ['MÜNCHEN.example'.lower()]) is None


def test_always_bcc_with_an_idn_domain(make_env, smtp_sink):
    sink = smtp_sink(smtputf8=False)
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   smtp_always_bcc='archiv@münchen.example')
    add_users(env, *USERS)
    create_ticket(env, reporter='alice')
    deliver(env)
    got = received(sink)
    assert sorted(got) == ['alice@example.net', INFO.replace('info', 'archiv')]
    assert str(got[INFO.replace('info', 'archiv')].message['To']
               ).startswith('undisclosed-recipients:')


def test_previous_updater_with_an_idn_address(intl_env):
    from tests.support.tickets import change_ticket
    env, sink = intl_env(smtputf8=True)
    env.config.set('notification-subscriber', 'always_notify_previous_updater',
                   'TicketPreviousUpdatersSubscriber')
    ticket = create_ticket(env, reporter='alice')
    change_ticket(env, ticket.id, author='info@münchen.example',
                  comment='First.')
    change_ticket(env, ticket.id, author='bob@example.com', comment='Then.')
    deliver(env)
    by_type = {}
    for item in sink.received:
        by_type.setdefault(item.message['X-Trac-Notification-Type'],
                           []).append(item.rcpt_tos[0])
    # the creation goes to no later updater; bob's change to info (before)
    assert INFO not in by_type['ticket_created']
    bob_change = [i.rcpt_tos[0] for i in sink.received
                  if 'Then.' in i.message.get_content()]
    assert INFO in bob_change
