"""Who gets mail about a ticket change: role options, cc, always_cc/bcc,
addresses, user preferences and permissions, checked on the mail that a
real SMTP server receives."""

import functools
import logging
from collections import Counter

import pytest
from trac.notification.model import Subscription
from trac.perm import PermissionSystem

from tests.support.policies import enable_hide_ticket_policy
from tests.support.tickets import add_users, change_ticket, create_ticket
from tests.support.tickets import mails_by_recipient as delivered
from tests.support.users import users
from tracnotify.config import load_config
from tracnotify.event import TicketEvent
from tracnotify.mail.pipeline import build_messages

USERS = users('alice', 'joe', 'bob', 'kim', 'hidden', 'zoe')
ADDRESS = {'reporter': 'alice@example.net', 'owner': 'joe@example.net',
           'updater': 'bob@example.net'}


@pytest.fixture
def env_for(sink_env):
    """Factory: an environment that delivers to the sink, with users."""
    return functools.partial(sink_env, USERS)


def all_headers(message) -> str:
    return '\n'.join('%s: %s' % (k, v) for k, v in message.items())


def pending_events(env):
    return [TicketEvent.from_json(p) for p, in env.db_query(
        "SELECT payload FROM tracnotify_event WHERE state='pending' "
        "ORDER BY id")]


# always_notify_reporter / owner / updater ---------------------------------

@pytest.mark.parametrize('role', ['reporter', 'owner', 'updater'])
@pytest.mark.parametrize('option, subscriber, expected', [
    (None, True, True),       # unset: [notification-subscriber] decides
    (None, False, False),
    ('true', False, True),    # forced in
    ('true', True, True),
    ('false', True, False),   # forced out
    ('false', False, False),
])
def test_role_options(env_for, sink, role, option, subscriber, expected):
    options = {} if option is None else {'always_notify_' + role: option}
    env = env_for(**options)
    if not subscriber:
        env.config.remove('notification-subscriber', 'always_notify_' + role)
    ticket = create_ticket(env, owner='joe')
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', comment='A change')
    mails = delivered(env, sink)
    assert (ADDRESS[role] in mails) is expected
    others = set(ADDRESS.values()) - {ADDRESS[role]}
    assert others <= set(mails), 'the other roles keep their mail'
    if expected:
        assert mails[ADDRESS[role]][0]['X-Trac-Notification-Reason'] == role


def test_unset_role_options_are_not_forced(make_env):
    env = make_env()
    assert load_config(env).forced_roles == {}
    env = make_env(always_notify_owner='false', always_notify_updater='true')
    assert load_config(env).forced_roles == {'owner': False, 'updater': True}


def test_previous_owner_gets_mail_on_reassignment(env_for, sink):
    env = env_for()
    ticket = create_ticket(env, owner='joe')
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', owner='kim')
    mails = delivered(env, sink)
    assert {'joe@example.net', 'kim@example.net'} <= set(mails)
    assert mails['joe@example.net'][0]['X-Trac-Notification-Reason'] == \
        'owner'


def test_previous_owner_forced_by_always_notify_owner(env_for, sink):
    env = env_for(always_notify_owner='true')
    env.config.remove('notification-subscriber', 'always_notify_owner')
    ticket = create_ticket(env, owner='joe')
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', owner='kim')
    assert {'joe@example.net', 'kim@example.net'} <= set(
        delivered(env, sink))


# cc ---------------------------------------------------------------------------

@pytest.mark.parametrize('cc', [
    'carol@example.com, dave@example.com, erin',
    'carol@example.com dave@example.com erin',
    'carol@example.com;dave@example.com  ,  erin',
])
def test_cc_field_separators(env_for, sink, cc):
    env = env_for()
    create_ticket(env, cc=cc)
    mails = delivered(env, sink)
    for address in ('carol@example.com', 'dave@example.com',
                    'erin@example.org'):
        assert len(mails[address]) == 1
        assert mails[address][0]['X-Trac-Notification-Reason'] == 'cc'


