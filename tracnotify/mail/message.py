"""RFC 5322 / MIME messages, one per recipient, built with ``email``.

The part every recipient shares (From, Subject, threading, the encoded body)
is serialised once per change; each recipient's copy only adds its own
visible To/Cc and the reason it gets the mail.  All headers go through the
``email`` package, which refuses CR/LF in a value: no field of a ticket can
inject a header.
"""

import functools
import re
from dataclasses import dataclass, replace
from email import headerregistry
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate
from typing import List, Optional, Sequence, Tuple

from tracnotify.config import NotifyConfig
from tracnotify.mail.addresses import (
    IDNError,
    ascii_domain,
    needs_smtputf8,
    valid_local_part,
)
from tracnotify.mail.chrome import clean_header_text

UNDISCLOSED = 'undisclosed-recipients: ;'
_AUTO_SUBMITTED = b'Auto-Submitted: auto-generated\r\n'
_PRECEDENCE = b'Precedence: bulk\r\n'
_CTE = {'base64': 'base64', 'qp': 'quoted-printable'}
#: the policy bodies are encoded with: quoted-printable lines of at most 76
#: characters (RFC 2045 6.7; ``SMTP``'s 78 is the limit for header lines,
#: which stay folded at 78 as before)
BODY_POLICY = SMTP.clone(max_line_length=76)
#: with use_public_cc, a change with more visible recipients than this is
#: sent to each of them alone (To: their own address): a Cc header of
#: thousands of addresses in each of thousands of copies would take
#: quadratic time and memory, and no mail client shows it usefully
MAX_PUBLIC_ADDRESSES = 100
#: control characters that 7bit text should not carry (RFC 2045: no NUL;
#: the others confuse terminals); such text is sent quoted-printable
_not_7bit_re = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
#: RFC 5322 dot-atom (local part, short address) and an ASCII host name:
#: anything else (``.dot.@x``, ``a..b@x``) cannot be written in a To/Cc
#: list that parses back, and would fail the whole change's mail
_dot_atom_re = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
                          r"(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_domain_re = re.compile(r'^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$')
#: what :func:`personal_headers` splices without the ``email`` package:
#: values that ``email`` writes back exactly as they are (no quoting, no
#: encoded-word, no folding: lines of at most 78 octets, URLs of at most
#: 900 characters on one line)
_plain_address_re = re.compile(r'^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*'
                               r'@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$')
_plain_reason_re = re.compile(r'^[A-Za-z0-9_.-]{1,40}$')
_plain_url_re = re.compile(r'^https?://[A-Za-z0-9._~:/%+-]{1,880}$')
_MAX_PLAIN_LINE = 80            # 78 octets and CRLF
_UNDISCLOSED_LINE = b'To: undisclosed-recipients: ;\r\n'
#: what :func:`_header_line` writes without the header registry: the
#: values it writes back as they are (printable ASCII words with single
#: spaces, no encoded-word, on one line); the headers it parses as
#: something else than text only in their plain forms (Date as
#: ``formatdate`` writes it, a dot-atom Message-ID)
_plain_text_re = re.compile(r'^[!-~]+( [!-~]+)*$')
_STRUCTURED = frozenset(headerregistry._default_header_map) - {'subject'}
_date_re = re.compile(r'^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] '
                      r'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) '
                      r'[1-9][0-9]{3} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] -0000$')
