"""A received message, parsed without ever raising.

The ``email`` package's parser is lenient (it records defects instead of
raising), but reading a header of a broken message through the header
registry can still raise; :class:`InboundMail` reads every header through
:func:`header`, which returns '' for what cannot be read.
"""

import email
import email.policy
from dataclasses import dataclass, field
from email.errors import MessageDefect
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import List, Optional

#: recipients an MTA or a mailbox leaves in the headers, best first
RECIPIENT_HEADERS = ('Delivered-To', 'X-Original-To', 'To', 'Cc')
#: defects that mean the MIME structure cannot be trusted (a part may be
#: cut or run into the next): such a reply is refused, not guessed at
STRUCTURE_DEFECTS = ('StartBoundaryNotFoundDefect',
                     'MultipartInvariantViolationDefect',
                     'CloseBoundaryNotFoundDefect',
                     'NoBoundaryInMultipartDefect',
                     'MisplacedEnvelopeHeaderDefect',
                     'MissingHeaderBodySeparatorDefect')


def header(msg: Message, name: str) -> str:
    """The first *name* header of *msg* as text ('' when missing or
    unreadable)."""
    try:
        value = msg.get(name)
        return '' if value is None else str(value).strip()
    except Exception:
        try:
            raw = msg.get_all(name, failobj=[''])[0]
            return str(getattr(raw, '_parse_tree', raw) or '').strip()
        except Exception:
            return ''


def all_headers(msg: Message, name: str) -> List[str]:
    """Every *name* header of *msg* as text."""
    try:
        values = msg.get_all(name) or []
    except Exception:
        return []
    out = []
    for value in values:
        try:
            out.append(str(value).strip())
        except Exception:
            continue
    return out


def addresses(values: List[str]) -> List[str]:
    """The plain e-mail addresses in header *values*, lower case."""
    try:
        pairs = getaddresses(values)
    except Exception:
        return []
    return [addr.strip().lower() for _name, addr in pairs
            if addr and '@' in addr and not any(c.isspace() for c in addr)]


@dataclass
class InboundMail:
    """One received message and what its headers say."""

    raw: bytes
    msg: EmailMessage
    sender: str = ''                # the From address, lower case
    subject: str = ''
    message_id: str = ''
    defects: List[str] = field(default_factory=list)

    def candidates(self, envelope: Optional[str]) -> List[str]:
        """The addresses it was delivered to: the MTA's envelope recipient
        when given, else those of the headers (Delivered-To, ...)."""
        if envelope:
            return addresses([envelope]) or [envelope.strip().lower()]
        found: List[str] = []
        for name in RECIPIENT_HEADERS:
            for address in addresses(all_headers(self.msg, name)):
                if address not in found:
                    found.append(address)
        return found

    @property
    def broken_structure(self) -> List[str]:
        """The names of the structure defects found in any part."""
        return [d for d in self.defects if d in STRUCTURE_DEFECTS]


def _defects(msg: Message) -> List[str]:
    found: List[str] = []
    try:
        parts = list(msg.walk())
    except Exception:
        return ['UnwalkableMessage']
    for part in parts:
        for defect in getattr(part, 'defects', []) or []:
            if isinstance(defect, MessageDefect):
                found.append(type(defect).__name__)
    return found


def parse(raw: bytes, headers_only: bool = False) -> InboundMail:
    """*raw* (RFC 5322 bytes) as an :class:`InboundMail` (only its header
    with *headers_only*); never raises."""
    try:
        if headers_only:
            msg = BytesHeaderParser(policy=email.policy.default).parsebytes(
                raw)
        else:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        msg = EmailMessage()
        return InboundMail(raw, msg, defects=['UnparsableMessage'])
    sender = addresses(all_headers(msg, 'From'))
    return InboundMail(raw, msg, sender=sender[0] if sender else '',
                       subject=header(msg, 'Subject')[:300],
                       message_id=header(msg, 'Message-ID')[:300],
                       defects=_defects(msg))
