"""Latency a ticket change POST to a real tracd gains from notification.

    python -m bench.latency [--posts 25] [--recipients 20]

For each setup a fresh Trac site (``trac-admin initenv`` + ``tracd``) gets a
ticket with N recipients (reporter + cc), then ``--posts`` comment-only
changes through the web form, --pause seconds apart (a site's users, not
a load test; the same pause for every setup).  Reported: the median and
90th percentile of the POST's own duration (not the page loaded after its
redirect), and the median added against notifications off,
measured in the same run, for tracnotify and for Trac 1.6's built-in
notifier, with an SMTP server that answers at once and one that holds each
reply 200 ms.

For tracnotify (``delivery = inline``, its own delivery thread in tracd)
it also reports when the change's first mail reached the server, counted
from the moment the POST returned (median and 90th percentile; negative:
the mail was there before the browser had its answer).  ``--only NAME``
runs the setups whose name contains NAME (and notifications off).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.fast_sink import FastSink  # noqa: E402
from tests.support.live_trac import LiveTrac  # noqa: E402
from tests.support.smtp_sink import free_port  # noqa: E402

SETUPS = [
    ('notifications off', False, True, 0.0),
    ('tracnotify, sink at once', True, True, 0.0),
    ('tracnotify, sink 200 ms', True, True, 0.2),
    ("Trac's built-in, sink at once", True, False, 0.0),
    ("Trac's built-in, sink 200 ms", True, False, 0.2),
    # a server that accepts and never answers (an SMTPS port spoken to in
    # plain SMTP): a few posts only, the client gives up after CLIENT_TIMEOUT
    ('tracnotify, server never answers', True, True, -1.0),
    ("Trac's built-in, server never answers", True, False, -1.0),
]
CLIENT_TIMEOUT = 15.0
MUTE_POSTS = 3


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def post_without_redirect(client, path: str, form: dict) -> int:
    """POST a form and return the status: the save's own time, without the
    ticket page that the browser loads after the redirect."""
    form = dict(form, __FORM_TOKEN=client.form_token())
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(client.cookies), _NoRedirect())
    request = urllib.request.Request(
        client.base + path, urllib.parse.urlencode(form).encode())
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as e:
        if e.code != 303:
            raise
        return e.code
    except (TimeoutError, urllib.error.URLError) as e:
        if 'timed out' not in str(e):
            raise
        return 0    # the browser gave up: the save hung


def create_ticket(env_path: str, recipients: int) -> int:
    """The ticket, reported by alice, with recipients - 1 addresses in cc
    (made through the model, before tracd starts)."""
    from trac.env import Environment
    from trac.ticket.model import Ticket
    env = Environment(env_path)
    ticket = Ticket(env)
    ticket.populate({'summary': 'Latency', 'reporter': 'alice',
                     'cc': ', '.join('watcher%02d@example.org' % i
                                     for i in range(recipients - 1))})
    ticket_id = ticket.insert()
    env.shutdown()
    return ticket_id


def measure(name: str, smtp_enabled: bool, tracnotify: bool, delay: float,
            posts: int, recipients: int, pause: float) -> tuple:
    """``(POST durations, first mail after the POST returned)`` in ms."""
    port = free_port()
    sink = FastSink(port, delay).start()
    site = LiveTrac(tempfile.mkdtemp(prefix='tracnotify-lat-'), {
        'smtp_enabled': 'true' if smtp_enabled else 'false',
        'smtp_server': '127.0.0.1', 'smtp_port': str(port),
        'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org',
    }, components=None if tracnotify else {'tracnotify.*': 'disabled'})
    site.create()
    from trac.config import Configuration
    ini = Configuration(os.path.join(site.env_path, 'conf', 'trac.ini'))
    ini.set('notification-subscriber', 'always_notify_reporter',
            'TicketReporterSubscriber')
    ini.set('logging', 'log_level', 'WARNING')
    ini.save()
    ticket_id = create_ticket(site.env_path, recipients)
    site.start()
    warmup = 3 if delay >= 0 else 0   # a hung save needs no warming up
    try:
        alice = site.client('alice')
        times = []
        first_mail = []
        for i in range(posts + warmup):
            page = alice.get('/ticket/%d' % ticket_id)
            hidden = alice.hidden_inputs(page)
            form = {'comment': 'Comment %d' % i, 'action': 'leave',
                    'submit': 'Submit', 'view_time': hidden['view_time'],
                    'start_time': hidden['start_time']}
            sink.reset_times()
            start = time.perf_counter()
            post_without_redirect(alice, '/ticket/%d' % ticket_id, form)
            returned = time.time()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
            time.sleep(pause)   # people, not a load test: let mail go out
            if i >= warmup and smtp_enabled and sink.first_at:
                first_mail.append((sink.first_at - returned) * 1000)
        return times, first_mail
    finally:
        site.stop()
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--posts', type=int, default=25)
    parser.add_argument('--recipients', type=int, default=20)
    parser.add_argument('--pause', type=float, default=0.6,
                        help='seconds between two changes (default 0.6)')
    parser.add_argument('--only', help='setups whose name contains this')
    args = parser.parse_args()
    results = {}
    mails = {}
    for name, smtp, tracnotify, delay in SETUPS:
        if args.only and args.only not in name and smtp:
            continue
        posts = args.posts if delay >= 0 else MUTE_POSTS
        times, first_mail = measure(name, smtp, tracnotify, delay, posts,
                                    args.recipients, args.pause)
        results[name] = times
        if tracnotify and delay >= 0 and first_mail:
            mails[name] = first_mail
    base = statistics.median(results['notifications off'])
    print('%-40s %10s %10s %12s' % ('setup (%d recipients)' % args.recipients,
                                    'median ms', 'p90 ms', 'added ms'))
    for name, times in results.items():
        med = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 2 \
            else max(times)
        note = ' (client gave up at %d s)' % CLIENT_TIMEOUT \
            if med >= CLIENT_TIMEOUT * 1000 else ''
        print('%-40s %10.1f %10.1f %+12.1f%s' % (name, med, p90, med - base,
                                                 note))
    print()
    print('%-40s %10s %10s %8s' % ('first mail after the POST returned',
                                    'median ms', 'p90 ms', 'mails'))
    for name, after in mails.items():
        p90 = statistics.quantiles(after, n=10)[-1] if len(after) > 2 \
            else max(after)
        print('%-40s %10.1f %10.1f %5d/%d' % (
            name, statistics.median(after), p90, len(after),
            len(results[name])))


if __name__ == '__main__':
    main()
