"""The durable outbox: two tables in the Trac database.

``tracnotify_event`` holds one snapshot per ticket change (by the listener,
or by :mod:`tracnotify.outbox.reconcile` for a change whose process stopped
before its listener's insert); ``tracnotify_message`` holds one finished
message per recipient.  Workers claim rows with a lease (a unique token
written by a single conditional ``UPDATE``), so any number of threads,
processes and machines can share one queue without sending a row twice; a
lease that ran out (a worker killed with ``kill -9``) makes the row
claimable again.

Leases are fenced: every state change of a claimed row is an ``UPDATE ...
WHERE id=... AND lease_owner=<token>``, so a worker whose lease ran out
(and whose rows another worker claimed) cannot record its result over the
other's; it gets :class:`LeaseLost` or a "not recorded" answer, and drops
its result.  Lease times are the database's (:mod:`tracnotify.outbox.clock`),
never a worker's clock.
"""

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import (
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

from tracnotify.event import TicketEvent
from tracnotify.outbox import bodies, bulk, clock

PENDING = 'pending'
SENT = 'sent'
DEAD = 'dead'
DONE = 'done'        # event expanded into messages
FAILED = 'failed'    # event that could not be expanded
OFF = 'off'          # change made while smtp_enabled was false: never mailed

LEASE_SECONDS = 300
CLAIM_RACES = 5      # lost SELECT/UPDATE races before a claim gives up
MAX_RETRY_DELAY = 6 * 3600
US = 1000000

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
    message: str        # the whole message, or its personal headers
    attempts: int
    #: the part shared by all copies of the change (``tracnotify_body``),
    #: one object for every copy claimed together; '' for a whole message
    shared: str = ''

    @property
    def data(self) -> bytes:
        """The message in RFC 5322 form, with CRLF line ends."""
        return (self.message + self.shared).encode('utf-8')


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
    message: str        # the whole message, or its personal headers
    #: the part shared by the copies of a change, stored once for all the
    #: messages (of one :func:`add_messages`) that hold this same object
    shared: Optional[str] = None

    @property
    def text(self) -> str:
        """The whole message."""
        return self.message + (self.shared or '')


# Events ---------------------------------------------------------------------

def add_event(env, event: TicketEvent,
              change_key: Optional[str] = None,
              hold: Optional[Tuple[str, int]] = None,
              state: str = PENDING) -> None:
    """Store *event* in the current (possibly still open) transaction;
    *change_key* is unique (see :mod:`tracnotify.outbox.reconcile`): a
    second event with the same key raises.  *hold* ``(owner, until_us)``
    keeps workers from claiming it before then (a batch still being
    recorded, :mod:`tracnotify.mail.coalesce`).  With *state* :data:`OFF`
    only its key is kept (no snapshot): the change was made while mail was
    off, and the reconciler must not mail it once mail is back on.

    The insert runs in a savepoint: if it fails, the caller's transaction is
    left as it was.  (PostgreSQL would otherwise abort the whole ticket
    save, and Trac's SQLite cursor rolls the whole transaction back on any
    error, so on SQLite the statements go through a plain cursor of the same
    connection.)
    """
    insert = """
        INSERT INTO tracnotify_event
            (created, kind, ticket, author, payload, state, attempts,
             change_key, lease_owner, lease_until)
        VALUES (%s, %s, %s, %s, %s, %s, 0, %s, %s, %s)"""
    owner, until = hold or (None, None)
    payload = event.to_json() if state != OFF else ''
    params = (now_us(), event.kind, event.ticket_id, event.author,
              payload, state, change_key, owner, until)
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


# Claims and leases ----------------------------------------------------------

class EventRow(NamedTuple):
    """A claimed event row: ``(id, attempts, payload)``."""

    id: int
    attempts: int
    payload: str                 # TicketEvent.to_json()


class LeaseLost(Exception):
    """The rows a result was for are no longer leased to this worker (its
    lease ran out and another worker claimed them): the result is dropped."""

    def __init__(self, table: str, ids: Iterable[int]) -> None:
        self.table = table
        self.ids = sorted(ids)
        super().__init__('lease lost on %s %s' % (table, self.ids))


class Claim(list):
    """Rows leased under one token: a list of the claimed rows, with the
    token (``lease_owner``) that every state change of them must show.

    :meth:`keep` renews the lease once a quarter of it has passed and tells
    which ids are still ours; it may be called from a
    :class:`~tracnotify.outbox.keeper.LeaseKeeper` thread while the owner
    works (a slow send, a long expansion).
    """

    def __init__(self, rows: Iterable, table: str, token: str,
                 ids: Iterable[int], seconds: int, since: float) -> None:
        super().__init__(rows)
        self.table = table
        self.token = token
        self.seconds = seconds
        self.ids = set(ids)
        self.ours = frozenset(self.ids)
        self._renewed = since          # time.monotonic() before the claim
        self._lock = threading.Lock()

    def add(self, ids: Iterable[int]) -> None:
        """Rows leased later under the same token (a batch's other events)."""
        ids = frozenset(ids)
        with self._lock:
            self.ids.update(ids)
            self.ours = self.ours | ids

    def wait_time(self) -> float:
        """Seconds until a quarter of the lease has passed since its
        renewal (0: renew now)."""
        return max(0.0, self._renewed + self.seconds / 4.0 - time.monotonic())

    def due(self) -> bool:
        """Whether a quarter of the lease has passed since its renewal."""
        return self.wait_time() <= 0

    def keep(self, env, force: bool = False) -> frozenset:
        """Renew the lease if due (or *force*); the ids still ours."""
        with self._lock:
            if not self.ids or not (force or self.due()):
                return self.ours
            started = time.monotonic()
            ours = renew(env, self.table, self.token, self.ids, self.seconds)
            self._renewed = started
            lost = self.ours - ours
            self.ours = frozenset(ours)
        if lost:
            env.log.warning('tracnotify: lease lost on %s %s (another worker '
                            'claimed them after it ran out)', self.table,
                            sorted(lost))
        return self.ours


def _chunks(ids: Iterable[int], size: int = 200) -> Iterator[List[int]]:
    ids = sorted(ids)
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def renew(env, table: str, token: str, ids: Iterable[int],
          seconds: int) -> Set[int]:
    """Extend the lease of the rows of *ids* still leased under *token* by
    *seconds* from the database's now; returns those ids."""
    now = clock.now_sql(env)
    ours: Set[int] = set()
    with env.db_transaction as db:
        for chunk in _chunks(ids):
            marks = ','.join(['%s'] * len(chunk))
            db("""UPDATE {} SET lease_until={} + %s
                  WHERE id IN ({}) AND lease_owner=%s""".format(
                table, now, marks), [seconds * US] + chunk + [token])
            ours.update(row[0] for row in db(
                'SELECT id FROM {} WHERE id IN ({}) AND lease_owner=%s'
                .format(table, marks), chunk + [token]))
    return ours


def claim_events(env, limit: int, lease_seconds: int = LEASE_SECONDS
                 ) -> Claim:
    """Lease up to *limit* pending events: a :class:`Claim` of
    :class:`EventRow` (empty when nothing was claimable)."""
    now = clock.now_sql(env)
    since = time.monotonic()
    token = _claim(env, 'tracnotify_event',
                   'state=%s AND (lease_until IS NULL OR lease_until<{})'
                   .format(now), [PENDING], 'id', limit, lease_seconds)
    rows = [EventRow(*row) for row in env.db_query("""
        SELECT id, attempts, payload FROM tracnotify_event
        WHERE lease_owner=%s ORDER BY id""", (token,))] if token else []
    return Claim(rows, 'tracnotify_event', token or '',
                 [r[0] for r in rows], lease_seconds, since)


def _is_postgres(env) -> bool:
    return clock.scheme(env) == 'postgres'


def _claim(env, table: str, where: str, params: list, order: str,
           limit: int, lease_seconds: int) -> Optional[str]:
    """Lease up to *limit* rows of *table* matching *where*; returns the
    lease token, or None when nothing was claimable.

    The lease runs until the database's now plus *lease_seconds*, and
    *where* compares with the database's now too: a worker's own clock
    plays no part.  PostgreSQL skips rows that other workers are claiming
    at the same moment (``FOR UPDATE SKIP LOCKED``); elsewhere the
    conditional ``UPDATE`` re-checks the lease, so a row claimed by someone
    else between our SELECT and UPDATE is simply not ours (and when all of
    them went to others, we look again rather than report an empty queue).
    """
    lock = ' FOR UPDATE SKIP LOCKED' if _is_postgres(env) else ''
    now = clock.now_sql(env)
    for _attempt in range(CLAIM_RACES):
        token = new_token()
        with env.db_transaction as db:
            ids = [row[0] for row in db(
                'SELECT id FROM {} WHERE {} ORDER BY {} LIMIT %s{}'.format(
                    table, where, order, lock), params + [limit])]
            if not ids:
                return None
            cursor = db.cursor()
            cursor.execute("""UPDATE {} SET lease_owner=%s,
                                  lease_until={} + %s
                              WHERE id IN ({}) AND {}""".format(
                table, now, ','.join(['%s'] * len(ids)), where),
                [token, lease_seconds * US] + ids + params)
            if cursor.rowcount != 0:
                return token
        # every candidate went to another worker in between: look again
    return None


def _fenced(db, sql: str, params: list) -> bool:
    """Run a conditional UPDATE; whether it changed a row."""
    cursor = db.cursor()
    cursor.execute(sql, params)
    return cursor.rowcount > 0


def add_messages(env, messages: Iterable[NewMessage],
                 event_id: Optional[int] = None,
                 created: Optional[int] = None) -> int:
    """Queue *messages* (of the event *event_id*, if any), due now (on the
    database's clock), in the caller's transaction if there is one;
    returns how many.  *created* (microseconds) defaults to now.  A shared
    part is stored once (``tracnotify_body``) for all the messages that
    hold it, with the Message-ID, sender and subject of its first message;
    a copy stores those only where they differ."""
    now = now_us()
    created = now if created is None else created
    messages = bodies.hoist_common_tail(list(messages))
    with env.db_transaction as db:
        body_ids: Dict[int, Tuple[int, tuple]] = {}
        rows = []
        for m in messages:
            body_id = None
            own = tuple(getattr(m, c) for c in bodies.SHARED_COLUMNS)
            if m.shared is not None:
                body_id, common = body_ids.get(id(m.shared), (None, ()))
                if body_id is None:
                    body_id = bodies.add_body(db, m.shared, created, *own)
                    common = own
                    body_ids[id(m.shared)] = (body_id, common)
                own = tuple(None if value == common[n] else value
                            for n, value in enumerate(own))
            msgid, sender, subject = own
            rows.append((event_id, created, m.ticket, m.kind, msgid,
                         sender, m.recipient, m.reason, subject,
                         m.message, body_id, PENDING, 0, now))
        bulk.insert_rows(env, db, """
            INSERT INTO tracnotify_message
                (event_id, created, ticket, kind, msgid, sender,
                 recipient, reason, subject, message, body_id, state,
                 attempts, next_attempt, updated)""",
            '(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,{},%s)'.format(
                clock.now_sql(env)), rows)
    return len(rows)


def complete_event(env, event_id: int, messages: Iterable[NewMessage],
                   token: str) -> int:
    """Store the messages of an event and mark it done, atomically, if the
    event is still leased under *token*; raises :class:`LeaseLost` (and
    stores nothing: the caller's transaction rolls back) otherwise."""
    with env.db_transaction as db:
        if not _fenced(db, """
                UPDATE tracnotify_event
                SET state=%s, lease_owner=NULL, lease_until=NULL
                WHERE id=%s AND lease_owner=%s AND state=%s""",
                [DONE, event_id, token, PENDING]):
            raise LeaseLost('tracnotify_event', [event_id])
        return add_messages(env, messages, event_id)


def fail_event(env, event_id: int, attempts: int, error: str,
               max_attempts: int, token: str) -> bool:
    """Record that an event could not be expanded into messages (if it is
    still leased under *token*); whether it was recorded."""
    state = FAILED if attempts + 1 >= max_attempts else PENDING
    delay = min(60 * 2 ** attempts, MAX_RETRY_DELAY)
    with env.db_transaction as db:
        return _fenced(db, """
            UPDATE tracnotify_event
            SET state=%s, attempts=%s, last_error=%s, lease_owner=NULL,
                lease_until={} + %s
            WHERE id=%s AND lease_owner=%s AND state=%s""".format(
            clock.now_sql(env)),
            [state, attempts + 1, error[:2000], delay * US, event_id, token,
             PENDING])


# Messages -------------------------------------------------------------------

def claim_messages(env, limit: int, lease_seconds: int = LEASE_SECONDS
                   ) -> Claim:
    """Lease up to *limit* messages that are due: a :class:`Claim` of
    :class:`OutgoingMessage`."""
    now = clock.now_sql(env)
    since = time.monotonic()
    with env.db_query:      # one connection from Trac's pool, not three
        token = _claim(env, 'tracnotify_message',
                       'state=%s AND next_attempt<={0} '
                       'AND (lease_until IS NULL OR lease_until<{0})'.format(
                           now),
                       [PENDING], 'next_attempt, id', limit, lease_seconds)
        rows = env.db_query("""
            SELECT {}, body_id FROM tracnotify_message
            WHERE lease_owner=%s ORDER BY id""".format(
            ', '.join(_MESSAGE_COLUMNS)), (token,)) if token else []
        shared = bodies.load_bodies(env, {row[-1] for row in rows})
    messages = [_outgoing(row, shared.get(row[-1])) for row in rows]
    return Claim(messages, 'tracnotify_message', token or '',
                 [m.id for m in messages], lease_seconds, since)


def _outgoing(row: tuple, body: Optional[bodies.Body]) -> OutgoingMessage:
    """A claimed row (``_MESSAGE_COLUMNS`` and ``body_id``) with its body's
    part and the columns it shares with it."""
    message = OutgoingMessage(*row[:-1], shared=body.data if body else '')
    for name in bodies.SHARED_COLUMNS if body is not None else ():
        if getattr(message, name) is None:
            setattr(message, name, getattr(body, name))
    return message


def mark_sent(env, message_ids: Iterable[int], token: str) -> List[int]:
    """Record successful delivery of the messages still leased under
    *token*; returns the ids recorded (the others' lease was lost)."""
    ids = list(message_ids)
    if not ids:
        return []
    now = now_us()
    done: List[int] = []
    with env.db_transaction as db:
        # a few statements per chunk, not one per message: the rows still
        # ours are marked sent keeping the lease token, read back by it,
        # then freed of it (one transaction: no one sees the middle)
        for chunk in _chunks(ids):
            marks = ','.join(['%s'] * len(chunk))
            db("""UPDATE tracnotify_message
                  SET state=%s, sent_at=%s, updated=%s, attempts=attempts+1,
                      last_error=NULL, lease_until=NULL
                  WHERE id IN ({}) AND lease_owner=%s AND state=%s""".format(
                marks), [SENT, now, now] + chunk + [token, PENDING])
            mine = [row[0] for row in db("""
                SELECT id FROM tracnotify_message
                WHERE id IN ({}) AND lease_owner=%s AND state=%s""".format(
                marks), chunk + [token, SENT])]
            if mine:
                db("""UPDATE tracnotify_message SET lease_owner=NULL
                      WHERE id IN ({})""".format(
                    ','.join(['%s'] * len(mine))), mine)
            done += mine
    return done


def retry_delay(attempts: int, base: int) -> int:
    """Seconds to wait before attempt number ``attempts + 1``."""
    return min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY)


