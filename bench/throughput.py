"""Delivery throughput: a 10,000-message outbox to a local SMTP sink.

    python -m bench.throughput [--messages 10000] [--pg]

Prints, all measured in this one run:
* what the SMTP sink sustains on its own (plain smtplib, no database);
* personalised messages built per second by tracnotify (body rendered and
  encoded once per change, per-recipient headers spliced) against the
  baseline of building every message from scratch with the email package;
* delivered messages per second, one and four SMTP connections.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.fast_sink import FastSink, selftest  # noqa: E402
from tests.support.disk_env import drop_disk_env, make_disk_env  # noqa: E402
from tests.support.smtp_sink import free_port  # noqa: E402


def fill_outbox(env, recipients: int, changes: int) -> None:
    """One ticket with *recipients* cc addresses, changed *changes* times."""
    from trac.ticket.model import Ticket
    ticket = Ticket(env)
    ticket.populate({'summary': 'Benchmark ticket', 'reporter': 'alice',
                     'description': 'Lorem ipsum dolor sit amet. ' * 40,
                     'cc': ', '.join('user%05d@example.org' % i
                                     for i in range(recipients - 1))})
    ticket.insert()
    for i in range(changes - 1):
        ticket = Ticket(env, ticket.id)
        ticket['priority'] = ('major', 'minor')[i % 2]
        ticket.save_changes('bob', 'Change number %d with a comment.' % i)


def baseline_build_rate(env, count: int = 1000) -> float:
    """Messages/s when each message is built from scratch (email package)."""
    from tracnotify.config import load_config
    from tracnotify.mail.message import (
        MailHeaders,
        Recipient,
        build_copies,
        encode_shared_part,
    )
    config = load_config(env)
    body = 'Lorem ipsum dolor sit amet. ' * 80
    headers = MailHeaders('Trac', 'trac@example.org', 'trac@example.org',
                          'Re: [Bench] #1: Benchmark ticket', '<a@b>',
                          '<root@b>', time.time())
    start = time.perf_counter()
    for i in range(count):
        shared = encode_shared_part(headers, body, config)
        build_copies(shared, [Recipient('user%05d@example.org' % i, 'cc')],
                     config)
    return count / (time.perf_counter() - start)


def reset_sent(env) -> None:
    env.db_transaction("""UPDATE tracnotify_message SET state='pending',
                          next_attempt=0, sent_at=NULL, attempts=0""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--messages', type=int, default=10000)
    parser.add_argument('--pg', action='store_true',
                        help='use TRACNOTIFY_PG_URI instead of SQLite')
    args = parser.parse_args()
    port = free_port()
    sink = FastSink(port).start()
    root = tempfile.mkdtemp(prefix='tracnotify-bench-')
    path = make_disk_env(root, {
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(port), 'smtp_from': 'trac@example.org',
        'delivery': 'worker', 'outbox_batch_size': '500',
    }, os.environ.get('TRACNOTIFY_PG_URI') if args.pg else None)
    from trac.env import Environment

    from tracnotify.config import load_config
    from tracnotify.delivery.deliverer import Deliverer, PassReport
    env = Environment(path)
    try:
        print('SMTP sink alone (smtplib, no database): %.0f msg/s with 1 '
              'connection, %.0f msg/s with 4'
              % (selftest(port, 5000, 1), selftest(port, 5000, 4)))
        per_change = 1000
        fill_outbox(env, per_change, max(args.messages // per_change, 1))
        report = PassReport()
        start = time.perf_counter()
        Deliverer(env).expand_events(report)
        build_time = time.perf_counter() - start
        built = report.messages_built
        base = baseline_build_rate(env)
        print('built %d personalised messages: %.0f msg/s '
              '(baseline, each from scratch: %.0f msg/s; ratio %.1fx)'
              % (built, built / build_time, base,
                 built / build_time / base))
        for connections in (1, 4):
            reset_sent(env)
            env.config.set('notification', 'smtp_connections',
                           str(connections))
            config = load_config(env)
            before = sink.count
            report = PassReport()
            start = time.perf_counter()
            Deliverer(env, config).send_due(report)
            elapsed = time.perf_counter() - start
            assert report.sent == built, report
            print('delivered %d messages with %d connection(s): %.0f msg/s '
                  '(sink counted %d)' % (report.sent, connections,
                                         report.sent / elapsed,
                                         sink.count - before))
    finally:
        env.shutdown()
        drop_disk_env(path)
        sink.stop()


if __name__ == '__main__':
    main()
