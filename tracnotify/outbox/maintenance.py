"""Looking after the outbox by hand: list, retry, delete, purge, and the
history of sent mail.

Plain functions over Trac's DB API, shared by the admin panel and the
``trac-admin ENV notify ...`` commands.  Delivery itself stays in
:mod:`tracnotify.outbox`.
"""

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from tracnotify import outbox
from tracnotify.outbox import bodies
from tracnotify.outbox.clock import db_now_us

#: queue filters -> the WHERE clause that selects them
FILTERS = {
    'all': ('state IN (%s, %s)', (outbox.PENDING, outbox.DEAD)),
    'pending': ('state=%s AND attempts=0', (outbox.PENDING,)),
    'retrying': ('state=%s AND attempts>0', (outbox.PENDING,)),
    'dead': ('state=%s', (outbox.DEAD,)),
}
DAY_US = 24 * 3600 * 1000000
#: how long sent mail is kept by ``notify purge`` without an argument, and
#: so how far back the sent-mail history looks
DEFAULT_PURGE_DAYS = 30


@dataclass
class QueuedMessage:
    """One unsent message, as the queue page and ``notify pending`` show it."""

    id: int
    ticket: int
    recipient: str
    subject: str
    state: str
    attempts: int
    last_error: Optional[str]
    next_attempt: Optional[int]
    updated: Optional[int]

    @property
    def status(self) -> str:
        """pending | retrying | dead."""
        if self.state == outbox.DEAD:
            return 'dead'
        return 'retrying' if self.attempts else 'pending'


def _where(status: str) -> Tuple[str, tuple]:
    try:
        return FILTERS[status]
    except KeyError:
        raise ValueError('unknown queue filter: %r' % status)


def count_queue(env, status: str = 'all') -> int:
    """How many unsent messages match *status*."""
    where, args = _where(status)
    for n, in env.db_query('SELECT COUNT(*) FROM tracnotify_message '
                           'WHERE ' + where, args):
        return n
    return 0


def list_queue(env, status: str = 'all', offset: int = 0,
               limit: Optional[int] = 50) -> List[QueuedMessage]:
    """Unsent messages matching *status*, oldest first, one page of them."""
    where, args = _where(status)
    sql = """SELECT m.id, m.ticket, m.recipient, {}, m.state, m.attempts,
                    m.last_error, m.next_attempt, m.updated
             FROM {} WHERE """.format(bodies.shared_column('subject'),
                                      bodies.MESSAGE_FROM) + where + \
        ' ORDER BY m.id'
    if limit is not None:
        sql += ' LIMIT %s OFFSET %s'
        args = args + (int(limit), int(offset))
    return [QueuedMessage(*row) for row in env.db_query(sql, args)]


def existing_ids(env, ids: Iterable[int]) -> List[int]:
    """Those of *ids* that are unsent messages (pending or dead)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return []
    found = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found += [row[0] for row in env.db_query(
            'SELECT id FROM tracnotify_message WHERE state IN (%s, %s) '
            'AND id IN ({})'.format(','.join(['%s'] * len(chunk))),
            [outbox.PENDING, outbox.DEAD] + chunk)]
    return sorted(found)


def retry(env, ids: Optional[Sequence[int]] = None) -> int:
    """Make the given unsent messages (every one when None) due now, with a
    fresh attempt budget; returns how many were found."""
    if ids is None:
        n = count_queue(env, 'all')
        outbox.retry_now(env)
        return n
    found = existing_ids(env, ids)
    if found:
        outbox.retry_now(env, found)
    return len(found)


def waiting(env, now_us: Optional[int] = None
            ) -> Tuple[int, Optional[int]]:
    """Unsent messages that wait for a later attempt: how many, and when
    the first of them is due (microseconds; None when none waits)."""
    now = db_now_us(env) if now_us is None else now_us
    for n, first in env.db_query("""
            SELECT COUNT(*), MIN(next_attempt) FROM tracnotify_message
            WHERE state=%s AND next_attempt>%s""", (outbox.PENDING, now)):
        return n, (first if n else None)
    return 0, None


def make_due(env, now_us: Optional[int] = None) -> int:
    """Make every message that waits for a later attempt due now, its
    attempts counted as before (``notify send --now``, like Postfix's
    ``postqueue -f``; dead messages stay dead: ``retry`` revives them);
    returns how many."""
    now = db_now_us(env) if now_us is None else now_us
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            UPDATE tracnotify_message SET next_attempt=%s
            WHERE state=%s AND next_attempt>%s""", (now, outbox.PENDING, now))
        return max(cursor.rowcount, 0)


