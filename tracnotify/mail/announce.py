"""From a recorded announcement to finished messages (worker side), and
the preview the admin sees before sending.

The same steps as a ticket change (:mod:`tracnotify.mail.pipeline`):
recipients (:mod:`tracnotify.mail.announce_recipients`), the body rendered
once per (language, format) from the Genshi templates
``mail/announcement.txt`` and ``mail/announcement.html`` (an
administrator's copies in the environment's ``templates/`` win), the chrome
every mail shares (:mod:`tracnotify.mail.chrome`: subject prefix, standard
headers, footer, List-Unsubscribe), one copy per recipient
(:mod:`tracnotify.mail.message`).

Subject ``[Project] <subject>``; ``X-Trac-Notification-Type:
announcement``.  The text part is the wiki text as written; the HTML part
(for who chose HTML) is that text rendered by Trac for ``anonymous``, with
failing macros shown as their source and the result sanitised, as every
other mail's wiki text (:mod:`tracnotify.mail.wikitext`).
"""

import io
from dataclasses import replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from html import escape
from typing import List, Optional, Tuple

from genshi.core import Markup as GenshiMarkup
from genshi.template import MarkupTemplate, NewTextTemplate
from trac.notification.mail import create_message_id
from trac.resource import Resource
from trac.util.text import exception_to_unicode
from trac.wiki.parser import WikiParser

from tracnotify.announce_event import (
    ALL,
    GROUP,
    KIND,
    REALM,
    AnnouncementEvent,
)
from tracnotify.config import NotifyConfig
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.announce_recipients import AnnounceRecipientResolver
from tracnotify.mail.anonymous import anonymous_context
from tracnotify.mail.chrome import (
    clean_header_text,
    footer,
    project_url,
    standard_headers,
    subject_prefix,
)
from tracnotify.mail.message import (
    MailHeaders,
    Recipient,
    build_heads,
    encode_shared_part,
)
from tracnotify.mail.pipeline import group_recipients
from tracnotify.mail.sanitize import clean_html
from tracnotify.mail.suppression import TokenBatch, with_unsubscribe_links
from tracnotify.mail.templates import load_template
from tracnotify.mail.wikitext import MailWikiFormatter
from tracnotify.outbox import NewMessage

TEXT_TEMPLATE = 'mail/announcement.txt'
HTML_TEMPLATE = 'mail/announcement.html'


def announcement_subject(env, config: NotifyConfig,
                         event: AnnouncementEvent) -> str:
    """``[Project] <subject>``, header-safe."""
    return clean_header_text('%s %s' % (subject_prefix(env, config),
                                        event.subject))


def message_id(env, config: NotifyConfig, event: AnnouncementEvent) -> str:
    """The Message-ID every copy of *event* shares."""
    return create_message_id(env, 'announcement/%s' % event.key,
                             config.envelope_from, event.datetime, KIND)


def wiki_html(env, text: str, language: Optional[str] = None) -> str:
    """*text* as mail-safe HTML: rendered by Trac's formatter for
    ``anonymous`` with absolute links (macros included, a failing one as
    its source text), then sanitised; escaped text if Trac cannot render
    it."""
    if not text:
        return ''
    try:
        # written as on the front page: relative links resolve from there
        context = anonymous_context(env, Resource('wiki', 'WikiStart'),
                                    language)
        out = io.StringIO()
        MailWikiFormatter(env, context).format(WikiParser(env).parse(text),
                                               out)
        rendered = out.getvalue()
    except Exception as e:
        env.log.warning('tracnotify: the text of an announcement could not '
                        'be rendered as HTML: %s', exception_to_unicode(e))
        rendered = '<pre>%s</pre>' % escape(text, quote=False)
    return clean_html(rendered)


def describe_audience(event: AnnouncementEvent) -> str:
    """Who *event* went to, as a sentence (in the active language)."""
    target = event.target
    if target.kind == ALL:
        return _('Sent by %(author)s to everyone.', author=event.author)
    if target.kind == GROUP:
        return _('Sent by %(author)s to the members of %(group)s.',
                 author=event.author, group=target.name)
    return _('Sent by %(author)s to the watchers of milestone '
             '%(milestone)s.', author=event.author, milestone=target.name)


