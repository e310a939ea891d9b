"""IMilestoneChangeListener: milestones go through the same outbox as
tickets.

Trac calls these methods after its commit (the roadmap's forms,
``trac-admin milestone ...``, scripts).  Nothing here may raise into the
user's save; the snapshot (:class:`tracnotify.milestone_event.
MilestoneEvent`: the values before and after) goes through
:func:`tracnotify.outbox.add_event` like a ticket's.

Mailed: a milestone created, changed (due date, description, reopened),
completed, renamed (its watchers follow it to the new name) and deleted.
Trac does not pass the author to these listeners: the user of the web
request that made the change is taken (:class:`MilestoneAuthorMarker`);
changes made outside a request have no author.

The tickets Trac retargets when a milestone is completed or deleted
(``Milestone.move_tickets``: one ``Ticket.save_changes`` per ticket, one
author, one change time, one transaction) reach
:class:`tracnotify.listener.TicketMailListener` as ordinary changes and
are mailed as one batch mail per recipient
(:mod:`tracnotify.mail.coalesce`), as a batch modify is.
"""

import threading
from typing import List, Optional

from trac.core import Component, implements
from trac.ticket.api import IMilestoneChangeListener
from trac.util.datefmt import datetime_now, to_utimestamp, utc
from trac.util.text import exception_to_unicode
from trac.web.api import IRequestFilter

from tracnotify import outbox, watches
from tracnotify.config import load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.milestone_event import (
    CREATED,
    DELETED,
    REALM,
    MilestoneEvent,
    change_kind,
)
from tracnotify.milestone_subscribers import WATCH_CLASS

#: a deletion's retargeting comes just before it: tickets moved away from
#: the milestone this many microseconds before count as its tickets
RETARGETED_US = 60 * 1000000

_request = threading.local()


def request_author() -> str:
    """The user of the web request this thread serves ('' outside one)."""
    return getattr(_request, 'authname', '') or ''


class MilestoneAuthorMarker(Component):
    """Remembers who makes the current web request: Trac's milestone
    listeners are not told who changed the milestone."""

    implements(IRequestFilter)

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        _request.authname = req.authname if req.is_authenticated else ''
        return handler

    def post_process_request(self, req, template, data, metadata):
        return template, data, metadata


def _us(value) -> Optional[int]:
    return to_utimestamp(value) if value is not None else None


def ticket_people(env, name: str, since_us: Optional[int] = None
                  ) -> List[List[str]]:
    """``[[role, owner or reporter]]`` of the open tickets of milestone
    *name*, each once; with *since_us*, also of the open tickets moved
    away from it since then (a deletion retargets them first)."""
    rows = list(env.db_query("""
        SELECT owner, reporter FROM ticket
        WHERE milestone=%s AND COALESCE(status, '')!='closed'
        ORDER BY id""", (name,)))
    if since_us is not None:
        rows += env.db_query("""
            SELECT t.owner, t.reporter FROM ticket t
            INNER JOIN ticket_change c ON c.ticket=t.id
            WHERE c.field='milestone' AND c.oldvalue=%s AND c.time>=%s
                  AND COALESCE(t.status, '')!='closed'
            ORDER BY t.id""", (name, since_us))
    people: List[List[str]] = []
    seen = set()
    for owner, reporter in rows:
        for role, who in (('owner', owner), ('reporter', reporter)):
            who = (who or '').strip()
            if who and who.lower() not in seen:
                seen.add(who.lower())
                people.append([role, who])
    return people


class MilestoneMailListener(Component):
    """Records each change of a milestone in tracnotify's outbox."""

    implements(IMilestoneChangeListener)

    # IMilestoneChangeListener methods

    def milestone_created(self, milestone):
        self._record(milestone, CREATED, {})

    def milestone_changed(self, milestone, old_values):
        old_values = dict(old_values or {})
        kind = change_kind(old_values, milestone.completed)
        if 'name' in old_values:
            self._move_watches(old_values['name'], milestone.name)
        if kind is not None:
            self._record(milestone, kind, old_values)

    def milestone_deleted(self, milestone):
        self._record(milestone, DELETED, {})

    # Internal methods

    def _move_watches(self, old: str, new: str) -> None:
        try:  # the watchers follow the milestone to its new name
            watches.move_watches(self.env, WATCH_CLASS, REALM, old, new)
        except Exception as e:
            self.log.error('tracnotify: watchers of milestone %s not moved '
                           'to %s: %s', old, new,
                           exception_to_unicode(e, traceback=True))

    def _record(self, milestone, kind: str, old_values: dict) -> None:
        """Store the snapshot of *milestone*'s change; every error is
        logged, never raised."""
        name = milestone.name
        try:
            config = load_config(self.env)
            if not config.smtp_enabled:
                return
            now = to_utimestamp(datetime_now(utc))
            old = {k: (_us(v) if k in ('due', 'completed') else v)
                   for k, v in old_values.items()}
            people = ticket_people(
                self.env, name,
                now - RETARGETED_US if kind == DELETED else None) \
                if config.milestone_notify_ticket_people else []
            event = MilestoneEvent(
                kind=kind, milestone=name, time=now, author=request_author(),
                due=_us(milestone.due), completed=_us(milestone.completed),
                description=milestone.description or '', old_values=old,
                ticket_people=people)
            outbox.add_event(self.env, event)
        except Exception as e:  # never break the user's save
            self.log.error('tracnotify: could not record the change of '
                           'milestone %s for mail: %s', name,
                           exception_to_unicode(e, traceback=True))
            return
        DeliveryService(self.env).wake()
