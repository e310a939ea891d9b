"""The one entry every inbound path calls: :func:`receive`.

    parse (never raises) -> bounces.handle_bounce -> loop and auto-reply
    guards -> the reply path -> one row in tracnotify_inbound

A DSN is automatic by definition, so bounces are asked before the guards
that drop automatic mail.  The exit codes are sendmail's (sysexits.h), so
that an MTA piping to ``notify receive`` bounces or retries correctly: 0
when the message was taken or deliberately dropped (a refused reply whose
owner is told by mail is taken too), 67 (EX_NOUSER) for an unknown,
expired or altered reply address, 75 (EX_TEMPFAIL) only when the database
could not be used now (the MTA tries again later; nothing was saved).
"""

from dataclasses import dataclass
from typing import Optional

from tracnotify.config import load_config
from tracnotify.inbound import bounces, guards, replies
from tracnotify.inbound.options import load_reply_config
from tracnotify.inbound.parse import InboundMail, parse
from tracnotify.inbound.record import Entry, record
from tracnotify.inbound.tokens import now_us

EX_OK, EX_NOUSER, EX_TEMPFAIL = 0, 67, 75
#: larger messages are refused unread (Trac's own attachments are limited
#: by [attachment] max_size, checked on each attachment)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """What became of one received message."""

    exit_code: int          # 0, 67 (EX_NOUSER) or 75 (EX_TEMPFAIL)
    kind: str               # reply | bounce | auto | unknown
    outcome: str            # taken | refused | dropped | failed
    reason: str


def _temporary(env, error: BaseException) -> bool:
    """Whether *error* is the database being unusable for now (locked,
    connection lost), rather than a fault of the message or the code."""
    exc = getattr(env, 'db_exc', None)
    kinds = tuple(k for k in (getattr(exc, 'OperationalError', None),
                              getattr(exc, 'InterfaceError', None)) if k)
    return bool(kinds) and isinstance(error, kinds)


def receive(env, raw: bytes, recipient: Optional[str] = None) -> Outcome:
    """Take one RFC 5322 message *raw*, delivered to *recipient* (the
    MTA's envelope recipient; else Delivered-To, X-Original-To or To
    say); never raises."""
    entry = Entry(received=now_us(), kind='unknown', outcome='failed',
                  reason='')
    try:
        mail = parse(raw, headers_only=len(raw) > MAX_MESSAGE_BYTES)
        candidates = mail.candidates(recipient)
        entry.sender, entry.subject = mail.sender, mail.subject
        entry.message_id = mail.message_id
        entry.recipient = candidates[0] if candidates else ''
        outcome, recorded = _route(env, mail, raw, recipient, candidates,
                                   entry)
    except Exception as error:
        temporary = _temporary(env, error)
        env.log.log(30 if temporary else 40,
                    'tracnotify: inbound message %s failed: %s',
                    entry.message_id or '(no Message-ID)', error,
                    exc_info=not temporary)
        outcome = Outcome(EX_TEMPFAIL, entry.kind, 'failed',
                          ('temporary failure: %s' if temporary else
                           'internal error: %s') % str(error)[:300])
        recorded = False
    if not recorded:
        entry.kind, entry.outcome = outcome.kind, outcome.outcome
        entry.reason = outcome.reason
        try:
            record(env, entry)
        except Exception as error:
            env.log.warning('tracnotify: inbound message not recorded: %s',
                            error)
            if outcome.outcome != 'failed' and _temporary(env, error):
                # the MTA will bring it again; nothing was saved
                outcome = Outcome(EX_TEMPFAIL, outcome.kind, 'failed',
                                  'temporary failure: %s' % str(error)[:300])
    return outcome


def _route(env, mail: InboundMail, raw: bytes, recipient: Optional[str],
           candidates: list, entry: Entry):
    """``(Outcome, recorded)`` of a parsed message."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Outcome(EX_OK, 'unknown', 'refused',
                       'message too large (%d bytes)' % len(raw)), False
    found = bounces.handle_bounce(env, mail.msg, recipient)
    if found is not None:
        return found, False
    auto = guards.auto_reason(mail)
    if auto:
        return Outcome(EX_OK, 'auto', 'dropped', auto), False
    config = load_config(env)
    loop = guards.loop_reason(mail, guards.own_addresses(config),
                              load_reply_config(env).pattern)
    if loop:
        return Outcome(EX_OK, 'auto', 'dropped', loop), False
    limit = load_reply_config(env).rate_limit
    if guards.over_rate(env, mail.sender, limit, entry.received):
        return Outcome(EX_OK, 'auto', 'dropped',
                       'more than %d messages from %s within an hour'
                       % (limit, mail.sender)), False
    verdict = replies.handle_reply(env, mail, candidates, entry)
    return Outcome(verdict.exit_code, verdict.kind, verdict.outcome,
                   verdict.reason), verdict.recorded
