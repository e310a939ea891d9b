"""Realistic delivery workloads, timed from process start (issue 13).

    python -m bench.workloads [--only NAME ...] [--connections 4] [--big]

Each workload fills an outbox through Trac's own API (``delivery =
worker``: the saves only record events), then runs the real command,
``trac-admin ENV notify send`` (or N × ``notify worker --once`` at the
same time), in child processes against a fast local SMTP sink, and prints:

* msg/s from process start to the last mail the sink took, and from the
  first mail to the last;
* the sink's own capacity with the same number of connections, measured
  in this run (plain smtplib, no database), and the ratio to it;
* start-up: the same command on an empty outbox (Trac and tracnotify
  loaded, nothing to do), and the first mail after process start and
  after start-up;
* expansion (events -> stored messages) on its own, in a child of its own
  on a copy of the outbox (SQLite workloads): ms per change and per
  recipient, and the fixed cost per change and the cost per recipient
  that the small and five_k workloads give together;
* peak RSS of the child, and outbox bytes per copy (what the tables of
  the outbox hold for the workload, divided by the copies); for ``big``
  also the growth of the database file against the shared part plus the
  copies' own headers.

The children run with Python's bytecode cache, as an installed site does
(``PYTHONDONTWRITEBYTECODE`` is dropped from their environment).
``--code DIR`` runs them on the tracnotify of another checkout (say
``git archive COMMIT | tar -x -C /tmp/before``), for before/after figures taken
at the same load: run it twice, with and without.

Workloads: ``small`` 200 ticket creations x 25 cc; ``two_k`` one ticket
with 2,000 cc created then commented; ``five_k`` one ticket with 5,000 cc;
``pg`` the small workload on PostgreSQL (TRACNOTIFY_PG_URI), one
``notify send``; ``pg4`` 400 creations x 25 cc on PostgreSQL drained by
4 workers at once; with ``--big``, ``big`` one ticket with a 1 MB
description and 10,000 cc (``--big-cc``); ``wiki`` 300 wiki pages each
created and edited twice, 3 watchers each (:func:`fill_wiki`).  The
machine's load changes the figures: compare ratios within one run.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.fast_sink import FastSink, selftest  # noqa: E402
from tests.support.disk_env import drop_disk_env, make_disk_env  # noqa: E402
from tests.support.smtp_sink import free_port  # noqa: E402

#: the child: one trac-admin command, expansion timed, peak RSS printed
CHILD = """
import json, resource, sys, time
from tracnotify.delivery import deliverer
spent = [0.0, 0]
began = []
run_once = deliverer.Deliverer.run_once
def timed_pass(self, *args, **kwargs):
    began.append(time.time())
    return run_once(self, *args, **kwargs)
