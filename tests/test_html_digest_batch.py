"""Daily digests and batch mails in each recipient's format: HTML (or
both) is multipart/alternative, text first, its text part the same as a
text-only recipient's; one HTML section per ticket, cleaned."""

from datetime import timedelta

import pytest
from trac.util.datefmt import datetime_now, utc

from tests.support.digests import at, delivered, digests, tomorrow
from tests.support.mails import COMMENT, Checker, check_html, parts
from tests.support.tickets import (
    batch_modify,
    by_recipient,
    change_ticket,
    create_ticket,
    deliver,
)
from tests.support.users import set_session, users

USERS = users('alice', 'bob', 'dora')


def sections(html: str) -> Checker:
    """The checked HTML; its ``h2`` headings' links as ``checker.heads``."""
    checker = check_html(html)
    checker.heads = []
    tags = checker.tags
    for n, (tag, _attrs) in enumerate(tags):
        if tag == 'h2':
            assert tags[n + 1][0] == 'a'
            checker.heads.append(tags[n + 1][1]['href'])
    return checker


def html_and_text(mails, html_rcpt, text_rcpt):
    """The HTML recipient's (text, html) and the text recipient's body."""
    rich, = mails[html_rcpt]
    plain, = mails[text_rcpt]
    assert rich.get_content_type() == 'multipart/alternative'
    (t1, text), (t2, html) = parts(rich)
    assert (t1, t2) == ('text/plain', 'text/html')    # text first
    assert plain.get_content_type() == 'text/plain'
    return text, html, plain.get_content().replace('\r\n', '\n')


@pytest.mark.parametrize('language', ['en', 'de'])
@pytest.mark.parametrize('fmt', ['html', 'both'])
def test_digest_in_html(sink_env, sink, fmt, language):
    env = sink_env(USERS, always_notify_reporter='true', digest_hour='7')
    env.config.set('trac', 'default_timezone', 'Europe/Berlin')
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest',
                                 'tracnotify.format': fmt,
                                 'tracnotify.language': language})
    set_session(env, 'dora', **{'tracnotify.delivery': 'digest',
                                'tracnotify.language': language})
    first = create_ticket(env, summary='First', cc='dora')
    change_ticket(env, first.id, author='bob', comment=COMMENT,
                  priority='minor')
    create_ticket(env, summary='Second', cc='dora')
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 7)) == 2
    mails = delivered(env, sink)
    text, html, plain = html_and_text(mails, 'alice@example.net',
                                      'dora@example.net')
    assert text == plain
    checker = sections(html)
    assert checker.heads == ['http://trac.example.org/ticket/1',
                             'http://trac.example.org/ticket/2']
    assert '<strong>bold</strong>' in html        # the comment, as HTML
    assert '<script' not in html and 'evil.example/x.png' in html
    assert 'http://example.com/doc' in checker.links
    assert '>minor</ins>' in html                 # the changes table
    if language == 'de':
        assert 'Ticket #2: Second' in html and 'Alter Wert' in html


def test_digest_item_of_a_text_recipient_shows_as_text(sink_env, sink):
    """A user who switches to HTML: older items (text) go in a <pre>."""
    env = sink_env(USERS, always_notify_reporter='true', digest_hour='7')
    env.config.set('trac', 'default_timezone', 'Europe/Berlin')
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest'})
    create_ticket(env, summary='Before <b>')
    delivered(env, sink)
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest',
                                 'tracnotify.format': 'both'})
    create_ticket(env, summary='After')
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 7)) == 1
    mail, = delivered(env, sink)['alice@example.net']
    (_t, text), (_h, html) = parts(mail)
    assert sections(html).heads == ['http://trac.example.org/ticket/1',
                                    'http://trac.example.org/ticket/2']
    assert '#1: Before &lt;b&gt;' in html and '<b>' not in html


@pytest.mark.parametrize('language', ['en', 'fr'])
def test_batch_mail_in_html(sink_env, sink, language):
    env = sink_env(USERS, always_notify_reporter='true', batch_window='5')
    set_session(env, 'alice', **{'tracnotify.format': 'html',
                                 'tracnotify.language': language})
    set_session(env, 'dora', **{'tracnotify.language': language})
    ids = [create_ticket(env, summary='Ticket %d' % i, cc='dora').id
           for i in (1, 2, 3)]
    deliver(env)
    sink.received.clear()
    batch_modify(env, ids, datetime_now(utc) - timedelta(seconds=6),
                 comment=COMMENT, priority='minor')
    deliver(env)
    mails = by_recipient(sink.received)
    text, html, plain = html_and_text(mails, 'alice@example.net',
                                      'dora@example.net')
    assert text == plain
    checker = sections(html)
    assert checker.heads == ['http://trac.example.org/ticket/%d' % i
                             for i in ids]
    assert html.count('<strong>bold</strong>') == 3
    assert html.count('>minor</ins>') == 3
    assert '<script' not in html
    assert 'http://trac.example.org/query?id=1%2C2%2C3' in checker.links
    if language == 'fr':
        assert 'Ouvrir ces tickets' in html
