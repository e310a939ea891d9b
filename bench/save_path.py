"""What tracnotify adds to one ticket save, measured in-process.

    python -m bench.save_path [--saves 300]

A real Trac environment on disk (``trac-admin initenv``, SQLite), a ticket
with 20 recipients, and ``--saves`` comment-only ``Ticket.save_changes``
calls: with tracnotify recording the change (``smtp_enabled = true``,
``delivery = worker`` so that no delivery runs in this process) against
``smtp_enabled = false`` in the same run.  The difference is the whole cost
of the listener on the save path (snapshot + one INSERT in a savepoint).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.disk_env import make_disk_env  # noqa: E402


def timed_saves(env, ticket_id: int, saves: int) -> list:
    from trac.ticket.model import Ticket
    times = []
    for i in range(saves):
        ticket = Ticket(env, ticket_id)
        start = time.perf_counter()
        ticket.save_changes('bob', 'Comment %d' % i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--saves', type=int, default=300)
    args = parser.parse_args()
    path = make_disk_env(tempfile.mkdtemp(prefix='tracnotify-save-'), {
        'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'worker'})
    from trac.env import Environment
    from trac.ticket.model import Ticket
    env = Environment(path)
    ticket = Ticket(env)
    ticket.populate({'summary': 'Save path', 'reporter': 'alice',
                     'cc': ', '.join('w%02d@example.org' % i
                                     for i in range(19))})
    ticket.insert()
    results = {}
    for _round in range(2):            # interleave to share any drift
        for enabled in ('false', 'true'):
            env.config.set('notification', 'smtp_enabled', enabled)
            times = timed_saves(env, ticket.id, args.saves // 2)
            results.setdefault(enabled, []).extend(times)
    off = statistics.median(results['false'])
    on = statistics.median(results['true'])
    events = env.db_query('SELECT COUNT(*) FROM tracnotify_event')[0][0]
    print('Ticket.save_changes, median of %d: notifications off %.2f ms, '
          'tracnotify recording %.2f ms: +%.2f ms (%d events recorded)'
          % (len(results['true']), off, on, on - off, events))
    env.shutdown()


if __name__ == '__main__':
    main()
