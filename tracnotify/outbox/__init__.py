"""The durable outbox: two tables in the Trac database.

``tracnotify_event`` holds one snapshot per ticket change (by the listener,
or by :mod:`tracnotify.outbox.reconcile` for a change whose process stopped
before its listener's insert); ``tracnotify_message`` holds one finished
message per recipient.  Workers claim rows with a lease (a unique token
written by a single conditional ``UPDATE``), so any number of threads,
processes and machines can share one queue without sending a row twice; a
lease that ran out (a worker killed with ``kill -9``) makes the row
claimable again.
"""

import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Dict, Iterable, List, NamedTuple, Optional

from trac.db.api import DatabaseManager

from tracnotify.event import TicketEvent

PENDING = 'pending'
SENT = 'sent'
DEAD = 'dead'
DONE = 'done'        # event expanded into messages
FAILED = 'failed'    # event that could not be expanded

LEASE_SECONDS = 300
CLAIM_RACES = 5      # lost SELECT/UPDATE races before a claim gives up
MAX_RETRY_DELAY = 6 * 3600

_MESSAGE_COLUMNS = ('id', 'event_id', 'ticket', 'kind', 'msgid', 'sender',
                    'recipient', 'reason', 'subject', 'message', 'attempts')


def now_us() -> int:
    """Current time in microseconds since the epoch."""
    return int(time.time() * 1000000)


def new_token() -> str:
    """A lease token, unique per claim."""
    return uuid.uuid4().hex


@dataclass
class OutgoingMessage:
    """A claimed message, ready for a transport."""

    id: int
    event_id: int
    ticket: int
    kind: str
    msgid: str
    sender: str
    recipient: str
    reason: str
    subject: str
    message: str
    attempts: int

    @property
    def data(self) -> bytes:
        """The message in RFC 5322 form, with CRLF line ends."""
        return self.message.encode('utf-8')


@dataclass
class NewMessage:
    """A message produced from an event, before it enters the outbox."""

    ticket: int
    kind: str
    msgid: str
    sender: str
    recipient: str
    reason: str
    subject: str
    message: str


# Events ---------------------------------------------------------------------

def add_event(env, event: TicketEvent,
              change_key: Optional[str] = None) -> None:
    """Store *event* in the current (possibly still open) transaction;
    *change_key* is unique (see :mod:`tracnotify.outbox.reconcile`): a
    second event with the same key raises.

    The insert runs in a savepoint: if it fails, the caller's transaction is
    left as it was.  (PostgreSQL would otherwise abort the whole ticket
    save, and Trac's SQLite cursor rolls the whole transaction back on any
    error, so on SQLite the statements go through a plain cursor of the same
    connection.)
    """
    insert = """
        INSERT INTO tracnotify_event
            (created, kind, ticket, author, payload, state, attempts,
             change_key)
        VALUES (%s, %s, %s, %s, %s, %s, 0, %s)"""
    params = (now_us(), event.kind, event.ticket_id, event.author,
              event.to_json(), PENDING, change_key)
    with env.db_transaction as db:
        plain = _plain_sqlite_cursor(db)
        if plain is not None:
            execute = lambda sql, args=(): plain.execute(  # noqa: E731
                sql % (('?',) * len(args)), args)
        else:
            execute = db.execute
        execute('SAVEPOINT tracnotify_add_event')
        try:
            execute(insert, params)
        except Exception:
            execute('ROLLBACK TO SAVEPOINT tracnotify_add_event')
            execute('RELEASE SAVEPOINT tracnotify_add_event')
            raise
        execute('RELEASE SAVEPOINT tracnotify_add_event')


def _plain_sqlite_cursor(db) -> Optional[sqlite3.Cursor]:
    """A cursor of the sqlite3 connection under Trac's wrappers, or None
    when the database is not SQLite."""
    cnx = db
    for _depth in range(6):
        if isinstance(cnx, sqlite3.Connection):
            return cnx.cursor()
        cnx = getattr(cnx, 'cnx', None)
        if cnx is None:
            return None
    return None


class EventRow(NamedTuple):
    """A claimed event row: ``(id, attempts, payload)``."""

    id: int
    attempts: int
    payload: str                 # TicketEvent.to_json()


