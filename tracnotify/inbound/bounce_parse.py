"""What a bounce says: which addresses failed, hard or soft, and why.

The bounces are recognised by flufl.bounce (GNU Mailman's detectors, kept
up to date for Python 3): RFC 3464 delivery status notifications first,
then the usual non-standard forms (Postfix before it wrote DSNs, Exim's
``X-Failed-Recipients``, qmail, Exchange, Yahoo, AOL...), most specific
first.  Writing such detectors again would only repeat 20 years of their
fixes.  flufl.bounce says *which* addresses failed, permanently or not;
what it does not say, the status code, is read here: the ``Status`` and
``Diagnostic-Code`` fields of a DSN, else the first enhanced status code
(``5.1.1``) or SMTP reply code (``550``) written near the address.  Its
class decides: 5 is a hard bounce, 4 a soft one.

Which copy bounced is not here but in the bounce's envelope recipient, a
VERP address (:mod:`tracnotify.mail.verp`); :func:`verp_candidates` lists
where it can be found.  Plain Python: nothing here touches Trac.
"""

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Dict, Iterator, List, Optional, Tuple

import flufl.bounce

MAX_DETAIL = 300
#: headers a delivering MTA writes with the envelope recipient (the VERP
#: address), in the order they are trusted; To is what bouncing MTAs set
RECIPIENT_HEADERS = ('Delivered-To', 'X-Original-To', 'Envelope-To',
                     'X-Envelope-To', 'To')
_enhanced_re = re.compile(r'(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])')
_reply_code_re = re.compile(r'(?<![\d.-])([45])\d\d(?![\d.-])')
_inline_msgid_re = re.compile(r'^\s*Message-ID:\s*(<[^<>\s]{1,250}>)',
                              re.IGNORECASE | re.MULTILINE)
#: lines after the failed address that may still hold its status
_NEAR_LINES = 4


@dataclass(frozen=True)
class Failure:
    """One address that a bounce reports as failed."""

    address: str        # lower case
    hard: bool
    status: str         # '5.1.1', '550', or '' when none was written
    detail: str         # the diagnostic, one line


@dataclass(frozen=True)
class BounceReport:
    """What one bounce says."""

    failures: Tuple[Failure, ...]
    #: 'dsn' (RFC 3464) or 'heuristic' (one of the other detectors)
    kind: str
    #: Message-ID of the returned original, when the bounce includes it
    original_message_id: str = ''

    def failure_for(self, address: str) -> Optional[Failure]:
        """The failure of *address*, or None."""
        address = (address or '').strip().lower()
        for failure in self.failures:
            if failure.address == address:
                return failure
        return None

    @property
    def hard(self) -> bool:
        """Whether any address failed permanently."""
        return any(f.hard for f in self.failures)


def parse_bounce(msg: Message) -> Optional[BounceReport]:
    """The failures *msg* reports, or None when it is not a bounce (an
    auto-reply, a person's mail).  Never raises on a malformed message."""
    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception:              # a detector choking on broken MIME
        temporary, permanent = frozenset(), frozenset()
    dsn = _dsn_fields(msg)
    found: Dict[str, bool] = {}
    for raw in permanent:
        found[_text(raw)] = True
    for raw in temporary:
        found.setdefault(_text(raw), False)
    for address, (action, _status, _detail) in dsn.items():
        if action.startswith(('fail', 'error', 'delayed')):
            found.setdefault(address, action.startswith(('fail', 'error')))
    found.pop('', None)
    if not found:
        return None
    text = None
    failures = []
    for address, permanent_failure in sorted(found.items()):
        delayed = False
        if address in dsn:
            action, status, detail = dsn[address]
            delayed = action.startswith('delayed')   # still being tried
        else:
            text = _body_text(msg) if text is None else text
            status, detail = _status_near(text, address)
        hard = not delayed and _is_hard(permanent_failure, status)
        failures.append(Failure(address, hard, status, detail))
    return BounceReport(tuple(failures), 'dsn' if dsn else 'heuristic',
                        _original_message_id(msg))


