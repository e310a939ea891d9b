"""HTML mail as plain text (for replies sent as HTML only).

Block elements end lines, ``<br>`` breaks one, ``<blockquote>`` content is
quoted with ``> `` (so that the reply parser removes it like any quote),
scripts and styles are dropped, entities are decoded.
"""

import re
from html.parser import HTMLParser
from typing import List

_BLOCKS = {'p', 'div', 'table', 'tr', 'ul', 'ol', 'li', 'h1', 'h2', 'h3',
           'h4', 'h5', 'h6', 'pre', 'hr', 'section', 'article', 'header',
           'footer', 'address', 'dl', 'dt', 'dd'}
_SKIP = {'script', 'style', 'head', 'title'}
_spaces_re = re.compile(r'[ \t\r\n\f\v]+')


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: List[str] = []
        self.line: List[str] = []
        self.depth = 0            # blockquote depth
        self.skip = 0
        self.pre = 0

    def _end_line(self, force: bool = False) -> None:
        text = ''.join(self.line)
        if not self.pre:
            text = text.strip()
        if text or force:
            self.lines.append('> ' * self.depth + text)
        self.line = []

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag == 'br':
            self._end_line(force=True)
        elif tag == 'blockquote':
            self._end_line()
            self.depth += 1
        elif tag in _BLOCKS:
            self._end_line()
            if tag == 'pre':
                self.pre += 1
            if tag == 'li':
                self.line.append('* ')

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == 'blockquote':
            self._end_line()
            self.depth = max(0, self.depth - 1)
        elif tag in _BLOCKS or tag == 'p':
            self._end_line()
            if tag == 'pre':
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            parts = data.split('\n')
            for part in parts[:-1]:
                self.line.append(part)
                self._end_line(force=True)
            self.line.append(parts[-1])
        else:
            self.line.append(_spaces_re.sub(' ', data))


def html_to_text(html: str) -> str:
    """The text of *html*, line by line."""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:       # HTMLParser is lenient; this is belt and braces
        pass
    parser._end_line()
    text = '\n'.join(parser.lines)
    return re.sub(r'\n{3,}', '\n\n', text).strip()
