"""The HTML part of a wiki page mail: the diff coloured like Trac's diff
view.  The rows are compared with Trac's own inline diff, rendered by
Trac's ``diff_div.html`` from the same texts (its colours are those of
Trac's ``diff.css``: removed ``#fdd``, added ``#dfd``, the changed part of
a modified line ``#e99`` / ``#9e9``)."""

import re
from html.parser import HTMLParser

import pytest
import trac.wiki.web_ui  # noqa: F401  (WIKI_VIEW, as in a real Trac)
from trac.test import MockRequest
from trac.versioncontrol.diff import diff_blocks
from trac.web.chrome import Chrome
from trac.wiki.model import WikiPage

from tests.support.mails import check_html, parts
from tests.support.tickets import mails_by_recipient as delivered
from tests.support.users import set_session, users
from tracnotify import watches
from tracnotify.mail.wiki_html import diff_table
from tracnotify.wiki_subscribers import WATCH_CLASS

OLD = ('Intro\n\n * one\n * two\n * three\n\nMiddle <b>&</b>\n' +
       ''.join('filler %d\n' % i for i in range(12)) +
       'The  old   tail, indented\n\tand a tab\n')
NEW = ('Intro\n\n * one\n * 2\n * three\n * four\n\nMiddle <b>&</b>\n' +
       ''.join('filler %d\n' % i for i in range(12)) +
       'The  new   tail, indented\n\tand a TAB\n')
#: Trac's diff.css: (tbody class, td class) -> background of the line
TRAC_COLOURS = {('unmod', 'l'): '#fff', ('rem', 'l'): '#fdd',
                ('add', 'r'): '#dfd', ('mod', 'l'): '#fdd',
                ('mod', 'r'): '#dfd'}
MARK_COLOURS = {'del': '#e99', 'ins': '#9e9'}


