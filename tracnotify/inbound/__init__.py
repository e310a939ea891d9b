"""Mail coming in: replies that become ticket comments, and bounces.

Every inbound path (``notify receive`` from an MTA pipe, ``notify fetch``
from an IMAP mailbox) hands each message to :func:`receive.receive`, the
one entry that parses it, keeps loops and auto-replies out, passes bounces
to :mod:`.bounces` and replies to :mod:`.replies`, and records the outcome
in ``tracnotify_inbound``.  See docs/replies.md.
"""
