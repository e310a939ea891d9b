"""Wiki macros in HTML mail (issue 12, item 6): rendered as for an
anonymous reader of the site, or shown as their source text; never a
Python error.  An attached image is a link to the attachment with its
name.  On the mail a real SMTP server receives."""

import io

import pytest
import trac.ticket.query  # noqa: F401  (TicketQuery, loaded as by tracd)
import trac.ticket.web_ui  # noqa: F401  (the ticket templates)
import trac.wiki.macros  # noqa: F401  (Image)
from trac.attachment import Attachment
from trac.core import Component, implements
from trac.web.session import DetachedSession
from trac.wiki.api import IWikiMacroProvider

from tests.support.mails import check_html, parts
from tests.support.tickets import change_ticket, create_ticket, deliver_to_sink
from tests.support.users import users
from tracnotify.mail.wikitext import wiki_to_html

USERS = users('alice', 'joe')


class BrokenMacro(Component):
    """A macro that fails as a plugin's macro might, outside a request."""

    implements(IWikiMacroProvider)

    def get_macros(self):
        yield 'TracnotifyBrokenTest'

    def get_macro_description(self, name):
        return 'fails'

    def expand_macro(self, formatter, name, content, args=None):
        return formatter.req.session['no-such-key'].upper()


class WhoAmIMacro(Component):
    """Says who the macro is rendered for."""

    implements(IWikiMacroProvider)

    def get_macros(self):
        yield 'TracnotifyWhoAmI'

    def get_macro_description(self, name):
        return 'who'

    def expand_macro(self, formatter, name, content, args=None):
        req = formatter.req
        return 'for %s with%s TICKET_VIEW, TRAC_ADMIN: %s, link %s' % (
            req.authname, '' if 'TICKET_VIEW' in formatter.perm else 'out',
            'TRAC_ADMIN' in req.perm, formatter.href.ticket(1))


@pytest.fixture
def env(sink_env):
    env = sink_env(USERS)
    env.enable_component(BrokenMacro)
    env.enable_component(WhoAmIMacro)
    session = DetachedSession(env, 'joe')
    session['tracnotify.format'] = 'html'
    session.save()
    return env


def html_of(env, sink, ticket_id, comment):
    deliver_to_sink(env, sink, check_errors=True)
    change_ticket(env, ticket_id, author='alice', comment=comment)
    joe, = [i.message for i in deliver_to_sink(env, sink, check_errors=True)
            if i.rcpt_tos == ['joe@example.net']]
    (kind, html), = parts(joe)
    assert kind == 'text/html'
    check_html(html)
    return html


def test_ticket_query_renders_as_for_anonymous(env, sink):
    first = create_ticket(env, owner='joe', summary='First ticket')
    second = create_ticket(env, owner='joe', summary='Second one')
    html = html_of(env, sink, second.id,
                   'See [[TicketQuery(id=%d)]] and [[TracnotifyWhoAmI]].'
                   % first.id)
    assert 'Error' not in html and 'NoneType' not in html
    assert 'href="http://trac.example.org/ticket/%d"' % first.id in html
    assert 'First ticket' in html
    assert 'for anonymous with TICKET_VIEW, TRAC_ADMIN: False, link ' \
        'http://trac.example.org/ticket/1' in html


def test_failing_macro_shows_its_source_text(env, sink):
    ticket = create_ticket(env, owner='joe')
    html = html_of(env, sink, ticket.id,
                   'Before [[TracnotifyBrokenTest(x)]] after.')
    assert 'Error' not in html and 'KeyError' not in html
    assert '<code' in html and '[[TracnotifyBrokenTest(x)]]</code>' in html
    assert 'Before' in html and 'after.' in html


def test_attached_image_is_a_link_with_its_name(env, sink):
    ticket = create_ticket(env, owner='joe')
    attachment = Attachment(env, 'ticket', ticket.id)
    attachment.author = 'alice'
    attachment.insert('file.png', io.BytesIO(b'\x89PNG\r\n'), 6)
    html = html_of(env, sink, ticket.id, 'Look: [[Image(file.png)]]')
    assert '<img' not in html
    assert '<a href="http://trac.example.org/attachment/ticket/%d/file.png"' \
        % ticket.id in html
    link = html.split('/attachment/ticket/%d/file.png"' % ticket.id, 1)[1]
    assert link.split('</a>', 1)[0].rsplit('>', 1)[1] == 'file.png'


def test_no_link_is_ever_empty(make_env):
    env = make_env()
    for text in ('[[Image(http://example.com/a/pic%20one.png)]]',
                 '[[Image(http://example.com/x.png, alt=A picture)]]'):
        html = wiki_to_html(env, 1, text)
        body = html.split('</a>', 1)[0].rsplit('>', 1)[1]
        assert body in ('pic one.png', 'A picture',
                        'http://example.com/a/pic%20one.png'), html
