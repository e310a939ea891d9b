"""The durable outbox with a real SMTP server: nothing lost while the server
is down, nothing sent twice, 4xx retried, 5xx dead per recipient, leases
that run out, and nothing queued for a change that rolled back."""

from collections import Counter

import pytest

from tests.support.smtp_sink import SmtpSink, free_port
from tests.support.tickets import change_ticket, create_ticket, deliver
from tracnotify import outbox
from tracnotify.outbox import clock

RECIPIENTS = {'alice@example.org', 'carol@example.com', 'x@example.org'}


def messages(env):
    """{recipient: (state, attempts, last_error)} of every message."""
    return {r: (s, a, e) for r, s, a, e in env.db_query("""
        SELECT recipient, state, attempts, last_error
        FROM tracnotify_message""")}


def make_due(env) -> None:
    """Let waiting retries go now instead of after their delay."""
    env.db_transaction("UPDATE tracnotify_message SET next_attempt=0")


def per_recipient(sink) -> Counter:
    return Counter(r.rcpt_tos[0] for r in sink.received)


def new_ticket(env):
    return create_ticket(env, cc='carol@example.com, x@example.org')


def test_server_down_then_up_delivers_each_mail_once(make_env):
    port = free_port()
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(port))
    new_ticket(env)
    report = deliver(env)
    assert report.sent == 0 and report.retrying == 3
    for state, attempts, error in messages(env).values():
        assert (state, attempts) == ('pending', 1)
        assert 'connection refused' in error
    assert deliver(env).attempted == 0, 'retries wait for their delay'

    with SmtpSink(port=port) as sink:
        make_due(env)
        assert deliver(env).sent == 3
        assert deliver(env).attempted == 0
        make_due(env)
        assert deliver(env).attempted == 0
        assert per_recipient(sink) == Counter(RECIPIENTS)
    assert {s for s, _a, _e in messages(env).values()} == {'sent'}


def test_temporary_failure_is_retried_and_delivered_once(make_env, smtp_sink):
    sink = smtp_sink()
    sink.handler.data_replies = ['451 4.3.0 try later']
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    new_ticket(env)
    report = deliver(env)
    assert (report.sent, report.retrying, report.dead) == (2, 1, 0)
    waiting = [(r, e) for r, (s, _a, e) in messages(env).items()
               if s == 'pending']
    assert len(waiting) == 1 and '451 4.3.0 try later' in waiting[0][1]
    make_due(env)
    assert deliver(env).sent == 1
    assert per_recipient(sink) == Counter(RECIPIENTS)


def test_permanent_failure_kills_only_that_recipient(make_env, smtp_sink):
    sink = smtp_sink()
    sink.handler.rcpt_replies = {'x@example.org': '550 5.1.1 no such user'}
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    new_ticket(env)
    report = deliver(env)
    assert (report.sent, report.dead) == (2, 1)
    state, attempts, error = messages(env)['x@example.org']
    assert (state, attempts) == ('dead', 1)
    assert '550 5.1.1 no such user' in error
    assert per_recipient(sink) == Counter(RECIPIENTS - {'x@example.org'})
    make_due(env)
    assert deliver(env).attempted == 0, 'dead mail is not retried'


def test_max_attempts_then_dead(make_env):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()),
                   outbox_max_attempts='3')
    create_ticket(env)
    for attempt in range(1, 4):
        deliver(env)
        state, attempts, _error = messages(env)['alice@example.org']
        assert attempts == attempt
        assert state == ('dead' if attempt == 3 else 'pending')
        make_due(env)
    assert deliver(env).attempted == 0


def test_retry_delay_grows(make_env):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()),
                   outbox_retry_delay='10')
    create_ticket(env)
    delays = []
    for _ in range(3):
        deliver(env)
        # (due on the database's clock, from the moment of the failure)
        (due, failed), = env.db_query(
            "SELECT next_attempt, updated FROM tracnotify_message")
        delays.append(round((due - failed) / 1e6))
        make_due(env)
    assert delays == [10, 20, 40]


def test_expired_lease_makes_a_message_claimable_again(make_env):
    env = make_env()
    create_ticket(env)
    deliver_events_only(env)
    claimed = outbox.claim_messages(env, 10)
    assert len(claimed) == 1
    assert outbox.claim_messages(env, 10) == [], 'leased to someone else'
    env.db_transaction("UPDATE tracnotify_message SET lease_until=%s",
                       (clock.db_now_us(env) - 1,))
    again = outbox.claim_messages(env, 10)
    assert [m.id for m in again] == [m.id for m in claimed]


def test_expired_event_lease_is_reclaimable(make_env):
    env = make_env()
    create_ticket(env)
    first = outbox.claim_events(env, 10)
    assert len(first) == 1 and outbox.claim_events(env, 10) == []
    env.db_transaction("UPDATE tracnotify_event SET lease_until=%s",
                       (clock.db_now_us(env) - 1,))
    assert [e[0] for e in outbox.claim_events(env, 10)] == [first[0][0]]


def deliver_events_only(env) -> None:
    """Expand events into messages without sending them."""
    from tracnotify.delivery.deliverer import Deliverer, PassReport
    Deliverer(env).expand_events(PassReport())


def test_rolled_back_change_leaves_nothing(make_env, smtp_sink):
    sink = smtp_sink()
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    ticket = create_ticket(env)
    deliver(env)
    sink.received.clear()
    with pytest.raises(RuntimeError):
        with env.db_transaction:
            change_ticket(env, ticket.id, author='bob', comment='Rolled back')
            raise RuntimeError('the user cancels')
    with pytest.raises(RuntimeError):
        with env.db_transaction:
            create_ticket(env, summary='Never created')
            raise RuntimeError('the user cancels')
    assert env.db_query("""SELECT COUNT(*) FROM tracnotify_event
                           WHERE state='pending'""") == [(0,)]
    assert deliver(env).attempted == 0
    assert sink.received == []