def test_removed_cc_gets_the_change_that_removed_it(env_for, sink):
    env = env_for()
    ticket = create_ticket(env, cc='carol@example.com, dave@example.com')
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', cc='dave@example.com')
    assert {'carol@example.com', 'dave@example.com'} <= set(
        delivered(env, sink))
    change_ticket(env, ticket.id, author='bob', comment='later')
    assert 'carol@example.com' not in delivered(env, sink)


# smtp_always_cc / smtp_always_bcc --------------------------------------------

def test_always_cc_visible_with_public_cc(env_for, sink):
    env = env_for(smtp_always_cc='watch@example.com', use_public_cc='true')
    create_ticket(env, cc='carol@example.com')
    mails = delivered(env, sink)
    assert mails['watch@example.com'][0]['X-Trac-Notification-Reason'] == \
        'always_cc'
    for rcpt in ('alice@example.net', 'carol@example.com'):
        assert 'watch@example.com' in str(mails[rcpt][0]['Cc'])


def test_always_cc_hidden_without_public_cc(env_for, sink):
    env = env_for(smtp_always_cc='watch@example.com', use_public_cc='false')
    create_ticket(env, cc='carol@example.com')
    mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net', 'carol@example.com',
                          'watch@example.com'}
    for rcpt, messages in mails.items():
        assert messages[0]['Cc'] is None
        assert messages[0]['To'].addresses[0].addr_spec == rcpt
        if rcpt != 'watch@example.com':
            assert 'watch@example.com' not in all_headers(messages[0])


@pytest.mark.parametrize('public_cc', ['true', 'false'])
def test_always_bcc_never_visible(env_for, sink, public_cc):
    env = env_for(smtp_always_bcc='secret@example.com',
                  smtp_always_cc='watch@example.com', use_public_cc=public_cc)
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, author='bob', comment='Hello')
    mails = delivered(env, sink)
    assert len(mails['secret@example.com']) == 2
    for messages in mails.values():
        for message in messages:
            assert 'secret@' not in all_headers(message)
            assert message['Bcc'] is None


# addresses ---------------------------------------------------------------------

def test_usernames_resolve_to_session_email(env_for, sink):
    env = env_for()
    create_ticket(env, reporter='alice', cc='joe')
    mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net', 'joe@example.net'}


def test_default_domain_appended_to_bare_names(env_for, sink):
    env = env_for(smtp_default_domain='example.org')
    create_ticket(env, reporter='zoe', cc='someone')
    assert set(delivered(env, sink)) == {'zoe@example.org',
                                         'someone@example.org'}


def test_bare_names_dropped_without_default_domain(env_for, sink):
    env = env_for(smtp_default_domain='')
    create_ticket(env, reporter='zoe', cc='someone, carol@example.com')
    assert set(delivered(env, sink)) == {'carol@example.com'}


@pytest.mark.parametrize('short, expected', [
    ('true', {'zoe', 'carol@example.com'}),
    ('false', {'carol@example.com'}),
])
def test_use_short_addr(env_for, short, expected):
    env = env_for(smtp_default_domain='', use_short_addr=short)
    create_ticket(env, reporter='zoe', cc='carol@example.com')
    event, = pending_events(env)
    messages = build_messages(env, load_config(env), event)
    assert {m.recipient for m in messages} == expected


def test_each_address_once(env_for, sink):
    env = env_for()
    ticket = create_ticket(env, reporter='alice', owner='alice',
                           cc='alice, alice@example.net, ALICE@example.net')
    change_ticket(env, ticket.id, author='alice', comment='Me again')
    mails = delivered(env, sink)
    assert Counter({rcpt: len(m) for rcpt, m in mails.items()}) == \
        Counter({'alice@example.net': 2})


def test_invalid_addresses_skipped_and_logged(env_for, sink, caplog):
    env = env_for()
    add_users(env, ('broken', 'Broken', 'broken@@example.org'),
              ('jorg', 'Jörg', 'jörg@example.org'))
    create_ticket(env, cc='bad@@example.com, broken, jorg, '
                          'carol@example.com, x@-')
    with caplog.at_level(logging.DEBUG):
        mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net', 'carol@example.com'}
    log = caplog.text
    assert 'jörg@example.org' in log


