"""ITicketChangeListener: every way a ticket changes ends up in the outbox.

Web form, batch modify, ``trac-admin``, XML-RPC and scripts all go through
``Ticket.insert`` / ``save_changes`` / ``delete``, which call these methods.
In batch modify and ``trac-admin`` they run inside the ticket's own, still
open transaction: nothing here may raise, and the snapshot is written in a
savepoint so that a failure of ours cannot abort the user's change.  For
web and script saves Trac calls them just after its commit: a process that
dies in between leaves a change without an event, which the reconciler
(:mod:`tracnotify.outbox.reconcile`) records at a later delivery pass.
Creations and changes carry a unique key, so that the two never both
record one change.

A change made outside a web request (a script, ``trac-admin``) is stored
with a recording hold, so that the process's next changes can join it in
one batch mail (:mod:`tracnotify.mail.coalesce`); the process releases its
holds when it shuts its environment down or exits.

``ticket_change_deleted`` (an administrator removing the last change) sends
nothing: it cleans up history that was already mailed.
"""

import atexit
import threading
import weakref

from trac.core import Component, implements
from trac.ticket.api import ITicketChangeListener
from trac.util.datefmt import datetime_now, to_utimestamp, utc
from trac.util.text import exception_to_unicode
from trac.web.api import IRequestFilter

from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.event import CHANGED, COMMENT, CREATED, DELETED, TicketEvent
from tracnotify.mail.coalesce import recording_hold, release_recording_holds
from tracnotify.outbox.reconcile import event_key

_web = threading.local()


def in_web_request() -> bool:
    """Whether this thread serves Trac's web requests (a thread that has
    served one keeps serving them: tracd's thread per request, a WSGI
    server's pool)."""
    return getattr(_web, 'serving', False)


class WebRequestMarker(Component):
    """Marks the threads that serve web requests: their changes are
    mailed at once, those of scripts may wait for a batch."""

    implements(IRequestFilter)

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        _web.serving = True
        return handler

    def post_process_request(self, req, template, data, metadata):
        return template, data, metadata


class TicketMailListener(Component):
    """Records each ticket change in tracnotify's outbox."""

    implements(ITicketChangeListener)

    def __init__(self):
        self._holding = False       # this process holds events for a batch
        self._exit_hooked = False

    # ITicketChangeListener methods

    def ticket_created(self, ticket):
        self._record(TicketEvent(
            kind=CREATED, ticket_id=ticket.id,
            time=to_utimestamp(ticket['time']),
            author=ticket['reporter'] or '', values=dict(ticket.values)))

    def ticket_changed(self, ticket, comment, author, old_values):
        fields_changed = any(old_values.get(k) != ticket.values.get(k)
                             for k in old_values)
        self._record(TicketEvent(
            kind=CHANGED if fields_changed or not comment else COMMENT,
            ticket_id=ticket.id, time=to_utimestamp(ticket['changetime']),
            author=author or '', values=dict(ticket.values),
            old_values=dict(old_values), comment=comment or ''))

    def ticket_deleted(self, ticket):
        self._record(TicketEvent(
            kind=DELETED, ticket_id=ticket.id,
            time=to_utimestamp(datetime_now(utc)), author='',
            values=dict(ticket.values)))

    def ticket_comment_modified(self, ticket, cdate, author, comment,
                                old_comment):
        self._record(TicketEvent(
            kind=COMMENT, ticket_id=ticket.id, time=to_utimestamp(cdate),
            author=author or '', values=dict(ticket.values),
            comment=comment or '', old_comment=old_comment or ''))

    def ticket_change_deleted(self, ticket, cdate, changes):
        pass  # history clean-up by an administrator: nothing to announce

    # Internal methods

    def _record(self, event: TicketEvent) -> None:
        key = event_key(event)
        hold = None
        try:
            config = load_config(self.env)
            if not config.smtp_enabled:
                # kept as "not mailed", so that the reconciler does not
                # mail it once mail is back on
                if key is not None:
                    outbox.add_event(self.env, event, change_key=key,
                                     state=outbox.OFF)
                return
            if not in_web_request():
                hold = recording_hold(config, event)
            outbox.add_event(self.env, event, change_key=key, hold=hold)
        except Exception as e:  # never break the user's ticket save
            if key is not None and self._duplicate(e):
                self.log.info('tracnotify: %s of ticket #%s was recorded '
                              'already (by the reconciler)', event.kind,
                              event.ticket_id)
                return
            self.log.error('tracnotify: could not record %s of ticket #%s '
                           'for mail: %s', event.kind, event.ticket_id,
                           exception_to_unicode(e, traceback=True))
            return
        if hold is not None:
            self._holding = True
        DeliveryService(self.env).wake()
        if hold is not None:
            # after wake(): these hooks then run before the delivery
            # thread's last pass, which can send the batch at once
            self._hook_exit()

    def release_holds(self) -> None:
        """This process adds no more changes: its held events may go."""
        if not self._holding:
            return
        self._holding = False
        try:
            release_recording_holds(self.env)
        except Exception as e:
            self.log.warning('tracnotify: could not release the changes '
                             'held for a batch (they go out when their '
                             'batch_window ends): %s', exception_to_unicode(e))

    def _hook_exit(self) -> None:
        """Release the holds when the environment is shut down or the
        process exits, whichever comes first."""
        if self._exit_hooked:
            return
        self._exit_hooked = True
        me = weakref.ref(self)
        original = self.env.shutdown

        def shutdown(tid=None):
            listener = me()
            if tid is None and listener is not None:
                listener.release_holds()
            return original(tid)

        shutdown.__doc__ = original.__doc__
        self.env.shutdown = shutdown
        atexit.register(_release_at_exit, me)

    def _duplicate(self, error: Exception) -> bool:
        """Whether *error* is the unique key refusing a second event (no
        query here: in an open transaction a failing one would roll the
        user's change back on SQLite)."""
        return isinstance(error, self.env.db_exc.IntegrityError)


def _release_at_exit(ref: 'weakref.ref[TicketMailListener]') -> None:
    listener = ref()
    if listener is not None:
        listener.release_holds()
