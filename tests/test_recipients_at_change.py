"""Recipients come from the ticket as it was at the change (issue 11,
item 7): a creation and later changes expanded in one pass (delivery =
worker, a busy queue) mail each change to whom Trac's synchronous mail
would have sent it at the time."""

import pytest

from tests.support.tickets import change_ticket, create_ticket, deliver_to_sink
from tests.support.users import users

USERS = users('alice', 'dora', 'bob', 'frank', 'erin', 'carol')


@pytest.fixture
def env(sink_env):
    env = sink_env(USERS)
    env.config.set('notification-subscriber', 'always_notify_previous_updater',
                   'TicketPreviousUpdatersSubscriber')
    return env


def who_got(received):
    """``{change: {recipient: reason}}``, change being the kind of a
    creation or the comment of a change."""
    result = {}
    for item in received:
        message = item.message
        kind = message['X-Trac-Notification-Type']
        body = message.get_content()
        key = kind if kind == 'ticket_created' else next(
            c for c in ('By bob.', 'By frank.', 'By erin.') if c in body)
        for rcpt in item.rcpt_tos:
            result.setdefault(key, {})[rcpt] = \
                message['X-Trac-Notification-Reason']
    return result


def test_created_then_changed_in_one_pass(env, sink):
    ticket = create_ticket(env, reporter='alice', owner='dora')
    change_ticket(env, ticket.id, author='bob', comment='By bob.',
                  owner='bob', cc='carol')
    change_ticket(env, ticket.id, author='frank', comment='By frank.')
    change_ticket(env, ticket.id, author='erin', comment='By erin.')
    got = who_got(deliver_to_sink(env, sink, check_errors=True))

    # the creation: reporter and owner of then; nobody who came later
    assert set(got['ticket_created']) == {'alice@example.net',
                                          'dora@example.net'}
    # bob's change: carol (cc from then on), not frank or erin
    assert set(got['By bob.']) == {'alice@example.net', 'bob@example.net',
                                   'dora@example.net', 'carol@example.net'}
    # frank's: bob, the previous updater (and owner now), not erin
    assert 'erin@example.net' not in got['By frank.']
    assert got['By frank.']['frank@example.net'] == 'updater'
    # erin's: frank updated the ticket before her
    assert got['By erin.']['frank@example.net'] == 'previous_updater'
    assert 'dora@example.net' not in got['By erin.']


def test_change_mailed_later_keeps_its_previous_updaters(env, sink):
    """The same ticket mailed change by change: the result is the same."""
    ticket = create_ticket(env, reporter='alice', owner='dora')
    first = who_got(deliver_to_sink(env, sink))
    change_ticket(env, ticket.id, author='bob', comment='By bob.')
    change_ticket(env, ticket.id, author='frank', comment='By frank.')
    later = who_got(deliver_to_sink(env, sink))
    assert set(first['ticket_created']) == {'alice@example.net',
                                            'dora@example.net'}
    assert 'frank@example.net' not in later['By bob.']
    assert later['By frank.']['bob@example.net'] == 'previous_updater'


