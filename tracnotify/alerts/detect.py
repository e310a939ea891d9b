"""Is delivery failing?  Plain reads of the outbox, no state of its own.

:func:`look` takes a :class:`Health` snapshot of ``tracnotify_message``:
the oldest message still waiting, the last successful send, the dead
messages above a mark.  :func:`stalled` says whether mail has been
waiting for ``alert_after`` with no success in that time.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from tracnotify.outbox import DEAD, PENDING, SENT

#: dead messages listed in one alert (the count says how many there are)
MAX_LISTED = 10


@dataclass
class Health:
    """What the outbox says about delivery, at *now* (µs)."""

    now: int
    waiting: int = 0
    #: ``created`` of the oldest waiting message (µs), None if none waits
    oldest_waiting: Optional[int] = None
    #: ``sent_at`` of the last message delivered (µs), None if none ever was
    last_sent: Optional[int] = None
    #: ``(updated_us, recipient, error)`` of the latest failed attempt
    last_error: Optional[Tuple[int, str, str]] = None
    #: messages that went dead after the mark: how many, when the last
    #: did (µs, the next mark), a few ``(id, recipient, error)``
    dead_count: int = 0
    dead_until: int = 0
    dead: List[Tuple[int, str, str]] = field(default_factory=list)


def look(env, now: int, dead_mark: int) -> Health:
    """A :class:`Health` snapshot; messages that went dead after
    *dead_mark* (µs) are the new ones (by the time they died, not by id:
    an old message may die after a newer one)."""
    h = Health(now)
    for n, oldest in env.db_query("""
            SELECT COUNT(*), MIN(created) FROM tracnotify_message
            WHERE state=%s""", (PENDING,)):
        h.waiting, h.oldest_waiting = n, oldest
    for last, in env.db_query("""
            SELECT MAX(sent_at) FROM tracnotify_message WHERE state=%s""",
            (SENT,)):
        h.last_sent = last
    for row in env.db_query("""
            SELECT updated, recipient, last_error FROM tracnotify_message
            WHERE state=%s AND last_error IS NOT NULL
            ORDER BY updated DESC LIMIT 1""", (PENDING,)):
        h.last_error = row
    for n, until in env.db_query("""
            SELECT COUNT(*), MAX(updated) FROM tracnotify_message
            WHERE state=%s AND updated>%s""", (DEAD, dead_mark)):
        h.dead_count, h.dead_until = n, until or 0
    if h.dead_count:
        h.dead = list(env.db_query("""
            SELECT id, recipient, last_error FROM tracnotify_message
            WHERE state=%s AND updated>%s ORDER BY updated, id LIMIT %s""",
            (DEAD, dead_mark, MAX_LISTED)))
    return h


def stalled(h: Health, after_us: int) -> bool:
    """Mail has waited at least *after_us* and nothing was delivered in
    that time (*after_us* 0: never)."""
    if after_us <= 0 or h.oldest_waiting is None:
        return False
    since = h.now - after_us
    return h.oldest_waiting <= since and \
        (h.last_sent is None or h.last_sent <= since)


def delivered_since(h: Health, since_us: int) -> bool:
    """A message was delivered after *since_us* (an outbox that emptied
    because its mail went dead, or was deleted, proves nothing)."""
    return h.last_sent is not None and h.last_sent > since_us
