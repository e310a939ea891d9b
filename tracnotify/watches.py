"""Who watches what: rows of Trac's own ``notify_watch`` table.

``notify_watch`` (Trac 1.2+) holds ``(sid, authenticated, class, realm,
target)``: the subscriber class that reads the rows, the resource's realm
and its id.  Tickets keep their own helpers (:mod:`tracnotify.web.watch`);
wiki pages and milestones use these, each with its subscriber class.
"""

from typing import List, Tuple


def watchers(env, klass: str, realm: str, target: str
             ) -> List[Tuple[str, int]]:
    """``[(sid, authenticated)]`` of the people who watch *target*."""
    return [(sid, int(auth)) for sid, auth in env.db_query("""
        SELECT DISTINCT sid, authenticated FROM notify_watch
        WHERE class=%s AND realm=%s AND target=%s
        ORDER BY sid""", (klass, realm, target))]


def is_watching(env, sid: str, klass: str, realm: str, target: str) -> bool:
    """Whether the user *sid* watches *target*."""
    return bool(env.db_query("""
        SELECT 1 FROM notify_watch
        WHERE sid=%s AND authenticated=1 AND class=%s AND realm=%s
              AND target=%s""", (sid, klass, realm, target)))


def watch(env, sid: str, klass: str, realm: str, target: str) -> bool:
    """Make the user *sid* watch *target*; False if they did already."""
    with env.db_transaction as db:
        if is_watching(env, sid, klass, realm, target):
            return False
        db("""INSERT INTO notify_watch
                  (sid, authenticated, class, realm, target)
              VALUES (%s, 1, %s, %s, %s)""", (sid, klass, realm, target))
    return True


def unwatch(env, sid: str, klass: str, realm: str, target: str) -> bool:
    """Stop the user *sid* watching *target*; False if they did not."""
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            DELETE FROM notify_watch
            WHERE sid=%s AND authenticated=1 AND class=%s AND realm=%s
                  AND target=%s""", (sid, klass, realm, target))
        return cursor.rowcount > 0


def move_watches(env, klass: str, realm: str, old: str, new: str) -> None:
    """The watchers of *old* watch *new* (a renamed page or milestone);
    someone who watched both is listed once."""
    with env.db_transaction as db:
        both = watchers(env, klass, realm, new)
        db.executemany("""
            DELETE FROM notify_watch
            WHERE sid=%s AND authenticated=%s AND class=%s AND realm=%s
                  AND target=%s""",
                       [(sid, auth, klass, realm, old) for sid, auth in both])
        db("""UPDATE notify_watch SET target=%s
              WHERE class=%s AND realm=%s AND target=%s""",
           (new, klass, realm, old))