def test_ignore_domains(env_for, sink):
    env = env_for(ignore_domains='example.com, Example.Net')
    create_ticket(env, cc='carol@example.com, dave@example.info')
    assert set(delivered(env, sink)) == {'dave@example.info'}


def test_admit_domains(env_for, sink):
    env = env_for()
    create_ticket(env, cc='dan@localdomain')
    assert 'dan@localdomain' not in delivered(env, sink)
    env.config.set('notification', 'admit_domains', 'localdomain')
    create_ticket(env, cc='dan@localdomain')
    assert 'dan@localdomain' in delivered(env, sink)


# user preferences ------------------------------------------------------------

def add_rule(env, sid, klass, adverb):
    Subscription.add(env, {'sid': sid, 'authenticated': 1,
                           'distributor': 'email', 'format': None,
                           'adverb': adverb, 'class': klass})


@pytest.mark.parametrize('forced', [None, 'true'])
def test_user_never_rule_is_honoured(env_for, sink, forced):
    options = {'always_notify_reporter': forced} if forced else {}
    env = env_for(**options)
    add_rule(env, 'alice', 'TicketReporterSubscriber', 'never')
    ticket = create_ticket(env, reporter='alice', cc='carol@example.com')
    change_ticket(env, ticket.id, author='bob', comment='x')
    mails = delivered(env, sink)
    assert 'alice@example.net' not in mails
    assert len(mails['carol@example.com']) == 2


def test_user_always_rule_beats_forced_out_role(env_for, sink):
    env = env_for(always_notify_reporter='false')
    add_rule(env, 'alice', 'TicketReporterSubscriber', 'always')
    create_ticket(env, reporter='alice')
    assert 'alice@example.net' in delivered(env, sink)


def test_notification_reasons(env_for, sink):
    env = env_for(smtp_always_cc='watch@example.com',
                  smtp_always_bcc='secret@example.com')
    ticket = create_ticket(env, reporter='alice', owner='joe',
                           cc='carol@example.com')
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', comment='x')
    reasons = {rcpt: m[0]['X-Trac-Notification-Reason']
               for rcpt, m in delivered(env, sink).items()}
    assert reasons == {'alice@example.net': 'reporter',
                       'joe@example.net': 'owner',
                       'bob@example.net': 'updater',
                       'carol@example.com': 'cc',
                       'watch@example.com': 'always_cc',
                       'secret@example.com': 'always_bcc'}


# permissions -------------------------------------------------------------------

def test_permission_policy_hides_ticket_from_user(env_for, sink):
    env = env_for()
    enable_hide_ticket_policy(env)
    first = create_ticket(env, cc='hidden, hidden@example.net, '
                                  'carol@example.com')
    second = create_ticket(env, cc='hidden, carol@example.com')
    assert (first.id, second.id) == (1, 2)
    mails = delivered(env, sink)
    assert [m['X-Trac-Ticket-ID'] for m in mails['hidden@example.net']] \
        == ['2']
    assert sorted(m['X-Trac-Ticket-ID']
                  for m in mails['carol@example.com']) == ['1', '2']


def test_anonymous_address_checked_as_anonymous(env_for, sink):
    env = env_for()
    PermissionSystem(env).revoke_permission('anonymous', 'TICKET_VIEW')
    PermissionSystem(env).grant_permission('authenticated', 'TICKET_VIEW')
    create_ticket(env, cc='carol@example.com, joe, alice@example.net')
    mails = delivered(env, sink)
    assert 'carol@example.com' not in mails
    # a user's own address in the cc field is checked as that user
    assert set(mails) == {'alice@example.net', 'joe@example.net'}
    assert mails['alice@example.net'][0]['X-Trac-Notification-Reason'] in \
        ('reporter', 'updater')