_msgid_re = re.compile(r"^<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
                       r"(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                       r"@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*>$")
#: the MIME headers ``set_content`` gives a 7bit text part (then the
#: message's MIME-Version)
_SEVEN_BIT_HEAD = {
    subtype: ('Content-Type: text/%s; charset="utf-8"\r\n'
              'Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n'
              '\r\n' % subtype).encode('ascii')
    for subtype in ('plain', 'html')}


class AddressError(ValueError):
    """An address that cannot be used in a header."""


@dataclass(frozen=True)
class Recipient:
    """Who gets one copy, and why."""

    address: str
    reason: str                  # reporter, owner, cc, updater, always_cc...
    visibility: str = 'to'       # to | cc | bcc (bcc: never shown)
    sid: Optional[str] = None
    authenticated: bool = False
    #: personal one-click link (List-Unsubscribe), see tracnotify.unsubscribe
    unsubscribe_url: Optional[str] = None
    #: the language and format of this copy (see tracnotify.userprefs)
    language: str = 'en'
    format: str = 'text'         # text | html | both
    #: this copy's own Reply-To (a reply address with its token, see
    #: tracnotify.inbound.addresses); the shared part then has none
    reply_to: Optional[str] = None


@dataclass
class MailHeaders:
    """The headers shared by every copy of one change."""

    from_name: str
    from_addr: str
    reply_to: str
    subject: str
    msgid: str
    root_msgid: Optional[str]
    date: float                  # seconds since the epoch
    extra: Sequence[Tuple[str, str]] = ()


def make_address(addr: str, name: str = '', utf8: bool = False) -> Address:
    """An :class:`Address`, or :class:`AddressError` for a broken one.  An
    internationalised domain is converted to ASCII (IDNA 2008, UTS 46); a
    non-ASCII local part is accepted only with *utf8* (the copy then needs
    SMTPUTF8, see :func:`personal_headers`)."""
    addr = (addr or '').strip()
    if not addr or any(c in addr for c in '\r\n\t <>,;"()'):
        raise AddressError('invalid e-mail address: %r' % addr)
    local, _at, domain = addr.rpartition('@')
    try:
        if _at:
            if not local or not domain:
                raise AddressError('invalid e-mail address: %r' % addr)
            try:
                domain = ascii_domain(domain)
            except IDNError:
                raise AddressError('invalid domain in address: %r' % addr)
            if not _labels_ok(domain):
                raise AddressError('invalid domain in address: %r' % addr)
            if not local.isascii() and not utf8:
                raise AddressError('non-ASCII local part (needs SMTPUTF8): '
                                   '%r' % addr)
            if not valid_local_part(local, utf8) or \
                    not _domain_re.match(domain):
                raise AddressError('invalid e-mail address: %r' % addr)
            return Address(clean_header_text(name, 200), local, domain)
        if not _dot_atom_re.match(addr):
            raise AddressError('invalid e-mail address: %r' % addr)
        return Address(clean_header_text(name, 200), addr)
    except (ValueError, IndexError) as e:
        if isinstance(e, AddressError):
            raise
        raise AddressError('invalid e-mail address %r: %s' % (addr, e))


def _labels_ok(domain: str) -> bool:
    """Each label of an ASCII *domain* 1-63 characters (a final dot may
    end it), as the DNS allows."""
    labels = domain[:-1].split('.') if domain.endswith('.') else \
        domain.split('.')
    return all(0 < len(label) <= 63 for label in labels)


def choose_cte(body: str, mime_encoding: str) -> str:
    """The Content-Transfer-Encoding for *body*.

    ``none`` keeps plain 7-bit text when it can; text that is not 7-bit
    safe (non-ASCII, or lines over 998 octets) is re-encoded as
    quoted-printable rather than sent as raw 8-bit data.
    """
    if mime_encoding in _CTE:
        return _CTE[mime_encoding]
    if body.isascii() and not _not_7bit_re.search(body) and \
            all(len(line) <= 998 for line in body.splitlines()):
        return '7bit'
    return 'quoted-printable'


def encode_shared_part(headers: MailHeaders, body: str,
                       config: NotifyConfig, html: Optional[str] = None,
                       fmt: str = 'text') -> bytes:
    """Serialise the shared headers and the encoded body, once per change
    (once per language and format).  *fmt* ``html`` sends *html* alone,
    ``both`` a multipart/alternative of *body* then *html* (the last part
    is the preferred one, RFC 2046), ``text`` (or no *html*) *body* alone.

    Each header is written by the ``email`` package as it would write it
    in a whole message (:func:`_header_line`); the lines that repeat from
    change to change (From, Reply-To, X-Trac-Project, List-Id...) are
    written once per process."""
    lines = [_address_line('From', clean_header_text(headers.from_name, 200),
                           headers.from_addr)]
    if headers.reply_to:
        lines.append(_address_line('Reply-To', '', headers.reply_to))
    lines += [_header_line('Subject', clean_header_text(headers.subject)),
              _header_line('Date', formatdate(headers.date, localtime=False)),
              _header_line('Message-ID', headers.msgid)]
    if headers.root_msgid:
        lines += [_header_line('In-Reply-To', headers.root_msgid),
                  _header_line('References', headers.root_msgid)]
    lines += [_header_line(name, clean_header_text(str(value), 900))
              for name, value in headers.extra]
    lines += [_AUTO_SUBMITTED, _PRECEDENCE]
    if html is None or fmt != 'both':
        text, subtype = (html, 'html') if html is not None and \
            fmt == 'html' else (body, 'plain')
        if choose_cte(text, config.mime_encoding) == '7bit':
            # what set_content and the generator write for it
            return b''.join(lines) + _SEVEN_BIT_HEAD[subtype] + \
                _crlf_lines(text)
    # the body parts are encoded under BODY_POLICY (the parts that
    # add_alternative makes inherit it), the headers generated under SMTP
    msg = EmailMessage(policy=BODY_POLICY)
    if html is not None and fmt == 'html':
        msg.set_content(html, subtype='html', charset='utf-8',
                        cte=choose_cte(html, config.mime_encoding))
    else:
        msg.set_content(body, subtype='plain', charset='utf-8',
                        cte=choose_cte(body, config.mime_encoding))
        if html is not None and fmt == 'both':
            msg.add_alternative(html, subtype='html', charset='utf-8',
                                cte=choose_cte(html, config.mime_encoding))
    return b''.join(lines) + msg.as_bytes(policy=SMTP)


def _crlf_lines(text: str) -> bytes:
    """7bit *text* as a body: each line ended by CRLF."""
    return b'\r\n'.join(text.encode('ascii').splitlines()) + b'\r\n'


def _header_line(name: str, value: str) -> bytes:
    """``name: value`` as ``EmailMessage(policy=SMTP)`` writes it (parsed
    by the header registry, folded, CRLF): the header the ``email``
    package would put in the message, without building one.  A plain
    value on one line is written as it is (the registry would write it
    back unchanged; a test compares the two)."""
    if len(name) + len(value) <= 76 and _plain_value(name.lower(), value):
        return b'%s: %s\r\n' % (name.encode('ascii'),
                                  value.encode('ascii'))
    return _email_header_line(name, value)


def _plain_value(name: str, value: str) -> bool:
    """Whether the registry writes *value* of the header *name* (lower
    case) back as it is."""
    if name == 'date':
        return _date_re.match(value) is not None
    if name == 'message-id':
        return _msgid_re.match(value) is not None
    return name not in _STRUCTURED and '=?' not in value and \
        _plain_text_re.match(value) is not None


@functools.lru_cache(maxsize=512)
def _email_header_line(name: str, value: str) -> bytes:
    """:func:`_header_line` through the header registry."""
    return SMTP.fold_binary(*SMTP.header_store_parse(name, value))


@functools.lru_cache(maxsize=64)
def _address_line(name: str, display: str, addr: str) -> bytes:
    """From/Reply-To: the address checked by :func:`make_address`
    (:class:`AddressError` for a broken one) and written as one
    :class:`Address`."""
    address = make_address(addr)
    return SMTP.fold_binary(*SMTP.header_store_parse(
        name, Address(display, address.username, address.domain)
        if display else address))


def personal_headers(recipient: Recipient,
                     visible: Sequence[Recipient],
                     config: NotifyConfig) -> bytes:
    """To/Cc and the reason header of one recipient's copy.

    The common copy (its own plain address in To, a plain reason, a plain
    unsubscribe URL) is spliced from prepared bytes: the very bytes the
    ``email`` package writes for it (a test compares the two), without a
    header object per copy.  Anything else goes through ``email``."""
    spliced = _spliced_headers(recipient, config)
    if spliced is not None:
        return spliced
    return email_personal_headers(recipient, visible, config)


def email_personal_headers(recipient: Recipient,
                           visible: Sequence[Recipient],
                           config: NotifyConfig) -> bytes:
    """:func:`personal_headers` written by the ``email`` package.  The
    copy to an internationalised address (a non-ASCII local part) has its
    To/Cc in UTF-8 (RFC 6532; it goes out with SMTPUTF8 or not at all);
    other copies list only the addresses that can be written in ASCII."""
    utf8 = needs_smtputf8(recipient.address)
    msg = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP)
    if not utf8:
        visible = [r for r in visible if not needs_smtputf8(r.address)]
    if recipient.visibility == 'bcc':
        msg['To'] = UNDISCLOSED
        if config.use_public_cc:
            _set_public(msg, visible)
    elif config.use_public_cc:
        _set_public(msg, visible)
    else:
        msg['To'] = make_address(recipient.address, utf8=utf8)
    if recipient.reply_to:
        msg['Reply-To'] = make_address(recipient.reply_to)
    msg['X-Trac-Notification-Reason'] = recipient.reason
    return msg.as_bytes().split(b'\r\n\r\n', 1)[0] + b'\r\n' + \
        _unsubscribe_headers(recipient)


