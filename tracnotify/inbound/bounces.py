"""Bounces of the mail tracnotify sent: which copy, which address, counted.

:func:`receive.receive <tracnotify.inbound.receive.receive>` asks
:func:`handle_bounce` first about every message it takes in.  A message is
ours when it was delivered to a ``bounce_address`` (VERP, see
:mod:`tracnotify.mail.verp`): the token says which copy bounced, and so
which address (the copy's recipient, whatever the bounce itself claims).

* a forged, altered or malformed token: refused with 67 (EX_NOUSER), so
  the MTA returns it and nothing is counted;
* a good token and a bounce (:mod:`.bounce_parse`): counted once against
  the copy's address (:mod:`.bounce_record`), taken (0);
* a good token and no bounce (an auto-reply sent to the envelope sender):
  dropped (0);
* a good token whose copy was purged from the outbox: dropped (0).

Anything not sent to the bounce address goes on to the reply path (None).
"""

import re
from email.message import Message
from typing import Optional

from tracnotify.config import load_config
from tracnotify.inbound.bounce_parse import parse_bounce, verp_candidates
from tracnotify.inbound.bounce_record import record_bounce
from tracnotify.mail import verp

EX_OK, EX_NOUSER = 0, 67


def handle_bounce(env, msg: Message, recipient: Optional[str]):
    """The :class:`~tracnotify.inbound.receive.Outcome` of *msg* when it
    was sent to the bounce address, else None (see the module doc)."""
    from tracnotify.inbound.receive import Outcome
    template = load_config(env).bounce_address
    if not template:
        return None
    form = _form(template)
    addressed = [a for a in verp_candidates(msg, recipient)
                 if form.search(a or '')]
    if not addressed:
        return None
    token = verp.find_token(template, addressed)
    message_id = verp.check_token(verp.read_secret(env), token) \
        if token else None
    if message_id is None:
        return Outcome(EX_NOUSER, 'bounce', 'refused',
                       'unknown or altered bounce address %s'
                       % addressed[0][:200])
    rows = env.db_query('SELECT recipient FROM tracnotify_message '
                        'WHERE id=%s', (message_id,))
    report = parse_bounce(msg)
    if report is None:
        return Outcome(EX_OK, 'bounce', 'dropped',
                       'not a bounce (an automatic reply to the envelope '
                       'sender of message %d)' % message_id)
    if not rows:
        return Outcome(EX_OK, 'bounce', 'dropped',
                       'message %d is no longer in the outbox' % message_id)
    address = rows[0][0]
    failure = report.failure_for(address) or max(
        report.failures, key=lambda f: f.hard)
    counted = record_bounce(env, address, message_id, failure.hard,
                            failure.status, failure.detail or
                            ('%s reported %s' % (report.kind,
                                                 failure.address)))
    what = '%s bounce of message %d to %s (%s)' % (
        'hard' if failure.hard else 'soft', message_id, address,
        failure.status or 'no status')
    if not counted.counted:
        return Outcome(EX_OK, 'bounce', 'dropped',
                       what + ': counted already')
    return Outcome(EX_OK, 'bounce', 'taken', what + (
        ': address disabled' if counted.disabled else
        ': score %d' % counted.score))


def _form(template: str) -> 're.Pattern[str]':
    """Addresses of the bounce address's form, whatever stands where the
    token goes (so a damaged token is refused, not taken for a reply)."""
    before, _, after = template.lower().partition(verp.PLACEHOLDER)
    return re.compile(r'(?<![^\s<:"\'(,;])' + re.escape(before) +
                      r'[^@\s<>"]*' + re.escape(after) + r'(?![\w.-])',
                      re.IGNORECASE)
