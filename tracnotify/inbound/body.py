"""The new text of a reply and its attachments, from a parsed message.

The text part is decoded strictly in its declared charset: a part that is
not what it says it is (bytes of another charset, an unknown charset) is
refused rather than saved garbled.  Quoted text and signatures are removed
by mail-parser-reply (see docs/replies.md for why that library).
"""

from dataclasses import dataclass, field
from email.message import Message
from typing import List, Optional, Tuple

from mailparser_reply import EmailReplyParser

from tracnotify.inbound.html_text import html_to_text

#: languages whose "On ... wrote:" lines the parser knows (English always)
REPLY_LANGUAGES = ['en', 'de', 'fr']
_parser = EmailReplyParser(languages=REPLY_LANGUAGES)


class Unreadable(ValueError):
    """A message whose text or attachments cannot be taken as they are."""


@dataclass
class ReplyContent:
    """What a reply adds to a ticket."""

    text: str
    attachments: List[Tuple[str, bytes]] = field(default_factory=list)


def _charset(part: Message) -> str:
    try:
        return (part.get_content_charset() or 'us-ascii').lower()
    except Exception:
        raise Unreadable('unreadable charset parameter')


def decode_text(part: Message) -> str:
    """The text of *part* in its declared charset (strict)."""
    try:
        data = part.get_payload(decode=True) or b''
    except Exception:
        raise Unreadable('undecodable transfer encoding')
    charset = _charset(part)
    if charset in ('us-ascii', 'ascii') and not data.isascii():
        # mail clients that do not declare 8-bit text: UTF-8 or nothing
        charset = 'utf-8'
    try:
        return data.decode(charset)
    except LookupError:
        raise Unreadable('unknown charset %s' % charset[:40])
    except UnicodeDecodeError:
        raise Unreadable('text is not in its declared charset %s'
                         % charset[:40])


def unflow(text: str, delsp: bool = False) -> str:
    """RFC 3676 ``format=flowed`` text as the lines its writer meant: a
    line ending in a space continues on the next one (quoted lines only
    with the same depth); space-stuffing is undone; "-- " stays a line."""
    out: List[str] = []
    joining = False
    for line in text.replace('\r\n', '\n').split('\n'):
        depth = len(line) - len(line.lstrip('>'))
        body = line[depth:]
        if body.startswith(' '):
            body = body[1:]             # space-stuffed (or after "> ")
        soft = body.endswith(' ') and body != '-- '
        if soft and delsp:
            body = body[:-1]
        if joining and out and out[-1][0] == depth:
            out[-1] = (depth, out[-1][1] + body)
        else:
            out.append((depth, body))
        joining = soft
    return '\n'.join(('>' * d + ' ' if d else '') + b for d, b in out)


def _flowed(part: Message) -> Tuple[bool, bool]:
    try:
        flowed = (part.get_param('format') or '').lower() == 'flowed'
        delsp = (part.get_param('delsp') or '').lower() == 'yes'
    except Exception:
        return False, False
    return flowed, delsp


def _filename(part: Message) -> Optional[str]:
    try:
        return part.get_filename()
    except Exception:
        raise Unreadable('unreadable attachment name')


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        raise Unreadable('unreadable Content-Disposition')
    if disposition == 'attachment':
        return True
    # inline parts with a Content-ID are pictures of an HTML body
    # (signature logos): not attachments of the ticket
    return bool(_filename(part)) and not part.get('Content-ID') and \
        part.get_content_maintype() != 'multipart'


def split_parts(msg: Message) -> Tuple[Optional[Message], Optional[Message],
                                       List[Message]]:
    """The first text/plain part, the first text/html part and the
    attachments of *msg*."""
    plain = html = None
    attachments = []
    for part in msg.walk():
        if part.get_content_maintype() == 'multipart':
            continue
        if _is_attachment(part):
            attachments.append(part)
            continue
        ctype = part.get_content_type()
        if ctype == 'text/plain' and plain is None:
            plain = part
        elif ctype == 'text/html' and html is None:
            html = part
    return plain, html, attachments


def new_text(text: str) -> str:
    """*text* without the quoted mail and the signature: the reply's own
    words, their lines as written (indentation kept for wiki markup)."""
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    try:
        reply = _parser.read(text)
        first = reply.replies[0] if reply.replies else None
        found = first.body if first else ''
        starts_quoted = bool(first and first.headers)
    except Exception:
        found, starts_quoted = text, False
    return _without_quotes(_with_original_lines(found, text), starts_quoted)


def _without_quotes(text: str, everywhere: bool) -> str:
    """*text* without its trailing quoted lines (``>``), or without any
    (*everywhere*: the mail began with a quote, the answer is below)."""
    lines = text.split('\n')
    if everywhere:
        lines = [line for line in lines if not line.startswith('>')]
    while lines and (lines[-1].startswith('>') or not lines[-1].strip()):
        lines.pop()
    return '\n'.join(lines).strip('\n')


def _with_original_lines(found: str, text: str) -> str:
    """The parser strips every line: give back the original lines (their
    leading spaces mean something in wiki markup) when each line of
    *found* is, in order, one of *text*."""
    wanted = found.split('\n')
    out: List[str] = []
    lines = text.split('\n')
    i = 0
    for line in wanted:
        while i < len(lines) and lines[i].strip() != line.strip():
            i += 1
        if i == len(lines):
            return found.strip()
        out.append(lines[i].rstrip())
        i += 1
    return '\n'.join(out).strip('\n')


def read_reply(msg: Message, max_attachment: int) -> ReplyContent:
    """The new text and the attachments of *msg*; :class:`Unreadable`
    when it cannot be taken as a whole (an attachment over
    *max_attachment* bytes, when that is >= 0)."""
    plain, html, parts = split_parts(msg)
    if plain is not None:
        text = decode_text(plain)
        flowed, delsp = _flowed(plain)
        if flowed:
            text = unflow(text, delsp)
    elif html is not None:
        text = html_to_text(decode_text(html))
    else:
        text = ''
    attachments = []
    for part in parts:
        name = _filename(part) or 'attachment'
        try:
            data = part.get_payload(decode=True) or b''
        except Exception:
            raise Unreadable('undecodable attachment %s' % name[:80])
        if 0 <= max_attachment < len(data):
            raise Unreadable('attachment %s is too large (%d bytes, at most '
                             '%d)' % (name[:80], len(data), max_attachment))
        attachments.append((name, data))
    return ReplyContent(new_text(text).strip(), attachments)
