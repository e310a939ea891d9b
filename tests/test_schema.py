"""Schema discipline: the tables of every released version upgrade to the
current one, on SQLite and PostgreSQL, and mail works afterwards; whether
an upgrade is needed depends on the database alone."""

import pytest
from trac.db.api import DatabaseManager
from trac.util.datefmt import to_utimestamp
from trac.web.session import DetachedSession

from tests.support.schema_history import RELEASED, all_table_names
from tests.support.tickets import add_users, by_recipient, change_ticket, create_ticket
from tests.support.users import users
from tracnotify import outbox
from tracnotify.config import TRAC_DISTRIBUTOR_RULE
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.event import CREATED, TicketEvent
from tracnotify.outbox import reconcile
from tracnotify.schema import SCHEMA, SCHEMA_NAME, SCHEMA_VERSION, TracnotifySetup

USERS = users('alice', 'bob', 'dora')


def install_release(env, name: str) -> None:
    """The tables and version row of release *name*, as it created them,
    with one old event in them."""
    version, tables = RELEASED[name]
    dbm = DatabaseManager(env)
    dbm.drop_tables(sorted(set(all_table_names()) |
                           {t.name for t in SCHEMA}))   # and today's
    with env.db_transaction as db:
        db("DELETE FROM system WHERE name IN (%s, %s)",
           (SCHEMA_NAME, reconcile.MARK))
    dbm.create_tables(tables)
    dbm.set_database_version(version, SCHEMA_NAME)
    if version >= 4:            # version 4 set the reconciler's mark
        reconcile.start_mark(env)
    env.db_transaction("""
        INSERT INTO tracnotify_event (created, kind, ticket, author, payload,
                                      state, attempts)
        VALUES (1, 'ticket_changed', 99, 'old', '{}', 'done', 0)""")


@pytest.mark.parametrize('release', sorted(RELEASED))
def test_upgrade_from_each_released_schema(make_env, sink, release):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   always_notify_reporter='true')
    add_users(env, *USERS)
    install_release(env, release)
    setup = TracnotifySetup(env)
    assert setup.environment_needs_upgrade()
    setup.upgrade_environment()

    dbm = DatabaseManager(env)
    assert dbm.get_database_version(SCHEMA_NAME) == SCHEMA_VERSION
    assert not setup.environment_needs_upgrade()
    for table in SCHEMA:      # every column of today, in every table
        assert set(dbm.get_column_names(table.name)) == \
            {c.name for c in table.columns}, table.name
    assert env.db_query('SELECT ticket, author FROM tracnotify_event') == \
        [(99, 'old')]          # rows kept
    assert reconcile.read_mark(env) is not None

    # a change with a digest recipient (dora) and an immediate one (alice)
    session = DetachedSession(env, 'dora')
    session['tracnotify.delivery'] = 'digest'
    session.save()
    ticket = create_ticket(env, summary='After the upgrade', cc='dora')
    change_ticket(env, ticket.id, author='bob', comment='Works.')
    sink.received.clear()
    deliverer = Deliverer(env)
    report = PassReport()
    deliverer.expand_events(report)
    deliverer.send_due(report)
    assert not report.errors
    mails = by_recipient(sink.received)
    assert len(mails['alice@example.net']) == 2
    assert 'dora@example.net' not in mails
    assert env.db_query("""SELECT COUNT(*) FROM tracnotify_digest_item
                           WHERE address='dora@example.net'""")[0][0] == 2


def test_a_second_event_with_one_change_key_is_refused(make_env):
    env = make_env()
    ticket = create_ticket(env)
    key, = [k for k, in env.db_query(
        'SELECT change_key FROM tracnotify_event WHERE ticket=%s',
        (ticket.id,))]
    assert key == reconcile.change_key(ticket.id,
                                       to_utimestamp(ticket['time']), True)
    with pytest.raises(env.db_exc.IntegrityError):
        outbox.add_event(env, TicketEvent(CREATED, ticket.id, 1, 'x', {}),
                         change_key=key)
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_event')[0][0] == 1


def test_needs_upgrade_ignores_trac_distributor_line(make_env):
    """Re-enabling Trac's EmailDistributor must not make every page answer
    "needs to be upgraded" (issue 12, 11): the database is up to date."""
    env = make_env()
    env.config.set('components', TRAC_DISTRIBUTOR_RULE, 'enabled')
    assert not TracnotifySetup(env).environment_needs_upgrade()
