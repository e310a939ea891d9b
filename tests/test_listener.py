"""The listener never breaks a ticket save, even inside an open transaction
(batch modify, trac-admin) where a failed statement would otherwise abort
the user's whole change (PostgreSQL)."""

import logging

from trac.db.api import DatabaseManager
from trac.ticket.model import Ticket

from tests.support.tickets import create_ticket


def test_failed_outbox_insert_keeps_the_batch_of_changes(make_env, caplog):
    env = make_env()
    ids = [create_ticket(env, summary='Ticket %d' % i).id for i in (1, 2)]
    DatabaseManager(env).drop_tables(['tracnotify_event'])  # outbox broken
    with caplog.at_level(logging.ERROR):
        with env.db_transaction:        # one transaction, like batch modify
            for ticket_id in ids:
                ticket = Ticket(env, ticket_id)
                ticket['priority'] = 'minor'
                ticket.save_changes('bob', 'Batch comment')
    assert [Ticket(env, i)['priority'] for i in ids] == ['minor', 'minor']
    assert [c[4] for i in ids for c in Ticket(env, i).get_changelog()
            if c[2] == 'comment'] == ['Batch comment', 'Batch comment']
    assert sum('could not record' in r.getMessage()
               for r in caplog.records) == 2


def test_rolled_back_batch_records_nothing(make_env):
    env = make_env()
    ids = [create_ticket(env, summary='Ticket %d' % i).id for i in (1, 2)]
    before = env.db_query('SELECT COUNT(*) FROM tracnotify_event')[0][0]
    try:
        with env.db_transaction:
            for ticket_id in ids:
                ticket = Ticket(env, ticket_id)
                ticket['priority'] = 'minor'
                ticket.save_changes('bob', 'Never saved')
            raise RuntimeError('the user cancels')
    except RuntimeError:
        pass
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_event')[0][0] == \
        before
    assert [Ticket(env, i)['priority'] for i in ids] == ['major', 'major']