def claim_events(env, limit: int, lease_seconds: int = LEASE_SECONDS
                 ) -> List[EventRow]:
    """Lease up to *limit* pending events."""
    now = now_us()
    token = _claim(env, 'tracnotify_event',
                   'state=%s AND (lease_until IS NULL OR lease_until<%s)',
                   [PENDING, now], 'id', limit, lease_seconds, now)
    if not token:
        return []
    return [EventRow(*row) for row in env.db_query("""
        SELECT id, attempts, payload FROM tracnotify_event
        WHERE lease_owner=%s ORDER BY id""", (token,))]


def _is_postgres(env) -> bool:
    return DatabaseManager(env).connection_uri.startswith('postgres')


def _claim(env, table: str, where: str, params: list, order: str,
           limit: int, lease_seconds: int, now: int) -> Optional[str]:
    """Lease up to *limit* rows of *table* matching *where*; returns the
    lease token, or None when nothing was claimable.

    PostgreSQL skips rows that other workers are claiming at the same
    moment (``FOR UPDATE SKIP LOCKED``); elsewhere the conditional
    ``UPDATE`` re-checks the lease, so a row claimed by someone else between
    our SELECT and UPDATE is simply not ours (and when all of them went to
    others, we look again rather than report an empty queue).
    """
    lock = ' FOR UPDATE SKIP LOCKED' if _is_postgres(env) else ''
    for _attempt in range(CLAIM_RACES):
        token = new_token()
        with env.db_transaction as db:
            ids = [row[0] for row in db(
                'SELECT id FROM {} WHERE {} ORDER BY {} LIMIT %s{}'.format(
                    table, where, order, lock), params + [limit])]
            if not ids:
                return None
            cursor = db.cursor()
            cursor.execute("""UPDATE {} SET lease_owner=%s, lease_until=%s
                              WHERE id IN ({}) AND {}""".format(
                table, ','.join(['%s'] * len(ids)), where),
                [token, now + lease_seconds * 1000000] + ids + params)
            if cursor.rowcount != 0:
                return token
        # every candidate went to another worker in between: look again
    return None


def add_messages(env, messages: Iterable[NewMessage],
                 event_id: Optional[int] = None,
                 created: Optional[int] = None) -> int:
    """Queue *messages* (of the event *event_id*, if any), due now, in the
    caller's transaction if there is one; returns how many.  *created*
    (microseconds) defaults to now."""
    now = now_us()
    rows = [(event_id, now if created is None else created, m.ticket, m.kind,
             m.msgid, m.sender, m.recipient, m.reason, m.subject, m.message,
             PENDING, 0, now, now) for m in messages]
    if rows:
        with env.db_transaction as db:
            db.executemany("""
                INSERT INTO tracnotify_message
                    (event_id, created, ticket, kind, msgid, sender,
                     recipient, reason, subject, message, state, attempts,
                     next_attempt, updated)
                VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
                """, rows)
    return len(rows)


def complete_event(env, event_id: int, messages: Iterable[NewMessage]) -> int:
    """Store the messages of an event and mark it done, atomically."""
    with env.db_transaction as db:
        count = add_messages(env, messages, event_id)
        db("""UPDATE tracnotify_event
              SET state=%s, lease_owner=NULL, lease_until=NULL
              WHERE id=%s""", (DONE, event_id))
    return count


def fail_event(env, event_id: int, attempts: int, error: str,
               max_attempts: int) -> None:
    """Record that an event could not be expanded into messages."""
    state = FAILED if attempts + 1 >= max_attempts else PENDING
    env.db_transaction("""
        UPDATE tracnotify_event
        SET state=%s, attempts=%s, last_error=%s, lease_owner=NULL,
            lease_until=%s
        WHERE id=%s""", (state, attempts + 1, error[:2000],
                         now_us() + 1000000 * min(60 * 2 ** attempts,
                                                  MAX_RETRY_DELAY),
                         event_id))


# Messages -------------------------------------------------------------------

def claim_messages(env, limit: int, lease_seconds: int = LEASE_SECONDS
                   ) -> List[OutgoingMessage]:
    """Lease up to *limit* messages that are due."""
    now = now_us()
    token = _claim(env, 'tracnotify_message',
                   'state=%s AND next_attempt<=%s '
                   'AND (lease_until IS NULL OR lease_until<%s)',
                   [PENDING, now, now], 'next_attempt, id', limit,
                   lease_seconds, now)
    if not token:
        return []
    rows = env.db_query("""
        SELECT {} FROM tracnotify_message
        WHERE lease_owner=%s ORDER BY id""".format(', '.join(_MESSAGE_COLUMNS)),
        (token,))
    return [OutgoingMessage(*row) for row in rows]


