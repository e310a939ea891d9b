"""From a recorded wiki page event to finished messages (worker side).

The same steps as a ticket change (:mod:`tracnotify.mail.pipeline`):
recipients (:mod:`tracnotify.mail.wiki_recipients`), the body rendered once
per language from the Genshi template ``mail/wiki_body.txt`` (an
administrator's copy in the environment's ``templates/`` wins), the chrome
every mail shares (:mod:`tracnotify.mail.chrome`: subject prefix, standard
headers, footer, List-Unsubscribe), one copy per recipient
(:mod:`tracnotify.mail.message`).

Subject ``[Project] Wiki: PageName``; ``X-Trac-Notification-Type`` is the
event's kind (``wiki_changed``...); each page is a thread: every mail
replies to the page's root Message-ID, which is the creation's (a rename
replies to the old name's thread).  Recipients who chose HTML (or both)
get an HTML part too (:mod:`tracnotify.mail.wiki_html`: the diff coloured
like Trac's diff view).  Those who chose the daily digest get the change
in it instead, under ``Wiki: PageName``.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from genshi.template import NewTextTemplate
from trac.notification.mail import create_message_id
from trac.util.text import exception_to_unicode
from trac.util.translation import deactivate, reactivate

from tracnotify.config import NotifyConfig
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.chrome import (
    clean_header_text,
    project_url,
    subject_prefix,
)
from tracnotify.mail.digest import resource_items_for
from tracnotify.mail.digest_resources import WIKI, html_fragment, text_block
from tracnotify.mail.message import (
    Recipient,
)
from tracnotify.mail.realm_messages import build_realm_messages
from tracnotify.mail.suppression import TokenBatch
from tracnotify.mail.templates import load_template
from tracnotify.mail.wiki_diff import bounded_lines, page_diff
from tracnotify.mail.wiki_html import diff_table, render_html
from tracnotify.mail.wiki_recipients import WikiRecipientResolver
from tracnotify.outbox import NewMessage
from tracnotify.wiki_event import CHANGED, CREATED, REALM, RENAMED, WikiEvent

BODY_TEMPLATE = 'mail/wiki_body.txt'
#: longest change comment or attachment description in a mail
MAX_COMMENT_CHARS = 2000


@dataclass
class RenderedWikiMail:
    """Subject and text body of one page change, shared by all recipients
    of one language."""

    subject: str
    body: str
    link: str


def page_link(env, event: WikiEvent) -> str:
    """The page (the version of the change, for a new version)."""
    if event.kind in (CREATED, CHANGED) and event.version:
        return env.abs_href.wiki(event.page, version=event.version)
    return env.abs_href.wiki(event.page)


def diff_link(env, event: WikiEvent) -> str:
    """Trac's diff view of the change."""
    return env.abs_href.wiki(event.page, action='diff',
                             version=event.version,
                             old_version=event.old_version or None)


def page_subject(env, config: NotifyConfig, event: WikiEvent) -> str:
    """``[Project] Wiki: PageName``."""
    return clean_header_text('%s Wiki: %s' % (subject_prefix(env, config),
                                              event.page))


def thread_ids(env, config: NotifyConfig, event: WikiEvent
               ) -> Tuple[str, Optional[str]]:
    """``(message_id, root_id)``: the root is the page's (the creation's
    Message-ID); a rename replies to the old name's root."""
    root = create_message_id(env, 'wiki/%s' % event.page,
                             config.envelope_from, None, REALM)
    if event.kind == CREATED:
        return root, None
    if event.kind == RENAMED and event.old_name:
        root = create_message_id(env, 'wiki/%s' % event.old_name,
                                 config.envelope_from, None, REALM)
    more = '%s.%s.%s' % (event.kind, event.version, event.filename or '')
    return create_message_id(env, 'wiki/%s' % event.page,
                             config.envelope_from, event.datetime,
                             more), root


