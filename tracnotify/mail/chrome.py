"""The chrome of every mail: what the ticket mail, the batch mail and the
daily digest share around their bodies.

* the subject: ``smtp_subject_prefix``, the subject templates
  (``ticket_subject_template``, ``batch_subject_template``), header-safe
  text;
* the standard header block (X-Mailer, X-Trac-*, X-URL, List-Id);
* the project signature and the footer line (the unsubscribe page).

(Each recipient's List-Unsubscribe link is made by
:func:`tracnotify.mail.suppression.with_unsubscribe_links` and written in
their copy's own headers by :mod:`tracnotify.mail.message`.)

Change the subject line, the headers or the footer here: the three kinds of
mail then change alike.
"""

import functools
import re
import unicodedata
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from trac.util.text import jinja2template

from tracnotify.config import NotifyConfig
from tracnotify.i18n.domain import _
from tracnotify.mail.suppression import page_url

MAX_SUBJECT_CHARS = 400
_control_re = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029]+')
#: the signature line that ends Trac's body ("-- " on a line of its own)
SIGNATURE = '-- '


# Subject -----------------------------------------------------------------------

def clean_header_text(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """One line of text, safe for a header: no CR/LF or control characters,
    at most *limit* characters.

    ``=?`` gets an invisible WORD JOINER: the ``email`` package of Python
    before 3.11.10 decodes RFC 2047 encoded-words found in a value it is
    given and writes their content back unencoded, so a summary holding
    ``=?utf-8?q?=0D=0ABcc:_x@evil?=`` would inject a Bcc header.  The text
    is shown as typed, never decoded."""
    text = _control_re.sub(' ', text or '').strip()
    text = unicodedata.normalize('NFC', text).replace('=?', '=\u2060?')
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + '\u2026'
    return text


def subject_prefix(env, config: NotifyConfig) -> str:
    """``[notification] smtp_subject_prefix``; by default ``[Project]``."""
    prefix = config.smtp_subject_prefix
    if prefix == '__default__':
        prefix = '[%s]' % env.project_name
    return prefix


@functools.lru_cache(maxsize=16)
def compiled_subject(text: str):
    """A subject template, compiled once per distinct text."""
    return jinja2template(text, text=True, line_statement_prefix=None,
                          line_comment_prefix=None)


def render_subject(env, option: str, template: str, fallback: str,
                   **data) -> str:
    """The subject template of *option* rendered with *data* (Jinja2 text,
    as Trac renders it); *fallback* when the template fails (logged)."""
    try:
        return compiled_subject(template).render(env=env, **data).strip()
    except Exception as e:
        env.log.warning('tracnotify: %s failed (%s); using the default',
                        option, e)
        return fallback.strip()


# Standard headers -----------------------------------------------------

def project_url(env) -> str:
    """The project's URL: ``[project] url``, else the Trac's own."""
    return env.project_url or env.abs_href()


def standard_headers(env, config: NotifyConfig, kind: str,
                     ticket_id: Optional[int] = None,
                     ticket_url: Optional[str] = None,
                     realm: str = 'ticket'
                     ) -> Tuple[Tuple[str, str], ...]:
    """The headers every mail carries after Date and Message-ID, as Trac
    writes them (X-Trac-Ticket-* only for a mail about one ticket;
    *realm*: ``wiki`` for a page's mail)."""
    ticket: Tuple[Tuple[str, str], ...] = ()
    if ticket_id is not None:
        ticket = (('X-Trac-Ticket-ID', str(ticket_id)),
                  ('X-Trac-Ticket-URL', ticket_url or ''))
    return ((('X-Mailer', 'tracnotify (Trac %s)' % env.trac_version),
             ('X-Trac-Version', env.trac_version),
             ('X-Trac-Project', env.project_name),
             ('X-URL', project_url(env)),
             ('X-Trac-Realm', realm)) + ticket +
            (('X-Trac-Notification-Type', kind),
             ('List-Id', list_id(env, config))))


def _slug(text: str) -> str:
    text = unicodedata.normalize('NFKD', text or '')
    text = text.encode('ascii', 'ignore').decode('ascii').lower()
    return re.sub(r'[^a-z0-9]+', '-', text).strip('-')


def list_id(env, config: NotifyConfig) -> str:
    """``"Project" <project-slug.path.host>``: stable, from ``[project]
    name`` and ``[trac] base_url`` (RFC 2919)."""
    base = config.base_url
    parts = urlsplit(base if '//' in base else '//' + base)
    host = (parts.hostname or 'localhost').rstrip('.')
    try:
        host = host.encode('idna').decode('ascii')
    except UnicodeError:
        host = _slug(host) or 'localhost'
    path = [_slug(p) for p in parts.path.split('/') if _slug(p)]
    project = _slug(env.project_name) or 'trac'
    ident = '.'.join([project] + path[::-1] + [host])
    if len(ident) > 70:  # one header line: a longer id would be encoded
        ident = '.'.join([project[:20].strip('-') or 'trac',
                          host[-49:].lstrip('.-')])
    name = re.sub(r'[\\"\r\n]+', ' ', env.project_name or '').strip()
    return '"%s" <%s>' % (name, ident) if name else '<%s>' % ident


# Signature and footer ------------------------------------------------------------

def signature(env, *lines: str) -> List[str]:
    """The lines that end a batch or digest body, like Trac's signature:
    ``-- ``, *lines*, the project's name and URL, its description."""
    return [SIGNATURE, *lines,
            '%s <%s>' % (env.project_name, project_url(env)),
            env.project_description or '']


def footer(env) -> str:
    """The line added under Trac's footer of every mail.  It is the same
    for every recipient (the body is encoded once per change): the page it
    names explains how to stop the mail; the personal one-click link is in
    the List-Unsubscribe header."""
    return '\n\n' + _('To stop these e-mails: <%(url)s>', url=page_url(env))
