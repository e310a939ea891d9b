"""Hands ticket mail over from Trac's built-in notifier to tracnotify.

Trac 1.6 mails ticket changes itself, from the web UI and batch modify only,
synchronously, in one Bcc blast.  ``trac-admin ENV upgrade`` disables Trac's
``EmailDistributor`` (``[components]
trac.notification.mail.emaildistributor = disabled``) and this subclass takes
its place: it offers the same ``email`` transport, so Preferences ->
Notifications keeps working, skips ticket events (tracnotify's listener has
already queued them) and passes every other realm on to Trac's own code
unchanged.
"""

from trac.notification.mail import EmailDistributor


class OutboxDistributor(EmailDistributor):
    """Trac's e-mail distributor, minus ticket mail (tracnotify sends it)."""

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

    def distribute(self, transport, recipients, event):
        if event.realm == 'ticket':
            self.log.debug('tracnotify: ticket %s event left to tracnotify',
                           event.category)
            return
        super().distribute(transport, recipients, event)