def _spliced_headers(recipient: Recipient,
                     config: NotifyConfig) -> Optional[bytes]:
    """The personal headers from prepared bytes, or None when the copy
    needs the ``email`` package (public To/Cc lists, an address or a
    reason that is not plain ASCII, lines that would be folded)."""
    if config.use_public_cc:
        return None
    if recipient.visibility == 'bcc':
        to = _UNDISCLOSED_LINE
    else:
        address = recipient.address
        if not _plain_address_re.match(address):
            return None
        to = b'To: ' + address.encode('ascii') + b'\r\n'
        if len(to) > _MAX_PLAIN_LINE:
            return None
    reason = recipient.reason
    if not _plain_reason_re.match(reason):
        return None
    url = recipient.unsubscribe_url
    if url and not _plain_url_re.match(url):
        return None
    if recipient.reply_to:      # as email_personal_headers orders it
        if not _plain_address_re.match(recipient.reply_to) or \
                len(recipient.reply_to) > _MAX_PLAIN_LINE - 12:
            return None
        to += b'Reply-To: ' + recipient.reply_to.encode('ascii') + b'\r\n'
    head = to + b'X-Trac-Notification-Reason: ' + reason.encode('ascii') + \
        b'\r\n'
    if url:
        head += b'List-Unsubscribe: <' + url.encode('ascii') + \
            b'>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n'
    return head