class AnnouncementMail:
    """The shared part of an announcement's copies, per (language,
    format)."""

    def __init__(self, env, config: NotifyConfig,
                 event: AnnouncementEvent) -> None:
        self.env = env
        self.config = config
        self.event = event
        self.subject = announcement_subject(env, config, event)
        self.msgid = message_id(env, config, event)

    def bodies(self, language: str, fmt: str) -> Tuple[str, Optional[str]]:
        """The text body (with the footer) and, when *fmt* asks for one,
        the HTML body, in *language*."""
        with mail_language(self.env, language):
            data = self._data(language)
            text = load_template(self.env.templates_dir, TEXT_TEMPLATE,
                                 NewTextTemplate).generate(**data) \
                .render(encoding=None)
            text = text.rstrip('\n') + data['footer_text']
            if fmt not in ('html', 'both'):
                return text, None
            try:
                data['text_html'] = GenshiMarkup(
                    wiki_html(self.env, self.event.text, language))
                html = load_template(self.env.templates_dir, HTML_TEMPLATE,
                                     MarkupTemplate).generate(**data) \
                    .render('html', doctype='html5', encoding=None)
            except Exception as e:  # a broken override: the text still goes
                self.env.log.error('tracnotify: HTML of an announcement '
                                   'failed, sending text only: %s',
                                   exception_to_unicode(e, traceback=True))
                html = None
        return text, html

    def _data(self, language: str) -> dict:
        foot = str(footer(self.env))
        return {
            '_': _,
            'lang': language,
            'event': self.event,
            'subject': self.subject,
            'text': self.event.text,
            'author': self.event.author,
            'audience': describe_audience(self.event),
            'prefs_link': self.env.abs_href.prefs('notification'),
            'project': {'name': self.env.project_name,
                        'descr': self.env.project_description,
                        'url': project_url(self.env)},
            'footer': foot.strip(),
            'footer_text': foot,
        }

    def shared_part(self, language: str, fmt: str) -> bytes:
        """Headers and body shared by the copies of one (language,
        format)."""
        text, html = self.bodies(language, fmt)
        headers = MailHeaders(
            from_name=self.config.smtp_from_name or self.env.project_name,
            from_addr=self.config.envelope_from,
            reply_to=self.config.smtp_replyto, subject=self.subject,
            msgid=self.msgid, root_msgid=None,
            date=self.event.time / 1000000.0,
            extra=standard_headers(self.env, self.config, KIND, realm=REALM))
        return encode_shared_part(headers, text, self.config, html, fmt)


def _private(config: NotifyConfig) -> NotifyConfig:
    """Every copy to its recipient alone: an announcement never lists its
    audience in a public To/Cc."""
    return replace(config, use_public_cc=False)


def build_messages(env, config: NotifyConfig, event: AnnouncementEvent,
                   digest_items: Optional[list] = None,
                   tokens: Optional[TokenBatch] = None) -> List[NewMessage]:
    """Every message that *event* produces, one per recipient (the
    arguments as :func:`tracnotify.mail.pipeline.build_messages`'s; an
    announcement is never part of a digest)."""
    recipients = AnnounceRecipientResolver(env, config).resolve(event.target)
    env.log.info('tracnotify: announcement %r (%s, by %s) to %d '
                 'recipient(s)', event.subject, event.audience, event.author,
                 len(recipients))
    if not recipients:
        return []
    recipients = with_unsubscribe_links(env, recipients, config, tokens)
    mail = AnnouncementMail(env, config, event)
    private = _private(config)
    copies = {}
    for (language, fmt), group in group_recipients(recipients):
        shared = mail.shared_part(language, fmt).decode('ascii')
        for recipient, head in build_heads(group, private):
            copies[id(recipient)] = (head, shared)
    return [NewMessage(ticket=None, kind=KIND, msgid=mail.msgid,
                       sender=config.envelope_from,
                       recipient=recipient.address, reason=recipient.reason,
                       subject=mail.subject,
                       message=copies[id(recipient)][0],
                       shared=copies[id(recipient)][1])
            for recipient in recipients]


def preview(env, config: NotifyConfig, event: AnnouncementEvent,
            recipient: Recipient) -> EmailMessage:
    """The copy *recipient* would get (in their language and format), as
    a parsed message; its unsubscribe link is a placeholder (no token is
    made for a preview)."""
    mail = AnnouncementMail(env, config, event)
    shared = mail.shared_part(recipient.language or 'en',
                              recipient.format or 'text')
    (_r, head), = build_heads([recipient], _private(config))
    return message_from_bytes(head.encode('utf-8') + shared,
                              policy=default_policy)
