"""A compressed life of a Trac site under trouble: is any mail lost or doubled?

    python -m bench.soak [--seconds 150] [--workers 3] [--writers 2]

On a private PostgreSQL server (``tests/support/private_pg.py``: initdb in a
temporary folder, a free port) and a real SMTP server (aiosmtpd) in this
process, for ``--seconds`` of trouble:

* ``--writers`` script processes save tickets through Trac's model API
  (creations with 1-4 cc, comments on them), one every ~0.2 s each, and
  log each save that succeeded;
* ``--workers`` ``trac-admin ENV notify worker`` processes deliver
  (``delivery = worker``, a 5 s lease); one of them, at random, is killed
  with ``kill -9`` six times and replaced;
* the SMTP server answers 3% of the messages ``451``, and is down once
  (stopped, then restarted on the same port);
* ``trac-admin ENV config set`` changes ``outbox_batch_size`` (10 -> 20): a
  config reload;
* ``pg_ctl restart -m fast`` of the database.

Then the writers stop and the workers drain the outbox.  It prints the
changes made, the mails expected (the messages built for those changes,
one per recipient, checked against each change's cc list), delivered,
lost (expected, never received: must be 0) and duplicated (received twice,
same Message-ID: allowed only for the in-flight batches of killed workers,
at most kills x batch size).  The exit status is 1 when a mail was lost, a
change has no mail, or duplicates exceed that bound.
"""

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.disk_env import make_disk_env  # noqa: E402
from tests.support.private_pg import PrivatePostgres  # noqa: E402
from tests.support.smtp_sink import SinkHandler, SmtpSink, free_port  # noqa: E402

USERS = ['user%02d@example.org' % i for i in range(30)]
LEASE_SECONDS = 5
BATCH_SIZES = (10, 20)      # before and after the config reload
KILLS = 6


# The writer: a script saving tickets ----------------------------------------

def writer(path: str, seed: int, log_path: str) -> None:
    """Save tickets until SIGTERM; log each save that succeeded (JSON lines:
    ticket, kind, cc)."""
    from trac.env import Environment
    from trac.ticket.model import Ticket
    stop = []
    signal.signal(signal.SIGTERM, lambda *_a: stop.append(True))
    rng = random.Random(seed)
    env = Environment(path)
    mine: Dict[int, List[str]] = {}
    with open(log_path, 'a', encoding='utf-8') as log:
        while not stop:
            try:
                if not mine or rng.random() < 0.4:
                    cc = rng.sample(USERS, rng.randint(1, 4))
                    ticket = Ticket(env)
                    ticket.populate({'summary': 'Soak %d' % seed,
                                     'reporter': 'writer%d' % seed,
                                     'cc': ', '.join(cc)})
                    ticket.insert()
                    mine[ticket.id] = cc
                    entry = {'ticket': ticket.id, 'kind': 'created', 'cc': cc}
                else:
                    ticket_id = rng.choice(sorted(mine))
                    ticket = Ticket(env, ticket_id)
                    ticket.save_changes('writer%d' % seed,
                                        'Comment %d' % rng.randint(0, 10**6))
                    entry = {'ticket': ticket_id, 'kind': 'comment',
                             'cc': mine[ticket_id]}
            except Exception as e:       # the database restarts: try again
                log.write(json.dumps({'error': str(e)[:200]}) + '\n')
                log.flush()
                time.sleep(0.5)
                continue
            log.write(json.dumps(entry) + '\n')
            log.flush()
            time.sleep(rng.uniform(0.1, 0.3))
    env.shutdown()


# The SMTP server: 451s and an outage ------------------------------------------

