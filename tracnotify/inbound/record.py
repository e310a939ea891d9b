"""``tracnotify_inbound``: one row per message received, whatever became
of it (the admin's "Replies" panel and ``notify status`` read it)."""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from tracnotify.inbound.tokens import now_us

KINDS = ('reply', 'bounce', 'auto', 'unknown')
OUTCOMES = ('taken', 'refused', 'dropped', 'failed')


@dataclass
class Entry:
    """One row of ``tracnotify_inbound``."""

    received: int
    kind: str
    outcome: str
    reason: str
    sender: str = ''
    recipient: str = ''
    ticket: Optional[int] = None
    sid: str = ''
    message_id: str = ''
    subject: str = ''
    detail: str = ''

    def row(self) -> Tuple:
        return (self.received, self.kind, self.outcome, self.reason[:500],
                self.sender[:300], self.recipient[:300], self.ticket,
                self.sid[:300], self.message_id[:300], self.subject[:300],
                self.detail[:4000])


def record(env, entry: Entry, db=None) -> None:
    """Insert *entry* (with *db*, a transaction's connection, if given)."""
    sql = """INSERT INTO tracnotify_inbound
                 (received, kind, outcome, reason, sender, recipient, ticket,
                  sid, message_id, subject, detail)
             VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"""
    if db is not None:
        db(sql, entry.row())
        return
    with env.db_transaction as db:
        db(sql, entry.row())


def counts(env, since: int = 0) -> dict:
    """``{(kind, outcome): n}`` of the messages received since *since*."""
    return {(kind, outcome): n for kind, outcome, n in env.db_query("""
        SELECT kind, outcome, COUNT(*) FROM tracnotify_inbound
        WHERE received>=%s GROUP BY kind, outcome""", (since,))}


def recent(env, limit: int = 100, outcome: Optional[str] = None
           ) -> List[Entry]:
    """The last *limit* entries, newest first (only *outcome* ones)."""
    where, params = ('WHERE outcome=%s', [outcome]) if outcome else ('', [])
    rows = env.db_query("""
        SELECT received, kind, outcome, reason, sender, recipient, ticket,
               sid, message_id, subject, detail
        FROM tracnotify_inbound %s ORDER BY received DESC, id DESC
        LIMIT %%s""" % where, params + [limit])
    return [Entry(*row) for row in rows]


def purge(env, older_than_days: int) -> int:
    """Delete the records older than *older_than_days*; how many."""
    limit = now_us() - older_than_days * 86400 * 1000000
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute('DELETE FROM tracnotify_inbound WHERE received<%s',
                       (limit,))
        return cursor.rowcount
