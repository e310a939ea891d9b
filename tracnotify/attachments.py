"""IAttachmentChangeListener: files attached to or removed from a ticket.

Trac 1.6 mails a ticket's watchers when a file is attached to it or removed
from it (``TicketAttachmentNotifier``).  That notifier still runs, but its
event belongs to the ticket realm, which :class:`OutboxDistributor` leaves
to tracnotify; this component records the same change in the outbox, so it
goes the way of any ticket change: same recipients and permission check,
same transports, threaded under the ticket's first mail.

Attachments of wiki pages are mailed to the page's watchers by
:mod:`tracnotify.wiki_listener`; milestones and other realms send nothing.  A
ticket's attachments removed together with the ticket itself are recorded
too, but produce no mail (the ``ticket_deleted`` mail says it all): see
:func:`tracnotify.pipeline.build_messages`.
"""

from datetime import datetime

from trac.attachment import IAttachmentChangeListener
from trac.core import Component, implements
from trac.ticket.model import Ticket
from trac.util.datefmt import datetime_now, to_utimestamp, utc
from trac.util.text import exception_to_unicode

from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.event import ATTACHMENT_ADDED, ATTACHMENT_DELETED, TicketEvent


def attachment_event(kind: str, attachment, ticket,
                     time: datetime) -> TicketEvent:
    """The snapshot of an attachment change of *ticket*.

    The author of the event (the "updater") is the attachment's author:
    Trac does not record who removed a file.
    """
    author = attachment.author or ''
    return TicketEvent(
        kind=kind, ticket_id=ticket.id, time=to_utimestamp(time),
        author=author, values=dict(ticket.values),
        filename=attachment.filename,
        attachment_description=attachment.description or '',
        attachment_author=author)


class AttachmentMailListener(Component):
    """Records each file attached to or removed from a ticket in
    tracnotify's outbox."""

    implements(IAttachmentChangeListener)

    # IAttachmentChangeListener methods

    def attachment_added(self, attachment):
        self._record(ATTACHMENT_ADDED, attachment,
                     attachment.date or datetime_now(utc))

    def attachment_deleted(self, attachment):
        self._record(ATTACHMENT_DELETED, attachment, datetime_now(utc))

    def attachment_moved(self, attachment, old_parent_realm, old_parent_id,
                         old_filename):
        pass  # Trac does not mail moves either

    # Internal methods

    def _record(self, kind: str, attachment, time: datetime) -> None:
        try:
            if attachment.parent_realm != 'ticket':
                return
            config = load_config(self.env)
            if not config.smtp_enabled:
                return
            ticket = Ticket(self.env, attachment.parent_id)
            outbox.add_event(self.env, attachment_event(kind, attachment,
                                                        ticket, time))
        except Exception as e:  # never break the user's upload or removal
            self.log.error('tracnotify: could not record %s of "%s" on '
                           '%s:%s for mail: %s', kind,
                           getattr(attachment, 'filename', None),
                           getattr(attachment, 'parent_realm', None),
                           getattr(attachment, 'parent_id', None),
                           exception_to_unicode(e, traceback=True))
            return
        DeliveryService(self.env).wake()
