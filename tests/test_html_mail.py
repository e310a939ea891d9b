"""HTML mail (multipart/alternative) and each recipient's language, on the
mail a real SMTP server receives."""

import re

import pytest
from trac.ticket.model import Ticket

from tests.support.mails import COMMENT, check_html, parts
from tests.support.mails import text_of as body
from tests.support.tickets import (
    add_users,
    change_ticket,
    create_ticket,
    mail_to_each,
)
from tests.support.trac_reference import tracs
from tests.support.users import set_session, users
from tracnotify.i18n import catalogs
from tracnotify.mail import message, pipeline
from tracnotify.mail.html import clean_html

USERS = users('alice', 'hans', 'marie', 'joe')


@pytest.fixture
def env(sink_env):
    return sink_env(USERS)


def delivered(env, sink):
    return mail_to_each(env, sink)


def test_multipart_alternative_text_first(env, sink):
    set_session(env, 'joe', **{'tracnotify.format': 'both'})
    ticket = create_ticket(env, owner='joe',
                           description="Some '''wiki''' text.")
    mails = delivered(env, sink)
    joe = mails['joe@example.net']
    assert joe.get_content_type() == 'multipart/alternative'
    (t1, text), (t2, html) = parts(joe)
    assert (t1, t2) == ('text/plain', 'text/html')
    assert text.startswith('#1: Test\n')
    checker = check_html(html)
    assert 'http://trac.example.org/ticket/1' in checker.links
    assert '<strong>wiki</strong>' in html
    # the others chose nothing: text only, as before
    assert mails['alice@example.net'].get_content_type() == 'text/plain'
    change_ticket(env, ticket.id, author='alice', comment=COMMENT,
                  status='closed', resolution='fixed', priority='minor')
    joe = delivered(env, sink)['joe@example.net']
    html = parts(joe)[1][1]
    checker = check_html(html)
    assert 'http://trac.example.org/ticket/1#comment:1' in checker.links
    assert 'http://example.com/doc' in checker.links
    assert 'http://trac.example.org/ticket/1' in checker.links   # "#1"
    assert '<strong>bold</strong>' in html and '<pre' in html
    assert 'alert(1)' not in html or '&lt;script&gt;' in html
    assert 'evil.example/x.png' in html          # the image: a link, no img
    # the changes, as a real table
    assert re.search(r'<th[^>]*>Priority</th>\s*<td[^>]*><del>major</del>'
                     r'</td>\s*<td[^>]*><ins[^>]*>minor</ins>', html)


def test_html_only(env, sink):
    set_session(env, 'joe', **{'tracnotify.format': 'html'})
    create_ticket(env, owner='joe')
    joe = delivered(env, sink)['joe@example.net']
    assert joe.get_content_type() == 'text/html'
    check_html(joe.get_content())


def test_admin_default_format_is_tracs_option(sink_env, sink):
    env = sink_env(USERS, **{'default_format.email': 'multipart/alternative'})
    set_session(env, 'joe', **{'tracnotify.format': 'text'})
    create_ticket(env, owner='joe')
    mails = delivered(env, sink)
    assert mails['alice@example.net'].get_content_type() == \
        'multipart/alternative'
    assert mails['joe@example.net'].get_content_type() == 'text/plain'


def test_each_recipient_in_their_language(env, sink):
    set_session(env, 'hans', language='de_DE')                # Trac's pref
    set_session(env, 'marie', **{'tracnotify.language': 'fr',  # ours wins
                                 'language': 'de',
                                 'tracnotify.format': 'both'})
    ticket = create_ticket(env, owner='joe', cc='hans, marie')
    delivered(env, sink)
    change_ticket(env, ticket.id, author='alice', comment='Hello.',
                  priority='minor', summary='New summary')
    mails = delivered(env, sink)
    hans = body(mails['hans@example.net'])
    assert 'Änderungen (von Alice A):' in hans
    assert 'Priorität:' in hans and 'Kommentar:' in hans
    assert mails['hans@example.net']['Subject'] == \
        'Re: [Test Project] #1: New summary (vorher: Test)'
    marie_text, marie_html = [c for _t, c in parts(mails['marie@example.net'])]
    assert 'Modifications (par Alice A) :' in marie_text
    assert 'Commentaire :' in marie_text
    assert 'Modifications (par Alice A) :' in marie_html
    assert 'lang="fr"' in marie_html
    # English stays Trac's own format, character for character
    english = body(mails['joe@example.net'])
    footer_at = english.rindex('\n\nTo stop these e-mails')
    assert english[:footer_at].rstrip('\n') == \
        tracs(env, Ticket(env, ticket.id))[1].rstrip('\n')


