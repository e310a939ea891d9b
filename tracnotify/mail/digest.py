"""The daily digest: one mail a day listing a user's ticket changes (and
the changes of wiki pages and milestones, see
:mod:`tracnotify.mail.digest_resources`).

Who: users whose delivery choice (Preferences -> Notifications,
``tracnotify.delivery``) is ``digest``, and bare addresses when the site's
``default_delivery`` is ``digest``.  ``smtp_always_cc`` / ``smtp_always_bcc``
are the admin's explicit choice and are always mailed at once.

1. **Expansion** (worker, :func:`tracnotify.pipeline.expand`): a change's
   recipients are resolved and permission-checked as for any mail; those
   who want a digest get, instead of a message, one row in
   ``tracnotify_digest_item`` holding the change's text block (the body of
   the normal mail, up to its signature, in their language) and, for who
   chose HTML or both, its HTML block (``html`` column).  The rows are
   written in the transaction that marks the event done.
2. **The digest** (worker, :func:`run_digests`, every pass): for each
   address with items, once its local time (the user's ``tz`` session
   preference, else ``[trac] default_timezone``) has reached
   ``[notification] digest_hour``, one transaction inserts the
   ``(address, day)`` row of ``tracnotify_digest`` — its primary key is the
   claim: of several workers only one insert wins — takes the address's
   items, and queues one message in the outbox, which the normal sending
   loop delivers (retries, leases).  A worker that dies in the middle rolls
   the whole transaction back, claim included, so the next pass of any
   worker makes the digest: no lease is needed.
3. A user who **switches back to immediate** delivery gets the changes
   already collected at once (a last digest, on the next pass), and new
   changes as they happen.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import (
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from trac.notification.mail import create_message_id
from trac.util.datefmt import from_utimestamp, get_timezone, localtz, to_utimestamp, utc
from trac.util.text import exception_to_unicode
from zoneinfo import ZoneInfo

from tracnotify import outbox
from tracnotify.config import NotifyConfig
from tracnotify.event import TicketEvent
from tracnotify.i18n.domain import _, ngettext
from tracnotify.i18n.language import mail_language
from tracnotify.mail.blocks import (
    block_html,
    change_block,
    change_html,
    ticket_heading,
    wants_html,
)
from tracnotify.mail.choices import load_choices
from tracnotify.mail.chrome import (
    clean_header_text,
    footer,
    project_url,
    signature,
    standard_headers,
    subject_prefix,
)
from tracnotify.mail.digest_resources import (
    MILESTONE,
    NO_TICKET,
    REALM_ORDER,
    WIKI,
    parse_key,
    resource_heading,
    resource_key,
    resource_link,
)
from tracnotify.mail.format import COLS, TicketMailFormatter
from tracnotify.mail.html import ticket_list_html
from tracnotify.mail.message import (
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
)
from tracnotify.mail.suppression import with_unsubscribe_links
from tracnotify.outbox import NewMessage, bulk

DIGEST = 'digest'
NOTIFICATION_TYPE = 'digest'
#: recipients that are never digested (the admin's explicit addresses)
ALWAYS_NOW = ('always_cc', 'always_bcc')


@dataclass
class DigestItem:
    """One change waiting for one recipient's digest."""

    address: str
    sid: Optional[str]
    ticket: int
    summary: str
    change_time: int          # microseconds since the epoch
    language: str
    block: str
    #: the change's HTML block, for a recipient who wants HTML
    html: Optional[str] = None


# Expansion side (called by the pipeline) -------------------------------------

def split_digest(env, config: NotifyConfig, resolver,
                 recipients: Sequence[Recipient]
                 ) -> Tuple[List[Recipient], List[Recipient]]:
    """``(now, digest)``: *recipients* split by their delivery choice."""
    users = [r.sid for r in recipients if r.sid and r.authenticated]
    choices = dict(getattr(resolver, 'choices', {}) or {})
    missing = [s for s in users if s not in choices]
    if missing:
        choices.update(load_choices(env, config, missing))
    now, later = [], []
    for r in recipients:
        if r.reason in ALWAYS_NOW:
            delivery = 'now'
        elif r.sid and r.authenticated:
            delivery = choices[r.sid].delivery
        else:
            delivery = config.default_delivery
        (later if delivery == DIGEST else now).append(r)
    return now, later