class FlakyHandler(SinkHandler):
    """Answers ``451`` to a share of the messages, records the others."""

    def __init__(self, fail_rate: float, seed: int) -> None:
        super().__init__()
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        if self.rng.random() < self.fail_rate:
            self.refused += 1
            return '451 4.3.0 soak: try again later'
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Site:
    """The processes and servers of one soak run."""

    root: str
    pg: PrivatePostgres
    handler: FlakyHandler
    port: int
    path: str = ''
    sink: Optional[SmtpSink] = None
    workers: List[subprocess.Popen] = field(default_factory=list)
    writers: List[subprocess.Popen] = field(default_factory=list)
    events: List[str] = field(default_factory=list)
    kills: int = 0
    started: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        line = '%6.1f s  %s' % (time.monotonic() - self.started, what)
        self.events.append(line)
        print(line, flush=True)

    def start_sink(self) -> None:
        self.sink = SmtpSink(port=self.port, handler=self.handler).start()

    def start_worker(self) -> None:
        log = open(os.path.join(self.root, 'worker-%d.log'
                                % (len(self.workers) + self.kills)), 'w')
        self.workers.append(subprocess.Popen(
            [sys.executable, '-m', 'trac.admin.console', self.path, 'notify',
             'worker'], stdout=log, stderr=subprocess.STDOUT))

    def start_writer(self, seed: int) -> None:
        self.writers.append(subprocess.Popen(
            [sys.executable, '-m', 'bench.soak', '--writer', self.path,
             str(seed), os.path.join(self.root, 'writer-%d.log' % seed)],
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

    def kill_a_worker(self, rng: random.Random) -> None:
        victim = self.workers.pop(rng.randrange(len(self.workers)))
        victim.kill()
        victim.wait()
        self.kills += 1
        self.note('kill -9 of worker %d' % victim.pid)
        self.start_worker()

    def smtp_outage(self, seconds: float) -> None:
        self.sink.stop()
        self.note('SMTP server down for %.0f s' % seconds)
        time.sleep(seconds)
        self.start_sink()
        self.note('SMTP server back')

    def config_reload(self) -> subprocess.Popen:
        """``trac-admin ENV config set`` in the background (it takes a few
        seconds to start on a busy machine)."""
        self.note('config set outbox_batch_size %d (reload)'
                  % BATCH_SIZES[1])
        return subprocess.Popen(
            [sys.executable, '-m', 'trac.admin.console', self.path, 'config',
             'set', 'notification', 'outbox_batch_size',
             str(BATCH_SIZES[1])], stdout=subprocess.DEVNULL)

    def database_restart(self) -> None:
        began = time.monotonic()
        self.pg.restart()
        self.note('pg_ctl restart -m fast (%.1f s)'
                  % (time.monotonic() - began))

    def stop(self, procs: List[subprocess.Popen]) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()


# The run ---------------------------------------------------------------------

def trouble(site: Site, seconds: float, rng: random.Random) -> None:
    """The compressed life: kills, an outage, a reload, a restart."""
    plan = [(seconds * (i + 0.5) / KILLS, 'kill') for i in range(KILLS)]
    plan += [(seconds * 0.25, 'outage'), (seconds * 0.4, 'reload'),
             (seconds * 0.6, 'restart')]
    start = time.monotonic()
    reload = None
    for at, what in sorted(plan):
        time.sleep(max(0.0, start + at - time.monotonic()))
        if what == 'kill':
            site.kill_a_worker(rng)
        elif what == 'outage':
            site.smtp_outage(max(4.0, seconds * 0.04))
        elif what == 'reload':
            reload = site.config_reload()
        else:
            site.database_restart()
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    if reload is not None and reload.wait(120) != 0:
        site.note('config set failed')


def outbox_state(path: str) -> Tuple[int, int]:
    """(events not done, messages not sent) in the outbox."""
    from trac.env import Environment
    env = Environment(path)
    try:
        (events,), = env.db_query("SELECT COUNT(*) FROM tracnotify_event "
                                  "WHERE state='pending'")
        (messages,), = env.db_query("SELECT COUNT(*) FROM tracnotify_message "
                                    "WHERE state='pending'")
    finally:
        env.shutdown()
    return events, messages


def drain(site: Site, timeout: float) -> None:
    """Wait until the outbox is empty (or *timeout*)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events, messages = outbox_state(site.path)
        if not events and not messages:
            site.note('outbox drained')
            return
        time.sleep(2)
    site.note('drain timed out: %d events, %d messages pending'
              % outbox_state(site.path))


def made_changes(root: str) -> Tuple[List[dict], int]:
    """The saves the writers logged, and how many attempts failed."""
    changes, errors = [], 0
    for name in sorted(os.listdir(root)):
        if name.startswith('writer-'):
            with open(os.path.join(root, name), encoding='utf-8') as f:
                for line in f:
                    entry = json.loads(line)
                    if 'error' in entry:
                        errors += 1
                    else:
                        changes.append(entry)
    return changes, errors


@dataclass
class Figures:
    """What the soak measured."""

    changes: int = 0
    save_errors: int = 0
    changes_without_mail: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    refused_451: int = 0
    dead: int = 0


def figures(site: Site) -> Figures:
    """Compare what the writers did, the outbox and what the SMTP server
    received."""
    from trac.env import Environment
    changes, errors = made_changes(site.root)
    env = Environment(site.path)
    try:
        rows = env.db_query('SELECT m.msgid, m.recipient, m.state, m.ticket '
                            'FROM tracnotify_message m')
        per_ticket = collections.Counter(t for t, in env.db_query(
            "SELECT ticket FROM tracnotify_event WHERE state='done'"))
    finally:
        env.shutdown()
    expected: Set[Tuple[str, str]] = {(m, r.lower()) for m, r, _s, _t in rows}
    received = collections.Counter(
        (m.message['Message-ID'], r.lower())
        for m in site.handler.received for r in m.rcpt_tos)
    made = collections.Counter(c['ticket'] for c in changes)
    to_cc = collections.defaultdict(set)
    for _m, r, _s, t in rows:
        to_cc[t].add(r.lower())
    missing_cc = sum(1 for c in changes
                     if not set(c['cc']) <= to_cc[c['ticket']])
    f = Figures(changes=len(changes), save_errors=errors)
    f.changes_without_mail = sum(max(0, n - per_ticket[t])
                                 for t, n in made.items()) + missing_cc
    f.expected = len(expected)
    f.delivered = len(expected & set(received))
    f.lost = f.expected - f.delivered
    f.duplicated = sum(n - 1 for n in received.values() if n > 1)
    f.unexpected = len(set(received) - expected)
    f.refused_451 = site.handler.refused
    f.dead = sum(1 for _m, _r, s, _t in rows if s == 'dead')
    return f


def report(site: Site, f: Figures, seconds: float) -> bool:
    """Print the figures; whether the promise held."""
    bound = site.kills * max(BATCH_SIZES)
    print()
    print('soak: %.0f s of trouble, %d workers killed, 1 SMTP outage, '
          '1 config reload, 1 database restart' % (seconds, site.kills))
    lines = [
        ('changes made (scripts)', f.changes),
        ('  saves refused (database restarting)', f.save_errors),
        ('  changes without their mail', f.changes_without_mail),
        ('mails expected', f.expected),
        ('delivered', f.delivered),
        ('lost', f.lost),
        ('duplicated (same Message-ID)', f.duplicated),
        ('  allowed: in-flight batches of killed workers <=', bound),
        ('unexpected', f.unexpected),
        ('451 answers (retried)', f.refused_451),
        ('dead', f.dead),
    ]
    for name, value in lines:
        print('%-50s %8d' % (name, value))
    if f.expected:
        print('%-50s %8.4f' % ('duplicated / expected', f.duplicated /
                                f.expected))
    return (f.lost == 0 and f.changes_without_mail == 0 and f.dead == 0
            and f.duplicated <= bound and f.unexpected == 0)


def run(seconds: float, workers: int, writers: int, seed: int) -> bool:
    rng = random.Random(seed)
    root = tempfile.mkdtemp(prefix='tracnotify-soak-')
    with PrivatePostgres() as pg:
        site = Site(root, pg, FlakyHandler(0.03, seed), free_port())
        site.path = make_disk_env(root, {
            'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
            'smtp_port': str(site.port), 'smtp_from': 'trac@example.org',
            'smtp_default_domain': 'example.org', 'delivery': 'worker',
            'outbox_batch_size': str(BATCH_SIZES[0]),
            'outbox_lease_seconds': str(LEASE_SECONDS),
            'outbox_poll_interval': '1', 'outbox_retry_delay': '1',
            'outbox_max_attempts': '30', 'batch_window': '0',
        }, pg.uri)
        site.start_sink()
        site.started = time.monotonic()
        for _ in range(workers):
            site.start_worker()
        for n in range(writers):
            site.start_writer(seed * 100 + n)
        site.note('%d workers, %d writers started' % (workers, writers))
        try:
            trouble(site, seconds, rng)
            site.stop(site.writers)
            site.note('writers stopped')
            drain(site, 120 + LEASE_SECONDS)
            time.sleep(LEASE_SECONDS + 1)    # a late second copy, if any
        finally:
            site.stop(site.writers + site.workers)
            site.sink.stop()
        result = figures(site)
    return report(site, result, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=150)
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--writers', type=int, default=2)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--writer', nargs=3, metavar=('ENV', 'SEED', 'LOG'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(args.writer[0], int(args.writer[1]), args.writer[2])
        return
    ok = run(args.seconds, args.workers, args.writers, args.seed)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