class Rows(HTMLParser):
    """The rows of a diff table: ``(old line, new line, background, text,
    [(del|ins, marked text)])``; Trac's classes or our inline styles give
    the background."""

    def __init__(self, trac: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.trac = trac
        self.rows, self.row, self.cell = [], None, None
        self.tbody, self.marks = None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'thead':
            self.tbody = None
        elif tag == 'tbody':
            self.tbody = attrs.get('class', '')
        elif tag == 'tr' and self.tbody is not None:
            self.row = {'th': [], 'td': '', 'bg': None, 'marks': []}
        elif self.row is not None and tag in ('th', 'td'):
            self.cell = tag
            if tag == 'td':
                self.row['bg'] = self._background(attrs)
            else:
                self.row['th'].append('')
        elif self.row is not None and tag in ('del', 'ins'):
            style = attrs.get('style', '')
            if self.trac and self.tbody == 'mod' or '#e99' in style or \
                    '#9e9' in style:
                self.marks.append([tag, ''])

    def _background(self, attrs) -> str:
        if self.trac:
            if self.tbody == 'skipped':
                return 'skipped'
            return TRAC_COLOURS[(self.tbody, attrs.get('class'))]
        style = attrs.get('style', '')
        if '#f7f7f7' in style:
            return 'skipped'
        return re.search(r'background:(#[0-9a-f]+)', style).group(1)

    def handle_endtag(self, tag):
        if tag in ('del', 'ins') and self.marks and \
                self.marks[-1][0] == tag and self.row is not None:
            self.row['marks'].append(tuple(self.marks.pop()))
        elif tag == 'tr' and self.row is not None:
            th = self.row['th'] + ['', '']
            self.rows.append((th[0].strip(), th[1].strip(), self.row['bg'],
                              self.row['td'].strip(),
                              self.row['marks']))
            self.row = None
        elif tag in ('th', 'td'):
            self.cell = None

    def handle_data(self, data):
        if self.row is None or self.cell is None:
            return
        data = data.replace('\xa0', ' ')
        if self.cell == 'th':
            self.row['th'][-1] += data
        else:
            self.row['td'] += data
        for mark in self.marks:
            mark[1] += data


def rows_of(html: str, trac: bool):
    parser = Rows(trac)
    parser.feed(html)
    rows = parser.rows
    # the table heads: Trac's names the versions, as ours does
    return [r for r in rows if r[2] is not None]


def trac_inline_diff(env, old: str, new: str) -> str:
    """Trac's own inline diff of the two texts (what "View changes" on a
    wiki page shows), rendered by Trac's diff_div.html."""
    data = {'changes': [{'diffs': diff_blocks(old.splitlines(),
                                              new.splitlines(), 3),
                         'props': [], 'new': {'path': 'P', 'shortrev': 2},
                         'old': {'path': 'P', 'shortrev': 1}}],
            'diff': {'style': 'inline', 'options': {}},
            'longcol': 'Version', 'shortcol': 'v', 'no_id': True}
    return str(Chrome(env).render_fragment(MockRequest(env), 'diff_div.html',
                                           data))


@pytest.fixture
def env(sink_env):
    return sink_env(users('alice', 'bob', 'dave'))


def test_rows_and_colours_are_trac_s_inline_diff(env):
    ours = rows_of(diff_table(OLD, NEW, 1, 2), trac=False)
    theirs = rows_of(trac_inline_diff(env, OLD, NEW), trac=True)
    assert ours == theirs
    kinds = {row[2] for row in ours}
    assert kinds == {'#fff', '#fdd', '#dfd', 'skipped'}
    marked = [m for row in ours for m in row[4]]
    assert ('del', 'old') in marked and ('ins', 'new') in marked
    assert diff_table('same\n', 'same\n', 1, 2) == ''


def test_a_long_diff_stops_with_a_notice(env):
    old = ''.join('line %d\n' % i for i in range(3000))
    new = ''.join('LINE %d\n' % i for i in range(3000))
    html = diff_table(old, new, 1, 2, limit=20000)
    assert len(html) < 21000
    # every line is 'line N' or 'LINE N': 6000 lines of 6 to 9 characters
    left_out = int(re.search(r'\[\.\.\. (\d+) characters omitted; see the '
                             r'page\]', html).group(1))
    shown = rows_of(html, trac=False)
    assert shown[-1][2] == 'skipped'       # the notice
    lines = [r[3] for r in shown[:-1]]
    assert sum(map(len, lines)) + left_out == \
        sum(len('line %d' % i) for i in range(3000)) * 2
    assert diff_table(old, new, 1, 2, limit=10 ** 7).count('<tr>') == 6001


def test_watcher_who_chose_both_gets_the_coloured_diff(env, sink):
    assert watches.watch(env, 'dave', WATCH_CLASS, 'wiki', 'Colours')
    set_session(env, 'dave', **{'tracnotify.format': 'both'})
    page = WikiPage(env, 'Colours')
    page.text = OLD
    page.save('alice', 'first')
    delivered(env, sink, True)
    page = WikiPage(env, 'Colours')
    page.text = NEW
    page.save('bob', 'Numbers & a tail')
    mail = delivered(env, sink, True)['dave@example.net'][0]
    (text_type, text), (html_type, html) = parts(mail)
    assert (text_type, html_type) == ('text/plain', 'text/html')
    assert 'Page Colours was changed by bob (version 2).' in text
    assert '+ * 2' in text                       # the text part's diff
    checker = check_html(html)
    assert 'Page Colours was changed by bob (version 2).' in html
    assert 'Numbers &amp; a tail' in html
    assert 'Middle &lt;b&gt;&amp;&lt;/b&gt;' in html   # escaped, by Trac
    assert 'http://trac.example.org/wiki/Colours?action=diff' \
        '&amp;old_version=1&amp;version=2' in html
    assert ours_in(html) == rows_of(trac_inline_diff(env, OLD, NEW),
                                    trac=True)
    assert any(href.startswith('http://trac.example.org/wiki/Colours')
               for href in checker.links)


def ours_in(html: str):
    table = html[html.index('<table'):html.rindex('</table>') + 8]
    return rows_of(table, trac=False)


def test_text_recipients_get_no_html_part(env, sink):
    assert watches.watch(env, 'dave', WATCH_CLASS, 'wiki', 'Plain')
    page = WikiPage(env, 'Plain')
    page.text = 'one\n'
    page.save('alice', '')
    mail = delivered(env, sink, True)['dave@example.net'][0]
    assert mail.get_content_type() == 'text/plain'


def test_a_broken_html_override_still_sends_the_text(env, sink):
    import os
    folder = os.path.join(env.templates_dir, 'mail')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'wiki_body.html'), 'w') as f:
        f.write('<html><p>${unclosed</html>')
    assert watches.watch(env, 'dave', WATCH_CLASS, 'wiki', 'Broken')
    set_session(env, 'dave', **{'tracnotify.format': 'html'})
    page = WikiPage(env, 'Broken')
    page.text = 'one\n'
    page.save('alice', '')
    mail = delivered(env, sink, True)['dave@example.net'][0]
    assert mail.get_content_type() == 'text/plain'
    assert 'Page Broken was created by alice.' in mail.get_content()
