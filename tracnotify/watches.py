"""Who watches what: rows of Trac's own ``notify_watch`` table.

``notify_watch`` (Trac 1.2+) holds ``(sid, authenticated, class, realm,
target)``: the subscriber class that reads the rows, the resource's realm
and its id.  Tickets keep their own helpers (:mod:`tracnotify.web.watch`);
wiki pages and milestones use these, each with its subscriber class.
"""

from typing import Iterator, List, Sequence, Tuple

from trac.notification.api import NotificationSystem
from trac.notification.model import Subscription


def watchers(env, klass: str, realm: str, target: str
             ) -> List[Tuple[str, int]]:
    """``[(sid, authenticated)]`` of the people who watch *target*."""
    return [(sid, int(auth)) for sid, auth in env.db_query("""
        SELECT DISTINCT sid, authenticated FROM notify_watch
        WHERE class=%s AND realm=%s AND target=%s
        ORDER BY sid""", (klass, realm, target))]


def realm_watchers(env, realm: str, target: str) -> List[Tuple[str, int]]:
    """``[(sid, authenticated)]`` of the people who watch *target* of
    *realm*, whatever subscriber class reads their rows (announcements to
    the watchers of a milestone)."""
    return [(sid, int(auth)) for sid, auth in env.db_query("""
        SELECT DISTINCT sid, authenticated FROM notify_watch
        WHERE realm=%s AND target=%s
        ORDER BY sid""", (realm, target))]


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


def default_rules(env, klass: str, fallback: tuple) -> List[tuple]:
    """The ``[notification-subscriber]`` rules of *klass*, or *fallback*
    (``(class, distributor, format, priority, adverb)``) when none is set."""
    return list(NotificationSystem(env).default_subscriptions(klass)) or \
        [fallback]


def watcher_subscriptions(env, sids: Sequence[Tuple[str, int]], klass: str,
                          fallback: tuple) -> Iterator[tuple]:
    """What an ``INotificationSubscriber`` of watchers yields for *sids*:
    the default rules for each watcher, then their own rules of *klass*."""
    if not sids:
        return
    for sid, auth in sids:
        for s in default_rules(env, klass, fallback):
            yield s[0], s[1], sid, auth, None, s[2], s[3], s[4]
    for s in Subscription.find_by_sids_and_class(env, set(sids), klass):
        yield s.subscription_tuple()
