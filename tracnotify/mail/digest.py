"""The daily digest: one mail a day listing a user's ticket changes.

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

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from trac.notification.mail import create_message_id
from trac.util.datefmt import from_utimestamp, get_timezone, localtz, to_utimestamp, utc
from trac.util.text import exception_to_unicode

from tracnotify import outbox
from tracnotify.config import NotifyConfig
from tracnotify.event import TicketEvent
from tracnotify.i18n.domain import _, ngettext
from tracnotify.i18n.language import mail_language
from tracnotify.mail.format import COLS, TicketMailFormatter, clean_header_text
from tracnotify.mail.html import HtmlMailRenderer, text_as_html, ticket_list_html
from tracnotify.mail.message import (
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
)
from tracnotify.mail.suppression import footer, list_id, with_unsubscribe_links

DIGEST = 'digest'
NOTIFICATION_TYPE = 'digest'
#: recipients that are never digested (the admin's explicit addresses)
ALWAYS_NOW = ('always_cc', 'always_bcc')
SIGNATURE = '\n-- \n'


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
    from tracnotify.mail.choices import load_choices
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


def change_block(env, formatter: TicketMailFormatter, event: TicketEvent,
                 language: str) -> str:
    """The text of one change as the normal mail shows it, up to Trac's
    signature, then the ticket's link: what a digest or a batch mail lists
    for each change."""
    rendered = formatter.render(event, language)
    body = rendered.body
    cut = body.rfind(SIGNATURE)
    if cut >= 0:
        body = body[:cut]
    with mail_language(env, language):
        link = str(_('Ticket URL: <%(link)s>', link=rendered.link))
    return body.rstrip('\n') + '\n\n' + link


def wants_html(recipient: Recipient) -> bool:
    """Whether *recipient* gets an HTML part (format ``html`` or
    ``both``: digest and batch mails then carry text and HTML)."""
    return recipient.format in ('html', 'both')


def change_html(env, formatter: TicketMailFormatter, event: TicketEvent,
                language: str) -> Optional[str]:
    """The HTML of one change (``ticket_change.html``) in *language*, as
    a digest or batch mail lists it; None when it cannot be rendered (a
    broken template override: the text still goes)."""
    rendered = formatter.render(event, language)
    with mail_language(env, language):
        formatter.translated = language != 'en'
        try:
            return HtmlMailRenderer(env, formatter).render_block(
                event, rendered, language)
        except Exception as e:
            env.log.error('tracnotify: HTML of ticket #%s for a digest or '
                          'batch mail failed, text only: %s',
                          event.ticket_id,
                          exception_to_unicode(e, traceback=True))
            return None
        finally:
            formatter.translated = False


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


def queue_items(env, items: Iterable[DigestItem]) -> int:
    """Store digest items (in the caller's transaction, if any)."""
    now = outbox.now_us()
    rows = [(now, i.address, i.sid, i.ticket, i.summary, i.change_time,
             i.language, i.block, i.html) for i in items]
    if rows:
        with env.db_transaction as db:
            db.executemany("""
                INSERT INTO tracnotify_digest_item
                    (created, address, sid, ticket, summary, change_time,
                     language, block, html)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""", rows)
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
            from zoneinfo import ZoneInfo
            found = ZoneInfo(name)
        except Exception:
            return None
    return found


def site_timezone(env):
    """``[trac] default_timezone``, else the server's zone."""
    name = env.config.get('trac', 'default_timezone', '') or ''
    return timezone_named(name.strip()) or localtz


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
    from tracnotify.mail.choices import load_choices
    report = DigestReport()
    now = now or datetime.now(utc)
    waiting = pending_addresses(env)
    if not waiting:
        return report
    sids = [sid for _address, sid in waiting if sid]
    zones = user_timezones(env, sids)
    choices = load_choices(env, config, sids) if sids else {}
    default_tz = site_timezone(env)
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
    import time
    if time.time() - _last_purge.get(env.path, 0.0) < _PURGE_EVERY:
        return
    _last_purge[env.path] = time.time()
    try:
        purge(env, now_us - KEEP_DAYS * 86400 * 1000000)
    except Exception as e:
        env.log.warning('tracnotify: cannot purge old digests: %s', e)


class _NothingToSend(Exception):
    """Rolls a digest transaction back: its items went elsewhere."""


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
            rows = db("""
                SELECT id, ticket, summary, change_time, language, block,
                       html
                FROM tracnotify_digest_item
                WHERE address=%s AND digest_day IS NULL AND created<=%s
                ORDER BY ticket, change_time, id""",
                (address, max(now_us, outbox.now_us())))
            if not rows:
                raise _NothingToSend()
            ids = [row[0] for row in rows]
            taken = 0
            cursor = db.cursor()
            for start in range(0, len(ids), 200):
                chunk = ids[start:start + 200]
                cursor.execute("""
                    UPDATE tracnotify_digest_item SET digest_day=%s
                    WHERE digest_day IS NULL AND id IN (%s)""" % (
                        '%s', ','.join(['%s'] * len(chunk))),
                    [day] + chunk)
                taken += cursor.rowcount
            if taken != len(ids):
                raise _NothingToSend()   # a concurrent flush took some
            message = build_digest(env, config, address, sid, day, now, rows)
            db("""INSERT INTO tracnotify_message
                      (event_id, created, ticket, kind, msgid, sender,
                       recipient, reason, subject, message, state, attempts,
                       next_attempt, updated)
                  VALUES (NULL,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,0,%s,%s)""",
               (now_us, 0, NOTIFICATION_TYPE, message[0],
                config.envelope_from, address, DIGEST, message[1],
                message[2], outbox.PENDING, outbox.now_us(),
                outbox.now_us()))
            if not flush:
                db("""UPDATE tracnotify_digest SET items=%s, msgid=%s
                      WHERE address=%s AND day=%s""",
                   (len(rows), message[0], address, day))
    except _NothingToSend:
        return 0
    env.log.info('tracnotify: digest of %d changes for %s (%s) queued',
                 len(rows), address, day)
    return len(rows)


def build_digest(env, config: NotifyConfig, address: str,
                 sid: Optional[str], day: str, now: datetime,
                 rows: Sequence[tuple]) -> Tuple[str, str, str]:
    """``(msgid, subject, message)`` of the digest listing *rows*
    ``(id, ticket, summary, change_time, language, block, html)``, grouped by
    ticket, each ticket under its heading."""
    latest = max(rows, key=lambda r: (r[3], r[0]))
    language = latest[4] or 'en'
    # the format of the latest change's copy, like its language
    with_html = latest[6] is not None
    by_ticket: Dict[int, List[tuple]] = {}
    for row in rows:
        by_ticket.setdefault(row[1], []).append(row)
    prefix = env.config.get('notification', 'smtp_subject_prefix',
                            '__default__')
    if prefix == '__default__':
        prefix = '[%s]' % env.project_name
    html = None
    with mail_language(env, language):
        changes = ngettext('%(num)s change', '%(num)s changes', len(rows))
        tickets = ngettext('%(num)s ticket', '%(num)s tickets',
                           len(by_ticket))
        title = str(_('Daily digest: %(changes)s on %(tickets)s',
                      changes=changes, tickets=tickets))
        subject = clean_header_text('%s %s' % (prefix, title))
        parts = [title]
        sections = []
        for ticket_id, items in by_ticket.items():
            summary = max(items, key=lambda r: (r[3], r[0]))[2] or ''
            heading = str(_('Ticket #%(id)s: %(summary)s', id=ticket_id,
                            summary=summary))
            parts += ['', heading, '=' * min(len(heading), COLS), '']
            blocks = []
            for item in items:
                text, block_html = item[5], item[6]
                parts += [text, '']
                blocks.append(block_html if block_html is not None
                              else text_as_html(text))
            sections.append((heading, env.abs_href.ticket(ticket_id),
                             blocks))
        project_url = env.project_url or env.abs_href()
        parts += ['-- ', '%s <%s>' % (env.project_name, project_url),
                  env.project_description or '']
        body = '\n'.join(parts) + str(footer(env))
        if with_html:
            html = ticket_list_html(
                title, '', sections, [(env.project_name, project_url)],
                str(footer(env)), language)
    when = from_utimestamp(to_utimestamp(now))
    msgid = create_message_id(env, 'digest', config.envelope_from, when,
                              '%s.%s.%s' % (address, day, rows[0][0]))
    headers = MailHeaders(
        from_name=config.smtp_from_name or env.project_name,
        from_addr=config.envelope_from, reply_to=config.smtp_replyto,
        subject=subject, msgid=msgid, root_msgid=None,
        date=to_utimestamp(now) / 1000000.0,
        extra=(('X-Mailer', 'tracnotify (Trac %s)' % env.trac_version),
               ('X-Trac-Version', env.trac_version),
               ('X-Trac-Project', env.project_name),
               ('X-URL', project_url),
               ('X-Trac-Realm', 'ticket'),
               ('X-Trac-Notification-Type', NOTIFICATION_TYPE),
               ('List-Id', list_id(env))))
    shared = encode_shared_part(headers, body, config, html, 'both')
    recipient = Recipient(address, DIGEST, 'to', sid, bool(sid),
                          language=language,
                          format='both' if html else 'text')
    recipient = with_unsubscribe_links(env, [recipient])[0]
    (_r, data), = build_copies(shared, [recipient], config)
    return msgid, subject, data
