"""What an announcement costs to expand: one event into N copies.

    python -m bench.announce [--users 100,1000,5000]

For N known users with an address, prints the milliseconds the delivery
worker spends turning one announcement to ``all`` (and to a permission
group holding them all, through a nested group) into N messages
(``mail.announce.build_messages``: recipients, opt-outs, never-mail list,
bodies, one copy each), against a baseline measured in the same run: one
ticket change whose Cc lists the same N users
(``mail.pipeline.build_messages``).  Nothing is stored or sent.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trac.perm import PermissionSystem  # noqa: E402

from tests.support.envs import make_stub_env  # noqa: E402
from tests.support.tickets import create_ticket  # noqa: E402
from tracnotify import outbox  # noqa: E402
from tracnotify.announcements import draft  # noqa: E402
from tracnotify.config import load_config  # noqa: E402
from tracnotify.event import CREATED, TicketEvent  # noqa: E402
from tracnotify.mail import announce, pipeline  # noqa: E402
from tracnotify.mail.suppression import TokenBatch  # noqa: E402


def timed(function, *args) -> tuple:
    """``(milliseconds, result)`` of one call."""
    start = time.perf_counter()
    result = function(*args)
    return (time.perf_counter() - start) * 1000, result


def one_size(n: int) -> None:
    env = make_stub_env(tempfile.mkdtemp(prefix='bench-announce-'), None,
                        {'smtp_default_domain': ''})
    users = [('user%05d' % i, 'User %d' % i, 'user%05d@example.net' % i)
             for i in range(n)]
    env.insert_users(users)
    perms = PermissionSystem(env)
    with env.db_transaction as db:
        db.executemany('INSERT INTO permission VALUES (%s, %s)',
                       [(u[0], 'members') for u in users] +
                       [('members', 'everyone')])
    del perms.store._all_permissions
    config = load_config(env)
    ticket = create_ticket(env, summary='Bench',
                           cc=', '.join(u[0] for u in users))
    cc_event = TicketEvent(kind=CREATED, ticket_id=ticket.id,
                           time=outbox.now_us(), author='admin',
                           values=dict(ticket.values))
    text = "Release '''2.0''' is out: see [wiki:WikiStart].\n" * 5
    base, msgs = timed(pipeline.build_messages, env, config, cc_event, None,
                       TokenBatch())
    rows = [('ticket, %d in Cc (baseline)' % n, base, len(msgs))]
    for audience in ('all', 'group:everyone'):
        event = draft(env, 'admin', audience, 'News', text)
        ms, msgs = timed(announce.build_messages, env, config, event, None,
                         TokenBatch())
        rows.append(('announcement to %s' % audience, ms, len(msgs)))
    for name, ms, count in rows:
        print('%-34s %6d copies %9.1f ms %7.1f us/copy %6.2fx' % (
            name, count, ms, ms * 1000 / max(count, 1), ms / base))
    env.reset_db()
    env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--users', default='100,1000,5000')
    args = parser.parse_args()
    for n in [int(x) for x in args.users.split(',')]:
        one_size(n)


if __name__ == '__main__':
    main()
