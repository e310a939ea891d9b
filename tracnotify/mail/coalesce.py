"""Batch changes are not a flood: one mail per recipient for a batch.

When one author changes several tickets at once (Trac's batch modify saves
them all with one change time, in one transaction; a script saves them a
moment apart), each recipient gets **one** mail listing the changes of the
tickets they may view, instead of one mail per ticket.

Recording (the listener): a change made outside a web request (a script,
``trac-admin``, a plugin's thread) is stored with a *recording hold*
(:func:`recording_hold`): no worker claims it for ``[notification]
batch_window`` seconds from its change time, so that the script's next
changes can join it.  The process releases its holds when it shuts its
environment down or exits (:func:`release_recording_holds`), so a script's
mail goes out as it ends; a process killed with ``kill -9`` leaves holds
that simply run out.  Changes made in a web request are not held: a batch
modify comes in one transaction, and a single change is never delayed.

Detection (worker side): events of kind ``ticket_changed`` /
``ticket_comment`` (not comment edits) by the same author form a *group*
when their change times fall within ``batch_window`` seconds of the
group's first change; a group that touches two tickets or more is a
*batch*.  The delivery worker claims events as usual
(:func:`tracnotify.outbox.claim_events`), then :class:`Coalescer` sorts
what it claimed:

* a group that still has an event under a recording hold is still being
  recorded: the claimed events are put back with a *hold* lease that runs
  out with the last recording hold (a crashed worker loses nothing:
  leases expire);
* events in no batch are expanded at once, as before;
* a batch is claimed whole (the remaining events, by a conditional
  ``UPDATE``), then expanded together: recipients and ``TICKET_VIEW`` per
  event, as for any mail, then per recipient one mail listing each
  ticket's block (``batch_subject_template``, like Trac's own batch mail).
  A recipient who may view (or wants) only one of the tickets gets that
  ticket's normal mail.  If another worker holds part of the batch, the
  claimed part is held again for about a second, so that one worker ends
  up with all of it.

``batch_window = 0`` turns this off.  Recipients who chose HTML (or
both) get the text and an HTML part listing the same changes
(``multipart/alternative``, text first).
"""

import os
import random
import uuid
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from trac.notification.mail import create_message_id

from tracnotify import outbox
from tracnotify.config import NotifyConfig
from tracnotify.event import CHANGED, COMMENT, TicketEvent
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.blocks import (
    block_html,
    change_block,
    change_html,
    ticket_heading,
    wants_html,
)
from tracnotify.mail.chrome import (
    clean_header_text,
    footer,
    project_url,
    render_subject,
    signature,
    standard_headers,
    subject_prefix,
)
from tracnotify.mail.html import ticket_list_html
from tracnotify.mail.message import (
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
)
from tracnotify.mail.pipeline import (
    Expansion,
    expand,
    render_messages,
    sender_address,
    sender_name,
)
from tracnotify.mail.suppression import with_unsubscribe_links
from tracnotify.outbox import EventRow, NewMessage, clock

BATCH_KIND = 'batchmodify'          # Trac's category for batch modify mail
HOLD = 'tracnotify-batch-hold'      # lease owner of events held for a batch
#: lease owner prefix of events held while their process may add to the
#: batch (":<pid>:<random>" names the process)
RECORDING = 'tracnotify-batch-recording'
US = 1000000


class Claimed(NamedTuple):
    """An event the worker owns: an :class:`EventRow`, parsed."""

    id: int
    attempts: int
    event: TicketEvent


def joins_batches(event: TicketEvent) -> bool:
    """Whether *event* may be mailed as part of a batch."""
    return event.kind in (CHANGED, COMMENT) and event.old_comment is None \
        and bool(event.author)


class Sibling(NamedTuple):
    """A pending event that may join a batch: ``(id, event)``."""

    id: int
    event: TicketEvent


def group_events(events: Sequence[Tuple[int, TicketEvent]], window_us: int
                 ) -> List[List[Sibling]]:
    """*events* ``(id, event)`` in groups: per author, by change time, each
    group spanning at most *window_us* from its first change."""
    by_author: Dict[str, List[Sibling]] = {}
    for item in events:
        sibling = Sibling(*item)
        by_author.setdefault(sibling.event.author, []).append(sibling)
    groups = []
    for items in by_author.values():
        items.sort(key=lambda s: (s.event.time, s.id))
        current: List[Sibling] = []
        for item in items:
            if current and \
                    item.event.time > current[0].event.time + window_us:
                groups.append(current)
                current = []
            current.append(item)
        groups.append(current)
    return groups


