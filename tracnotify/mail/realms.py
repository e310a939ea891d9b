"""Events of every realm through one outbox: which snapshot, which mail.

A payload in ``tracnotify_event`` is a ticket's (no ``realm`` key: every
payload written before other realms existed) or names its realm.  The
delivery worker reads it with :func:`load_event` and expands it with
:func:`build_messages`, which hands the event to its realm's pipeline
(tickets: :mod:`tracnotify.mail.pipeline`; wiki pages:
:mod:`tracnotify.mail.wiki`; milestones: :mod:`tracnotify.mail.milestone`).
A new realm is one entry in each table.
"""

import json
from typing import Any, Callable, Dict, List, Optional

from tracnotify.announce_event import REALM as ANNOUNCEMENT
from tracnotify.announce_event import AnnouncementEvent
from tracnotify.config import NotifyConfig
from tracnotify.event import TicketEvent
from tracnotify.mail import announce, milestone, pipeline, wiki
from tracnotify.mail.suppression import TokenBatch
from tracnotify.milestone_event import REALM as MILESTONE
from tracnotify.milestone_event import MilestoneEvent
from tracnotify.outbox import NewMessage
from tracnotify.wiki_event import REALM as WIKI
from tracnotify.wiki_event import WikiEvent

TICKET = 'ticket'

#: realm -> the snapshot's class (its ``from_dict``)
EVENT_TYPES: Dict[str, Any] = {WIKI: WikiEvent,
                               ANNOUNCEMENT: AnnouncementEvent,
                               MILESTONE: MilestoneEvent}
#: realm -> ``build(env, config, event, digest_items, tokens)``
BUILDERS: Dict[str, Callable[..., List[NewMessage]]] = {
    TICKET: pipeline.build_messages,
    WIKI: wiki.build_messages,
    ANNOUNCEMENT: announce.build_messages,
    MILESTONE: milestone.build_messages,
}


def realm_of(event) -> str:
    """The realm of a snapshot (a ticket's has no ``realm``)."""
    return getattr(event, 'realm', TICKET)


def load_event(payload: str):
    """The snapshot stored as *payload* (:meth:`TicketEvent.to_json` or
    another realm's ``to_json``)."""
    data = json.loads(payload)
    realm = data.get('realm') if isinstance(data, dict) else None
    if realm is None or realm == TICKET:
        return TicketEvent.from_json(payload)
    try:
        return EVENT_TYPES[realm].from_dict(data)
    except KeyError:
        raise ValueError('unknown realm %r in an event' % realm)


def build_messages(env, config: NotifyConfig, event,
                   digest_items: Optional[list] = None,
                   tokens: Optional[TokenBatch] = None) -> List[NewMessage]:
    """Every message that *event* produces, by its realm's pipeline (see
    :func:`tracnotify.mail.pipeline.build_messages` for the arguments)."""
    return BUILDERS[realm_of(event)](env, config, event, digest_items,
                                     tokens)