def test_default_language_is_tracs(sink_env, sink):
    env = sink_env(USERS)
    env.config.set('trac', 'default_language', 'fr_FR')
    set_session(env, 'hans', language='en_US')
    create_ticket(env, owner='joe', cc='hans')
    mails = delivered(env, sink)
    assert 'Propriétaire' in body(mails['joe@example.net'])
    assert 'Owner:' in body(mails['hans@example.net'])


def test_rendered_once_per_language_and_format(env, monkeypatch):
    """Issue 3: the body is rendered and encoded once per (language,
    format) group, not once per recipient."""
    for i in range(6):
        add_users(env, ('u%d' % i, 'U%d' % i, 'u%d@example.net' % i))
    set_session(env, 'u0', language='de')
    set_session(env, 'u1', language='de')
    set_session(env, 'u2', **{'tracnotify.format': 'both'})
    calls = []
    real = message.encode_shared_part
    monkeypatch.setattr(pipeline, 'encode_shared_part',
                        lambda *a, **kw: calls.append(a[3:]) or real(*a, **kw))
    create_ticket(env, owner='joe', cc=', '.join('u%d' % i for i in range(6)))
    from tracnotify.config import load_config
    from tracnotify.event import TicketEvent
    (payload,), = env.db_query('SELECT payload FROM tracnotify_event')
    msgs = pipeline.build_messages(env, load_config(env),
                                   TicketEvent.from_json(payload))
    assert len(msgs) == 8
    assert len(calls) == 3          # (en, text), (de, text), (en, both)


def test_clean_html():
    dirty = ('<p onclick="x()" class="a">Hi <img src="http://x/y.png" '
             'alt="pic"><script>bad()</script><a href="javascript:x">j</a>'
             '<span style="background:url(http://x/)">s</span>'
             '<iframe src="http://x"><b>in</b></iframe></p>')
    assert clean_html(dirty) == \
        '<p style="margin:6px 0">Hi pic<a style="color:#b00000">j</a>' \
        '<span>s</span></p>'


def test_catalogs_compile_on_first_use(tmp_path, monkeypatch):
    """A source checkout has no .mo files: they are compiled into a cache
    folder the first time (the build compiles them for wheels)."""
    import shutil
    src = tmp_path / 'locale'
    shutil.copytree(catalogs.LOCALE_DIR, src,
                    ignore=shutil.ignore_patterns('*.mo'))
    monkeypatch.setenv('TRACNOTIFY_CACHE_DIR', str(tmp_path / 'cache'))
    folder = catalogs.catalog_dir(str(src))
    assert folder.startswith(str(tmp_path / 'cache'))
    for lang in ('de', 'fr'):
        from babel.support import Translations
        t = Translations.load(folder, [lang], 'tracnotify')
        assert t.gettext('Comment:') != 'Comment:'
    catalogs.compile_all(str(src))
    assert catalogs.catalog_dir(str(src)) == str(src)


@pytest.mark.parametrize('lang', ['de', 'fr'])
def test_catalogs_are_complete(lang):
    from babel.messages.pofile import read_po
    with open('%s/messages.pot' % catalogs.LOCALE_DIR, 'rb') as f:
        template = read_po(f)
    with open('%s/%s/LC_MESSAGES/tracnotify.po' % (catalogs.LOCALE_DIR,
                                                  lang), 'rb') as f:
        catalog = read_po(f)
    missing = [m.id for m in template if m.id and not
               (catalog.get(m.id) and catalog.get(m.id).string)]
    assert not missing
    assert not list(catalog.check())
