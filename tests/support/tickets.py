"""Small helpers to change tickets and drain the outbox in tests."""

from typing import Dict, Iterable, List

from trac.ticket.model import Ticket

from tracnotify.delivery.deliverer import Deliverer


def create_ticket(env, **values) -> Ticket:
    """Insert a ticket (reporter alice, summary 'Test' unless given)."""
    ticket = Ticket(env)
    ticket['reporter'] = 'alice'
    ticket['summary'] = 'Test'
    ticket['description'] = 'The description.'
    for name, value in values.items():
        ticket[name] = value
    ticket.insert()
    return ticket


def change_ticket(env, ticket_id: int, author: str = 'bob',
                  comment: str = '', **values) -> Ticket:
    """Change fields of a ticket and save, like a script would."""
    ticket = Ticket(env, ticket_id)
    for name, value in values.items():
        ticket[name] = value
    ticket.save_changes(author, comment)
    return ticket


def batch_modify(env, ids, when, author='bob', comment='Batch!',
                 **values) -> None:
    """What Trac's BatchModifyModule does: one time, one transaction."""
    with env.db_transaction:
        for ticket_id in ids:
            ticket = Ticket(env, ticket_id)
            ticket.populate(values)
            ticket.save_changes(author, comment, when=when)


def deliver(env, transport=None):
    """One full delivery pass (build and send); returns its report."""
    return Deliverer(env, transport=transport).run_once()


def add_users(env, *users) -> None:
    """Known users: (username, name, email) tuples."""
    env.insert_users(list(users))


def deliver_to_sink(env, sink, check_errors: bool = False) -> list:
    """Clear *sink*, run one delivery pass and return what the sink
    received (``Received`` items), one envelope recipient each."""
    sink.received.clear()
    report = deliver(env)
    if check_errors:
        assert not report.errors
    received = list(sink.received)
    for item in received:
        assert len(item.rcpt_tos) == 1, 'one envelope per recipient'
    return received


def by_recipient(received: Iterable) -> Dict[str, List]:
    """``Received`` items as ``{envelope recipient: [EmailMessage]}``."""
    mails: Dict[str, List] = {}
    for item in received:
        for rcpt in item.rcpt_tos:
            mails.setdefault(rcpt, []).append(item.message)
    return mails


def mail_to_each(env, sink, check_errors: bool = False) -> Dict[str, object]:
    """Deliver the outbox; ``{rcpt: message}``, the (last) mail each
    recipient got."""
    return {item.rcpt_tos[0]: item.message
            for item in deliver_to_sink(env, sink, check_errors)}


def mails_by_recipient(env, sink, check_errors: bool = False
                       ) -> Dict[str, List]:
    """Deliver the outbox; the mail that arrived, as ``{rcpt: [message]}``."""
    return by_recipient(deliver_to_sink(env, sink, check_errors))