class WikiMailFormatter:
    """Renders the subject and text body of a :class:`WikiEvent`."""

    def __init__(self, env, config: NotifyConfig) -> None:
        self.env = env
        self.config = config

    def render(self, event: WikiEvent,
               language: Optional[str] = None) -> RenderedWikiMail:
        """Subject and body (without the footer) in *language*."""
        if language and language != 'en':
            with mail_language(self.env, language):
                return self._render(event)
        t = deactivate()
        try:
            return self._render(event)
        finally:
            reactivate(t)

    def _render(self, event: WikiEvent) -> RenderedWikiMail:
        link = page_link(self.env, event)
        template = load_template(self.env.templates_dir, BODY_TEMPLATE,
                                 NewTextTemplate)
        text = template.generate(**self.template_data(event, link)) \
            .render(encoding=None)
        return RenderedWikiMail(page_subject(self.env, self.config, event),
                                text[:-1] if text.endswith('\n') else text,
                                link)

    def render_html(self, event: WikiEvent, rendered: RenderedWikiMail,
                    language: str, footer_text: str) -> Optional[str]:
        """The HTML part in *language* (its translations active); None
        when it cannot be made (a broken override: the text still
        goes)."""
        try:
            data = self.template_data(event, rendered.link)
            data.update(lang=language, subject=rendered.subject,
                        footer=footer_text.strip())
            diff_html = diff_table(event.old_text, event.text,
                                   event.old_version, event.version) \
                if event.kind == CHANGED else ''
            return render_html(self.env, data, diff_html)
        except Exception as e:
            self.env.log.error('tracnotify: HTML mail of wiki page %s '
                               'failed, sending text only: %s', event.page,
                               exception_to_unicode(e, traceback=True))
            return None

    def template_data(self, event: WikiEvent, link: str) -> Dict:
        """Everything the body template uses."""
        diff = ''
        if event.kind == CHANGED:
            diff = page_diff(event.page, event.old_text, event.text,
                             event.old_version, event.version)
        return {
            '_': _,
            'event': event,
            'kind': event.kind,
            'page': event.page,
            'old_name': event.old_name or '',
            'author': event.author or 'anonymous',
            'version': event.version,
            'old_version': event.old_version,
            'comment': bounded_lines(event.comment or '', MAX_COMMENT_CHARS),
            'diff': diff,
            'text': bounded_lines(event.text) if event.kind == CREATED
            else '',
            'filename': event.filename or '',
            'description': bounded_lines(event.attachment_description or '',
                                         MAX_COMMENT_CHARS),
            'link': link,
            'diff_link': diff_link(self.env, event),
            'project': {'name': self.env.project_name,
                        'descr': self.env.project_description,
                        'url': project_url(self.env)},
        }


def _digest_items(env, config: NotifyConfig, event: WikiEvent,
                 recipients: List[Recipient]) -> list:
    """The digest items of *event* for *recipients* (who chose the daily
    digest): its text, and its HTML for who wants it, once per
    language."""
    formatter = WikiMailFormatter(env, config)

    def text(language: str) -> str:
        rendered = formatter.render(event, language)
        with mail_language(env, language):
            return text_block(rendered.body, str(_(
                'Page URL: <%(link)s>', link=rendered.link)))

    def html(language: str) -> Optional[str]:
        rendered = formatter.render(event, language)
        with mail_language(env, language):
            return html_fragment(formatter.render_html(event, rendered,
                                                       language, ''))
    return resource_items_for(recipients, WIKI, event.page, event.time,
                              text, html)


def build_messages(env, config: NotifyConfig, event: WikiEvent,
                   digest_items: Optional[list] = None,
                   tokens: Optional[TokenBatch] = None) -> List[NewMessage]:
    """Every message that *event* produces, one per recipient (the
    arguments as :func:`tracnotify.mail.pipeline.build_messages`'s: given
    a *digest_items* list, who chose the daily digest gets an item in it
    instead of a message)."""
    return build_realm_messages(
        env, config, event, REALM, WikiRecipientResolver(env, config),
        WikiMailFormatter(env, config), thread_ids, _digest_items,
        lambda event, rendered: (('X-Trac-Wiki-Page', event.page),
                  ('X-Trac-Wiki-URL', rendered.link)),
        digest_items, tokens)
