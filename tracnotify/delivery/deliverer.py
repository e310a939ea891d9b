"""One delivery pass: expand recorded events into messages, send what is due.

:class:`Deliverer` is plain Python and does one pass over the outbox; it is
what ``trac-admin ENV notify send``, the standalone worker
(:mod:`tracnotify.delivery.worker`) and the in-process background thread
(:mod:`tracnotify.delivery.service`) all run.
"""

import itertools
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, TypeVar

from trac.util.text import exception_to_unicode

from tracnotify import outbox
from tracnotify.alerts.monitor import check_delivery
from tracnotify.config import NotifyConfig, load_config
from tracnotify.delivery.throttle import Throttle
from tracnotify.delivery.transports import Transport, create_transport
from tracnotify.inbound.bounce_record import record_refusal
from tracnotify.mail.verp import apply_envelope
from tracnotify.outbox.keeper import LeaseKeeper
from tracnotify.outbox.reads import recover_aborted_read
from tracnotify.threadname import native_name, start_named

T = TypeVar('T')

#: pauses between attempts to record a result while the database is away
RETRY_PAUSES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: how long a result waits in memory for the database (then the lease runs
#: out and the rows are claimed again: no loss, possibly a repeat)
RECORD_PATIENCE = 3600
STOPPING_PATIENCE = 30
#: events claimed at once by a pass: a small first claim, so that the
#: first mail of a backlog leaves soon, then bigger ones
FIRST_CLAIM = 4
CLAIM = 50
#: messages a sender claims at once while expansion goes on, so that
#: several connections share what is built (then ``outbox_batch_size``)
BUILDING_BATCH = 100


@dataclass
class Built:
    """What expanding one change (or one batch of changes) gave, before it
    is stored: ``events`` ``[(event_id, attempts, messages)]``."""

    events: list
    items: list
    tokens: Optional[object]        # a TokenBatch, or None


class Backlog:
    """What the senders of a pass know of the expansion running beside
    them (:meth:`Deliverer.run_once`): a sender that finds nothing due
    waits for the next stored claim instead of ending, until the
    expansion is finished."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._stored = 0
        self.finished = False

    def state(self) -> tuple:
        """``(finished, stored)``, to give :meth:`wait` (read before a
        claim: what is stored after it is waited for)."""
        with self._cond:
            return self.finished, self._stored

    def stored(self) -> None:
        """More messages are in the outbox."""
        with self._cond:
            self._stored += 1
            self._cond.notify_all()

    def finish(self) -> None:
        """No more will come in this pass."""
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float = 0.5) -> None:
        """Until something was stored after *seen*, or the expansion ends."""
        with self._cond:
            if not self.finished and self._stored == seen:
                self._cond.wait(timeout)


@dataclass
class PassReport:
    """What one pass over the outbox did."""

    events: int = 0
    messages_built: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    digests: int = 0
    reconciled: int = 0     # changes recorded by the reconciler
    errors: List[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.dead


class Deliverer:
    """Runs passes over the outbox of one environment.

    Sending uses ``smtp_connections`` transports in parallel, each claiming
    its own batches (claims are safe between threads, processes and
    machines) and sharing one burst :class:`Throttle`.
    """

    def __init__(self, env, config: Optional[NotifyConfig] = None,
                 transport: Optional[Transport] = None) -> None:
        self.env = env
        self.config = config or load_config(env)
        self.transport = transport or create_transport(self.config, env)
        self._own_transport = transport is None
        self.log = env.log
        self._report_lock = threading.Lock()

    def expand_events(self, report: PassReport, limit: int = CLAIM,
                      stop: Optional[threading.Event] = None,
                      rounds: Optional[int] = None,
                      backlog: Optional[Backlog] = None) -> int:
        """Turn recorded events into messages (and digest items); changes
        of a batch become one mail per recipient (``coalesce.py``).  The
        messages of all the events claimed together are stored in one
        transaction (see :meth:`_store`).

        The claim's lease is renewed while its events are expanded; an
        event whose lease was lost anyway (another worker has it) is
        skipped, and its result dropped.  When *stop* is set, no more
        events are claimed; *rounds*: claim at most that many times (by
        default until no event is left); *backlog* is told of each claim
        stored.  Returns how many events were claimed."""
        from tracnotify.mail.coalesce import Coalescer
        from tracnotify.mail.realms import build_messages, load_event
        from tracnotify.mail.suppression import TokenBatch, purge_if_due
        total = 0
        with LeaseKeeper(self.env, self._threads_allowed()) as keeper:
            while (stop is None or not stop.is_set()) and \
                    (rounds is None or rounds > 0):
                claim = outbox.claim_events(self.env, limit,
                                            self.config.lease_seconds)
                if not claim:
                    break
                total += len(claim)
                if rounds is not None:
                    rounds -= 1
                keeper.watch(claim)
                singles, batches = Coalescer(self.env,
                                             self.config).split(claim)
                for batch in batches:
                    if self._still_ours(claim, [c.id for c in batch]):
                        self._expand_batch(batch, claim, report)
                built = []
                # one connection for the reads of all the events: Trac's
                # pool pings a connection each time it is taken (three
                # times per event, 0.9 ms each, on PostgreSQL); a failed
                # read is rolled back (outbox/reads.py)
                with self.env.db_query:
                    for event_id, attempts, payload in singles:
                        recover_aborted_read(self.env)  # a caught error's
                        if not self._still_ours(claim, [event_id]):
                            continue
                        try:
                            event = load_event(payload)  # a ticket's, ...
                            items: list = []
                            tokens = TokenBatch()
                            messages = build_messages(
                                self.env, self.config, event, items, tokens)
                        except Exception as e:
                            recover_aborted_read(self.env)
                            self._failed(claim, [(event_id, attempts)], e,
                                         'event %s' % event_id, report)
                            continue
                        built.append(Built([(event_id, attempts, messages)],
                                           items, tokens))
                self._store(claim, built, report)
                keeper.watch(None)
                if backlog is not None:
                    backlog.stored()
        purge_if_due(self.env)
        return total

    def _expand_batch(self, batch, claim: outbox.Claim,
                      report: PassReport) -> None:
        """One batch of changes (``coalesce.py``): its messages and digest
        items stored, and all its events done, in one transaction."""
        from tracnotify.mail.coalesce import build_batch_messages
        try:
            messages, items = build_batch_messages(
                self.env, self.config, [c.event for c in batch])
        except Exception as e:
            self._failed(claim, [(c.id, c.attempts) for c in batch], e,
                         'the batch of events %s' % [c.id for c in batch],
                         report)
            return
        self._store(claim, [Built(
            [(batch[0].id, batch[0].attempts, messages)] +
            [(c.id, c.attempts, []) for c in batch[1:]], items, None)],
            report)

    def _still_ours(self, claim: outbox.Claim, ids: List[int]) -> bool:
        """Whether the lease of *ids* is still ours (renewed if due)."""
        if set(ids) <= claim.keep(self.env):
            return True
        self.log.warning('tracnotify: lease lost on events %s: skipped '
                         '(another worker expands them)', ids)
        return False

    def _store(self, claim: outbox.Claim, built: List['Built'],
               report: PassReport) -> None:
        """Messages, digest items and unsubscribe tokens of the events
        *built*: all in one transaction fenced by the claim's lease, or
        (when that fails) one by one, so that an event the database
        refuses, or whose lease was lost, fails or is dropped alone.
        While the database is unreachable the results wait in memory."""
        from tracnotify.mail.digest import queue_items
        if not built:
            return

        def store() -> int:
            count = 0
            with self.env.db_transaction:
                for one in built:
                    if one.tokens is not None:
                        one.tokens.store(self.env)
                    for event_id, _attempts, messages in one.events:
                        count += outbox.complete_event(
                            self.env, event_id, messages, claim.token)
                    queue_items(self.env, one.items)
            return count
        events = [e for one in built for e in one.events]
        what = 'the messages of events %s' % [e[0] for e in events]
        try:
            count = self._patiently(store, what)
        except Exception as e:  # rolled back: nothing of it was stored
            if self._unreachable(e):
                raise       # gave up waiting: the lease runs out, no loss
            if len(built) > 1:
                for one in built:
                    self._store(claim, [one], report)
            elif isinstance(e, outbox.LeaseLost):
                self.log.warning('tracnotify: %s dropped: %s (another '
                                 'worker expands them)', what, e)
            else:
                self._failed(claim, [(e[0], e[1]) for e in events], e, what,
                             report)
            return
        report.messages_built += count
        report.events += len(events)

    def _failed(self, claim: outbox.Claim, events: list, e: Exception,
                what: str, report: PassReport) -> None:
        """Record that *events* ``[(id, attempts)]`` could not be expanded
        (fenced: only those still ours)."""
        error = exception_to_unicode(e, traceback=True)
        self.log.error('tracnotify: cannot build mail for %s: %s', what,
                       error)
        report.errors.append(exception_to_unicode(e))
        for event_id, attempts in events:
            if not outbox.fail_event(self.env, event_id, attempts, error,
                                     self.config.max_attempts, claim.token):
                self.log.warning('tracnotify: lease lost on event %s: its '
                                 'failure is not recorded', event_id)

    # Waiting for the database

    def _unreachable(self, e: BaseException) -> bool:
        """Whether *e* says the database is (for now) unreachable or busy,
        rather than that the statement is wrong."""
        from trac.db.pool import TimeoutError as PoolTimeout
        if isinstance(e, PoolTimeout):
            return True
        exc = self.env.db_exc
        if isinstance(e, getattr(exc, 'InterfaceError', ())):
            return True
        if not isinstance(e, getattr(exc, 'OperationalError', ())):
            return False
        if isinstance(e, sqlite3.OperationalError):
            text = str(e).lower()       # not "no such column"
            return 'locked' in text or 'busy' in text
        return True

    def _patiently(self, action: Callable[[], T], what: str,
                   stop: Optional[threading.Event] = None) -> T:
        """``action()``, run again while the database is unreachable (a
        restart, a dropped connection): a result is not lost because the
        database could not take it at once.  Gives up (raises) after
        ``RECORD_PATIENCE`` seconds, or ``STOPPING_PATIENCE`` once *stop* is
        set."""
        started = time.monotonic()
        for attempt in itertools.count():
            try:
                result = action()
            except Exception as e:
                if not self._unreachable(e):
                    raise
                waited = time.monotonic() - started
                patience = STOPPING_PATIENCE if stop is not None and \
                    stop.is_set() else RECORD_PATIENCE
                if waited > patience:
                    self.log.error('tracnotify: the database is still '
                                   'unreachable after %d s: %s not '
                                   'recorded', waited, what)
                    raise
                if attempt == 0:
                    self.log.warning('tracnotify: the database is '
                                     'unreachable (%s): %s kept, recorded '
                                     'when it is back',
                                     exception_to_unicode(e), what)
                time.sleep(RETRY_PAUSES[min(attempt,
                                            len(RETRY_PAUSES) - 1)])
                continue
            if attempt:
                self.log.info('tracnotify: %s recorded after %.1f s', what,
                              time.monotonic() - started)
            return result
        raise AssertionError('not reached')

    def run_digests(self, report: PassReport, now=None) -> None:
        """Queue the daily digests that are due (``digest.py``)."""
        from tracnotify.mail.digest import run_digests
        try:
            done = run_digests(self.env, self.config, now)
            report.digests += done.digests
        except Exception as e:
            self.log.error('tracnotify: digest pass failed: %s',
                           exception_to_unicode(e, traceback=True))
            report.errors.append(exception_to_unicode(e))

    def send_due(self, report: PassReport,
                 progress: Optional[Callable[[PassReport], None]] = None,
                 stop: Optional[threading.Event] = None,
                 backlog: Optional[Backlog] = None) -> None:
        """Send every message that is due, batch by batch; with a
        *backlog*, also those stored until it is finished."""
        for thread in self.start_sending(report, progress, stop, backlog):
            thread.join()

    def start_sending(self, report: PassReport,
                      progress: Optional[Callable[[PassReport], None]] = None,
                      stop: Optional[threading.Event] = None,
                      backlog: Optional[Backlog] = None
                      ) -> List[threading.Thread]:
        """:meth:`send_due` on ``smtp_connections`` threads of their own;
        the threads to join.  (Where the database cannot be shared by
        threads, it sends here, on one connection, and returns none.)"""
        stop = stop or threading.Event()
        throttle = Throttle(self.config.smtp_burst,
                            self.config.smtp_burst_pause, stop)
        if not self._threads_allowed():
            self._send_loop(self.transport, report, progress, stop, throttle,
                            backlog)
            return []
        connections = self.config.smtp_connections \
            if self._own_transport else 1
        transports = [self.transport] + [
            create_transport(self.config, self.env)
            for _ in range(connections - 1)]
        threads = [threading.Thread(
            target=native_name('tracnotify-send', self._send_loop),
            name='tracnotify-send-%d' % i,
            args=(t, report, progress, stop, throttle, backlog))
            for i, t in enumerate(transports)]
        for thread in threads:
            start_named(thread, 'tracnotify-send')
        return threads

    def _in_memory_db(self) -> bool:
        """One in-memory SQLite connection cannot be shared by threads."""
        from trac.db.api import DatabaseManager
        return DatabaseManager(self.env).connection_uri.endswith(':memory:')

    def _threads_allowed(self) -> bool:
        """Whether a lease keeper may use the database from a thread."""
        return not self._in_memory_db()

    def _send_loop(self, transport: Transport, report: PassReport,
                   progress, stop: threading.Event,
                   throttle: Throttle,
                   backlog: Optional[Backlog] = None) -> None:
        try:
            with LeaseKeeper(self.env, self._threads_allowed()) as keeper:
                while not stop.is_set():
                    finished, seen = backlog.state() if backlog \
                        else (True, 0)
                    allowed = throttle.take(
                        self.config.batch_size if finished else
                        min(self.config.batch_size, BUILDING_BATCH))
                    if not allowed:
                        return
                    claim = outbox.claim_messages(self.env, allowed,
                                                  self.config.lease_seconds)
                    throttle.give_back(allowed - len(claim))
                    if not claim:
                        if finished:
                            return
                        backlog.wait(seen)     # more is being built
                        continue
                    keeper.watch(claim)
                    ours = claim.keep(self.env)
                    batch = [m for m in claim if m.id in ours]
                    apply_envelope(self.env, self.config.bounce_address,
                                   batch)
                    results = transport.send(batch)
                    self._record(claim, batch, results, report, stop)
                    keeper.watch(None)
                    if progress:
                        progress(report)
                    if batch and not any(r.ok or r.permanent
                                         for r in results):
                        return  # server unreachable: stop hammering it
        finally:
            transport.close()

    def _record(self, claim: outbox.Claim, batch, results,
                report: PassReport,
                stop: Optional[threading.Event] = None) -> None:
        """Record what the transport did, fenced by the claim's lease; the
        results wait in memory while the database is unreachable."""
        sent_ids = [m.id for m, r in zip(batch, results) if r.ok]
        failed = [(m, r) for m, r in zip(batch, results) if not r.ok]

        def record() -> tuple:
            with self.env.db_transaction:
                sent = outbox.mark_sent(self.env, sent_ids, claim.token)
                states = [outbox.mark_failed(
                    self.env, message, result.error, result.permanent,
                    self.config.max_attempts, self.config.retry_delay,
                    claim.token) for message, result in failed]
            return sent, states
        sent, states = self._patiently(
            record, 'the results of %d messages' % len(batch), stop)
        lost = sorted(set(sent_ids) - set(sent)) + \
            [m.id for (m, _r), state in zip(failed, states) if state is None]
        if lost:
            self.log.warning('tracnotify: lease lost on messages %s: their '
                             'results are dropped (another worker claimed '
                             'them)', lost)
        with self._report_lock:
            report.sent += len(sent)
        for (message, result), state in zip(failed, states):
            if state is None:
                continue
            with self._report_lock:
                if state == outbox.DEAD:
                    report.dead += 1
                else:
                    report.retrying += 1
                report.errors.append('%s: %s' % (message.recipient,
                                                 result.error))
            self.log.warning('tracnotify: mail to %s about #%s %s: %s',
                             message.recipient, message.ticket,
                             'is dead' if state == outbox.DEAD else
                             'will be retried', result.error)
            if state == outbox.DEAD and result.permanent:
                record_refusal(self.env, message, result.error)  # 5xx

    def reconcile(self, report: PassReport) -> None:
        """Record the changes that reached Trac but not the outbox
        (``outbox/reconcile.py``); with ``smtp_enabled`` false only move
        its mark, as the listener records nothing then."""
        from tracnotify.outbox.reconcile import reconcile
        try:
            report.reconciled += reconcile(
                self.env, record=self.config.smtp_enabled)
        except Exception as e:
            self.log.error('tracnotify: looking for unrecorded changes '
                           'failed: %s', exception_to_unicode(e,
                                                              traceback=True))
            report.errors.append(exception_to_unicode(e))

    def run_once(self, progress=None, stop=None) -> PassReport:
        """Record lost changes, then expand pending events and send what
        is due, claim by claim: the first mail leaves once the first events
        claimed are built, not after the whole backlog."""
        report = PassReport()
        self.reconcile(report)
        if not self.config.can_send:
            report.errors.append(
                'smtp_enabled is false in [notification]'
                if not self.config.smtp_enabled else
                'neither smtp_from nor smtp_replyto is set in [notification]')
            self.log.info('tracnotify: nothing sent: %s', report.errors[-1])
            return report
        if not self._threads_allowed():     # one in-memory connection
            self._run_in_turns(report, progress, stop)
        else:
            # the senders start once the first (small) claim is built, and
            # send while the rest is expanded beside them
            self.expand_events(report, FIRST_CLAIM, stop=stop, rounds=1)
            self.run_digests(report)
            backlog = Backlog()
            senders = self.start_sending(report, progress, stop, backlog)
            try:
                self.expand_events(report, stop=stop, backlog=backlog)
            finally:
                backlog.finish()
                for thread in senders:
                    thread.join()
        check_delivery(self.env, self.config)  # alerts to admins
        return report

    def _run_in_turns(self, report: PassReport, progress, stop) -> None:
        """:meth:`run_once` in one thread: a claim of events expanded,
        then what is due sent, and again."""
        digests = True
        limit = FIRST_CLAIM
        while True:
            claimed = self.expand_events(report, limit, stop=stop, rounds=1)
            limit = CLAIM
            if digests:
                self.run_digests(report)
                digests = False
            self.send_due(report, progress, stop)
            if not claimed or (stop is not None and stop.is_set()):
                return
