"""IWikiChangeListener: wiki pages go through the same outbox as tickets.

Trac calls these methods after its commit (the web form, ``trac-admin wiki
import``, scripts).  Nothing here may raise into the user's save, and the
snapshot (both texts: the mail shows the change as it was, whatever
happens to the page later) goes through :func:`tracnotify.outbox.add_event`
like a ticket's.

Mailed: a page created, changed (a new version with new text), renamed or
deleted, and files attached to or removed from a page.  Not mailed: one
version deleted by an administrator, an edited change comment and a change
of the read-only flag alone (history clean-up, like a ticket change
deletion).  Trac does not say who renamed or deleted a page: those mails
have no author.
"""

from datetime import datetime

from trac.attachment import IAttachmentChangeListener
from trac.core import Component, implements
from trac.util.datefmt import datetime_now, to_utimestamp, utc
from trac.util.text import exception_to_unicode
from trac.wiki.api import IWikiChangeListener

from tracnotify import outbox, watches
from tracnotify.config import load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.wiki_event import (
    ATTACHMENT_ADDED,
    ATTACHMENT_DELETED,
    CHANGED,
    CREATED,
    DELETED,
    REALM,
    RENAMED,
    WikiEvent,
)
from tracnotify.wiki_subscribers import WATCH_CLASS


def _time(value) -> int:
    return to_utimestamp(value if isinstance(value, datetime)
                         else datetime_now(utc))


def previous_version(env, name: str, version: int) -> int:
    """The version of page *name* before *version* (0 for none: versions
    deleted by an administrator leave gaps)."""
    for old_version, in env.db_query("""
            SELECT MAX(version) FROM wiki WHERE name=%s AND version<%s
            """, (name, version)):
        return int(old_version or 0)
    return 0


class WikiMailListener(Component):
    """Records each change of a wiki page (and of its attachments) in
    tracnotify's outbox."""

    implements(IWikiChangeListener, IAttachmentChangeListener)

    # IWikiChangeListener methods

    def wiki_page_added(self, page):
        def event():
            if page.text == page.old_text:
                return None  # version 1's read-only flag set or cleared
            return WikiEvent(kind=CREATED, page=page.name,
                             time=_time(page.time), author=page.author or '',
                             version=page.version, text=page.text or '',
                             comment=page.comment or '')
        self._record(event, page.name)

    def wiki_page_changed(self, page, version, t, comment, author):
        def event():
            if page.text == page.old_text:
                return None  # the read-only flag alone, or nothing new
            # the text the editor started from: the page before this save
            return WikiEvent(kind=CHANGED, page=page.name, time=_time(t),
                             author=author or '', version=version,
                             old_version=previous_version(
                                 self.env, page.name, version),
                             text=page.text or '',
                             old_text=page.old_text or '',
                             comment=comment or '')
        self._record(event, page.name)

    def wiki_page_deleted(self, page):
        self._record(lambda: WikiEvent(
            kind=DELETED, page=page.name, time=_time(None)), page.name)

    def wiki_page_version_deleted(self, page):
        pass  # history clean-up by an administrator: nothing to announce

    def wiki_page_renamed(self, page, old_name):
        try:  # the watchers follow the page to its new name
            watches.move_watches(self.env, WATCH_CLASS, REALM, old_name,
                                 page.name)
        except Exception as e:
            self.log.error('tracnotify: watchers of wiki page %s not moved '
                           'to %s: %s', old_name, page.name,
                           exception_to_unicode(e, traceback=True))
        self._record(lambda: WikiEvent(
            kind=RENAMED, page=page.name, time=_time(None),
            version=page.version, old_name=old_name), page.name)

    def wiki_page_comment_modified(self, page, old_comment):
        pass  # an edited change comment: history, not news

    # IAttachmentChangeListener methods

    def attachment_added(self, attachment):
        self._attachment(ATTACHMENT_ADDED, attachment, attachment.date)

    def attachment_deleted(self, attachment):
        self._attachment(ATTACHMENT_DELETED, attachment, None)

    def attachment_moved(self, attachment, old_parent_realm, old_parent_id,
                         old_filename):
        pass  # Trac does not mail moves either

    # Internal methods

    def _attachment(self, kind: str, attachment, when) -> None:
        if getattr(attachment, 'parent_realm', None) != REALM:
            return
        self._record(lambda: WikiEvent(
            kind=kind, page=attachment.parent_id, time=_time(when),
            author=attachment.author or '', filename=attachment.filename,
            attachment_description=attachment.description or ''),
            attachment.parent_id)

    def _record(self, make_event, name: str) -> None:
        """Store the event *make_event* returns (None: nothing to mail);
        every error is logged, never raised."""
        try:
            if not load_config(self.env).smtp_enabled:
                return
            event = make_event()
            if event is None:
                return
            outbox.add_event(self.env, event)
        except Exception as e:  # never break the user's wiki save
            self.log.error('tracnotify: could not record the change of wiki '
                           'page %s for mail: %s', name,
                           exception_to_unicode(e, traceback=True))
            return
        DeliveryService(self.env).wake()