def is_batch(group: Sequence[Sibling]) -> bool:
    return len({s.event.ticket_id for s in group}) > 1


_process_token: Tuple[int, str] = (0, '')


def process_hold_owner() -> str:
    """The recording-hold owner of this process (new after a fork)."""
    global _process_token
    if _process_token[0] != os.getpid():
        _process_token = (os.getpid(), '%s:%d:%s' % (
            RECORDING, os.getpid(), uuid.uuid4().hex[:12]))
    return _process_token[1]


def recording_hold(config: NotifyConfig, event: TicketEvent
                   ) -> Optional[Tuple[str, int]]:
    """``(owner, until_us)`` to store a change made outside a web request
    with, or None when it cannot join a batch."""
    if config.batch_window <= 0 or not joins_batches(event):
        return None
    return process_hold_owner(), event.time + config.batch_window * US + 1


def release_recording_holds(env) -> int:
    """Make the events this process holds for its batch claimable now (the
    process adds no more changes); returns how many."""
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            UPDATE tracnotify_event SET lease_owner=NULL, lease_until=NULL
            WHERE lease_owner=%s AND state=%s""",
                       (process_hold_owner(), outbox.PENDING))
        return max(cursor.rowcount, 0)


class Coalescer:
    """Sorts claimed events into singles and batches (see module doc)."""

    def __init__(self, env, config: NotifyConfig,
                 now_us: Optional[int] = None) -> None:
        self.env = env
        self.config = config
        self.window_us = config.batch_window * US
        self._now_us = now_us
        self.claim: Optional[outbox.Claim] = None

    @property
    def now_us(self) -> int:
        """The database's now (or the time given), read once."""
        if self._now_us is None:
            self._now_us = clock.db_now_us(self.env)
        return self._now_us

    def split(self, claimed: outbox.Claim
              ) -> Tuple[List[EventRow], List[List[Claimed]]]:
        """``(singles, batches)`` of the *claimed* rows: singles as given,
        batches as lists of :class:`Claimed`.  Events of batches still
        open are held (no longer ours); the other events of a batch are
        leased under the claim's token too."""
        if self.window_us <= 0:
            return list(claimed), []
        self.claim = claimed
        ours: Dict[int, Claimed] = {}
        rows = {row.id: row for row in claimed}
        singles = []
        for row in claimed:
            try:
                event = TicketEvent.from_json(row.payload)
            except Exception:
                singles.append(row)      # the normal path reports it
                continue
            if joins_batches(event):
                ours[row.id] = Claimed(row.id, row.attempts, event)
            else:
                singles.append(row)
        if not ours:
            return singles, []
        siblings = self._pending_of({c.event.author for c in ours.values()})
        recording = {i: until for i, (_e, until) in siblings.items()
                     if until is not None}
        events = {i: e for i, (e, _until) in siblings.items()}
        for c in ours.values():
            events[c.id] = c.event
        batches = []
        hold: Dict[int, int] = {}
        for group in group_events(sorted(events.items()), self.window_us):
            mine = [s.id for s in group if s.id in ours]
            if not mine:
                continue
            still = [recording[s.id] for s in group
                     if s.id not in ours and s.id in recording]
            if still:
                # its process may still add to it: wait for the last hold
                for i in mine:
                    hold[i] = max(still)
                continue
            if not is_batch(group):
                singles.extend(rows[i] for i in mine)
                continue
            whole = self._claim_rest(group, ours)
            if whole is None:
                # another worker has part of it: try again shortly
                later = self.now_us + int(US * random.uniform(0.5, 1.5))
                for i in mine:
                    hold[i] = later
                continue
            batches.append(whole)
        self._hold(hold)
        return singles, batches

    # Internal methods

    def _pending_of(self, authors
                    ) -> Dict[int, Tuple[TicketEvent, Optional[int]]]:
        """Pending events of *authors* that may join a batch, each with the
        end of its recording hold (None when it has none, or it ran
        out)."""
        authors = sorted(authors)
        found: Dict[int, Tuple[TicketEvent, Optional[int]]] = {}
        for start in range(0, len(authors), 100):
            chunk = authors[start:start + 100]
            for event_id, payload, owner, until in self.env.db_query("""
                    SELECT id, payload, lease_owner, lease_until
                    FROM tracnotify_event
                    WHERE state=%%s AND kind IN (%%s, %%s)
                    AND author IN (%s)""" % ','.join(['%s'] * len(chunk)),
                    [outbox.PENDING, CHANGED, COMMENT] + chunk):
                try:
                    event = TicketEvent.from_json(payload)
                except Exception:
                    continue
                if joins_batches(event):
                    held = (owner or '').startswith(RECORDING) and \
                        until is not None and until > self.now_us
                    found[event_id] = (event, until if held else None)
        return found

    def _claim_rest(self, group, ours: Dict[int, Claimed]
                    ) -> Optional[List[Claimed]]:
        """All of *group* as ours, or None when someone else holds part."""
        rest = [s.id for s in group if s.id not in ours]
        got: Dict[int, Claimed] = {s.id: ours[s.id] for s in group
                                   if s.id in ours}
        if rest:
            token = self.claim.token
            now = clock.now_sql(self.env)
            marks = ','.join(['%s'] * len(rest))
            with self.env.db_transaction as db:
                db("""UPDATE tracnotify_event
                      SET lease_owner=%s, lease_until={0} + %s
                      WHERE id IN ({1}) AND state=%s
                      AND (lease_until IS NULL OR lease_until<{0})"""
                   .format(now, marks),
                   [token, self.config.lease_seconds * US] + rest +
                   [outbox.PENDING])
            for event_id, attempts, payload in self.env.db_query("""
                    SELECT id, attempts, payload FROM tracnotify_event
                    WHERE id IN ({}) AND lease_owner=%s""".format(marks),
                    rest + [token]):
                got[event_id] = Claimed(event_id, attempts,
                                        TicketEvent.from_json(payload))
            self.claim.add(i for i in got if i not in ours)
            if len(got) < len(group):
                self._hold({i: self.now_us + US for i in got
                            if i not in ours})
                return None
        return [got[s.id] for s in group]

    def _hold(self, until: Dict[int, int]) -> None:
        """Put events of ours back under the hold lease (fenced: only rows
        still leased under our claim's token)."""
        if not until:
            return
        self.env.db_transaction.executemany("""
            UPDATE tracnotify_event SET lease_owner=%s, lease_until=%s
            WHERE id=%s AND state=%s AND lease_owner=%s""",
            [(HOLD, t, i, outbox.PENDING, self.claim.token)
             for i, t in until.items()])


