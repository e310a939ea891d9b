"""Watchers get ticket mail through Trac's subscription machinery (reason
``watcher``), unless they may not view the ticket or said ``never``."""

import pytest
from trac.notification.model import Subscription

from tests.support.policies import HIDDEN_TICKET, HIDDEN_USER, enable_hide_ticket_policy
from tests.support.tickets import (
    change_ticket,
    create_ticket,
    deliver,
    mail_to_each,
)
from tests.support.users import users
from tracnotify.web import watch
from tracnotify.web.watch import KLASS


@pytest.fixture
def env(sink_env):
    return sink_env(users('alice', 'dave', HIDDEN_USER))


def delivered(env, sink):
    return mail_to_each(env, sink, True)


def test_watcher_gets_mail_until_unwatching(env, sink):
    ticket = create_ticket(env)
    delivered(env, sink)
    assert watch.watch(env, 'dave', ticket.id)
    assert not watch.watch(env, 'dave', ticket.id)       # once
    assert watch.is_watching(env, 'dave', ticket.id)
    change_ticket(env, ticket.id, author='alice', comment='Watched?')
    mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net', 'dave@example.net'}
    assert mails['dave@example.net']['X-Trac-Notification-Reason'] == \
        'watcher'
    assert watch.unwatch(env, 'dave', ticket.id)
    change_ticket(env, ticket.id, author='alice', comment='Not any more')
    assert set(delivered(env, sink)) == {'alice@example.net'}


def test_watcher_without_ticket_view_gets_nothing(env, sink):
    enable_hide_ticket_policy(env)
    ticket = create_ticket(env)
    assert ticket.id == HIDDEN_TICKET
    other = create_ticket(env)
    delivered(env, sink)
    watch.watch(env, HIDDEN_USER, ticket.id)
    watch.watch(env, HIDDEN_USER, other.id)
    change_ticket(env, ticket.id, author='alice', comment='Secret')
    change_ticket(env, other.id, author='alice', comment='Public')
    got = [(m.rcpt_tos[0], m.message['X-Trac-Ticket-ID'])
           for m in (deliver(env) and sink.received)]
    assert ('hidden@example.net', str(other.id)) in got
    assert ('hidden@example.net', str(ticket.id)) not in got


def test_users_never_rule_wins_over_watching(env, sink):
    ticket = create_ticket(env)
    delivered(env, sink)
    watch.watch(env, 'dave', ticket.id)
    Subscription.add(env, {'sid': 'dave', 'authenticated': 1,
                           'distributor': 'email', 'format': None,
                           'adverb': 'never', 'class': KLASS})
    change_ticket(env, ticket.id, author='alice', comment='Hello')
    assert set(delivered(env, sink)) == {'alice@example.net'}


def test_subscriber_is_known_to_trac(env):
    from trac.notification.api import NotificationSystem
    names = [s.__class__.__name__
             for s in NotificationSystem(env).subscribers]
    assert KLASS in names
    sub = watch.TicketWatchSubscriber(env)
    assert sub.requires_authentication()
    assert sub.description() == 'Ticket that I watch is modified'
