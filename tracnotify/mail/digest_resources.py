"""Wiki pages and milestones in the daily digest: how their items are
stored, headed and linked.

``tracnotify_digest_item`` was made for tickets (its ``ticket`` and
``summary`` columns).  An item of another resource is stored in the same
columns, without a schema change: ``ticket`` is :data:`NO_TICKET` (0: no
ticket has that id) and ``summary`` names the resource as ``realm:id``
(``wiki:PageName``, ``milestone:NAME``).  Its ``block`` and ``html`` are
the change as the resource's own mail shows it, up to the signature, then
its link, like a ticket change's (:mod:`tracnotify.mail.blocks`).
"""

import re
from typing import Optional, Tuple

from tracnotify.i18n.domain import _
from tracnotify.mail.blocks import BODY_SIGNATURE

#: the ``ticket`` of an item that is no ticket's
NO_TICKET = 0
WIKI = 'wiki'
MILESTONE = 'milestone'
#: the order of the realms' sections in a digest, after the tickets'
REALM_ORDER = (WIKI, MILESTONE)
_BODY_RE = re.compile(r'<body\b[^>]*>(.*)</body\s*>', re.S | re.I)


def resource_key(realm: str, name: str) -> str:
    """What ``summary`` holds for an item of *realm*: ``realm:name``."""
    return '%s:%s' % (realm, name)


def parse_key(summary: str) -> Tuple[str, str]:
    """``(realm, name)`` of a :func:`resource_key`."""
    realm, _sep, name = (summary or '').partition(':')
    return realm, name


def resource_heading(realm: str, name: str) -> str:
    """``Wiki: PageName`` / ``Milestone: NAME`` over a resource's changes
    (translations active)."""
    if realm == WIKI:
        return str(_('Wiki: %(page)s', page=name))
    if realm == MILESTONE:
        return str(_('Milestone: %(name)s', name=name))
    return '%s: %s' % (realm, name)


def resource_link(env, realm: str, name: str) -> str:
    """The resource's page (``/wiki/PageName``, ``/milestone/NAME``)."""
    return env.abs_href(realm, name)


def text_block(body: str, link_line: str) -> str:
    """A rendered mail body up to its signature, then *link_line*."""
    cut = body.rfind(BODY_SIGNATURE)
    if cut >= 0:
        body = body[:cut]
    return body.rstrip('\n') + '\n\n' + link_line


def html_fragment(document: Optional[str]) -> Optional[str]:
    """What the ``<body>`` of an HTML mail holds (None without one: the
    digest then shows the text block)."""
    if not document:
        return None
    found = _BODY_RE.search(document)
    return found.group(1).strip() if found else None
