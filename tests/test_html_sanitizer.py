"""The HTML mail sanitiser (issue 12, item 12) against an XSS corpus
(tests/fixtures/xss_vectors.txt, after the OWASP filter-evasion cheat
sheet): whatever goes in, only allow-listed tags, attributes, absolute
http(s)/mailto links and passive inline CSS come out, both from
``clean_html`` alone and through Trac's wiki formatter with
``render_unsafe_content`` on (so that Trac's own sanitiser is not what
holds)."""

import html as htmllib
import os
import re
from html.parser import HTMLParser

import pytest

from tracnotify.mail import sanitize
from tracnotify.mail.sanitize import clean_html
from tracnotify.mail.wikitext import wiki_to_html

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures',
                       'xss_vectors.txt')


def vectors():
    with open(FIXTURE, encoding='utf-8') as f:
        text = f.read()
    blocks = text.split('\n----\n')[1:]       # the first is the header
    return [b.strip('\n') for b in blocks if b.strip()]


VECTORS = vectors()
ALLOWED_ATTRS = sanitize.ALLOWED_ATTRS | {'href', 'colspan', 'rowspan'}
#: what must never be in any attribute value, once entities are decoded
#: and spaces and controls removed
_ACTIVE = re.compile(r'javascript:|vbscript:|data:|livescript:|url\(|'
                     r'expression|@import|behavior|binding', re.I)


#: CSS that can lay a message over the mail client's own screen or hide
#: text: never kept
_LAYOUT = {'position', 'display', 'visibility', 'z-index', 'opacity',
           'content', 'clip', 'clip-path', 'transform'}


def css_unescape(value: str) -> str:
    """CSS escapes decoded (``\\75\\72\\6C(`` is ``url(`` to a CSS
    engine)."""
    value = re.sub(r'\\([0-9a-fA-F]{1,6})\s?',
                   lambda m: chr(int(m.group(1), 16))
                   if int(m.group(1), 16) < 0x110000 else '', value)
    return re.sub(r'\\(.)', r'\1', value)


class Strict(HTMLParser):
    """Everything the output contains, as a browser would read it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.comments = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_decl(self, decl):
        self.comments.append(decl)

    def unknown_decl(self, data):
        self.comments.append(data)


def assert_safe(out: str) -> None:
    checker = Strict()
    checker.feed(out)
    checker.close()
    assert not checker.comments, out
    for tag, attrs in checker.tags:
        assert tag in sanitize.ALLOWED_TAGS, (tag, out)
        for name, value in attrs:
            value = value or ''
            assert name in ALLOWED_ATTRS, (name, out)
            squeezed = re.sub(r'[\s\x00-\x1f]+', '',
                              css_unescape(htmllib.unescape(value)))
            assert not _ACTIVE.search(squeezed), (name, value, out)
            if name == 'style':
                properties = {d.split(':', 1)[0].strip().lower()
                              for d in squeezed.split(';') if d.strip()}
                assert not properties & _LAYOUT, (value, out)
            if name == 'href':
                assert re.match(r'^(https?://|mailto:)', value), out
    lowered = out.lower()
    for word in ('<script', '<style', '<img', '<iframe', '<svg', '<math',
                 '<object', '<embed', '<form', '<meta', '<link', '<base'):
        assert word not in lowered, (word, out)


@pytest.mark.parametrize('vector', VECTORS, ids=range(len(VECTORS)))
def test_clean_html_defuses(vector):
    assert_safe(clean_html(vector))


@pytest.fixture(scope='module')
def unsafe_env(tmp_path_factory):
    """Trac itself lets raw HTML through (``render_unsafe_content``)."""
    from tests.support.envs import make_stub_env
    env = make_stub_env(str(tmp_path_factory.mktemp('xss')), None, {})
    env.config.set('wiki', 'render_unsafe_content', 'true')
    yield env
    env.reset_db()
    env.shutdown()


@pytest.mark.parametrize('vector', VECTORS, ids=range(len(VECTORS)))
def test_wiki_html_block_defused(unsafe_env, vector):
    out = wiki_to_html(unsafe_env, 1, '{{{#!html\n%s\n}}}\nand %s'
                       % (vector, vector))
    assert_safe(out)


def test_the_corpus_is_read():
    assert len(VECTORS) > 100
    assert any('onerror' in v for v in VECTORS)


def test_what_is_kept():
    """Harmless markup, plain links and text survive, with inline styles
    for mail."""
    out = clean_html('<p>Hello <a href="https://example.com/a?b=1&amp;c=2" '
                     'title="t">link</a> <strong>bold</strong> '
                     '<span style="color: red; position: fixed">red</span>'
                     '<table><tr><td colspan="2">c</td></tr></table>'
                     '<a href="mailto:x@example.com">mail</a></p>')
    assert '<a href="https://example.com/a?b=1&amp;c=2" title="t" ' \
        'style="color:#b00000">link</a>' in out
    assert '<strong>bold</strong>' in out
    assert '<span style="color:red">red</span>' in out
    assert '<td colspan="2" style="border:1px solid #d7d7d7;padding:2px 4px">' \
        'c</td>' in out
    assert 'href="mailto:x@example.com"' in out


def test_images_become_their_name_and_links_never_empty():
    out = clean_html('<a href="http://x.example/p.png"><img '
                     'src="http://x.example/raw/p%20q.png"></a>'
                     '<a href="http://x.example/e"></a>'
                     '<img src="http://x.example/t.gif" alt="The chart">')
    assert out == ('<a href="http://x.example/p.png" style="color:#b00000">'
                   'p q.png</a><a href="http://x.example/e" '
                   'style="color:#b00000">http://x.example/e</a>The chart')


def test_malformed_markup_comes_out_balanced():
    out = clean_html('<p><b>bold <i>both</p> after</b><table><td>x'
                     '<div>unclosed')
    checker = Strict()
    stack = []

    class Balance(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in sanitize.VOID_TAGS:
                stack.append(tag)

        def handle_endtag(self, tag):
            assert stack and stack[-1] == tag, (tag, stack, out)
            stack.pop()

    Balance().feed(out)
    assert not stack, out
    checker.feed(out)