def _unsubscribe_headers(recipient: Recipient) -> bytes:
    """List-Unsubscribe (RFC 2369) with one-click POST (RFC 8058).  A URL
    is one word: written on one line of up to 998 octets rather than
    folded into encoded-words that mail clients would not understand."""
    url = recipient.unsubscribe_url
    if not url or not url.isascii() or len(url) > 900:
        return b''
    msg = EmailMessage(policy=SMTP.clone(max_line_length=998))
    msg['List-Unsubscribe'] = '<%s>' % url
    msg['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click'
    return msg.as_bytes().split(b'\r\n\r\n', 1)[0] + b'\r\n'


def _set_public(msg: EmailMessage, visible: Sequence[Recipient]) -> None:
    to = [make_address(r.address, utf8=True) for r in visible
          if r.visibility == 'to']
    cc = [make_address(r.address, utf8=True) for r in visible
          if r.visibility == 'cc']
    if 'To' not in msg:
        msg['To'] = to or UNDISCLOSED
    if cc:
        msg['Cc'] = cc


def build_heads(recipients: Sequence[Recipient], config: NotifyConfig,
                everyone: Optional[Sequence[Recipient]] = None
                ) -> List[Tuple[Recipient, str]]:
    """The personal headers of each recipient's copy; the copy is these
    followed by the shared part (:func:`encode_shared_part`).
    *everyone*: all recipients of the change, when *recipients* is one
    (language, format) group of them (the public To/Cc lists them all)."""
    visible = [r for r in (recipients if everyone is None else everyone)
               if r.visibility != 'bcc']
    if config.use_public_cc and len(visible) > MAX_PUBLIC_ADDRESSES:
        config = replace(config, use_public_cc=False)
    # ASCII but for the headers of a copy to an SMTPUTF8 address
    return [(recipient,
             personal_headers(recipient, visible, config).decode('utf-8'))
            for recipient in recipients]


def build_copies(shared: bytes, recipients: Sequence[Recipient],
                 config: NotifyConfig,
                 everyone: Optional[Sequence[Recipient]] = None
                 ) -> List[Tuple[Recipient, str]]:
    """One full message per recipient: personal headers + shared part
    (see :func:`build_heads`)."""
    text = shared.decode('ascii')
    return [(recipient, head + text)
            for recipient, head in build_heads(recipients, config, everyone)]
