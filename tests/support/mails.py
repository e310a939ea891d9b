"""Reading the mail the tests receive: its text, its parts, and the checks
every HTML part must pass."""

from email.message import EmailMessage
from html.parser import HTMLParser
from typing import List, Tuple

#: a comment with wiki markup, a macro, a remote image and a script: what
#: the HTML part must render safely
COMMENT = ("Fixed in [42], see #1.\n\n{{{\nmake test\n}}}\n"
           " * '''bold''' [[Image(http://evil.example/x.png)]]\n"
           " * <script>alert(1)</script> http://example.com/doc\n")


def text_of(message: EmailMessage) -> str:
    """The content of a one-part *message*, with LF line ends."""
    return message.get_content().replace('\r\n', '\n')


def parts(mail: EmailMessage) -> List[Tuple[str, str]]:
    """``(content type, content)`` of each leaf part, LF line ends."""
    return [(p.get_content_type(), text_of(p))
            for p in mail.walk() if not p.is_multipart()]


class Checker(HTMLParser):
    """Collects what matters in an HTML part; fails on unbalanced tags."""

    VOID = {'br', 'hr', 'img', 'meta', 'input', 'link'}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.links, self.errors = [], [], [], []
        self.styled = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if 'style' in attrs:
            self.styled += 1
        if tag == 'a':
            self.links.append(attrs.get('href'))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append('unexpected </%s> in %s' % (tag, self.stack))
        else:
            self.stack.pop()


def check_html(html: str) -> Checker:
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert not checker.errors and not checker.stack
    names = {tag for tag, _attrs in checker.tags}
    assert not names & {'script', 'style', 'link', 'iframe', 'object'}
    assert 'img' not in names                       # no remote images
    for _tag, attrs in checker.tags:
        assert not any(k.startswith('on') for k in attrs)
        assert 'url(' not in (attrs.get('style') or '')
        assert 'class' not in attrs                  # inline CSS only
    assert checker.styled > 10
    return checker