# Building the mail of a batch -------------------------------------------------

class _Batch(NamedTuple):
    """The changes one group of recipients gets in one batch mail."""

    expansions: List[Expansion]
    language: str
    blocks: List[str]                      # each change's text block
    #: each change's HTML block (None: shown as its text); None: text only
    html_blocks: Optional[List[Optional[str]]]

    @property
    def ticket_ids(self) -> List[int]:
        """The tickets, in order, each once."""
        ids: List[int] = []
        for x in self.expansions:
            if x.event.ticket_id not in ids:
                ids.append(x.event.ticket_id)
        return ids


class _Blocks:
    """Each change's text and HTML blocks, rendered once per language."""

    def __init__(self, env, expansions: Sequence[Expansion]) -> None:
        self.env = env
        self.expansions = expansions
        self._text: Dict[Tuple[int, str], str] = {}
        self._html: Dict[Tuple[int, str], Optional[str]] = {}

    def text(self, n: int, language: str) -> str:
        if (n, language) not in self._text:
            x = self.expansions[n]
            self._text[(n, language)] = change_block(
                self.env, x.formatter, x.event, language)
        return self._text[(n, language)]

    def html(self, n: int, language: str) -> Optional[str]:
        if (n, language) not in self._html:
            x = self.expansions[n]
            self._html[(n, language)] = change_html(
                self.env, x.formatter, x.event, language)
        return self._html[(n, language)]


def build_batch_messages(env, config: NotifyConfig,
                         events: Sequence[TicketEvent]
                         ) -> Tuple[List[NewMessage], list]:
    """``(messages, digest_items)`` for the events of one batch: per
    recipient one mail listing the changes they may view (or that
    ticket's normal mail when that is one), digest items for those who
    chose the digest."""
    expansions = [x for x in (expand(env, config, e, digest=True)
                              for e in events) if x is not None]
    expansions.sort(key=lambda x: (x.event.ticket_id, x.event.time))
    items = [item for x in expansions for item in x.digest_items]
    seen = _changes_seen(expansions)
    messages: List[NewMessage] = []
    for n, x in enumerate(expansions):   # a single change: its normal mail
        alone = [r for r in x.recipients if seen[r.address.lower()][1] == [n]]
        messages.extend(render_messages(env, config, x.event, x.formatter,
                                        alone))
    blocks = _Blocks(env, expansions)
    for (language, with_html, numbers), recipients in \
            _batch_groups(seen).items():
        batch = _Batch([expansions[n] for n in numbers], language,
                       [blocks.text(n, language) for n in numbers],
                       [blocks.html(n, language) for n in numbers]
                       if with_html else None)
        messages.extend(_batch_mail(env, config, batch, recipients))
    return messages, items


