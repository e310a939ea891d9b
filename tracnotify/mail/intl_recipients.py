"""The ticket roles' recipients that Trac's matching drops: addresses with
an internationalised domain or local part.

Trac's ``RecipientMatcher`` knows ASCII addresses only, so its ticket
subscribers (reporter, owner, cc, updater, previous updaters) silently
skip ``info@münchen.example`` in cc, or a user whose address is
``ivan@пример.example``.  This module asks the same questions about the
same candidates and answers them as ``_ticket_change_subscribers`` would
have for such an address: the subscriber's default rules, then the user's
own rules.  Candidates Trac matched are left alone.
"""

from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from trac.notification.model import Subscription
from trac.util.datefmt import to_utimestamp
from trac.web.chrome import Chrome

from tracnotify.mail.addresses import international_address

Match = Tuple[Optional[str], int, str]     # (sid, authenticated, address)


def _reporter(env, tevent) -> List[str]:
    return [tevent.target['reporter']]


def _owner(env, tevent) -> List[str]:
    owners = [tevent.target['owner']]
    fields = (tevent.changes or {}).get('fields') or {}
    if 'owner' in fields:
        owners.append(fields['owner']['old'])
    return owners


def _cc(env, tevent) -> List[str]:
    chrome = Chrome(env)
    cc = set(chrome.cc_list(tevent.target['cc'] or ''))
    fields = (tevent.changes or {}).get('fields') or {}
    if 'cc' in fields:
        cc.update(chrome.cc_list(fields['cc']['old'] or ''))
    return sorted(cc)


def _updater(env, tevent) -> List[str]:
    return [tevent.author]


def _previous_updaters(env, tevent) -> List[str]:
    # as RecipientResolver._previous_updaters: up to the change, not today
    if tevent.category == 'created':
        return []
    return [author for author, in env.db_query(
        'SELECT DISTINCT author FROM ticket_change WHERE ticket=%s AND '
        'time<%s', (tevent.target.id, to_utimestamp(tevent.time)))
        if author != tevent.author]


#: Trac's ticket subscribers -> the candidates each of them looks at
CANDIDATES: Dict[str, Callable] = {
    'TicketReporterSubscriber': _reporter,
    'TicketOwnerSubscriber': _owner,
    'CarbonCopySubscriber': _cc,
    'TicketUpdaterSubscriber': _updater,
    'TicketPreviousUpdatersSubscriber': _previous_updaters,
}


def match_international(matcher, candidate: str) -> Optional[Match]:
    """``(sid, auth, address)`` for a *candidate* that Trac's *matcher*
    drops only because its address is not ASCII; None otherwise."""
    if not candidate or candidate == 'anonymous' or \
            matcher.match_recipient(candidate):
        return None
    ignore = matcher.ignore_domains
    if candidate in matcher.users:
        address = international_address(
            (matcher.users[candidate][1] or '').strip(), ignore)
        return (candidate, 1, address) if address else None
    address = international_address(candidate, ignore)
    return (None, 0, address) if address else None


def international_rules(env, subscribers: Iterable, tevent,
                        matcher) -> Iterator[tuple]:
    """Trac's 8-field subscription tuples for the internationalised
    candidates of the ticket subscribers among *subscribers*."""
    for subscriber in subscribers:
        klass = subscriber.__class__.__name__
        candidates = CANDIDATES.get(klass)
        if candidates is None:
            continue
        sids = set()
        for candidate in candidates(env, tevent):
            found = match_international(matcher, candidate)
            if not found:
                continue
            sid, auth, address = found
            for s in subscriber.default_subscriptions():
                yield s[0], s[1], sid, auth, address, s[2], s[3], s[4]
            if sid:
                sids.add((sid, auth))
        if sids:
            for s in Subscription.find_by_sids_and_class(env, sids, klass):
                yield s.subscription_tuple()
