"""Replies per second through ``trac-admin ENV notify receive``, and
messages per second through ``notify fetch`` (bench/inbound_fetch.py).

    python -m bench.inbound [--replies 10] [--inproc 300] [--fetch 200]

A real Trac environment on disk (``trac-admin initenv``, SQLite), one
ticket with 20 recipients, reply tokens for bob, and Gmail-style replies
(the text, a quoted mail, a signature):

* ``notify receive``: one ``trac-admin`` process per reply, as an MTA
  pipe runs it, against the baseline of the same process doing nothing
  (``trac-admin ENV notify`` listing its subcommands) measured in the same
  run: the difference is what taking a reply costs on top of starting
  Trac;
* in-process ``receive()``: replies/s against plain
  ``Ticket.save_changes`` of the same comment, in the same run (the
  difference is parsing, the guards, the token, the reply parser and the
  record).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.disk_env import make_disk_env  # noqa: E402
from tests.support.inbound import REPLY_ADDRESS, issue_token, reply_mail, reply_to  # noqa: E402,E501

QUOTED = ('\n\nOn Wed, Dec 2, 2026 at 1:05 PM Test Project <trac@example.org>'
          ' wrote:\n' + ''.join('> line %d of the ticket mail\n' % i
                                for i in range(40)))


def reply(address: str, i: int) -> bytes:
    return reply_mail(address, 'bob@example.net',
                      'Reply number %d: it works for me.\n\n--\nBob%s'
                      % (i, QUOTED))


def admin(path: str, args, raw: bytes = b'') -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-m', 'trac.admin.console', path]
                          + args, input=raw, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit('trac-admin %s failed (%d): %s' % (
            ' '.join(args), done.returncode, done.stderr.decode()))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--replies', type=int, default=10,
                        help='replies through notify receive (processes)')
    parser.add_argument('--inproc', type=int, default=300,
                        help='replies through receive() in one process')
    parser.add_argument('--fetch', type=int, default=200,
                        help='messages through notify fetch (IMAP, a '
                             'private Dovecot; 0: skip), bench.inbound_fetch')
    args = parser.parse_args()
    path = make_disk_env(tempfile.mkdtemp(prefix='tracnotify-inbound-'), {
        'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org', 'delivery': 'worker',
        'reply_address': REPLY_ADDRESS, 'reply_rate_limit': '100000'})
    from trac.env import Environment
    from trac.ticket.model import Ticket
    from trac.web.session import DetachedSession

    from tracnotify.inbound.receive import receive
    env = Environment(path)
    session = DetachedSession(env, 'bob')
    session['email'] = 'bob@example.net'
    session.save()
    ticket = Ticket(env)
    ticket.populate({'summary': 'Inbound', 'reporter': 'alice',
                     'cc': ', '.join('w%02d@example.org' % i
                                     for i in range(19))})
    ticket.insert()
    address = reply_to(issue_token(env, ticket.id, 'bob', 'bob@example.net'))

    # processes: baseline and notify receive, interleaved
    base, taken = [], []
    for i in range(args.replies):
        base.append(admin(path, ['notify']))
        taken.append(admin(path, ['notify', 'receive'], reply(address, i)))
    base_s, recv_s = statistics.median(base), statistics.median(taken)
    print('notify receive: %d replies, %.2f replies/s per process '
          '(median %.0f ms each); trac-admin start-up alone %.0f ms; receive adds '
          '%.0f ms (%.2fx the start-up)' % (
              len(taken), 1 / recv_s, recv_s * 1000, base_s * 1000,
              (recv_s - base_s) * 1000, recv_s / base_s))

    # in-process: receive() against Ticket.save_changes, interleaved
    quarter = max(1, args.inproc // 4)
    save_t = recv_t = 0.0
    outcomes = []
    for _round in range(2):
        start = time.perf_counter()
        for i in range(quarter):
            t = Ticket(env, ticket.id)
            t.save_changes('bob', 'Reply number %d: it works for me.' % i)
        save_t += time.perf_counter() - start
        start = time.perf_counter()
        outcomes += [receive(env, reply(address, i)).outcome
                     for i in range(quarter)]
        recv_t += time.perf_counter() - start
    half = 2 * quarter
    save_s, recv_in = save_t / half, recv_t / half
    assert outcomes == ['taken'] * half, set(outcomes)
    print('receive() in-process: %.0f replies/s (%.2f ms each); '
          'Ticket.save_changes alone %.0f/s (%.2f ms); ratio %.2fx' % (
              1 / recv_in, recv_in * 1000, 1 / save_s, save_s * 1000,
              recv_in / save_s))
    comments = env.db_query("SELECT COUNT(*) FROM ticket_change WHERE "
                            "field='comment'")[0][0]
    print('comments saved: %d (expected %d)' % (
        comments, args.replies + 2 * half))
    env.shutdown()
    if args.fetch:
        from bench.inbound_fetch import DOVECOT, measure, show
        if os.path.exists(DOVECOT):
            show(args.fetch, measure(args.fetch))
        else:
            print('notify fetch: skipped (dovecot-imapd is not installed)')


if __name__ == '__main__':
    main()
