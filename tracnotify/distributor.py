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

If Trac's ``EmailDistributor`` is enabled again (Admin -> Plugins, an edited
``[components]`` line), the site keeps working: the log and the status page
(:func:`tracnotify.config.load_config`) say so, and the ticket events that
tracnotify records are taken from Trac's distributor at run time, so nobody
gets a ticket mail twice.
"""

from typing import Callable

from trac.notification.mail import EmailDistributor, create_charset

from tracnotify.attachments import AttachmentMailListener
from tracnotify.config import trac_distributor_enabled, trac_distributor_warning
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
#: attribute set on Trac's distributor once its ticket mail is taken over
_GUARDED = '_tracnotify_guarded'


def guard_trac_distributor(env, recorded: Callable[[str, str], bool]
                           ) -> None:
    """Keep Trac's own ``EmailDistributor`` of *env*, when it is enabled,
    from mailing what tracnotify records (``recorded(realm, category)``),
    once per environment object."""
    if not trac_distributor_enabled(env):
        return
    trac_own = env[EmailDistributor]
    if trac_own is None or getattr(trac_own, _GUARDED, False):
        return
    distribute = trac_own.distribute

    def guarded(transport, recipients, event):
        if recorded(event.realm, event.category):
            return
        distribute(transport, recipients, event)

    trac_own.distribute = guarded
    setattr(trac_own, _GUARDED, True)
    env.log.warning('tracnotify: %s', trac_distributor_warning())


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
            self.log.warning('tracnotify: Trac\'s mail of other realms '
                             'uses base64: %s', e)
            self._charset = create_charset('base64')
        # Trac lists every distributor (creating each) before it calls
        # the first one, so this runs before Trac's could send
        guard_trac_distributor(self.env, self.recorded_by_tracnotify)

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
