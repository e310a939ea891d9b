"""What each person chose for their ticket mail, and what it means.

The choices are made under Preferences -> Notifications (``prefs.py``) and
stored in the Trac session (``session_attribute``), under names prefixed
``tracnotify.``:

``tracnotify.events``       comma list of created, changed, commented,
                            closed, reassigned (the ticket was given to me)
``tracnotify.own_changes``  ``1`` / ``0``: mail about my own changes
``tracnotify.format``       text | html | both
``tracnotify.delivery``     now | digest
``tracnotify.language``     a language tracnotify has a catalog for
``tracnotify.announcements`` ``0``: no announcements from the admins
                            (absent: receive them)

A name that is absent means "the site default" (``[notification]
default_events``, ``default_own_changes``, ``default_delivery``, Trac's
``default_format.email`` and, for the language, Trac's own session
language, then ``[trac] default_language``, then English).

The roles (reporter, owner, cc, previous updater...) are not chosen here:
they are Trac's own subscription rules on the same page.
"""

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Optional, Set

from tracnotify.config import (
    MAIL_DELIVERIES,
    MAIL_EVENTS,
    MAIL_FORMATS,
    TRAC_FORMATS,
    NotifyConfig,
    load_config,
)
from tracnotify.event import COMMENT, CREATED, TicketEvent
from tracnotify.i18n.language import default_language, normalize_language

PREFIX = 'tracnotify.'
NAMES = ('events', 'own_changes', 'format', 'delivery', 'language',
         'announcements')
#: Trac's own session attributes that feed a default
TRAC_LANGUAGE = 'language'
TRAC_FORMAT = 'notification.format.email'


@dataclass(frozen=True)
class MailChoices:
    """The effective choices of one person (site defaults filled in)."""

    events: FrozenSet[str]
    own_changes: bool
    format: str
    delivery: str
    language: str
    #: the names the person set themselves (the rest are defaults)
    explicit: FrozenSet[str] = frozenset()
    #: announcements from the admins (Admin -> Notification -> Announce)
    announcements: bool = True


def site_defaults(env, config: NotifyConfig) -> MailChoices:
    """The choices of someone who chose nothing (and of bare addresses)."""
    return MailChoices(frozenset(config.default_events),
                       config.default_own_changes, config.default_format,
                       config.default_delivery, default_language(env))


def parse_events(value: str) -> FrozenSet[str]:
    """The known event names in a comma list."""
    return frozenset(e.strip() for e in (value or '').split(',')
                     if e.strip() in MAIL_EVENTS)


def choices_from(env, config: NotifyConfig,
                 attrs: Dict[str, str]) -> MailChoices:
    """Effective choices from one session's attributes."""
    d = site_defaults(env, config)
    explicit: Set[str] = set()

    def get(name: str) -> Optional[str]:
        value = attrs.get(PREFIX + name)
        if value is None:
            return None
        explicit.add(name)
        return value

    events = get('events')
    own = get('own_changes')
    fmt = get('format')
    if fmt not in MAIL_FORMATS:
        if fmt is not None:
            explicit.discard('format')
        fmt = TRAC_FORMATS.get((attrs.get(TRAC_FORMAT) or '').lower(),
                               d.format)
    delivery = get('delivery')
    if delivery not in MAIL_DELIVERIES:
        explicit.discard('delivery')
        delivery = d.delivery
    announcements = get('announcements')
    language = normalize_language(get('language'))
    if language is None:
        explicit.discard('language')
        language = normalize_language(attrs.get(TRAC_LANGUAGE)) or \
            d.language
    return MailChoices(
        events=d.events if events is None else parse_events(events),
        own_changes=d.own_changes if own is None else own == '1',
        format=fmt, delivery=delivery, language=language,
        explicit=frozenset(explicit),
        announcements=announcements != '0')


def session_attributes(env, sids: Iterable[str],
                       authenticated: bool = True
                       ) -> Dict[str, Dict[str, str]]:
    """``{sid: {name: value}}`` of the attributes that matter here, for
    many sessions in one query."""
    sids = sorted(set(s for s in sids if s))
    found: Dict[str, Dict[str, str]] = {}
    if not sids:
        return found
    names = [PREFIX + n for n in NAMES] + [TRAC_LANGUAGE, TRAC_FORMAT]
    for start in range(0, len(sids), 200):
        chunk = sids[start:start + 200]
        query = """
            SELECT sid, name, value FROM session_attribute
            WHERE authenticated=%%s AND name IN (%s) AND sid IN (%s)
            """ % (','.join(['%s'] * len(names)),
                   ','.join(['%s'] * len(chunk)))
        for sid, name, value in env.db_query(
                query, [1 if authenticated else 0] + names + chunk):
            found.setdefault(sid, {})[name] = value
    return found


def load_choices(env, config: NotifyConfig,
                 sids: Iterable[str]) -> Dict[str, MailChoices]:
    """Effective choices of each authenticated user in *sids*."""
    sids = list(sids)
    attrs = session_attributes(env, sids)
    return {sid: choices_from(env, config, attrs.get(sid, {}))
            for sid in sids}


def delivery_choice(env, sid: str) -> str:
    """``'now'`` or ``'digest'``: how user *sid* wants ticket mail."""
    config = load_config(env)
    return load_choices(env, config, [sid])[sid].delivery


def event_categories(event: TicketEvent, me: Iterable[str]) -> Set[str]:
    """What *event* is, for someone known as any of *me* (username,
    address): a subset of ``MAIL_EVENTS``.

    ``closed``: the status became closed; ``reassigned``: the owner became
    me; ``commented``: a comment was added or edited; ``changed``: any other
    field changed (or a file was attached, or the ticket deleted)."""
    if event.kind == CREATED:
        return {'created'}
    me = {m.lower() for m in me if m}
    categories = set()
    changes = dict(event.field_changes)
    status = changes.get('status')
    if status and status['new'] == 'closed':
        categories.add('closed')
        changes.pop('status', None)
        changes.pop('resolution', None)
    owner = changes.get('owner')
    if owner and (owner['new'] or '').strip().lower() in me:
        categories.add('reassigned')
        changes.pop('owner', None)
    if event.comment or event.kind == COMMENT:
        categories.add('commented')
    if changes or not categories:
        categories.add('changed')
    return categories


def wants_mail(choices: MailChoices, event: TicketEvent,
               me: Iterable[str]) -> bool:
    """Whether someone with *choices*, known as *me*, wants *event*."""
    me = [m for m in me if m]
    if not choices.own_changes and event.author and \
            event.author.lower() in {m.lower() for m in me}:
        return False
    return bool(event_categories(event, me) & choices.events)
