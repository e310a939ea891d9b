"""What HTML mail costs per change: wiki text rendered for anonymous, then
sanitised.

    python -m bench.wiki_html [--repeat N]

For a small comment, a long comment (tables, code, links, lists) and a
comment with macros (TicketQuery, Image), prints milliseconds for
Trac's rendering alone (``wikitext.render_wiki``, the baseline), for the
sanitiser alone (``sanitize.clean_html``) and for both
(``wikitext.wiki_to_html``, what one HTML body pays per comment), with
the ratio of both to the baseline.  Rendered once per (language, format)
group of a change, not per recipient.
"""

import argparse
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import trac.ticket.query  # noqa: E402,F401  (TicketQuery, as tracd loads it)
import trac.ticket.web_ui  # noqa: E402,F401
import trac.wiki.macros  # noqa: E402,F401

from tests.support.envs import make_stub_env  # noqa: E402
from tests.support.tickets import create_ticket  # noqa: E402
from tracnotify.mail.sanitize import clean_html  # noqa: E402
from tracnotify.mail.wikitext import render_wiki, wiki_to_html  # noqa: E402

SMALL = "Fixed in [42], see #1. '''Thanks'''!"
LONG = '\n'.join(
    ["== Part %d ==\n * item with a link http://example.com/%d and #1\n"
     " * `code` and ''emphasis''\n||= a =||= b =||\n|| %d || x ||\n"
     "{{{\nmake test %d\n}}}\n" % (i, i, i, i) for i in range(60)])
MACROS = "See [[TicketQuery(id=1)]], [[TicketQuery(status=new,format=table)]]" \
    " and [[Image(file.png)]]."


def timed(repeat: int, function, *args) -> float:
    """Milliseconds per call of ``function(*args)``."""
    start = time.perf_counter()
    for _ in range(repeat):
        function(*args)
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=50)
    args = parser.parse_args()
    env = make_stub_env(tempfile.mkdtemp(prefix='bench-wiki-'), None, {})
    ticket = create_ticket(env, summary='Bench')
    from trac.attachment import Attachment
    attachment = Attachment(env, 'ticket', ticket.id)
    attachment.author = 'alice'
    attachment.insert('file.png', io.BytesIO(b'\x89PNG'), 4)
    print('%-8s %10s %10s %10s %8s' % ('comment', 'render ms', 'clean ms',
                                        'both ms', 'ratio'))
    for name, text in (('small', SMALL), ('long', LONG), ('macros', MACROS)):
        rendered = render_wiki(env, ticket.id, text)
        base = timed(args.repeat, render_wiki, env, ticket.id, text)
        clean = timed(args.repeat, clean_html, rendered)
        both = timed(args.repeat, wiki_to_html, env, ticket.id, text)
        print('%-8s %10.2f %10.2f %10.2f %7.2fx' % (name, base, clean, both,
                                                     both / base))
    env.reset_db()
    env.shutdown()


if __name__ == '__main__':
    main()
