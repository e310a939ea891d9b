"""VERP: each copy's envelope sender names that copy, so a bounce does too.

With ``[notification] bounce_address = trac+bounce-{token}@example.org``
every copy leaves with its own envelope sender (SMTP ``MAIL FROM``,
``sendmail -f``): ``{token}`` becomes ``<message id>-<mac>``, where the
message id is the copy's ``tracnotify_message.id`` and the mac is an
HMAC-SHA256 of it under a secret of this environment (80 bits, kept in
Trac's ``system`` table, made on first use).  Nothing is stored per copy,
and nobody can write a token for a copy they did not receive a bounce
for: a forged or altered token is refused.  The From and Reply-To
headers are not touched.  An empty ``bounce_address`` keeps the envelope
sender of ``smtp_from`` (the behaviour before VERP).
"""

import hashlib
import hmac
import re
import secrets
from typing import Iterable, Optional

from trac.config import Option
from trac.core import Component

SECTION = 'notification'
PLACEHOLDER = '{token}'
#: the ``system`` row that holds the environment's secret
SECRET_NAME = 'tracnotify_verp_secret'
MAC_CHARS = 20                   # hex: 80 bits
_TOKEN_PATTERN = r'(?P<token>[0-9]{1,19}-[0-9a-f]{%d})' % MAC_CHARS
_address_re = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+$")


class VerpOptions(Component):
    """The option of `[notification]` that turns VERP on."""

    bounce_address = Option(SECTION, 'bounce_address', '',
        """Envelope sender of each copy (SMTP `MAIL FROM`, `sendmail -f`),
        with `{token}` in its local part, e.g.
        `trac+bounce-{token}@example.org`: each copy gets its own address,
        so a bounce names the copy (and the address) it is about. Deliver
        that address to `notify receive` or to the mailbox `notify fetch`
        reads (see docs/bounces.md). Empty: the envelope sender is
        `smtp_from`, and bounces are not counted. (tracnotify)""")


def template_error(template: str) -> Optional[str]:
    """Why *template* cannot be a ``bounce_address``, or None."""
    if template.count(PLACEHOLDER) != 1:
        return 'must contain {token} once'
    local, at, domain = template.rpartition('@')
    if not at or PLACEHOLDER not in local:
        return 'needs {token} in the part before the @'
    if not _address_re.match(template.replace(PLACEHOLDER, '1-a')):
        return 'is not an e-mail address'
    return None


def read_secret(env) -> bytes:
    """This environment's secret, made and stored on first use (a race
    between two processes is won by the first to insert it)."""
    for value, in env.db_query('SELECT value FROM system WHERE name=%s',
                               (SECRET_NAME,)):
        return value.encode('ascii')
    made = secrets.token_hex(32)
    try:
        with env.db_transaction as db:
            db('INSERT INTO system (name, value) VALUES (%s, %s)',
               (SECRET_NAME, made))
    except env.db_exc.IntegrityError:
        pass                         # another process stored one first
    for value, in env.db_query('SELECT value FROM system WHERE name=%s',
                               (SECRET_NAME,)):
        return value.encode('ascii')
    raise RuntimeError('the VERP secret could not be stored')


def _mac(secret: bytes, message_id: int) -> str:
    return hmac.new(secret, b'bounce:%d' % message_id,
                    hashlib.sha256).hexdigest()[:MAC_CHARS]


def make_token(secret: bytes, message_id: int) -> str:
    """The token of copy *message_id*."""
    return '%d-%s' % (message_id, _mac(secret, message_id))


def check_token(secret: bytes, token: str) -> Optional[int]:
    """The message id *token* names, or None when it is malformed or its
    mac does not match (compared in constant time)."""
    m = re.fullmatch(_TOKEN_PATTERN, (token or '').lower())
    if not m:
        return None
    number, mac = m.group('token').split('-')
    message_id = int(number)
    if not hmac.compare_digest(mac, _mac(secret, message_id)):
        return None
    return message_id


def envelope_sender(template: str, secret: bytes, message_id: int) -> str:
    """The envelope sender of copy *message_id*."""
    return template.replace(PLACEHOLDER, make_token(secret, message_id))


def token_pattern(template: str) -> 're.Pattern[str]':
    """A regular expression matching the addresses *template* makes (any
    case: some mail systems change the case of a local part); its group
    ``token`` is the token."""
    before, _, after = template.lower().partition(PLACEHOLDER)
    return re.compile(r'(?<![^\s<:"\'(,;])' + re.escape(before) +
                      _TOKEN_PATTERN + re.escape(after) + r'(?![\w.-])',
                      re.IGNORECASE)


def find_token(template: str, addresses: Iterable[str]) -> Optional[str]:
    """The first token found in *addresses* (header values or envelope
    addresses, with or without angle brackets), or None."""
    pattern = token_pattern(template)
    for address in addresses:
        m = pattern.search(address or '')
        if m:
            return m.group('token').lower()
    return None


def apply_envelope(env, template: str, messages) -> None:
    """Give each claimed copy in *messages* its VERP envelope sender (in
    place); nothing when *template* is empty."""
    if not template or not messages:
        return
    secret = read_secret(env)
    for message in messages:
        message.sender = envelope_sender(template, secret, message.id)