def digest_items_for(env, formatter: TicketMailFormatter, event: TicketEvent,
                     recipients: Sequence[Recipient]) -> List[DigestItem]:
    """The digest items of *event*, its block rendered once per language
    (and its HTML block once per language, for those who want HTML)."""
    blocks: Dict[str, str] = {}
    html_blocks: Dict[str, Optional[str]] = {}
    items = []
    for r in recipients:
        language = r.language or 'en'
        if language not in blocks:
            blocks[language] = change_block(env, formatter, event, language)
        html = None
        if wants_html(r):
            if language not in html_blocks:
                html_blocks[language] = change_html(env, formatter, event,
                                                    language)
            html = html_blocks[language]
        items.append(DigestItem(r.address, r.sid if r.authenticated else None,
                                event.ticket_id,
                                event.values.get('summary') or '',
                                event.time, language, blocks[language],
                                html))
    return items


def resource_items_for(recipients: Sequence[Recipient], realm: str,
                       name: str, change_time: int,
                       text: Callable[[str], str],
                       html: Callable[[str], Optional[str]]
                       ) -> List[DigestItem]:
    """The digest items of a change of a wiki page or a milestone (see
    :mod:`tracnotify.mail.digest_resources`): *text(language)* and, for
    those who want HTML, *html(language)* rendered once per language."""
    blocks: Dict[str, str] = {}
    html_blocks: Dict[str, Optional[str]] = {}
    items = []
    for r in recipients:
        language = r.language or 'en'
        if language not in blocks:
            blocks[language] = text(language)
        html_block = None
        if wants_html(r):
            if language not in html_blocks:
                html_blocks[language] = html(language)
            html_block = html_blocks[language]
        items.append(DigestItem(r.address, r.sid if r.authenticated else None,
                                NO_TICKET, resource_key(realm, name),
                                change_time, language, blocks[language],
                                html_block))
    return items


def queue_items(env, items: Iterable[DigestItem]) -> int:
    """Store digest items (in the caller's transaction, if any)."""
    now = outbox.now_us()
    rows = [(now, i.address, i.sid, i.ticket, i.summary, i.change_time,
             i.language, i.block, i.html) for i in items]
    if rows:
        with env.db_transaction as db:
            bulk.insert_rows(env, db, """
                INSERT INTO tracnotify_digest_item
                    (created, address, sid, ticket, summary, change_time,
                     language, block, html)""",
                '(%s, %s, %s, %s, %s, %s, %s, %s, %s)', rows)
    return len(rows)


# Sending side (called by the worker) -----------------------------------------

def timezone_named(name: str):
    """The tzinfo of *name* (Trac's, pytz when installed, else the
    standard library's zoneinfo), or None."""
    if not name:
        return None
    found = get_timezone(name)
    if found is None:
        try:
            found = ZoneInfo(name)
        except Exception:
            return None
    return found


def site_timezone(config: NotifyConfig):
    """``[trac] default_timezone``, else the server's zone."""
    return timezone_named(config.default_timezone.strip()) or localtz


def user_timezones(env, sids: Iterable[str]) -> Dict[str, object]:
    """``{sid: tzinfo}`` from the users' ``tz`` preference."""
    sids = sorted(set(s for s in sids if s))
    found: Dict[str, object] = {}
    for start in range(0, len(sids), 200):
        chunk = sids[start:start + 200]
        for sid, value in env.db_query("""
                SELECT sid, value FROM session_attribute
                WHERE authenticated=1 AND name='tz' AND sid IN (%s)
                """ % ','.join(['%s'] * len(chunk)), chunk):
            tz = timezone_named((value or '').strip())
            if tz is not None:
                found[sid] = tz
    return found


def pending_addresses(env) -> List[Tuple[str, Optional[str]]]:
    """``(address, sid)`` of everyone with items waiting."""
    return [(address, sid) for address, sid in env.db_query("""
        SELECT address, MAX(sid) FROM tracnotify_digest_item
        WHERE digest_day IS NULL GROUP BY address ORDER BY address""")]


@dataclass
class DigestReport:
    """What one digest pass did."""

    digests: int = 0
    items: int = 0
    errors: int = 0


def run_digests(env, config: NotifyConfig,
                now: Optional[datetime] = None) -> DigestReport:
    """Queue the digests that are due at *now* (default: the current time):
    at most one per address and local day, whatever the number of workers
    calling this at once."""
    report = DigestReport()
    now = now or datetime.now(utc)
    waiting = pending_addresses(env)
    if not waiting:
        return report
    sids = [sid for _address, sid in waiting if sid]
    zones = user_timezones(env, sids)
    choices = load_choices(env, config, sids) if sids else {}
    default_tz = site_timezone(config)
    due = []
    for address, sid in waiting:
        local = now.astimezone(zones.get(sid, default_tz))
        delivery = choices[sid].delivery if sid in choices else \
            config.default_delivery
        flush = delivery != DIGEST       # switched back: send what is left
        if flush or local.hour >= config.digest_hour:
            due.append((address, sid, local.date().isoformat(), flush))
    made = _digests_made(env, {day for _a, _s, day, _f in due})
    for address, sid, day, flush in due:
        if not flush and (address, day) in made:
            continue                     # today's digest is already made
        try:
            count = make_digest(env, config, address, sid, day, now, flush)
        except env.db_exc.IntegrityError:
            continue                     # another worker won the claim
        except Exception as e:
            report.errors += 1
            env.log.error('tracnotify: digest for %s failed: %s', address,
                          exception_to_unicode(e, traceback=True))
            continue
        if count:
            report.digests += 1
            report.items += count
    _maybe_purge(env, to_utimestamp(now))
    return report


