"""database: append messages to a table of a separate SQLite file.

An external daemon (``contrib/tracnotify-relay.py`` is a reference one)
drains the table.  A batch is appended in one transaction; the pair
(recipient, SHA-256 of the message) is unique, so a batch that is appended
again (the worker died before the outbox recorded it) adds nothing twice.
``docs/transports.md`` describes the table for whoever writes a relay.
"""

import hashlib
import os
import sqlite3
import time
from typing import List, Optional, Sequence

from trac.config import Option
from trac.core import Component

from tracnotify.delivery.transports.base import (
    SendResult,
    Transport,
    TransportKind,
    register,
)
from tracnotify.delivery.transports.options import SECTION, env_path
from tracnotify.outbox import OutgoingMessage

TABLE = 'tracnotify_mail'
DEFAULT_MAIL_DATABASE = 'db/tracnotify-mail.sqlite'
SCHEMA_VERSION = 1
SCHEMA = """\
CREATE TABLE IF NOT EXISTS tracnotify_mail (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queued_at    REAL    NOT NULL,
    sender       TEXT    NOT NULL,
    recipient    TEXT    NOT NULL,
    message      BLOB    NOT NULL,
    digest       TEXT    NOT NULL,
    ticket       INTEGER,
    outbox_id    INTEGER,
    state        TEXT    NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL    NOT NULL DEFAULT 0,
    claimed_by   TEXT,
    claimed_at   REAL,
    sent_at      REAL,
    last_error   TEXT,
    UNIQUE (recipient, digest)
);
CREATE INDEX IF NOT EXISTS tracnotify_mail_due
    ON tracnotify_mail (state, next_attempt, id);
"""

_INSERT = """
    INSERT OR IGNORE INTO tracnotify_mail
        (queued_at, sender, recipient, message, digest, ticket, outbox_id)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""


def open_queue(path: str, timeout: float = 10.0) -> sqlite3.Connection:
    """Open (and create when needed) the queue file; raises on failure."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute('PRAGMA journal_mode=WAL')
        conn.executescript(SCHEMA)
        if conn.execute('PRAGMA user_version').fetchone()[0] == 0:
            conn.execute('PRAGMA user_version=%d' % SCHEMA_VERSION)
    except BaseException:
        conn.close()
        raise
    return conn


def digest(data: bytes) -> str:
    """The SHA-256 of a message, hex."""
    return hashlib.sha256(data).hexdigest()


class DatabaseOptions(Component):
    """Options of `[notification]` for `mail_transport = database`."""

    mail_database = Option(SECTION, 'mail_database', DEFAULT_MAIL_DATABASE,
        """SQLite file whose `tracnotify_mail` table receives the messages
        with `mail_transport = database`, for an external relay such as
        `contrib/tracnotify-relay.py`. Relative to the environment
        directory; created when missing. (tracnotify)""")


class DatabaseTransport(Transport):
    """Appends each batch to the ``tracnotify_mail`` table of ``path``."""

    name = 'database'

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._conn: Optional[sqlite3.Connection] = None

    def describe(self) -> str:
        return 'database %s (table %s)' % (self.path, TABLE)

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        if not messages:
            return []
        now = time.time()
        rows = [(now, m.sender, m.recipient, m.data, digest(m.data),
                 m.ticket, m.id) for m in messages]
        try:
            if self._conn is None:
                self._conn = open_queue(self.path, self.timeout)
            conn = self._conn
            conn.execute('BEGIN IMMEDIATE')
            try:
                conn.executemany(_INSERT, rows)
                conn.execute('COMMIT')
            except BaseException:
                conn.execute('ROLLBACK')
                raise
        except (sqlite3.Error, OSError) as e:
            self.close()
            error = 'cannot append to %s: %s' % (self.path, e)
            return [SendResult.retry(error) for _m in messages]
        return [SendResult.sent() for _m in messages]

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None


register(TransportKind(
    'database', 40,
    build=lambda path, config, log: DatabaseTransport(path),
    read=lambda env, errors: env_path(env, 'mail_database',
                                      DEFAULT_MAIL_DATABASE),
    component=DatabaseOptions))
