"""The events claimed together are stored in one transaction: their
messages, digest items and unsubscribe tokens; an event that cannot be
built or stored fails alone, and leaves no token behind."""

import os
import sqlite3

import pytest

from tests.support.tickets import create_ticket
from tracnotify import outbox
from tracnotify.delivery.deliverer import FIRST_CLAIM, Deliverer, PassReport


def raw_sqlite(env) -> sqlite3.Connection:
    with env.db_query as db:
        cnx = db
        while not isinstance(cnx, sqlite3.Connection):
            cnx = cnx.cnx
        return cnx


def counts(env) -> tuple:
    tokens = env.db_query('SELECT COUNT(*) FROM tracnotify_unsub_token')
    messages = env.db_query('SELECT COUNT(*) FROM tracnotify_message')
    return tokens[0][0], messages[0][0]


def test_one_commit_for_the_events_claimed_together(make_env, backend):
    if backend != 'sqlite':
        pytest.skip('counts the COMMIT statements of SQLite')
    env = make_env()
    for n in range(5):
        create_ticket(env, summary='Change %d' % n,
                      cc='a%d@example.org, b%d@example.org' % (n, n))
    statements = []
    cnx = raw_sqlite(env)
    cnx.set_trace_callback(statements.append)
    try:
        report = PassReport()
        Deliverer(env).expand_events(report)
    finally:
        cnx.set_trace_callback(None)
    assert (report.events, report.messages_built) == (5, 15)  # + reporter
    assert counts(env) == (15, 15)
    # the claim, then the five events' messages and tokens (and the
    # hourly purge of expired tokens, in a transaction of its own)
    purged = any(s.startswith('DELETE FROM tracnotify_unsub_token')
                 for s in statements)
    assert statements.count('COMMIT') == 2 + purged, statements


def test_failed_build_leaves_no_token(make_env):
    env = make_env()
    folder = os.path.join(env.templates_dir, 'mail')
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'ticket_body.txt')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('Broken: ${1 // 0}\n')
    create_ticket(env, cc='a@example.org')
    report = PassReport()
    Deliverer(env).expand_events(report)
    assert report.events == 0 and report.errors
    assert counts(env) == (0, 0)
    (state, attempts), = env.db_query(
        'SELECT state, attempts FROM tracnotify_event')
    assert (state, attempts) == (outbox.PENDING, 1)
    os.remove(path)


def test_event_the_database_refuses_fails_alone(make_env, monkeypatch):
    env = make_env()
    first = create_ticket(env, cc='a@example.org')
    create_ticket(env, cc='b@example.org')
    (bad,), = env.db_query('SELECT MIN(id) FROM tracnotify_event')
    store = outbox.complete_event

    def refuse(env, event_id, messages, token):
        if event_id == bad:
            raise RuntimeError('the database refused it')
        return store(env, event_id, messages, token)
    monkeypatch.setattr(outbox, 'complete_event', refuse)
    report = PassReport()
    Deliverer(env).expand_events(report)
    assert report.events == 1
    assert report.errors == ['RuntimeError: the database refused it']
    assert {r for r, in env.db_query(
        'SELECT recipient FROM tracnotify_message')} == {'b@example.org',
                                                         'alice@example.org'}
    assert {a for a, in env.db_query(
        'SELECT address FROM tracnotify_unsub_token')} == {'b@example.org',
                                                           'alice@example.org'}
    assert env.db_query('SELECT ticket, state FROM tracnotify_event '
                        'WHERE id=%s', (bad,)) == [(first.id,
                                                   outbox.PENDING)]


def test_first_mail_leaves_before_the_whole_backlog_is_built(sink_env, sink):
    """A pass sends claim by claim: when the first mail is sent, events
    of a backlog bigger than one claim are still waiting."""
    env = sink_env()
    for n in range(60):
        create_ticket(env, summary='Backlog %d' % n,
                      cc='r%d@example.org' % n)
    waiting = []

    def progress(report):
        if not waiting:
            waiting.append(env.db_query(
                "SELECT COUNT(*) FROM tracnotify_event WHERE state='pending'"
            )[0][0])
    report = Deliverer(env).run_once(progress=progress)
    assert report.events == 60
    assert report.sent == report.messages_built >= 60
    # a small first claim built, then sent while the rest is built (or,
    # with one in-memory SQLite connection, before the next is claimed)
    assert waiting and waiting[0] > 0
    if not Deliverer(env)._threads_allowed():
        assert waiting == [60 - FIRST_CLAIM]