def delete(env, ids: Sequence[int]) -> int:
    """Delete unsent messages; returns how many there were."""
    found = existing_ids(env, ids)
    if found:
        with env.db_transaction as db:
            db.executemany('DELETE FROM tracnotify_message '
                           'WHERE id=%s AND state IN (%s, %s)',
                           [(i, outbox.PENDING, outbox.DEAD) for i in found])
            bodies.purge_orphans(db)
    return len(found)


def purge_sent(env, older_than_days: int,
               now_us: Optional[int] = None) -> Tuple[int, int]:
    """Delete sent messages older than *older_than_days*, and expanded
    events of that age that have no message left.

    Returns ``(messages, events)`` deleted.
    """
    if older_than_days < 0:
        raise ValueError('older_than_days must be >= 0')
    cutoff = (now_us or outbox.now_us()) - older_than_days * DAY_US
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            DELETE FROM tracnotify_message WHERE state=%s AND sent_at<%s
            """, (outbox.SENT, cutoff))
        messages = cursor.rowcount
        if messages:
            bodies.purge_orphans(db)
        cursor.execute("""
            DELETE FROM tracnotify_event
            WHERE state IN (%s, %s) AND created<%s AND NOT EXISTS (
                SELECT 1 FROM tracnotify_message m
                WHERE m.event_id=tracnotify_event.id)
            """, (outbox.DONE, outbox.OFF, cutoff))
        events = cursor.rowcount
    return messages, events


@dataclass
class SentMessage:
    """One delivered message, as the sent-mail history shows it."""

    id: int
    ticket: int
    recipient: str
    reason: Optional[str]
    subject: str
    msgid: str
    sent_at: int


def _sent_where(db, query: str, since_us: int) -> Tuple[str, list]:
    """WHERE clause of the history: sent since *since_us*, and matching
    every word of *query* in the recipient, subject or Message-ID (a word
    like ``#12`` or ``12`` also matches ticket 12)."""
    where = ['m.state=%s', 'm.sent_at>=%s']
    args: list = [outbox.SENT, int(since_us)]
    for word in (query or '').split()[:10]:
        like = '%' + db.like_escape(word) + '%'
        alternatives = ['m.recipient ' + db.like(),
                        bodies.shared_column('subject') + ' ' + db.like(),
                        bodies.shared_column('msgid') + ' ' + db.like()]
        args += [like, like, like]
        number = re.match(r'^#?(\d{1,9})$', word)
        if number:
            alternatives.append('m.ticket=%s')
            args.append(int(number.group(1)))
        where.append('(%s)' % ' OR '.join(alternatives))
    return ' AND '.join(where), args


def count_sent(env, query: str = '', since_us: int = 0) -> int:
    """How many sent messages the history holds for *query*."""
    with env.db_query as db:
        where, args = _sent_where(db, query, since_us)
        for n, in db('SELECT COUNT(*) FROM %s WHERE ' % bodies.MESSAGE_FROM
                     + where, args):
            return n
    return 0


def list_sent(env, query: str = '', since_us: int = 0, offset: int = 0,
              limit: int = 50) -> List[SentMessage]:
    """One page of the sent-mail history, newest first: who got what,
    when, with which Message-ID."""
    with env.db_query as db:
        where, args = _sent_where(db, query, since_us)
        rows = db("""SELECT m.id, m.ticket, m.recipient, m.reason, {}, {},
                            m.sent_at
                     FROM {} WHERE """.format(
            bodies.shared_column('subject'), bodies.shared_column('msgid'),
            bodies.MESSAGE_FROM) + where + """
                     ORDER BY m.sent_at DESC, m.id DESC LIMIT %s OFFSET %s""",
                  args + [int(limit), int(offset)])
    return [SentMessage(*row) for row in rows]