def mark_sent(env, message_ids: Iterable[int]) -> None:
    """Record successful delivery."""
    ids = list(message_ids)
    if not ids:
        return
    now = now_us()
    env.db_transaction.executemany("""
        UPDATE tracnotify_message
        SET state=%s, sent_at=%s, updated=%s, attempts=attempts+1,
            last_error=NULL, lease_owner=NULL, lease_until=NULL
        WHERE id=%s""", [(SENT, now, now, i) for i in ids])


def retry_delay(attempts: int, base: int) -> int:
    """Seconds to wait before attempt number ``attempts + 1``."""
    return min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY)


def mark_failed(env, message: OutgoingMessage, error: str, permanent: bool,
                max_attempts: int, base_delay: int) -> str:
    """Record a failed attempt; returns the new state (pending or dead)."""
    attempts = message.attempts + 1
    dead = permanent or attempts >= max_attempts
    now = now_us()
    state = DEAD if dead else PENDING
    env.db_transaction("""
        UPDATE tracnotify_message
        SET state=%s, attempts=%s, last_error=%s, next_attempt=%s, updated=%s,
            lease_owner=NULL, lease_until=NULL
        WHERE id=%s""", (state, attempts, error[:2000],
                         now + retry_delay(attempts, base_delay) * 1000000,
                         now, message.id))
    return state


def release(env, message_ids: Iterable[int]) -> None:
    """Give claimed messages back untouched (a worker that stops)."""
    ids = list(message_ids)
    if ids:
        env.db_transaction.executemany("""
            UPDATE tracnotify_message SET lease_owner=NULL, lease_until=NULL
            WHERE id=%s AND state=%s""", [(i, PENDING) for i in ids])


def counts(env, since_us: Optional[int] = None) -> Dict[str, int]:
    """Pending, retrying, dead, sent-since and unexpanded event counts."""
    if since_us is None:
        since_us = now_us() - 24 * 3600 * 1000000
    result = {'pending': 0, 'retrying': 0, 'dead': 0, 'sent': 0, 'events': 0,
              'failed_events': 0}
    for state, retrying, n in env.db_query("""
            SELECT state, CASE WHEN attempts>0 THEN 1 ELSE 0 END, COUNT(*)
            FROM tracnotify_message WHERE state IN (%s, %s)
            GROUP BY state, CASE WHEN attempts>0 THEN 1 ELSE 0 END
            """, (PENDING, DEAD)):
        if state == DEAD:
            result['dead'] += n
        else:
            result['retrying' if retrying else 'pending'] += n
    for n, in env.db_query("""
            SELECT COUNT(*) FROM tracnotify_message
            WHERE state=%s AND sent_at>=%s""", (SENT, since_us)):
        result['sent'] = n
    for state, n in env.db_query("""
            SELECT state, COUNT(*) FROM tracnotify_event
            WHERE state IN (%s, %s) GROUP BY state""", (PENDING, FAILED)):
        result['events' if state == PENDING else 'failed_events'] = n
    return result


def last_error(env) -> Optional[tuple]:
    """``(updated_us, recipient, error)`` of the latest failed attempt."""
    for row in env.db_query("""
            SELECT updated, recipient, last_error FROM tracnotify_message
            WHERE last_error IS NOT NULL ORDER BY updated DESC LIMIT 1"""):
        return row
    return None


def retry_now(env, message_ids: Optional[Iterable[int]] = None) -> int:
    """Make dead or waiting messages due now (all of them when no ids are
    given); returns how many rows changed."""
    now = now_us()
    with env.db_transaction as db:
        cursor = db.cursor()
        if message_ids is None:
            cursor.execute("""
                UPDATE tracnotify_message
                SET state=%s, next_attempt=%s, attempts=0, updated=%s
                WHERE state=%s OR (state=%s AND attempts>0)""",
                           (PENDING, now, now, DEAD, PENDING))
            return cursor.rowcount
        changed = 0
        for message_id in message_ids:
            cursor.execute("""
                UPDATE tracnotify_message
                SET state=%s, next_attempt=%s, attempts=0, updated=%s
                WHERE id=%s AND state IN (%s, %s)""",
                           (PENDING, now, now, message_id, PENDING, DEAD))
            changed += max(cursor.rowcount, 0)
        return changed
