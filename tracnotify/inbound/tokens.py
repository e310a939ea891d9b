"""Reply tokens: one per copy of a ticket mail, in its ``Reply-To``.

A token is 26 characters of base32 (128 bits from :mod:`secrets`), lower
case so that a mail system folding the address does no harm.  Only its
SHA-256 is stored (``tracnotify_reply_token``), with the ticket and who may
write with it: a Trac login (``sid``) or, for an address that is no user,
the bare address.  It can be used for any number of replies until it
expires.
"""

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from tracnotify.outbox import bulk

TOKEN_BYTES = 16
VALID, EXPIRED, UNKNOWN = 'valid', 'expired', 'unknown'
_INSERT = """INSERT INTO tracnotify_reply_token
                 (token_hash, ticket, sid, address, created, expires)"""
_VALUES = '(%s, %s, %s, %s, %s, %s)'


def now_us() -> int:
    return int(time.time() * 1000000)


def new_token() -> str:
    """A fresh token: lower-case base32, no padding (26 characters)."""
    return base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode(
        'ascii').rstrip('=').lower()


def hash_token(token: str) -> str:
    """What is stored for *token*: the SHA-256 of its lower-case form."""
    return hashlib.sha256(token.lower().encode('ascii', 'replace')).hexdigest()


@dataclass(frozen=True)
class TokenOwner:
    """What a token names."""

    ticket: int
    sid: str                # '' for a bare address
    address: str
    expires: int            # microseconds


class ReplyTokens:
    """Tokens made for copies not stored yet: their rows are written by
    :meth:`store`, in the transaction that queues the copies."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.rows: List[Tuple] = []

    def issue(self, ticket: int, sid: Optional[str], address: str) -> str:
        """A new token for *address* (the login *sid*, if any) on
        *ticket*."""
        token = new_token()
        now = now_us()
        self.rows.append((hash_token(token), ticket, sid or '',
                          (address or '').strip().lower(), now,
                          now + self.days * 86400 * 1000000))
        return token

    def store(self, env, db) -> None:
        """Write the rows with *db* (a transaction's connection of
        *env*)."""
        if self.rows:
            bulk.insert_rows(env, db, _INSERT, _VALUES, self.rows)
            self.rows = []


def store_rows(env, rows: Iterable[Tuple]) -> None:
    """Write token rows in a transaction of their own (or the caller's)."""
    rows = list(rows)
    if rows:
        with env.db_transaction as db:
            bulk.insert_rows(env, db, _INSERT, _VALUES, rows)


def lookup(env, token: str) -> Tuple[str, Optional[TokenOwner]]:
    """``(VALID, owner)``, ``(EXPIRED, owner)`` or ``(UNKNOWN, None)``.
    The lookup is by hash: a guessed or altered token is simply unknown."""
    for ticket, sid, address, expires in env.db_query("""
            SELECT ticket, sid, address, expires FROM tracnotify_reply_token
            WHERE token_hash=%s""", (hash_token(token),)):
        owner = TokenOwner(ticket, sid or '', address or '', expires or 0)
        return (VALID if owner.expires > now_us() else EXPIRED), owner
    return UNKNOWN, None


def purge_expired(env, older_than_days: int = 30) -> int:
    """Remove tokens expired more than *older_than_days* ago (until then
    a reply to one is told it expired, rather than "unknown")."""
    limit = now_us() - older_than_days * 86400 * 1000000
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute('DELETE FROM tracnotify_reply_token WHERE expires<%s',
                       (limit,))
        return cursor.rowcount