def _changes_seen(expansions: Sequence[Expansion]
                  ) -> Dict[str, Tuple[Recipient, List[int]]]:
    """``{address: (recipient, [numbers of the changes they get])}``."""
    seen: Dict[str, Tuple[Recipient, List[int]]] = {}
    for n, x in enumerate(expansions):
        for r in x.recipients:
            seen.setdefault(r.address.lower(), (r, []))[1].append(n)
    return seen


def _batch_groups(seen: Dict[str, Tuple[Recipient, List[int]]]
                  ) -> Dict[Tuple[str, bool, Tuple[int, ...]],
                            List[Recipient]]:
    """Who gets several changes, by (language, HTML or not, changes)."""
    groups: Dict[Tuple[str, bool, Tuple[int, ...]], List[Recipient]] = {}
    for r, numbers in seen.values():
        if len(numbers) > 1:
            groups.setdefault((r.language or 'en', wants_html(r),
                               tuple(numbers)), []).append(r)
    return groups


def batch_subject(env, config: NotifyConfig, ticket_ids: Sequence[int]
                  ) -> str:
    """``[prefix] Batch modify: #1, #2``, from Trac's own
    ``batch_subject_template``."""
    descr = ', '.join('#%s' % t for t in ticket_ids)
    prefix = subject_prefix(env, config)
    return clean_header_text(render_subject(
        env, 'batch_subject_template', config.batch_subject_template,
        '%s Batch modify: %s' % (prefix, descr),
        prefix=prefix, tickets_descr=descr))


def _batch_mail(env, config: NotifyConfig, batch: _Batch,
                recipients: List[Recipient]) -> List[NewMessage]:
    """The copies of one batch mail for *recipients* (one language, with
    an HTML part when the batch has HTML blocks)."""
    first = batch.expansions[0].event
    ids = batch.ticket_ids
    query_url = env.abs_href.query(id=','.join(str(t) for t in ids))
    html = None
    with mail_language(env, batch.language):
        author = batch.expansions[0].formatter._format_author(first.author)
        intro = str(_('Batch modification to %(tickets)s by %(author)s:',
                      tickets=', '.join('#%s' % t for t in ids),
                      author=author))
        body = '\n'.join(
            [intro, ''] + [b + '\n' for b in batch.blocks] +
            signature(env, str(_('Tickets URL: <%(link)s>',
                                 link=query_url)))) + str(footer(env))
        subject = batch_subject(env, config, ids)
        if batch.html_blocks is not None:
            html = _batch_html(env, batch, intro, subject, query_url)
    msgid = create_message_id(env, ','.join(str(t) for t in ids),
                              config.envelope_from, first.datetime,
                              '%s.%s.%s' % (BATCH_KIND, first.author,
                                            batch.language))
    headers = MailHeaders(
        from_name=sender_name(env, config, first),
        from_addr=sender_address(env, config, first),
        reply_to=config.smtp_replyto, subject=subject, msgid=msgid,
        root_msgid=None, date=first.time / 1000000.0,
        extra=standard_headers(env, config, BATCH_KIND))
    shared = encode_shared_part(headers, body, config, html, 'both')
    recipients = with_unsubscribe_links(env, recipients, config)
    return [NewMessage(ticket=ids[0], kind=BATCH_KIND, msgid=msgid,
                       sender=config.envelope_from, recipient=r.address,
                       reason=r.reason, subject=subject, message=data)
            for r, data in build_copies(shared, recipients, config)]


def _batch_html(env, batch: _Batch, intro: str, title: str,
                query_url: str) -> str:
    """The HTML part of a batch mail: one section per ticket (its heading
    links to it), holding that ticket's changes (translations active)."""
    sections: Dict[int, Tuple[str, str, List[str]]] = {}
    for x, text, block in zip(batch.expansions, batch.blocks,
                              batch.html_blocks or ()):
        ticket_id = x.event.ticket_id
        section = sections.setdefault(ticket_id, (
            ticket_heading(ticket_id, x.event.values.get('summary')),
            env.abs_href.ticket(ticket_id), []))
        section[2].append(block_html(text, block))
    return ticket_list_html(
        title, intro, list(sections.values()),
        [(str(_('Open these tickets')), query_url),
         (env.project_name, project_url(env))], str(footer(env)),
        batch.language)