def mark_failed(env, message: OutgoingMessage, error: str, permanent: bool,
                max_attempts: int, base_delay: int, token: str
                ) -> Optional[str]:
    """Record a failed attempt if the message is still leased under
    *token*; returns the new state (pending or dead), or None when the
    lease was lost (nothing recorded)."""
    attempts = message.attempts + 1
    dead = permanent or attempts >= max_attempts
    now = now_us()
    state = DEAD if dead else PENDING
    with env.db_transaction as db:
        changed = _fenced(db, """
            UPDATE tracnotify_message
            SET state=%s, attempts=%s, last_error=%s, next_attempt={} + %s,
                updated=%s, lease_owner=NULL, lease_until=NULL
            WHERE id=%s AND lease_owner=%s AND state=%s""".format(
            clock.now_sql(env)),
            [state, attempts, error[:2000],
             retry_delay(attempts, base_delay) * US, now, message.id, token,
             PENDING])
    return state if changed else None


def release(env, message_ids: Iterable[int], token: str) -> int:
    """Give claimed messages back untouched (a worker that stops); only
    those still leased under *token*.  Returns how many."""
    released = 0
    with env.db_transaction as db:
        for chunk in _chunks(message_ids):
            cursor = db.cursor()
            cursor.execute("""
                UPDATE tracnotify_message SET lease_owner=NULL,
                    lease_until=NULL
                WHERE id IN ({}) AND lease_owner=%s AND state=%s""".format(
                ','.join(['%s'] * len(chunk))), chunk + [token, PENDING])
            released += max(cursor.rowcount, 0)
    return released


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
    due = clock.now_sql(env)
    with env.db_transaction as db:
        cursor = db.cursor()
        if message_ids is None:
            cursor.execute("""
                UPDATE tracnotify_message
                SET state=%s, next_attempt={}, attempts=0, updated=%s
                WHERE state=%s OR (state=%s AND attempts>0)""".format(due),
                           (PENDING, now, DEAD, PENDING))
            return cursor.rowcount
        changed = 0
        for message_id in message_ids:
            cursor.execute("""
                UPDATE tracnotify_message
                SET state=%s, next_attempt={}, attempts=0, updated=%s
                WHERE id=%s AND state IN (%s, %s)""".format(due),
                           (PENDING, now, message_id, PENDING, DEAD))
            changed += max(cursor.rowcount, 0)
        return changed