deliverer.Deliverer.run_once = timed_pass
original = deliverer.Deliverer.expand_events
def timed(self, report, *args, **kwargs):
    start = time.perf_counter()
    try:
        return original(self, report, *args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - start
        spent[1] = report.events
deliverer.Deliverer.expand_events = timed
from trac.admin.console import run
code = run(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print('RESULT ' + json.dumps({
    'rc': code, 'expand_s': spent[0], 'events': spent[1],
    'pass_at': began[0] if began else 0.0,
    'cpu_s': usage.ru_utime + usage.ru_stime,
    'peak_mb': usage.ru_maxrss / 1024.0}))
"""


#: expansion alone: every pending event built into stored messages
EXPAND_CHILD = """
import json, sys, time
from trac.env import Environment
from tracnotify.delivery.deliverer import Deliverer, PassReport
env = Environment(sys.argv[1])
deliverer = Deliverer(env)
report = PassReport()
start = time.perf_counter()
deliverer.expand_events(report)
print('RESULT ' + json.dumps({'seconds': time.perf_counter() - start,
                              'events': report.events,
                              'messages': report.messages_built}))
"""


#: another checkout whose tracnotify the children import (``--code``)
CODE: Optional[str] = None


def child_env() -> dict:
    """The children's environment: with the bytecode cache (and the
    checkout of ``--code`` first on the path)."""
    env = dict(os.environ)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    if CODE:
        env['PYTHONPATH'] = os.pathsep.join(
            [CODE] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


@dataclass
class Result:
    """What one run of a workload measured."""

    name: str
    messages: int
    seconds_from_start: float
    first_mail: float
    first_to_last: float
    expand_s: float
    events: int
    peak_mb: float
    bytes_per_copy: float
    #: expansion alone: (seconds, events, messages), or None
    expansion: Optional[tuple] = None
    #: big: (database growth, shared part bytes, personal header bytes)
    growth: Optional[tuple] = None
    #: the first mail after the (first) pass began, once Trac and
    #: tracnotify were loaded (seconds)
    after_pass_start: float = 0.0
    #: CPU seconds of the child(ren): what the machine's load changes least
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds_from_start

    @property
    def burst_rate(self) -> float:
        return self.messages / self.first_to_last if self.first_to_last \
            else float('nan')


def cc_list(prefix: str, count: int) -> str:
    return ', '.join('%s%05d@example.org' % (prefix, i) for i in range(count))


def fill_small(env, tickets: int = 200, cc: int = 25) -> None:
    """Many ticket creations with a few dozen cc each."""
    from trac.ticket.model import Ticket
    for n in range(tickets):
        ticket = Ticket(env)
        ticket.populate({'summary': 'Small change %d' % n,
                         'reporter': 'alice',
                         'description': 'Steps to reproduce. ' * 20,
                         'cc': cc_list('t%03d.' % n, cc)})
        ticket.insert()


def fill_one(env, cc: int, comment: bool, description: str = '') -> None:
    """One ticket with *cc* cc addresses, commented once with *comment*."""
    from trac.ticket.model import Ticket
    ticket = Ticket(env)
    ticket.populate({'summary': 'Big audience', 'reporter': 'alice',
                     'description': description or 'Lorem ipsum. ' * 60,
                     'cc': cc_list('w', cc)})
    ticket.insert()
    if comment:
        ticket = Ticket(env, ticket.id)
        ticket['priority'] = 'minor'
        ticket.save_changes('bob', 'A comment that everyone gets.')


def fill_wiki(env, pages: int = 300, edits: int = 2, watchers: int = 3,
              people: int = 50) -> None:
    """Many wiki page edits with a few watchers each: *pages* pages
    created, then edited *edits* times (a diff each), by authors who do
    not watch them; each page watched by *watchers* of *people* users."""
    from trac.web.session import DetachedSession
    from trac.wiki.model import WikiPage

    from tracnotify import watches
    from tracnotify.wiki_subscribers import WATCH_CLASS
    for i in range(people):
        session = DetachedSession(env, 'reader%02d' % i)
        session['name'] = 'Reader %d' % i
        session['email'] = 'reader%02d@example.org' % i
        session.save()
    text = ''.join('Line %d of a page of notes.\n' % i for i in range(40))
    for n in range(pages):
        name = 'Notes/Page%04d' % n
        for i in range(watchers):
            watches.watch(env, 'reader%02d' % ((n + i * 7) % people),
                          WATCH_CLASS, 'wiki', name)
        for version in range(edits + 1):
            page = WikiPage(env, name)
            page.text = text.replace('Line %d ' % (version * 5),
                                     'Edited line %d ' % version)
            page.save('writer%d' % (version % 2), 'Edit %d' % version)


@dataclass
class Workload:
    name: str
    title: str
    fill: Callable
    workers: int = 1
    pg: bool = False


def workloads(big_cc: int) -> List[Workload]:
    return [
        Workload('small', '200 ticket creations x 25 cc', fill_small),
        Workload('two_k', 'one ticket, 2,000 cc, created + commented',
                 lambda env: fill_one(env, 2000, True)),
        Workload('five_k', 'one ticket, 5,000 cc',
                 lambda env: fill_one(env, 5000, False)),
        Workload('pg', '200 ticket creations x 25 cc on PostgreSQL',
                 fill_small, pg=True),
        Workload('pg4', '4 workers on PostgreSQL, 400 creations x 25 cc',
                 lambda env: fill_small(env, 400, 25), workers=4, pg=True),
        Workload('big', 'one ticket, 1 MB description, %d cc' % big_cc,
                 lambda env: fill_one(env, big_cc, False,
                                      ('x' * 79 + '\n') * 13108)),
        Workload('wiki', '300 wiki pages x 3 edits, 3 watchers each',
                 fill_wiki),
    ]


def run_children(path: str, workers: int) -> tuple:
    """Start the command(s) at once; (start time, [child results])."""
    if workers == 1:
        argv = [[path, 'notify', 'send', '--quiet']]
    else:
        argv = [[path, 'notify', 'worker', '--once']] * workers
    start = time.time()
    children = [subprocess.Popen([sys.executable, '-c', CHILD] + a,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env=child_env())
                for a in argv]
    results = []
    for child in children:
        out, err = child.communicate()
        lines = [line for line in out.splitlines()
                 if line.startswith('RESULT ')]
        if child.returncode or not lines:
            raise RuntimeError('child failed: %s %s' % (out, err[-3000:]))
        results.append(json.loads(lines[-1][7:]))
    return start, results


def outbox_bytes(env) -> int:
    """Bytes of message text the outbox tables hold (every table of
    tracnotify that stores a copy or a part of one)."""
    from trac.db.api import DatabaseManager
    tables = set(DatabaseManager(env).get_table_names())
    total = 0
    for table, columns in (('tracnotify_message',
                            'message, recipient, reason, subject, msgid, '
                            'sender'),
                           ('tracnotify_body', 'data')):
        if table not in tables:
            continue
        exprs = ' + '.join('COALESCE(LENGTH(%s), 0)' % c.strip()
                           for c in columns.split(','))
        for n, in env.db_query('SELECT SUM(%s) FROM %s' % (exprs, table)):
            total += int(n or 0)
    return total


def expansion_alone(path: str) -> Optional[tuple]:
    """``(seconds, events, messages)`` of expanding the outbox of *path*
    (SQLite), on a copy of it, in a child process."""
    copy = path + '-expansion'
    shutil.copytree(path, copy)
    try:
        out = subprocess.run([sys.executable, '-c', EXPAND_CHILD, copy],
                             capture_output=True, text=True, check=True,
                             env=child_env()).stdout
        done = json.loads([line for line in out.splitlines()
                           if line.startswith('RESULT ')][-1][7:])
        return done['seconds'], done['events'], done['messages']
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def table_bytes(path: str) -> dict:
    """``{table: bytes}`` of the SQLite database of the environment
    *path*: each table with its indexes (SQLite's dbstat)."""
    import sqlite3
    name = os.path.join(path, 'db', 'trac.db')
    if not os.path.exists(name):
        return {}
    cnx = sqlite3.connect('file:%s?mode=ro' % name, uri=True)
    try:
        return dict(cnx.execute("""
            SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s
            JOIN sqlite_master m ON m.name=s.name GROUP BY m.tbl_name"""))
    finally:
        cnx.close()


def copy_parts(env) -> tuple:
    """``(shared part bytes, personal header bytes)`` of the outbox: the
    personal headers as each copy is sent (its own stored headers, and
    the List-Unsubscribe-Post line, which its body holds once for all its
    copies), the shared part without that line."""
    from tracnotify.outbox.bodies import COMMON_TAIL
    tail = len(COMMON_TAIL)
    body = env.db_query("""
        SELECT SUM(LENGTH(data)), SUM(CASE WHEN data LIKE %s THEN 1
                                          ELSE 0 END)
        FROM tracnotify_body""", ('List-Unsubscribe-Post:%',))[0]
    heads = env.db_query("""
        SELECT SUM(LENGTH(m.message)), SUM(CASE WHEN b.data LIKE %s
                                               THEN 1 ELSE 0 END)
        FROM tracnotify_message m
        LEFT JOIN tracnotify_body b ON b.id=m.body_id""",
        ('List-Unsubscribe-Post:%',))[0]
    return (int(body[0] or 0) - tail * int(body[1] or 0),
            int(heads[0] or 0) + tail * int(heads[1] or 0))


def run_workload(work: Workload, port: int, sink: FastSink,
                 connections: int) -> Optional[Result]:
    pg_uri = os.environ.get('TRACNOTIFY_PG_URI') if work.pg else None
    if work.pg and not pg_uri:
        print('%-6s skipped: TRACNOTIFY_PG_URI is not set' % work.name)
        return None
    path = make_disk_env(tempfile.mkdtemp(prefix='tracnotify-wl-'), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(port), 'smtp_from': 'trac@example.org',
        'delivery': 'worker', 'outbox_batch_size': '500',
        'smtp_connections': str(connections if work.workers == 1 else 1),
    }, pg_uri)
    from trac.env import Environment
    try:
        env = Environment(path)
        work.fill(env)
        env.shutdown()
        tables_before = table_bytes(path)
        expansion = None if pg_uri else expansion_alone(path)
        before = sink.count
        sink.reset_times()
        start, children = run_children(path, work.workers)
        count = sink.count - before
        env = Environment(path)
        copies = env.db_query('SELECT COUNT(*) FROM tracnotify_message')[0][0]
        size = outbox_bytes(env)
        growth = None
        if work.name == 'big' and not pg_uri:
            grown = {t: n - tables_before.get(t, 0)
                     for t, n in table_bytes(path).items()}
            growth = (grown,) + copy_parts(env)
        env.shutdown()
        return Result(work.name, count, sink.last_at - start,
                      sink.first_at - start, sink.last_at - sink.first_at,
                      max(c['expand_s'] for c in children),
                      sum(c['events'] for c in children),
                      max(c['peak_mb'] for c in children),
                      size / max(copies, 1), expansion, growth,
                      sink.first_at - min(c['pass_at'] for c in children),
                      sum(c['cpu_s'] for c in children))
    finally:
        drop_disk_env(path)


def startup_seconds(port: int) -> float:
    """``notify send`` on an empty outbox: the fixed cost of a process."""
    path = make_disk_env(tempfile.mkdtemp(prefix='tracnotify-wl-'), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(port), 'smtp_from': 'trac@example.org',
        'delivery': 'worker'})
    try:
        best = float('inf')
        for _ in range(3):
            start = time.time()
            run_children(path, 1)
            best = min(best, time.time() - start)
        return best
    finally:
        drop_disk_env(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', nargs='*', help='workload names')
    parser.add_argument('--connections', type=int, default=4,
                        help='smtp_connections of notify send')
    parser.add_argument('--big', action='store_true',
                        help='also the 1 MB description workload')
    parser.add_argument('--big-cc', type=int, default=10000)
    parser.add_argument('--code', help='a checkout whose tracnotify the '
                        'children run (before/after)')
    args = parser.parse_args()
    global CODE
    CODE = os.path.abspath(args.code) if args.code else None
    if CODE:       # trac-admin initenv and upgrade too: its schema
        os.environ['PYTHONPATH'] = child_env()['PYTHONPATH']
        print('children run the tracnotify of %s' % CODE)
    # children (`python -c`, `python -m trac.admin.console`) put their
    # working directory first on sys.path: not this checkout's tracnotify
    os.chdir(tempfile.gettempdir())
    port = free_port()
    sink = FastSink(port).start()
    try:
        one = selftest(port, 5000, 1)
        many = selftest(port, 8000, 4)
        own = selftest(port, 8000, args.connections) \
            if args.connections not in (1, 4) else (one, many)[
                args.connections == 4]
        print('SMTP sink alone (smtplib, no database): %.0f msg/s on 1 '
              'connection, %.0f on 4' % (one, many))
        startup = startup_seconds(port)
        print('start-up: notify send on an empty outbox takes %.2f s'
              % startup)
        print('load average at the start: %.1f, %.1f, %.1f (2 cores)'
              % os.getloadavg())
        print('%-6s %7s %8s %6s %9s %7s %7s %6s %8s %8s %7s %9s  %s' % (
            'name', 'msgs', 'msg/s', 'sink%', 'burst/s', '1st ms',
            '+pass', 'CPU s', 'ms/chg', 'ms/rcpt', 'RSS MB', 'B/copy',
            'workload'))
        alone = {}
        extra = []
        for work in workloads(args.big_cc):
            if args.only and work.name not in args.only:
                continue
            if work.name == 'big' and not args.big and \
                    not (args.only and 'big' in args.only):
                continue
            result = run_workload(work, port, sink, args.connections)
            if result is None:
                continue
            capacity = many if work.workers == 4 else own
            per_change = result.expand_s * 1000 / max(result.events, 1)
            print('%-6s %7d %8.0f %5.0f%% %9.0f %7.0f %7.0f %6.2f %8.1f '
                  '%8.3f %7.1f %9.0f  %s' % (
                      result.name, result.messages, result.rate,
                      100 * result.rate / capacity, result.burst_rate,
                      result.first_mail * 1000,
                      result.after_pass_start * 1000, result.cpu_s,
                      per_change,
                      result.expand_s * 1000 / max(result.messages, 1),
                      result.peak_mb, result.bytes_per_copy, work.title))
            sys.stdout.flush()
            if result.expansion:
                seconds, events, messages = result.expansion
                alone[work.name] = (seconds / max(events, 1),
                                    messages / max(events, 1))
                extra.append('%-6s expansion alone: %.2f s for %d changes, '
                             '%d copies: %.2f ms per change, %.3f ms per '
                             'copy' % (work.name, seconds, events, messages,
                                       seconds * 1000 / max(events, 1),
                                       seconds * 1000 / max(messages, 1)))
            if result.growth:
                grown, body, heads = result.growth
                outbox = grown.get('tracnotify_message', 0) + \
                    grown.get('tracnotify_body', 0)
                extra.append('%-6s outbox tables (tracnotify_message, '
                             '_body, with their indexes) grew %.1f MB for a '
                             '%.2f MB shared part + %.1f MB of personal '
                             'headers: %.2f x (goal <= 2); the others: %s'
                             % (work.name, outbox / 1e6, body / 1e6,
                                heads / 1e6, outbox / max(body + heads, 1),
                                ', '.join('%s %.1f MB' % (t, n / 1e6)
                                          for t, n in sorted(
                                              grown.items(),
                                              key=lambda i: -i[1])[:4]
                                          if n > 0 and t not in (
                                              'tracnotify_message',
                                              'tracnotify_body'))))
        print('sink%%: msg/s from process start over the sink\'s own '
              'capacity with the same connections (%d; pg4: 4 workers x 1); '
              '+pass: first mail after the pass began (Trac and tracnotify '
              'loaded); CPU s: of the command(s)' % args.connections)
        for line in extra:
            print(line)
        if 'small' in alone and 'five_k' in alone:
            (t1, n1), (t2, n2) = alone['small'], alone['five_k']
            per_copy = (t2 - t1) / (n2 - n1)
            print('expansion: %.2f ms fixed per change + %.3f ms per '
                  'recipient (small and five_k; goals <= 2 ms, <= 0.1 ms); '
                  '10,000 cc: %.2f s (goal <= 1.5 s)' % (
                      (t1 - per_copy * n1) * 1000, per_copy * 1000,
                      t1 - per_copy * n1 + per_copy * 10000))
    finally:
        sink.stop()


if __name__ == '__main__':
    main()
