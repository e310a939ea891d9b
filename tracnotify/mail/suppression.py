"""Unsubscribe tokens and links, and the never-mail list (plain Python).

Scope of an unsubscribe: **every mail tracnotify sends from this Trac
environment to that address** (ticket changes, attachments, digests, mail
to always_cc/always_bcc addresses), whatever the role, ticket or rule that
would have chosen it.  Test mail sent from the admin panel is not affected.
An administrator sees every such address on Administration > Notification >
Unsubscribes and can undo it, or add addresses of their own (reason
``admin``: the never-mail list).  See docs/unsubscribe.md.

Tokens: the delivery worker gives each copy of each mail its own random
token (192 bits from :mod:`secrets`); only its SHA-256 is stored, with the
address it was made for.  Whoever holds a token can unsubscribe (or
resubscribe) that one address and nothing else.  Copies to the list
addresses of ``smtp_always_cc`` / ``smtp_always_bcc`` get none: any member
of the list could otherwise stop it for all.
"""

import hashlib
import re
import secrets
import time
from dataclasses import replace
from typing import (
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

from tracnotify.config import load_config
from tracnotify.outbox import bulk

UNSUBSCRIBED = 'unsubscribed'    # by the owner of the address (token, login)
ADMIN = 'admin'                  # by an administrator: never mail it
#: by tracnotify: the address bounced (tracnotify/inbound/bounce_record.py)
BOUNCED = 'bounced'
REASONS = (UNSUBSCRIBED, ADMIN, BOUNCED)
#: recipients' reasons for the configured list addresses (recipients.py)
LIST_REASONS = ('always_cc', 'always_bcc')

TOKEN_BYTES = 24                 # 192 bits, 32 characters in a URL
TOKEN_DAYS = 400                 # a link in a mail older than this expires
TOKEN_RE = re.compile(r'^[A-Za-z0-9_-]{20,100}$')
VALID, EXPIRED, UNKNOWN = 'valid', 'expired', 'unknown'   # token_state()
PAGE_PATH = ('tracnotify', 'unsubscribe')
_PURGE_EVERY = 3600.0
_last_purge: Dict[str, float] = {}


def now_us() -> int:
    return int(time.time() * 1000000)


def normalize(address: str) -> str:
    """The key an address is stored under (trimmed, lower case)."""
    return (address or '').strip().lower()


# Tokens ----------------------------------------------------------------------

def new_token() -> str:
    """A fresh random token, safe in a URL path."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What is stored for *token*: its SHA-256, hex."""
    return hashlib.sha256(token.encode('ascii', 'replace')).hexdigest()


class TokenBatch:
    """Tokens made for copies that are not stored yet: their hashes are
    written by :meth:`store`, in the transaction that stores the copies
    (one commit for a whole pass of changes, and no token without its
    mail when building a change fails)."""

    def __init__(self) -> None:
        self.rows: List[Tuple[str, str, int]] = []
        #: more rows of the same copies (reply tokens: inbound/addresses)
        self._later: List[Callable] = []

    def later(self, write: Callable) -> None:
        """Call *write(db)* in :meth:`store`'s transaction."""
        self._later.append(write)

    def issue(self, addresses: Iterable[str]) -> Dict[str, str]:
        """A new token for each address: ``{address: token}``."""
        tokens = {address: new_token() for address in addresses}
        now = now_us()
        self.rows.extend((hash_token(t), normalize(a), now)
                         for a, t in tokens.items())
        return tokens

    def store(self, env) -> None:
        """Write the hashes (in the caller's transaction, if any; the
        caller runs :func:`purge_if_due` after it)."""
        if self.rows or self._later:
            with env.db_transaction as db:
                bulk.insert_rows(env, db, """
                    INSERT INTO tracnotify_unsub_token
                        (token_hash, address, created)""",
                    '(%s, %s, %s)', self.rows)
                for write in self._later:
                    write(db)


def issue_tokens(env, addresses: Iterable[str]) -> Dict[str, str]:
    """A new token for each address, stored hashed: ``{address: token}``.

    Called by the delivery worker only (never in a ticket save)."""
    batch = TokenBatch()
    tokens = batch.issue(addresses)
    if tokens:
        batch.store(env)
        purge_if_due(env)
    return tokens


def address_for_token(env, token: str) -> Optional[str]:
    """The address *token* was made for, or None (unknown, expired or
    malformed).  The lookup is by hash: the stored value never meets the
    token itself, so timing reveals nothing about valid tokens."""
    state, address = token_state(env, token)
    return address if state == VALID else None


def token_state(env, token: str) -> Tuple[str, Optional[str]]:
    """``(VALID, address)``, ``(EXPIRED, None)`` for a token older than
    TOKEN_DAYS (until it is purged), or ``(UNKNOWN, None)``."""
    if not token or not TOKEN_RE.match(token):
        return UNKNOWN, None
    oldest = now_us() - TOKEN_DAYS * 86400 * 1000000
    for address, created in env.db_query("""
            SELECT address, created FROM tracnotify_unsub_token
            WHERE token_hash=%s""", (hash_token(token),)):
        if created is not None and created >= oldest:
            return VALID, address
        return EXPIRED, None
    return UNKNOWN, None


def purge_tokens(env, older_than_us: Optional[int] = None) -> int:
    """Remove expired tokens; returns how many."""
    if older_than_us is None:
        older_than_us = now_us() - TOKEN_DAYS * 86400 * 1000000
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute('DELETE FROM tracnotify_unsub_token WHERE created<%s',
                       (older_than_us,))
        return cursor.rowcount


def purge_if_due(env) -> None:
    """Remove expired tokens, at most once an hour per environment (in a
    transaction of its own: call it outside the caller's)."""
    if time.time() - _last_purge.get(env.path, 0.0) < _PURGE_EVERY:
        return
    _last_purge[env.path] = time.time()
    try:
        purge_tokens(env)
    except Exception as e:
        env.log.warning('tracnotify: cannot purge unsubscribe tokens: %s', e)


# The never-mail list ---------------------------------------------------------

def suppress(env, address: str, reason: str, author: str = '',
             note: str = '') -> bool:
    """Stop all mail to *address*.  An administrator's entry is never
    replaced by a self-service one.  Returns False when already listed."""
    if reason not in REASONS:
        raise ValueError('unknown reason: %r' % reason)
    key = normalize(address)
    if not key:
        raise ValueError('no address')
    with env.db_transaction as db:
        for old_reason, in db("""
                SELECT reason FROM tracnotify_suppress WHERE address=%s""",
                (key,)):
            if old_reason == reason or old_reason == ADMIN:
                return False
            db("""UPDATE tracnotify_suppress
                  SET reason=%s, created=%s, author=%s, note=%s
                  WHERE address=%s""",
               (reason, now_us(), author, note, key))
            return True
        db("""INSERT INTO tracnotify_suppress
                  (address, reason, created, author, note)
              VALUES (%s, %s, %s, %s, %s)""",
           (key, reason, now_us(), author, note))
    env.log.info('tracnotify: %s will get no more mail (%s, by %s)', key,
                 reason, author or '?')
    return True


def unsuppress(env, address: str, only_reason: Optional[str] = None) -> bool:
    """Mail *address* again; with *only_reason*, only if it was listed for
    that reason (a resubscribe link cannot lift an admin's entry)."""
    key = normalize(address)
    sql = 'DELETE FROM tracnotify_suppress WHERE address=%s'
    args: Tuple = (key,)
    if only_reason:
        sql += ' AND reason=%s'
        args += (only_reason,)
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute(sql, args)
        done = cursor.rowcount > 0
    if done:
        env.log.info('tracnotify: %s gets mail again', key)
    return done


def suppression(env, address: str) -> Optional[str]:
    """The reason *address* gets no mail, or None."""
    return suppressed(env, [address]).get(normalize(address))


def suppressed(env, addresses: Iterable[str]) -> Dict[str, str]:
    """``{normalized address: reason}`` for those of *addresses* that are
    on the list."""
    keys = sorted({normalize(a) for a in addresses if a})
    found: Dict[str, str] = {}
    for i in range(0, len(keys), 200):
        chunk = keys[i:i + 200]
        found.update(env.db_query("""
            SELECT address, reason FROM tracnotify_suppress
            WHERE address IN (%s)""" % ','.join(['%s'] * len(chunk)), chunk))
    return found


def list_suppressed(env) -> List[Tuple[str, str, int, str, str]]:
    """``(address, reason, created_us, author, note)``, by address."""
    return env.db_query("""
        SELECT address, reason, created, author, note
        FROM tracnotify_suppress ORDER BY address""")


def drop_suppressed(env, recipients: Sequence) -> list:
    """*recipients* minus those on the never-mail list (each one logged)."""
    if not recipients:
        return list(recipients)
    listed = suppressed(env, [r.address for r in recipients])
    if not listed:
        return list(recipients)
    kept = []
    for r in recipients:
        reason = listed.get(normalize(r.address))
        if reason:
            env.log.info('tracnotify: no mail to %s (%s): on the never-mail '
                         'list (%s)', r.address, r.reason, reason)
        else:
            kept.append(r)
    return kept


# Headers and links -------------------------------------------------------------

def page_url(env, token: Optional[str] = None) -> str:
    """The unsubscribe page, with *token* the personal one-click URL."""
    return env.abs_href(*(PAGE_PATH + ((token,) if token else ())))


def list_addresses(config) -> FrozenSet[str]:
    """The normalized addresses of ``smtp_always_cc`` / ``smtp_always_bcc``
    (mailing lists, archives): see :func:`with_unsubscribe_links`."""
    return frozenset(normalize(a) for a in
                     list(config.smtp_always_cc) + list(config.smtp_always_bcc)
                     if '@' in a)


def is_list_copy(recipient, lists: FrozenSet[str]) -> bool:
    """True for a copy to a list address: one member of the list must not
    be able to stop the mail of all the others with one click."""
    return recipient.reason in LIST_REASONS or \
        normalize(recipient.address) in lists


def with_unsubscribe_links(env, recipients: Sequence, config=None,
                           batch: Optional[TokenBatch] = None) -> list:
    """Each recipient with a personal unsubscribe URL, except copies to
    list addresses (``smtp_always_cc`` / ``_bcc``, as a role or wherever
    the address appears): they get no token and so no List-Unsubscribe
    header; the list's owner asks the admin (docs/unsubscribe.md).  The
    tokens are stored now, or added to *batch* for its owner to store."""
    lists = list_addresses(config or load_config(env))
    personal = [r.address for r in recipients if not is_list_copy(r, lists)]
    tokens = issue_tokens(env, personal) if batch is None else \
        batch.issue(personal)
    page = page_url(env) + '/'   # page_url(env, token): a token is URL-safe
    return [replace(r, unsubscribe_url=page + tokens[r.address])
            if r.address in tokens else r for r in recipients]
