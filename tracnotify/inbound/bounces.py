"""Bounces of the mail tracnotify sent (filled in by the bounces work).

:func:`receive.receive <tracnotify.inbound.receive.receive>` asks
:func:`handle_bounce` first about every message it takes in.
"""

from email.message import EmailMessage
from typing import Optional


def handle_bounce(env, msg: EmailMessage, recipient: Optional[str]):
    """The :class:`~tracnotify.inbound.receive.Outcome` of *msg* when it
    is a bounce (a DSN, a non-standard bounce, a VERP address), else None
    to let the reply path have it.  The bounces engineer fills this in;
    until then nothing is a bounce."""
    return None
