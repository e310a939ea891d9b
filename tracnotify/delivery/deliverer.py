"""One delivery pass: expand recorded events into messages, send what is due.

:class:`Deliverer` is plain Python and does one pass over the outbox; it is
what ``trac-admin ENV notify send``, the standalone worker
(:mod:`tracnotify.delivery.worker`) and the in-process background thread
(:mod:`tracnotify.delivery.service`) all run.
"""

import threading
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from trac.util.text import exception_to_unicode

from tracnotify import outbox
from tracnotify.config import NotifyConfig, load_config
from tracnotify.delivery.throttle import Throttle
from tracnotify.delivery.transports import Transport, create_transport
from tracnotify.event import TicketEvent


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

    def expand_events(self, report: PassReport, limit: int = 50) -> None:
        """Turn recorded events into messages (and digest items); changes
        of a batch become one mail per recipient (``coalesce.py``).  The
        messages of all the events claimed together are stored in one
        transaction (see :meth:`_store`)."""
        from tracnotify.mail.coalesce import Coalescer
        from tracnotify.mail.pipeline import build_messages
        from tracnotify.mail.suppression import TokenBatch
        while True:
            claimed = outbox.claim_events(self.env, limit,
                                          self.config.lease_seconds)
            if not claimed:
                return
            claimed, batches = Coalescer(self.env, self.config).split(claimed)
            for batch in batches:
                self._expand_batch(batch, report)
            built = []
            for event_id, attempts, payload in claimed:
                try:
                    event = TicketEvent.from_json(payload)
                    items: list = []
                    tokens = TokenBatch()
                    messages = build_messages(self.env, self.config, event,
                                              items, tokens)
                    built.append((event_id, attempts, messages, items,
                                  tokens))
                except Exception as e:
                    self._event_failed(event_id, attempts, e, report)
            self._store(built, report)

    def _store(self, built: list, report: PassReport) -> None:
        """Messages, digest items and unsubscribe tokens of the events
        built: all in one transaction, or (when that fails) event by
        event, so that one event the database refuses fails alone."""
        from tracnotify.mail.digest import queue_items
        from tracnotify.mail.suppression import purge_if_due

        def store(event_id, messages, items, tokens) -> int:
            tokens.store(self.env)
            count = outbox.complete_event(self.env, event_id, messages)
            queue_items(self.env, items)
            return count

        if not built:
            return
        try:
            with self.env.db_transaction:
                count = sum(store(event_id, messages, items, tokens)
                            for event_id, _a, messages, items, tokens
                            in built)
            report.messages_built += count
            report.events += len(built)
        except Exception as e:  # rolled back: nothing of it was stored
            if len(built) == 1:
                self._event_failed(built[0][0], built[0][1], e, report)
            else:
                for one in built:
                    self._store([one], report)
        purge_if_due(self.env)

    def _event_failed(self, event_id: int, attempts: int, e: Exception,
                      report: PassReport) -> None:
        error = exception_to_unicode(e, traceback=True)
        self.log.error('tracnotify: cannot build mail for event %s: %s',
                       event_id, error)
        report.errors.append(exception_to_unicode(e))
        outbox.fail_event(self.env, event_id, attempts, error,
                          self.config.max_attempts)

    def _expand_batch(self, batch, report: PassReport) -> None:
        """One batch of changes (``coalesce.py``): its messages and digest
        items stored, and all its events done, in one transaction."""
        from tracnotify.mail.coalesce import build_batch_messages
        from tracnotify.mail.digest import queue_items
        try:
            messages, items = build_batch_messages(
                self.env, self.config, [c.event for c in batch])
            with self.env.db_transaction:
                report.messages_built += outbox.complete_event(
                    self.env, batch[0].id, messages)
                for claimed in batch[1:]:
                    outbox.complete_event(self.env, claimed.id, [])
                queue_items(self.env, items)
            report.events += len(batch)
        except Exception as e:
            error = exception_to_unicode(e, traceback=True)
            self.log.error('tracnotify: cannot build mail for the batch of '
                           'events %s: %s', [c.id for c in batch], error)
            report.errors.append(exception_to_unicode(e))
            for claimed in batch:
                outbox.fail_event(self.env, claimed.id, claimed.attempts,
                                  error, self.config.max_attempts)

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
                 stop: Optional[threading.Event] = None) -> None:
        """Send every message that is due, batch by batch."""
        stop = stop or threading.Event()
        throttle = Throttle(self.config.smtp_burst,
                            self.config.smtp_burst_pause, stop)
        connections = self.config.smtp_connections \
            if self._own_transport and not self._in_memory_db() else 1
        if connections <= 1:
            self._send_loop(self.transport, report, progress, stop, throttle)
            return
        transports = [self.transport] + [
            create_transport(self.config, self.env)
            for _ in range(connections - 1)]
        threads = [threading.Thread(
            target=self._send_loop, name='tracnotify-send-%d' % i,
            args=(t, report, progress, stop, throttle))
            for i, t in enumerate(transports)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _in_memory_db(self) -> bool:
        """One in-memory SQLite connection cannot be shared by threads."""
        from trac.db.api import DatabaseManager
        return DatabaseManager(self.env).connection_uri.endswith(':memory:')

    def _send_loop(self, transport: Transport, report: PassReport,
                   progress, stop: threading.Event,
                   throttle: Throttle) -> None:
        try:
            while not stop.is_set():
                allowed = throttle.take(self.config.batch_size)
                if not allowed:
                    return
                batch = outbox.claim_messages(self.env, allowed,
                                              self.config.lease_seconds)
                if not batch:
                    return
                results = transport.send(batch)
                self._record(batch, results, report)
                if progress:
                    progress(report)
                if not any(r.ok or r.permanent for r in results):
                    return  # server unreachable: stop hammering it
        finally:
            transport.close()

    def _record(self, batch, results, report: PassReport) -> None:
        sent = [m.id for m, r in zip(batch, results) if r.ok]
        outbox.mark_sent(self.env, sent)
        with self._report_lock:
            report.sent += len(sent)
        for message, result in zip(batch, results):
            if result.ok:
                continue
            state = outbox.mark_failed(
                self.env, message, result.error, result.permanent,
                self.config.max_attempts, self.config.retry_delay)
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
        """Record lost changes, expand pending events, then send what is
        due."""
        report = PassReport()
        self.reconcile(report)
        if not self.config.can_send:
            report.errors.append(
                'smtp_enabled is false in [notification]'
                if not self.config.smtp_enabled else
                'neither smtp_from nor smtp_replyto is set in [notification]')
            self.log.info('tracnotify: nothing sent: %s', report.errors[-1])
            return report
        self.expand_events(report)
        self.run_digests(report)
        self.send_due(report, progress, stop)
        return report
