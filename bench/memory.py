"""Peak memory of the delivery worker: a 100,000-message outbox, and one
ticket with 5,000 cc recipients.

    python -m bench.memory [--pg]

Each case runs ``trac-admin ENV notify worker --once`` in a child process
against a fast local SMTP sink and reports the child's peak RSS.  Measured
in the same run: the peak of the same command with an empty outbox (Trac and
tracnotify loaded, nothing to do), and of a 10,000-message outbox, so that
"flat" shows as a ratio.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.fast_sink import FastSink  # noqa: E402
from tests.support.disk_env import drop_disk_env, make_disk_env  # noqa: E402
from tests.support.smtp_sink import free_port  # noqa: E402


def worker_peak_rss_mb(path: str) -> tuple:
    """Run one worker pass in a child; (peak RSS in MB, seconds)."""
    start = time.perf_counter()
    code = """
import resource, sys
from trac.admin.console import run
try:
    run([sys.argv[1], 'notify', 'worker', '--once'])
finally:
    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run([sys.executable, '-c', code, path],
                         capture_output=True, text=True, check=True).stdout
    peak_kb = int([line for line in out.splitlines()
                   if line.startswith('PEAK')][-1].split()[1])
    return peak_kb / 1024.0, time.perf_counter() - start


def fill_copies(path: str, total: int) -> int:
    """Fill the outbox with *total* pending messages: one real ticket mail
    (1,000 recipients) built by tracnotify, copied with new recipients."""
    from trac.env import Environment
    from trac.ticket.model import Ticket

    from tracnotify.delivery.deliverer import Deliverer, PassReport
    env = Environment(path)
    env.db_transaction("DELETE FROM tracnotify_message")
    ticket = Ticket(env)
    ticket.populate({'summary': 'Memory', 'reporter': 'alice',
                     'description': 'Lorem ipsum. ' * 100,
                     'cc': ', '.join('u%04d@example.org' % i
                                     for i in range(999))})
    ticket.insert()
    Deliverer(env).expand_events(PassReport())
    rows = env.db_query("""SELECT event_id, created, ticket, kind, msgid,
        sender, recipient, reason, subject, message, body_id
        FROM tracnotify_message""")
    copies = 1
    with env.db_transaction as db:
        while len(rows) * copies < total:
            db.executemany("""
                INSERT INTO tracnotify_message (event_id, created, ticket,
                    kind, msgid, sender, recipient, reason, subject, message,
                    body_id, state, attempts, next_attempt, updated)
                VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'pending',0,0,0)""",
                [r[:6] + ('c%d.%s' % (copies, r[6]),) + r[7:]
                 for r in rows])
            copies += 1
    count = env.db_query("SELECT COUNT(*) FROM tracnotify_message")[0][0]
    env.shutdown()
    return count


def ticket_with_cc(path: str, count: int) -> None:
    from trac.env import Environment
    from trac.ticket.model import Ticket
    env = Environment(path)
    env.db_transaction("DELETE FROM tracnotify_message")
    ticket = Ticket(env)
    ticket.populate({'summary': 'Huge cc', 'reporter': 'alice',
                     'cc': ', '.join('w%05d@example.org' % i
                                     for i in range(count))})
    ticket.insert()
    env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pg', action='store_true')
    args = parser.parse_args()
    port = free_port()
    sink = FastSink(port).start()
    path = make_disk_env(tempfile.mkdtemp(prefix='tracnotify-mem-'), {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(port), 'smtp_from': 'trac@example.org',
        'delivery': 'worker', 'outbox_batch_size': '500',
    }, os.environ.get('TRACNOTIFY_PG_URI') if args.pg else None)
    try:
        idle, _ = worker_peak_rss_mb(path)
        print('worker pass, empty outbox:        peak RSS %6.1f MB' % idle)
        for total in (10000, 100000):
            n = fill_copies(path, total)
            before = sink.count
            peak, secs = worker_peak_rss_mb(path)
            print('worker pass, %6d messages:     peak RSS %6.1f MB '
                  '(+%.1f over empty; %d sent in %.1f s)'
                  % (n, peak, peak - idle, sink.count - before, secs))
        ticket_with_cc(path, 5000)
        before = sink.count
        peak, secs = worker_peak_rss_mb(path)
        print('one ticket, 5,000 cc (build+send): peak RSS %6.1f MB '
              '(+%.1f over empty; %d sent in %.1f s)'
              % (peak, peak - idle, sink.count - before, secs))
    finally:
        drop_disk_env(path)
        sink.stop()


if __name__ == '__main__':
    main()