def _digests_made(env, days) -> set:
    """``{(address, day)}`` of the digests already made on *days*."""
    days = sorted(days)
    if not days:
        return set()
    return set(env.db_query("""
        SELECT address, day FROM tracnotify_digest WHERE day IN (%s)
        """ % ','.join(['%s'] * len(days)), days))


KEEP_DAYS = 14
_PURGE_EVERY = 3600.0
_last_purge: Dict[str, float] = {}


def purge(env, older_than_us: int) -> int:
    """Forget digests made, and their items, before *older_than_us*."""
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            DELETE FROM tracnotify_digest_item
            WHERE digest_day IS NOT NULL AND created<%s""", (older_than_us,))
        count = cursor.rowcount
        cursor.execute('DELETE FROM tracnotify_digest WHERE created<%s',
                       (older_than_us,))
    return count


def _maybe_purge(env, now_us: int) -> None:
    if time.time() - _last_purge.get(env.path, 0.0) < _PURGE_EVERY:
        return
    _last_purge[env.path] = time.time()
    try:
        purge(env, now_us - KEEP_DAYS * 86400 * 1000000)
    except Exception as e:
        env.log.warning('tracnotify: cannot purge old digests: %s', e)


class _NothingToSend(Exception):
    """Rolls a digest transaction back: its items went elsewhere."""


class DigestRow(NamedTuple):
    """One item of a digest being made (a row of tracnotify_digest_item)."""

    id: int
    ticket: int
    summary: str
    change_time: int
    language: str
    block: str
    html: Optional[str]

    @property
    def order(self) -> Tuple[int, int]:
        """Latest change last."""
        return self.change_time, self.id


def make_digest(env, config: NotifyConfig, address: str, sid: Optional[str],
                day: str, now: datetime, flush: bool = False) -> int:
    """Claim the ``(address, day)`` digest, take the address's items and
    queue the digest message, in one transaction; returns the number of
    changes it lists (0: nothing to send).  A claim that another worker
    already holds raises ``IntegrityError``.  *flush* (the user no longer
    wants digests): no day claim, only the items."""
    now_us = to_utimestamp(now)
    try:
        with env.db_transaction as db:
            if not flush:
                db("""INSERT INTO tracnotify_digest
                          (address, day, created, items, msgid)
                      VALUES (%s, %s, %s, 0, '')""", (address, day, now_us))
            rows = _take_items(db, address, day, now_us)
            message = build_digest(env, config, address, sid, day, now, rows)
            outbox.add_messages(env, [message], created=now_us)
            if not flush:
                db("""UPDATE tracnotify_digest SET items=%s, msgid=%s
                      WHERE address=%s AND day=%s""",
                   (len(rows), message.msgid, address, day))
    except _NothingToSend:
        return 0
    env.log.info('tracnotify: digest of %d changes for %s (%s) queued',
                 len(rows), address, day)
    return len(rows)


def _take_items(db, address: str, day: str, now_us: int) -> List[DigestRow]:
    """The address's items waiting at *now_us*, marked as in *day*'s
    digest; :class:`_NothingToSend` when there are none (or a concurrent
    flush took some)."""
    rows = [DigestRow(*row) for row in db("""
        SELECT id, ticket, summary, change_time, language, block, html
        FROM tracnotify_digest_item
        WHERE address=%s AND digest_day IS NULL AND created<=%s
        ORDER BY ticket, change_time, id""",
        (address, max(now_us, outbox.now_us())))]
    if not rows:
        raise _NothingToSend()
    ids = [row.id for row in rows]
    taken = 0
    cursor = db.cursor()
    for start in range(0, len(ids), 200):
        chunk = ids[start:start + 200]
        cursor.execute("""
            UPDATE tracnotify_digest_item SET digest_day=%s
            WHERE digest_day IS NULL AND id IN (%s)""" % (
                '%s', ','.join(['%s'] * len(chunk))), [day] + chunk)
        taken += cursor.rowcount
    if taken != len(ids):
        raise _NothingToSend()   # a concurrent flush took some
    return rows


def build_digest(env, config: NotifyConfig, address: str,
                 sid: Optional[str], day: str, now: datetime,
                 rows: Sequence[DigestRow]) -> NewMessage:
    """The digest message to *address* listing *rows*, grouped by ticket,
    wiki page or milestone, each under its heading, in the language and
    format of the latest change's copy."""
    latest = max(rows, key=lambda r: r.order)
    language = latest.language or 'en'
    by_ticket: Dict[int, List[DigestRow]] = {}
    by_resource: Dict[Tuple[str, str], List[DigestRow]] = {}
    for row in rows:
        if row.ticket:
            by_ticket.setdefault(row.ticket, []).append(row)
        else:
            by_resource.setdefault(parse_key(row.summary), []).append(row)
    with mail_language(env, language):
        title = _digest_title(len(rows), len(by_ticket), sum(
            1 for realm, _n in by_resource if realm == WIKI), sum(
            1 for realm, _n in by_resource if realm == MILESTONE))
        subject = clean_header_text('%s %s' % (subject_prefix(env, config),
                                               title))
        sections = _sections(env, by_ticket, by_resource)
        body, html = _digest_body(env, title, sections, language,
                                  with_html=latest.html is not None)
    when = from_utimestamp(to_utimestamp(now))
    msgid = create_message_id(env, 'digest', config.envelope_from, when,
                              '%s.%s.%s' % (address, day, rows[0].id))
    headers = MailHeaders(
        from_name=config.smtp_from_name or env.project_name,
        from_addr=config.envelope_from, reply_to=config.smtp_replyto,
        subject=subject, msgid=msgid, root_msgid=None,
        date=to_utimestamp(now) / 1000000.0,
        extra=standard_headers(env, config, NOTIFICATION_TYPE))
    shared = encode_shared_part(headers, body, config, html, 'both')
    recipient = Recipient(address, DIGEST, 'to', sid, bool(sid),
                          language=language,
                          format='both' if html else 'text')
    recipient = with_unsubscribe_links(env, [recipient], config)[0]
    (_r, data), = build_copies(shared, [recipient], config)
    return NewMessage(ticket=0, kind=NOTIFICATION_TYPE, msgid=msgid,
                      sender=config.envelope_from, recipient=address,
                      reason=DIGEST, subject=subject, message=data)


