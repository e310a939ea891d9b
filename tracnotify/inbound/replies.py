"""Replies that become ticket comments.

The reply address's token (not the forgeable From) says who writes: the
Trac login it names, or the bare address it was made for.  The reply is
taken as a whole or not at all: every check comes before anything is
saved, and the comment, its attachments and the inbound record are written
in one transaction.
"""

import os
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import List, Optional, Tuple

from trac.attachment import Attachment
from trac.perm import PermissionCache
from trac.resource import Resource, ResourceNotFound
from trac.ticket.model import Ticket
from trac.util.datefmt import utc
from trac.web.api import normalize_filename

from tracnotify.inbound import tokens
from tracnotify.inbound.body import ReplyContent, Unreadable, read_reply
from tracnotify.inbound.notice import queue_notice
from tracnotify.inbound.options import ReplyConfig, load_reply_config
from tracnotify.inbound.parse import InboundMail
from tracnotify.inbound.record import Entry, record

EX_OK, EX_NOUSER, EX_TEMPFAIL = 0, 67, 75


@dataclass
class Verdict:
    """What the reply path decided (receive() turns it into an Outcome)."""

    exit_code: int
    kind: str
    outcome: str
    reason: str
    recorded: bool = False      # written with the comment, in its transaction


def find_token(config: ReplyConfig, candidates: List[str]) -> Optional[str]:
    """The token of the first reply address among *candidates*."""
    pattern = config.pattern
    if pattern is None:
        return None
    for address in candidates:
        match = pattern.match(address.strip().lower())
        if match:
            return match.group(1)
    return None


def user_email(env, sid: str) -> str:
    """The e-mail address of the Trac user *sid* ('' when unknown)."""
    for value, in env.db_query("""
            SELECT value FROM session_attribute
            WHERE sid=%s AND authenticated=1 AND name='email'""", (sid,)):
        return (value or '').strip().lower()
    return ''


def handle_reply(env, mail: InboundMail, candidates: List[str],
                 entry: Entry) -> Verdict:
    """Take *mail* as a reply, or refuse it; *entry* gets the ticket and
    the user."""
    config = load_reply_config(env)
    for error in config.errors:
        env.log.warning('tracnotify: %s', error)
    if not config.enabled:
        return Verdict(EX_NOUSER, 'unknown', 'refused',
                       'replies by mail are off (reply_address is empty)')
    token = find_token(config, candidates)
    if token is None:
        return Verdict(EX_NOUSER, 'unknown', 'refused',
                       'no reply address among the recipients')
    # the record (and the admin's page) never shows a whole token
    entry.recipient = config.address_for(token[:4] + '...')
    state, owner = tokens.lookup(env, token)
    if owner is None:
        return Verdict(EX_NOUSER, 'reply', 'refused',
                       'unknown or altered reply address')
    entry.ticket, entry.sid = owner.ticket, owner.sid or owner.address
    if state == tokens.EXPIRED:
        return _refuse(env, mail, owner, EX_NOUSER,
                       'the reply address has expired')
    refusal = _check(env, mail, config, owner)
    if refusal:
        return _refuse(env, mail, owner, EX_OK, refusal)
    try:
        content = read_reply(mail.msg, config.max_attachment)
    except Unreadable as e:
        return _refuse(env, mail, owner, EX_OK, str(e))
    if not content.text and not content.attachments:
        return _refuse(env, mail, owner, EX_OK,
                       'no new text (only quoted mail or a signature)')
    entry.kind, entry.outcome = 'reply', 'taken'
    entry.reason = 'comment added' if content.text else 'attachments added'
    entry.detail = content.text[:2000]
    save_reply(env, owner, content, entry)
    return Verdict(EX_OK, 'reply', 'taken', entry.reason, recorded=True)


def _check(env, mail: InboundMail, config: ReplyConfig,
           owner: tokens.TokenOwner) -> Optional[str]:
    """Why the reply may not be taken, before it is read, or None."""
    broken = mail.broken_structure
    if broken:
        return 'malformed MIME structure (%s)' % ', '.join(sorted(set(broken)))
    if config.require_from:
        allowed = {owner.address}
        if owner.sid:
            allowed.add(user_email(env, owner.sid))
        if mail.sender not in allowed - {''}:
            return 'it came from %s, not from the address the mail was ' \
                   'sent to' % (mail.sender or 'no address')
    try:
        Ticket(env, owner.ticket)
    except ResourceNotFound:
        return 'ticket #%s no longer exists' % owner.ticket
    perm = PermissionCache(env, owner.sid or 'anonymous')
    if 'TICKET_APPEND' not in perm(Resource('ticket', owner.ticket)):
        return '%s may not comment on ticket #%s (TICKET_APPEND)' % (
            owner.sid or owner.address, owner.ticket)
    return None


def _refuse(env, mail: InboundMail, owner: tokens.TokenOwner,
            exit_code: int, reason: str) -> Verdict:
    """A refused reply: its owner is told (rate-limited)."""
    queue_notice(env, owner.address, owner.ticket, reason, owner.sid,
                 mail.message_id)
    return Verdict(exit_code, 'reply', 'refused', reason)


def save_reply(env, owner: tokens.TokenOwner, content: ReplyContent,
               entry: Entry) -> None:
    """The attachments, the comment and *entry*, in one transaction (the
    files of the attachments are removed again if it fails)."""
    author = owner.sid or owner.address
    when = datetime.now(utc)
    written: List[Attachment] = []
    try:
        with env.db_transaction as db:
            for name, data in content.attachments:
                attachment = Attachment(env, 'ticket', owner.ticket)
                attachment.author = author
                attachment.description = ''
                attachment.insert(_safe_name(name), BytesIO(data), len(data),
                                  when)
                written.append(attachment)
            if content.text:
                ticket = Ticket(env, owner.ticket)
                ticket.save_changes(author, content.text, when)
            record(env, entry, db)
    except BaseException:
        for attachment in written:
            _remove_file(attachment)
        raise


def _safe_name(name: str) -> str:
    name = normalize_filename(os.path.basename(name.replace('\\', '/')))
    return name.strip('. ') or 'attachment'


def _remove_file(attachment: Attachment) -> Tuple[bool, str]:
    path = attachment.path if attachment.filename else ''
    try:
        if path and os.path.isfile(path):
            os.remove(path)
            return True, path
    except OSError:
        pass
    return False, path
