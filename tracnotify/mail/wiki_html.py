"""The HTML part of a wiki page mail (``templates/mail/wiki_body.html``),
with the diff coloured like Trac's own diff view.

The rows are Trac's: :func:`trac.versioncontrol.diff.diff_blocks` (what the
page's "View changes" shows in its inline style: unchanged, removed,
added and modified lines, the changed part of a modified line marked),
laid out as Trac's ``diff_div.html`` lays out an inline diff, with the
colours of Trac's ``diff.css`` written as inline styles (mail clients
ignore stylesheets).  Trac escapes the lines itself; the only markup in
them is its own ``<del>`` / ``<ins>``.  Like the text diff, the table is
bounded: it stops, with a notice, before its rows pass
:data:`MAX_HTML_CHARS` (the styles of a row weigh more than its text).
"""

import re
from html import escape, unescape
from typing import Dict, List, Optional

from genshi.core import Markup as GenshiMarkup
from genshi.template import MarkupTemplate
from trac.versioncontrol.diff import diff_blocks

from tracnotify.mail.format import MAX_TEXT_CHARS
from tracnotify.mail.templates import load_template
from tracnotify.mail.wiki_diff import CONTEXT, omitted_notice

HTML_TEMPLATE = 'mail/wiki_body.html'
#: the most characters of rows in one diff table
MAX_HTML_CHARS = 4 * MAX_TEXT_CHARS
_TAG_RE = re.compile(r'<[^>]*>')
_MONO = "'Open Sans Mono',Consolas,'Lucida Console',monospace"
#: Trac's diff.css (``.diff table.trac-diff`` and ``table.inline``), inline
STYLES: Dict[str, str] = {
    'table': 'border:1px solid #ddd;border-spacing:0;empty-cells:show;'
             'font-size:12px;line-height:120%%;margin:0;padding:0;'
             'width:100%%;font-family:%s' % _MONO,
    'head': 'background:#eee;border-top:1px solid #d7d7d7;'
            'border-right:1px solid #d7d7d7;color:#999;font-weight:normal;'
            'padding:0 .25em;text-align:center;white-space:nowrap;'
            'width:4em',
    'th': 'background:#eed;color:#886;font-weight:normal;padding:0 .5em;'
          'text-align:right',
    'unmod': 'background:#fff;padding:1px 2px',
    'rem': 'background:#fdd;border:solid #c00;padding:1px 2px',
    'add': 'background:#dfd;border:solid #0a0;padding:1px 2px',
    'skipped': 'background:#f7f7f7;border:1px solid #d7d7d7',
    'del': 'background:#e99;color:#000;text-decoration:none',
    'ins': 'background:#9e9;color:#000;text-decoration:none',
    'plain': 'text-decoration:none',      # a whole removed / added line
}


def _cell(kind: str, first: bool, last: bool) -> str:
    """The style of a line's cell: removed and added runs are framed
    (left and right borders, top on their first line, bottom on their
    last), as ``tbody.rem tr.first td.l`` in Trac's stylesheet."""
    style = STYLES[kind]
    if kind in ('rem', 'add'):
        style += ';border-width:%dpx 1px %dpx 1px' % (int(first), int(last))
    return style


def _marked(line: str, whole: Optional[str]) -> str:
    """A line of Trac's with its ``<del>`` / ``<ins>`` styled; *whole*
    (``del`` / ``ins``) wraps a line removed or added as a whole."""
    line = line.replace('<del>', '<del style="%s">' % STYLES['del']) \
        .replace('<ins>', '<ins style="%s">' % STYLES['ins'])
    if whole:
        return '<%s style="%s">%s</%s>' % (whole, STYLES['plain'], line,
                                          whole)
    return line


def _row(old_n, new_n, kind: str, line: str, first: bool = False,
         last: bool = False, whole: Optional[str] = None) -> str:
    th = STYLES['th']
    return ('<tr><th style="%s">%s</th><th style="%s">%s</th>'
            '<td style="%s">%s</td></tr>' % (
                th, old_n if old_n is not None else '&nbsp;', th,
                new_n if new_n is not None else '&nbsp;',
                _cell(kind, first, last), _marked(line, whole)))


def diff_table(old_text: str, new_text: str, old_version: int,
               new_version: int, limit: int = MAX_HTML_CHARS) -> str:
    """The change from *old_text* to *new_text* as the HTML table of Trac's
    inline diff ('' when the texts do not differ line by line)."""
    hunks = diff_blocks(old_text.splitlines(), new_text.splitlines(),
                        CONTEXT)
    if not hunks:
        return ''
    head = STYLES['head']
    out: List[str] = [
        '<table style="%s" cellspacing="0">' % STYLES['table'],
        '<thead><tr><th style="%s">v%d</th><th style="%s">v%d</th>'
        '<th style="%s">&nbsp;</th></tr></thead>' % (
            head, old_version, head, new_version, head)]
    budget = _Budget(limit)
    for number, blocks in enumerate(hunks):
        if number:
            out.append('<tbody><tr><th style="%s">&hellip;</th>'
                       '<th style="%s">&hellip;</th><td style="%s">'
                       '</td></tr></tbody>' % (
                           STYLES['skipped'], STYLES['skipped'],
                           STYLES['skipped']))
        for block in blocks:
            rows = _block_rows(block, budget)
            if rows:
                out.append('<tbody>%s</tbody>' % ''.join(rows))
    if budget.left_out:
        out.append('<tbody><tr><td colspan="3" style="%s">%s</td></tr>'
                   '</tbody>' % (STYLES['skipped'], escape(
                       omitted_notice(budget.left_out))))
    out.append('</table>')
    return '\n'.join(out)


class _Budget:
    """What a table may still hold: once a row would pass *limit*, no
    more rows; ``left_out`` counts the characters of the lines not
    shown."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.full = False
        self.left_out = 0

    def take(self, row: str, line: str) -> bool:
        if not self.full and len(row) <= self.left:
            self.left -= len(row)
            return True
        self.full = True
        self.left_out += len(unescape(_TAG_RE.sub('', line)))
        return False


def _block_rows(block: dict, budget: _Budget) -> List[str]:
    """The rows of one of Trac's diff blocks that fit in *budget*."""
    base, changed = block['base'], block['changed']
    rows: List[str] = []
    kind = block['type']
    lines = []
    if kind == 'unmod':
        lines = [(base['offset'] + i + 1, changed['offset'] + i + 1, 'unmod',
                  line, None) for i, line in enumerate(base['lines'])]
    else:
        if kind in ('rem', 'mod'):
            lines += [(base['offset'] + i + 1, None, 'rem', line,
                       'del' if kind == 'rem' else None)
                      for i, line in enumerate(base['lines'])]
        if kind in ('add', 'mod'):
            lines += [(None, changed['offset'] + i + 1, 'add', line,
                       'ins' if kind == 'add' else None)
                      for i, line in enumerate(changed['lines'])]
    for n, (old_n, new_n, side, line, whole) in enumerate(lines):
        first = n == 0 or lines[n - 1][2] != side
        last = n == len(lines) - 1 or lines[n + 1][2] != side
        row = _row(old_n, new_n, side, str(line), first, last, whole)
        if budget.take(row, str(line)):
            rows.append(row)
    return rows


def render_html(env, data: Dict, diff_html: str) -> str:
    """The HTML document of a page mail: ``wiki_body.html`` with the text
    template's *data* and the diff table (translations active)."""
    template = load_template(env.templates_dir, HTML_TEMPLATE,
                             MarkupTemplate)
    return template.generate(diff_html=GenshiMarkup(diff_html),
                             **data).render('html', doctype='html5',
                                            encoding=None)