def _digest_title(changes: int, tickets: int, pages: int = 0,
                  milestones: int = 0) -> str:
    """``Daily digest: 3 changes on 2 tickets`` (``... on 1 ticket, 2 wiki
    pages, 1 milestone``; translations active)."""
    counted = []
    if tickets or not (pages or milestones):
        counted.append(ngettext('%(num)s ticket', '%(num)s tickets',
                                tickets))
    if pages:
        counted.append(ngettext('%(num)s wiki page', '%(num)s wiki pages',
                                pages))
    if milestones:
        counted.append(ngettext('%(num)s milestone', '%(num)s milestones',
                                milestones))
    return str(_('Daily digest: %(changes)s on %(tickets)s',
                 changes=ngettext('%(num)s change', '%(num)s changes',
                                  changes),
                 tickets=', '.join(str(c) for c in counted)))


Section = Tuple[str, str, List[DigestRow]]


def _sections(env, by_ticket: Dict[int, List[DigestRow]],
              by_resource: Dict[Tuple[str, str], List[DigestRow]]
              ) -> List[Section]:
    """``(heading, link, items)`` per resource (translations active): the
    tickets in order of their ids, then the wiki pages and the milestones,
    each in order of its first change."""
    sections = []
    for ticket_id, items in by_ticket.items():
        sections.append((ticket_heading(
            ticket_id, max(items, key=lambda r: r.order).summary),
            env.abs_href.ticket(ticket_id), items))
    order = {realm: n for n, realm in enumerate(REALM_ORDER)}
    for (realm, name), items in sorted(
            by_resource.items(),
            key=lambda kv: (order.get(kv[0][0], len(order)),
                            min(r.order for r in kv[1]))):
        sections.append((resource_heading(realm, name),
                         resource_link(env, realm, name), items))
    return sections


def _digest_body(env, title: str, sections: Sequence[Section],
                 language: str, with_html: bool
                 ) -> Tuple[str, Optional[str]]:
    """The text body and, *with_html*, the HTML body of a digest."""
    parts = [title]
    html_sections = []
    for heading, link, items in sections:
        parts += ['', heading, '=' * min(len(heading), COLS), '']
        for item in items:
            parts += [item.block, '']
        html_sections.append((heading, link,
                              [block_html(item.block, item.html)
                               for item in items]))
    body = '\n'.join(parts + signature(env)) + str(footer(env))
    if not with_html:
        return body, None
    return body, ticket_list_html(
        title, '', html_sections, [(env.project_name, project_url(env))],
        str(footer(env)), language)
