"""Messages per second through ``notify fetch`` (IMAP), against the same
messages handed to ``receive()`` directly, in the same run.

    python -m bench.inbound_fetch [--messages 200]
    (also the last part of: python -m bench.inbound [--fetch 200])

A real Trac environment on disk (``trac-admin initenv``, SQLite) with
``bounce_address`` and ``reply_address``, a private Dovecot on 127.0.0.1
(tests/support/dovecot.py), and a mix of the two kinds of mail
``notify fetch`` takes: DSN bounces of copies in the outbox (each to its
copy's VERP address) and Gmail-style replies with reply tokens.  Each
phase gets messages of its own (a bounce counts once per copy):

* baseline: ``receive(env, raw)`` in this process, no IMAP;
* ``MailboxFetcher.run()`` in this process: the same work through IMAP
  (APPENDed before the clock starts: FETCH, STORE, EXPUNGE timed);
* ``trac-admin ENV notify fetch``: one process, as cron runs it (its
  start-up included).

Printed: messages/s of each, and the ratio to the baseline.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.bounce_mail import bounce_bytes  # noqa: E402
from tests.support.disk_env import make_disk_env  # noqa: E402
from tests.support.dovecot import DOVECOT, PrivateDovecot  # noqa: E402
from tests.support.inbound import (  # noqa: E402
    REPLY_ADDRESS,
    issue_token,
    reply_mail,
    reply_to,
)

BOUNCE = 'trac+bounce-{token}@example.org'


def messages(env, ticket: int, n: int, first_copy: int) -> list:
    """*n* raw messages: bounces of copies first_copy.., and replies."""
    from tracnotify.mail import verp
    secret = verp.read_secret(env)
    rows = env.db_query(
        'SELECT m.id, m.recipient, COALESCE(m.msgid, b.msgid) '
        'FROM tracnotify_message m LEFT JOIN tracnotify_body b '
        'ON b.id=m.body_id ORDER BY m.id')[first_copy:first_copy + n // 2]
    raw = [bounce_bytes('dsn_hard', verp=verp.envelope_sender(
        BOUNCE, secret, i), recipient=r, message_id=m) for i, r, m in rows]
    token = issue_token(env, ticket, 'bob', 'bob@example.net')
    raw += [reply_mail(reply_to(token), 'bob@example.net',
                       'Reply %d by mail.\n\nOn Wed, Trac wrote:\n> quoted\n'
                       % i) for i in range(n - len(raw))]
    return raw


def measure(n: int) -> list:
    """``[(phase, messages/s)]``, the baseline first (see the module
    doc)."""
    from trac.env import Environment
    from trac.web.session import DetachedSession

    from tests.support.admin_pages import add_messages
    from tests.support.tickets import create_ticket
    from tracnotify.inbound.fetch import MailboxFetcher, load_fetch_settings
    from tracnotify.inbound.receive import receive

    server = PrivateDovecot().start()
    root = tempfile.mkdtemp(prefix='tracnotify-bench-fetch-')
    try:
        path = make_disk_env(root, {
            'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
            'delivery': 'worker', 'bounce_address': BOUNCE,
            'bounce_threshold': '0', 'reply_address': REPLY_ADDRESS,
            'reply_rate_limit': '1000000', 'imap_host': '127.0.0.1',
            'imap_port': str(server.port), 'imap_tls': 'none',
            'imap_user': 'trac', 'imap_password': server.password})
        env = Environment(path)
        session = DetachedSession(env, 'bob')
        session['email'] = 'bob@example.net'
        session.save()
        ticket = create_ticket(env).id
        add_messages(env, 3 * n)          # copies in the outbox to bounce
        results = []

        batch = messages(env, ticket, n, 0)
        start = time.perf_counter()
        codes = [receive(env, raw).exit_code for raw in batch]
        base = time.perf_counter() - start
        assert codes.count(0) == n, codes
        results.append(('receive() in process, no IMAP', n / base))

        for raw in messages(env, ticket, n, n // 2):
            server.deliver(raw)
        start = time.perf_counter()
        report = MailboxFetcher(env, load_fetch_settings(env)).run()
        took = time.perf_counter() - start
        assert report.taken == n, report
        results.append(('MailboxFetcher.run() through IMAP', n / took))

        for raw in messages(env, ticket, n, n):
            server.deliver(raw)
        import subprocess
        start = time.perf_counter()
        done = subprocess.run([sys.executable, '-m', 'trac.admin.console',
                               path, 'notify', 'fetch'], capture_output=True,
                              text=True)
        took = time.perf_counter() - start
        assert done.returncode == 0 and '%d taken' % n in done.stdout, done
        results.append(('trac-admin notify fetch (one process)', n / took))
        env.shutdown()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return results


def show(n: int, results: list) -> None:
    """Print what :func:`measure` found."""
    print('notify fetch: %d messages per phase (%d bounces, %d replies), '
          'SQLite, Dovecot on 127.0.0.1' % (n, n // 2, n - n // 2))
    baseline = results[0][1]
    for name, rate in results:
        print('  %-42s %8.1f messages/s   x%.2f' % (name, rate,
                                                     rate / baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--messages', type=int, default=200,
                        help='messages per phase (half bounces, half '
                             'replies)')
    args = parser.parse_args()
    if not os.path.exists(DOVECOT):
        raise SystemExit('dovecot-imapd is not installed')
    show(args.messages, measure(args.messages))


if __name__ == '__main__':
    main()
