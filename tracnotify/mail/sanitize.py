"""What rendered wiki HTML may carry into a mail client.

The sanitising is ammonia's (the Rust HTML sanitiser, through ``nh3``): a
real HTML5 parser (html5ever) builds the tree as a browser would, and only
the allow-listed tags, attributes, URL schemes and CSS properties below are
serialised back.  Mail clients ignore stylesheets and should load nothing,
so no images, scripts, frames, forms or classes survive.

Then a second, small pass over ammonia's output (already safe and
well-formed) adds the inline styles mail needs (:data:`INLINE_STYLES`,
before the wiki's own), writes each image as its name (or the link it is
in), and gives a link that would show nothing its URL as text.
"""

import posixpath
import re
from html import escape
from html.parser import HTMLParser
from typing import List, Optional, Tuple
from urllib.parse import unquote, urlsplit

import nh3

#: tags kept from rendered wiki text; everything else is unwrapped
ALLOWED_TAGS = {
    'a', 'abbr', 'b', 'blockquote', 'br', 'caption', 'code', 'dd', 'del',
    'div', 'dl', 'dt', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i',
    'ins', 'kbd', 'li', 'ol', 'p', 'pre', 's', 'samp', 'small', 'span',
    'strike', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th',
    'thead', 'tr', 'tt', 'u', 'ul', 'var',
}
#: tags dropped with everything inside them
DROPPED_TAGS = {'script', 'style', 'iframe', 'object', 'embed', 'applet',
                'form', 'input', 'button', 'select', 'textarea', 'svg',
                'math', 'noscript', 'template', 'head', 'title', 'audio',
                'video', 'canvas', 'link', 'meta', 'base', 'frame',
                'frameset', 'noframes', 'xmp', 'plaintext', 'noembed',
                'param', 'source', 'track', 'picture', 'portal'}
#: attributes kept, on any tag (``href`` on links, spans on cells)
ALLOWED_ATTRS = {'title', 'style', 'lang', 'dir'}
TAG_ATTRS = {'a': {'href'}, 'td': {'colspan', 'rowspan'},
             'th': {'colspan', 'rowspan'},
             'img': {'alt', 'src'}}      # read by the second pass, not kept
URL_SCHEMES = {'http', 'https', 'mailto'}
#: CSS properties kept in style attributes (no url(), no positioning that
#: could cover other content, no display:none to hide text)
CSS_PROPERTIES = {
    'color', 'background-color', 'font-weight', 'font-style',
    'font-family', 'font-size', 'font-variant', 'text-align',
    'text-decoration', 'text-transform', 'vertical-align', 'white-space',
    'line-height', 'letter-spacing', 'word-spacing', 'list-style-type',
    'border', 'border-top', 'border-right', 'border-bottom', 'border-left',
    'border-color', 'border-style', 'border-width', 'border-collapse',
    'border-spacing', 'padding', 'padding-top', 'padding-right',
    'padding-bottom', 'padding-left', 'margin', 'margin-top',
    'margin-right', 'margin-bottom', 'margin-left', 'width', 'max-width',
    'min-width', 'height', 'max-height', 'min-height', 'clear', 'float',
}
_SAFE_URL = re.compile(r'^(https?:|mailto:)', re.I)
#: style values that can load or run something, whatever the property
_BAD_STYLE = re.compile(r'url\s*\(|expression|@import|behavior|'
                        r'javascript:|\\|&#|/\*', re.I)
#: inline styles added to tags of rendered wiki text (no stylesheet in mail)
INLINE_STYLES = {
    'pre': 'margin:6px 0;padding:6px;background:#f7f7f7;'
           'border:1px solid #d7d7d7;white-space:pre-wrap;'
           'font-family:monospace;font-size:12px',
    'code': 'font-family:monospace;background:#f7f7f7',
    'tt': 'font-family:monospace;background:#f7f7f7',
    'table': 'border-collapse:collapse',
    'td': 'border:1px solid #d7d7d7;padding:2px 4px',
    'th': 'border:1px solid #d7d7d7;padding:2px 4px',
    'blockquote': 'margin:6px 0;padding:0 8px;border-left:2px solid #b8b8b8;'
                  'color:#555555',
    'a': 'color:#b00000',
    'p': 'margin:6px 0',
}
VOID_TAGS = {'br', 'hr', 'img', 'wbr'}


def _attribute_filter(tag: str, name: str, value: str) -> Optional[str]:
    """Ammonia's per-attribute hook: absolute links only (a mail has no
    page for a relative one to be relative to), no active CSS."""
    if name == 'href' and not _SAFE_URL.match(value.strip()):
        return None
    if name == 'style' and _BAD_STYLE.search(value):
        return None
    return value


def sanitize_html(html: str) -> str:
    """*html* reduced by ammonia to the allow-lists above."""
    attributes = {'*': set(ALLOWED_ATTRS)}
    attributes.update({tag: set(names) for tag, names in TAG_ATTRS.items()})
    return nh3.clean(html, tags=ALLOWED_TAGS | {'img'},
                     clean_content_tags=DROPPED_TAGS,
                     attributes=attributes,
                     attribute_filter=_attribute_filter,
                     url_schemes=URL_SCHEMES, link_rel=None,
                     strip_comments=True,
                     filter_style_properties=CSS_PROPERTIES)


def image_name(attrs: dict) -> str:
    """What an image says when it is not shown: its alt text, else its
    file name."""
    alt = (attrs.get('alt') or '').strip()
    if alt:
        return alt
    src = attrs.get('src') or ''
    try:
        return unquote(posixpath.basename(urlsplit(src).path))
    except ValueError:
        return ''


class _MailStyler(HTMLParser):
    """Rewrites ammonia's output for mail: inline styles, images as text,
    no link without text.  Its input is already sanitised."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: List[str] = []
        #: open links: (index of their start tag in out, href, has text)
        self.links: List[Tuple[int, str, bool]] = []

    def _text(self, text: str) -> None:
        if text:
            self.out.append(escape(text, quote=False))
            if text.strip() and self.links:
                start, href, _seen = self.links[-1]
                self.links[-1] = (start, href, True)

    def handle_starttag(self, tag, attrs):
        attrs = [(k, v or '') for k, v in attrs]
        if tag == 'img':        # no remote (or any) images: their name
            self._text(image_name(dict(attrs)))
            return
        style = INLINE_STYLES.get(tag, '')
        kept = []
        for name, value in attrs:
            if name == 'style':
                style = (style + ';' + value) if style else value
            else:
                kept.append(' %s="%s"' % (name, escape(value, quote=True)))
        if style:
            kept.append(' style="%s"' % escape(style, quote=True))
        if tag == 'a':
            self.links.append((len(self.out), dict(attrs).get('href', ''),
                               False))
        self.out.append('<%s%s>' % (tag, ''.join(kept)))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID_TAGS:
            return
        if tag == 'a' and self.links:
            _start, href, seen = self.links.pop()
            if not seen and href:       # never an empty, invisible link
                self.out.append(escape(href, quote=False))
        self.out.append('</%s>' % tag)

    def handle_data(self, data):
        self._text(data)

    def result(self) -> str:
        self.close()
        return ''.join(self.out)


def clean_html(html: str) -> str:
    """*html* with only safe tags, safe links and inline styles."""
    styler = _MailStyler()
    styler.feed(sanitize_html(html))
    return styler.result()
