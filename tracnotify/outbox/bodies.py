"""The part of a change's mail that all its copies share, stored once.

A row of ``tracnotify_message`` with a ``body_id`` holds only the copy's
own headers (To/Cc, the reason, its List-Unsubscribe link); the copy is
those followed by the ``data`` of its ``tracnotify_body`` row (From,
Subject, threading and the encoded body).  A row without ``body_id``
holds the whole message (a digest, or a message queued before version 4
that the upgrade could not split).
"""

import hashlib
from typing import Dict, Iterable, Optional, Tuple

#: the first header of every shared part (mail/message.encode_shared_part)
SHARED_START = 'From: '


def add_body(db, data: str, created: int) -> int:
    """Store one shared part; its id."""
    cursor = db.cursor()
    cursor.execute('INSERT INTO tracnotify_body (created, data) '
                   'VALUES (%s, %s)', (created, data))
    return db.get_last_id(cursor, 'tracnotify_body')


def load_bodies(env, ids: Iterable[Optional[int]]) -> Dict[int, str]:
    """``{id: data}`` of the shared parts *ids* (None is left out): one
    string per body, whatever the number of copies that use it."""
    wanted = sorted({i for i in ids if i is not None})
    found: Dict[int, str] = {}
    for start in range(0, len(wanted), 200):
        chunk = wanted[start:start + 200]
        found.update(env.db_query(
            'SELECT id, data FROM tracnotify_body WHERE id IN (%s)'
            % ','.join(['%s'] * len(chunk)), chunk))
    return found


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

