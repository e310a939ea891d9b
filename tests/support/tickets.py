"""Small helpers to change tickets and drain the outbox in tests."""

from trac.ticket.model import Ticket

from tracnotify.delivery import Deliverer


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


def deliver(env, transport=None):
    """One full delivery pass (build and send); returns its report."""
    return Deliverer(env, transport=transport).run_once()


def add_users(env, *users) -> None:
    """Known users: (username, name, email) tuples."""
    env.insert_users(list(users))
