"""The part of a change's mail that all its copies share, stored once.

A row of ``tracnotify_message`` with a ``body_id`` holds only the copy's
own headers (To/Cc, the reason, its List-Unsubscribe link); the copy is
those followed by the ``data`` of its ``tracnotify_body`` row (From,
Subject, threading and the encoded body).  A row without ``body_id``
holds the whole message (a digest, or a message queued before version 4
that the upgrade could not split).

Since version 7 the columns all copies share (``msgid``, ``sender``,
``subject``) are kept on the body row too, and a copy's own are NULL
where they equal the body's: the readers take ``COALESCE(m.x, b.x)``
(:data:`MESSAGE_FROM`, :func:`shared_column`).
"""

import hashlib
from dataclasses import replace
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple, TypeVar

T = TypeVar('T')

#: the first header of every shared part (mail/message.encode_shared_part)
SHARED_START = 'From: '
#: the last of a copy's own headers when it has an unsubscribe link
#: (mail/message.py): the same line in every such copy, so where all the
#: copies of a shared part end with it, it is stored once, at the start
#: of the shared part (:func:`hoist_common_tail`)
COMMON_TAIL = 'List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n'


#: the columns a body row keeps for all its copies (version 7)
SHARED_COLUMNS = ('msgid', 'sender', 'subject')
#: ``FROM`` of a query that reads a copy with its body's columns
MESSAGE_FROM = ('tracnotify_message m LEFT JOIN tracnotify_body b '
                'ON b.id=m.body_id')


def shared_column(name: str) -> str:
    """SQL for a copy's *name* (one of :data:`SHARED_COLUMNS`) in a query
    ``FROM`` :data:`MESSAGE_FROM`."""
    assert name in SHARED_COLUMNS
    return 'COALESCE(m.{0}, b.{0})'.format(name)


class Body(NamedTuple):
    """A stored shared part and the columns its copies share."""

    data: str
    msgid: Optional[str] = None
    sender: Optional[str] = None
    subject: Optional[str] = None


def hoist_common_tail(messages: List[T]) -> List[T]:
    """*messages* (``NewMessage``), where all the copies that hold one
    shared part end their own headers with :data:`COMMON_TAIL`, with that
    line moved to the start of their (new, common) shared part: each
    copy's bytes, its headers followed by the shared part, are the same."""
    groups: Dict[int, List[int]] = {}
    for n, m in enumerate(messages):
        if m.shared is not None:
            groups.setdefault(id(m.shared), []).append(n)
    out = list(messages)
    for indexes in groups.values():
        if len(indexes) < 2 or not all(
                messages[n].message.endswith(COMMON_TAIL) for n in indexes):
            continue
        shared = COMMON_TAIL + messages[indexes[0]].shared
        for n in indexes:
            m = messages[n]
            out[n] = replace(m, message=m.message[:-len(COMMON_TAIL)],
                             shared=shared)
    return out


def add_body(db, data: str, created: int, msgid: Optional[str] = None,
             sender: Optional[str] = None,
             subject: Optional[str] = None) -> int:
    """Store one shared part (and the columns its copies share); its id."""
    cursor = db.cursor()
    cursor.execute('INSERT INTO tracnotify_body (created, data, msgid, '
                   'sender, subject) VALUES (%s, %s, %s, %s, %s)',
                   (created, data, msgid, sender, subject))
    return db.get_last_id(cursor, 'tracnotify_body')


def load_bodies(env, ids: Iterable[Optional[int]]) -> Dict[int, Body]:
    """``{id: Body}`` of the shared parts *ids* (None is left out): one
    string per body, whatever the number of copies that use it."""
    wanted = sorted({i for i in ids if i is not None})
    found: Dict[int, Body] = {}
    for start in range(0, len(wanted), 200):
        chunk = wanted[start:start + 200]
        for row in env.db_query(
                'SELECT id, data, msgid, sender, subject FROM '
                'tracnotify_body WHERE id IN (%s)'
                % ','.join(['%s'] * len(chunk)), chunk):
            found[row[0]] = Body(*row[1:])
    return found


def move_shared_columns(env) -> int:
    """Upgrade step of version 7 (in the caller's transaction): each body
    row takes ``msgid``, ``sender`` and ``subject`` from its first copy,
    and the copies that hold the same values keep NULL instead.  Returns
    how many copies changed."""
    changed = 0
    with env.db_transaction as db:
        for name in SHARED_COLUMNS:
            db("""UPDATE tracnotify_body SET {0}=(
                      SELECT m.{0} FROM tracnotify_message m
                      WHERE m.body_id=tracnotify_body.id
                      ORDER BY m.id LIMIT 1)
                  WHERE {0} IS NULL""".format(name))
        for name in SHARED_COLUMNS:
            cursor = db.cursor()
            cursor.execute("""
                UPDATE tracnotify_message SET {0}=NULL
                WHERE body_id IS NOT NULL AND {0}=(
                    SELECT b.{0} FROM tracnotify_body b
                    WHERE b.id=tracnotify_message.body_id)""".format(name))
            changed = max(changed, cursor.rowcount)
    return changed


def split_copy(text: str) -> Optional[Tuple[str, str]]:
    """``(personal headers, shared part)`` of a whole copy as version 3
    stored it, or None when it has no shared part to split off (no
    ``From:`` line in its header)."""
    if text.startswith(SHARED_START):
        return '', text
    end = text.find('\r\n\r\n')
    at = text.find('\r\n' + SHARED_START)
    if at < 0 or (0 <= end < at):
        return None
    return text[:at + 2], text[at + 2:]


def purge_orphans(db) -> int:
    """Delete the shared parts that no message uses any more."""
    cursor = db.cursor()
    cursor.execute("""
        DELETE FROM tracnotify_body WHERE NOT EXISTS (
            SELECT 1 FROM tracnotify_message m
            WHERE m.body_id=tracnotify_body.id)""")
    return cursor.rowcount


def convert_queued(env, states: Tuple[str, ...] = ('pending', 'dead'),
                   chunk: int = 500) -> int:
    """Upgrade step of version 4: split the queued whole messages of each
    event into personal headers and one shared part per distinct part
    (in the caller's transaction).  Returns how many rows changed."""
    changed = 0
    last_id = 0
    known: Dict[Tuple[object, str], int] = {}   # (event, SHA-256) -> body
    while True:
        with env.db_transaction as db:
            rows = db("""
                SELECT id, event_id, created, message FROM tracnotify_message
                WHERE id>%s AND body_id IS NULL AND state IN ({})
                ORDER BY id LIMIT %s""".format(','.join(['%s'] * len(states))),
                      (last_id,) + tuple(states) + (chunk,))
            if not rows:
                return changed
            updates = []
            for message_id, event_id, created, text in rows:
                last_id = message_id
                parts = split_copy(text or '')
                if parts is None:
                    continue
                head, shared = parts
                key = (event_id, hashlib.sha256(
                    shared.encode('utf-8')).hexdigest())
                body_id = known.get(key)
                if body_id is None:
                    body_id = known[key] = add_body(db, shared, created or 0)
                updates.append((head, body_id, message_id))
            if updates:
                db.executemany("""UPDATE tracnotify_message
                                  SET message=%s, body_id=%s WHERE id=%s""",
                               updates)
            changed += len(updates)

