"""Hands ticket mail over from Trac's built-in notifier to tracnotify.

Trac 1.6 mails ticket changes itself, from the web UI and batch modify only,
synchronously, in one Bcc blast.  ``trac-admin ENV upgrade`` disables Trac's
``EmailDistributor`` (``[components]
trac.notification.mail.emaildistributor = disabled``) and this subclass takes
its place: it offers the same ``email`` transport, so Preferences ->
Notifications keeps working, skips the ticket notifications that tracnotify
records itself (its listeners have already queued them) and passes every
other notification on to Trac's own code unchanged: other realms, and
ticket notifications of other categories (a reminder plugin's
``TicketChangeEvent('reminder')``, say).
"""

from trac.notification.mail import EmailDistributor

from tracnotify.attachments import AttachmentMailListener
from tracnotify.listener import TicketMailListener

#: ticket categories of Trac's notifications -> the tracnotify listener that
#: records the same change (Trac's web UI, batch modify and milestone
#: retargeting send these; the listener sees every save of the same change)
RECORDED = {
    'created': TicketMailListener,
    'changed': TicketMailListener,
    'batchmodify': TicketMailListener,
    'attachment added': AttachmentMailListener,
    'attachment deleted': AttachmentMailListener,
}


class OutboxDistributor(EmailDistributor):
    """Trac's e-mail distributor, minus the ticket mail tracnotify sends."""

    def __init__(self):
        try:
            super().__init__()
        except Exception as e:
            # Trac's own __init__ raises on a bad mime_encoding, which would
            # break every notification of every realm (and show an error
            # on each ticket save); tracnotify names the value in its
            # configuration errors and Trac's mail of other realms goes on
            from trac.notification.mail import create_charset
            self.log.warning('tracnotify: Trac\'s mail of other realms '
                             'uses base64: %s', e)
            self._charset = create_charset('base64')

    def recorded_by_tracnotify(self, realm: str, category: str) -> bool:
        """True when tracnotify's own listener records (and mails) the
        change behind a notification of *realm* and *category*."""
        listener = RECORDED.get(category) if realm == 'ticket' else None
        return listener is not None and self.env.is_enabled(
            listener)

    def distribute(self, transport, recipients, event):
        if self.recorded_by_tracnotify(event.realm, event.category):
            self.log.debug('tracnotify: ticket %s event left to tracnotify',
                           event.category)
            return
        super().distribute(transport, recipients, event)