def _is_hard(permanent: bool, status: str) -> bool:
    """Hard: the status code's class is 5; soft: 4; without a code, what
    the detector said (failed: hard, delayed: soft)."""
    if status[:1] == '5':
        return True
    if status[:1] in ('4', '2'):
        return False
    return permanent


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode('ascii', 'replace')
    return str(value).strip().strip('<>').lower()


def _dsn_fields(msg: Message) -> Dict[str, Tuple[str, str, str]]:
    """``{address: (action, status, diagnostic)}`` of the per-recipient
    blocks of every message/delivery-status part."""
    fields: Dict[str, Tuple[str, str, str]] = {}
    for part in _walk(msg):
        if part.get_content_type() != 'message/delivery-status':
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        for block in payload:
            if not isinstance(block, Message):
                continue
            address = ''
            for name in ('Original-Recipient', 'Final-Recipient'):
                value = str(block.get(name, '') or '')
                if value:
                    address = _text(value.split(';', 1)[-1])
                    break
            if not address:
                continue
            action = str(block.get('Action', '') or '').strip().lower()
            status = _first_status(str(block.get('Status', '') or ''))
            detail = _one_line(str(block.get('Diagnostic-Code', '') or ''))
            detail = detail.split(';', 1)[-1].strip() if ';' in detail \
                else detail
            if not status:
                status = _first_status(detail)
            fields[address] = (action, status, detail)
    return fields


def _walk(msg: Message) -> Iterator[Message]:
    try:
        yield from msg.walk()
    except Exception:
        return


def _first_status(text: str) -> str:
    m = _enhanced_re.search(text or '')
    if m:
        return '.'.join(m.groups())
    m = _reply_code_re.search(text or '')
    return m.group(0) if m else ''


def _one_line(text: str) -> str:
    return ' '.join((text or '').split())[:MAX_DETAIL]


def _body_text(msg: Message) -> str:
    """The text parts of the bounce itself (not of the returned mail)."""
    texts: List[str] = []
    for part in _walk(msg):
        if part.get_content_type() in ('message/rfc822',
                                       'text/rfc822-headers'):
            break               # the returned original starts here
        if part.get_content_maintype() != 'text':
            continue
        try:
            data = part.get_payload(decode=True) or b''
        except Exception:
            continue
        charset = part.get_content_charset() or 'utf-8'
        try:
            texts.append(data.decode(charset, 'replace'))
        except LookupError:
            texts.append(data.decode('utf-8', 'replace'))
    return '\n'.join(texts)


def _status_near(text: str, address: str) -> Tuple[str, str]:
    """The status code and diagnostic written with *address* in *text*:
    on its line or the few after it (a non-standard bounce)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if address not in line.lower():
            continue
        near = ' '.join(x.strip() for x in lines[i:i + _NEAR_LINES + 1])
        near = near[near.lower().index(address) + len(address):]
        status = _first_status(near)
        if status:
            return status, _one_line(near.lstrip('>: '))
    status = _first_status(text)
    return status, ''


def _original_message_id(msg: Message) -> str:
    """The Message-ID of the returned original (message/rfc822 or
    text/rfc822-headers part), or ''."""
    from email.parser import HeaderParser
    for part in _walk(msg):
        kind = part.get_content_type()
        if kind == 'message/rfc822':
            payload = part.get_payload()
            if isinstance(payload, list) and payload and \
                    isinstance(payload[0], Message):
                return str(payload[0].get('Message-ID', '') or '').strip()
        elif kind == 'text/rfc822-headers':
            try:
                data = part.get_payload(decode=True) or b''
                headers = HeaderParser().parsestr(
                    data.decode('utf-8', 'replace'))
            except Exception:
                continue
            return str(headers.get('Message-ID', '') or '').strip()
    m = _inline_msgid_re.search(_body_text(msg))   # Exim: the copy inline
    return m.group(1) if m else ''


def verp_candidates(msg: Message, recipient: Optional[str] = None
                    ) -> List[str]:
    """Where the VERP address can be: the envelope recipient the MTA gave
    (*recipient*), then the headers of :data:`RECIPIENT_HEADERS`."""
    found = [recipient] if recipient else []
    for name in RECIPIENT_HEADERS:
        try:
            values = [str(v) for v in msg.get_all(name, [])]
        except Exception:
            continue
        found.extend(a for _n, a in getaddresses(values) if a)
        found.extend(values)
    return found
