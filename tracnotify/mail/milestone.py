"""From a recorded milestone event to finished messages (worker side).

The same steps as a wiki page's (:mod:`tracnotify.mail.wiki`): recipients
(:mod:`tracnotify.mail.milestone_recipients`), the body rendered once per
language from the Genshi template ``mail/milestone_body.txt`` (an
administrator's copy in the environment's ``templates/`` wins), the chrome
every mail shares (:mod:`tracnotify.mail.chrome`), one copy per recipient
(:mod:`tracnotify.mail.message`).

Subject ``[Project] Milestone: NAME``; ``X-Trac-Notification-Type`` is the
event's kind (``milestone_completed``...); each milestone is a thread:
every mail replies to the milestone's root Message-ID, which is the
creation's (a rename replies to the old name's thread).  Times are shown
in ``[trac] default_timezone``.  Recipients who chose HTML (or both) get
the HTML part of ``mail/milestone_body.html`` (the description as plain
text: Trac's wiki formatting is not applied).  Those who chose the daily
digest get the change in it instead, under ``Milestone: NAME``.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Tuple

from genshi.template import MarkupTemplate, NewTextTemplate
from trac.notification.mail import create_message_id
from trac.util.datefmt import from_utimestamp, get_timezone, localtz
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
from tracnotify.mail.digest_resources import (
    MILESTONE,
    html_fragment,
    text_block,
)
from tracnotify.mail.message import (
    Recipient,
)
from tracnotify.mail.milestone_recipients import MilestoneRecipientResolver
from tracnotify.mail.realm_messages import build_realm_messages
from tracnotify.mail.suppression import TokenBatch
from tracnotify.mail.templates import load_template
from tracnotify.mail.wiki_diff import bounded_lines
from tracnotify.milestone_event import (
    COMPLETED,
    CREATED,
    DELETED,
    PROPERTIES,
    REALM,
    RENAMED,
    MilestoneEvent,
)
from tracnotify.outbox import NewMessage

BODY_TEMPLATE = 'mail/milestone_body.txt'
HTML_TEMPLATE = 'mail/milestone_body.html'
TIME_FORMAT = '%Y-%m-%d %H:%M %Z'


@dataclass
class RenderedMail:
    """Subject and text body of one milestone change, shared by all
    recipients of one language."""

    subject: str
    body: str
    link: str


def milestone_link(env, event: MilestoneEvent) -> str:
    """The milestone's page (the roadmap, for a deleted one)."""
    if event.kind == DELETED:
        return env.abs_href.roadmap()
    return env.abs_href.milestone(event.milestone)


def milestone_subject(env, config: NotifyConfig,
                      event: MilestoneEvent) -> str:
    """``[Project] Milestone: NAME``."""
    return clean_header_text('%s Milestone: %s' % (
        subject_prefix(env, config), event.milestone))


def thread_ids(env, config: NotifyConfig, event: MilestoneEvent
               ) -> Tuple[str, Optional[str]]:
    """``(message_id, root_id)``: the root is the milestone's (the
    creation's Message-ID); a rename replies to the old name's root."""
    def root_of(name: str) -> str:
        return create_message_id(env, 'milestone/%s' % name,
                                 config.envelope_from, None, REALM)

    root = root_of(event.milestone)
    if event.kind == CREATED:
        return root, None
    if event.old_name:
        root = root_of(event.old_name)
    return create_message_id(env, 'milestone/%s' % event.milestone,
                             config.envelope_from, event.datetime,
                             event.kind), root


def format_time(config: NotifyConfig, value: Optional[int]) -> str:
    """A time of the snapshot in the site's time zone; ``(none)``."""
    if value is None:
        return str(_('(none)'))
    tz = get_timezone(config.default_timezone) or localtz
    when: datetime = from_utimestamp(value)
    return when.astimezone(tz).strftime(TIME_FORMAT)


def summary_line(event: MilestoneEvent) -> str:
    """The body's first line (translations active)."""
    name, author = event.milestone, event.author
    if event.kind == CREATED:
        return str(_('Milestone %(name)s was created by %(author)s.',
                     name=name, author=author) if author else
                   _('Milestone %(name)s was created.', name=name))
    if event.kind == COMPLETED:
        return str(_('Milestone %(name)s was completed by %(author)s.',
                     name=name, author=author) if author else
                   _('Milestone %(name)s was completed.', name=name))
    if event.kind == RENAMED:
        old = event.old_name or ''
        return str(_('Milestone %(old)s was renamed to %(name)s by '
                     '%(author)s.', old=old, name=name, author=author)
                   if author else
                   _('Milestone %(old)s was renamed to %(name)s.', old=old,
                     name=name))
    if event.kind == DELETED:
        return str(_('Milestone %(name)s was deleted by %(author)s.',
                     name=name, author=author) if author else
                   _('Milestone %(name)s was deleted.', name=name))
    return str(_('Milestone %(name)s was changed by %(author)s.',
                 name=name, author=author) if author else
               _('Milestone %(name)s was changed.', name=name))


class MilestoneMailFormatter:
    """Renders the subject and text body of a :class:`MilestoneEvent`."""

    def __init__(self, env, config: NotifyConfig) -> None:
        self.env = env
        self.config = config

    def render(self, event: MilestoneEvent,
               language: Optional[str] = None) -> RenderedMail:
        """Subject and body (without the footer) in *language*."""
        if language and language != 'en':
            with mail_language(self.env, language):
                return self._render(event)
        t = deactivate()
        try:
            return self._render(event)
        finally:
            reactivate(t)

    def _render(self, event: MilestoneEvent) -> RenderedMail:
        link = milestone_link(self.env, event)
        template = load_template(self.env.templates_dir, BODY_TEMPLATE,
                                 NewTextTemplate)
        text = template.generate(**self.template_data(event, link)) \
            .render(encoding=None)
        return RenderedMail(milestone_subject(self.env, self.config, event),
                            text[:-1] if text.endswith('\n') else text,
                            link)

    def render_html(self, event: MilestoneEvent, rendered: RenderedMail,
                    language: str, footer_text: str) -> Optional[str]:
        """The HTML part in *language* (its translations active); None
        when it cannot be made (a broken override: the text still
        goes)."""
        try:
            data = self.template_data(event, rendered.link)
            data.update(lang=language, subject=rendered.subject,
                        footer=footer_text.strip())
            template = load_template(self.env.templates_dir, HTML_TEMPLATE,
                                     MarkupTemplate)
            return template.generate(**data).render(
                'html', doctype='html5', encoding=None)
        except Exception as e:
            self.env.log.error('tracnotify: HTML mail of milestone %s '
                               'failed, sending text only: %s',
                               event.milestone,
                               exception_to_unicode(e, traceback=True))
            return None

    def labels(self) -> Dict[str, str]:
        """Each property's label (translations active)."""
        return {'name': str(_('Milestone:')), 'due': str(_('Due:')),
                'completed': str(_('Completed:')),
                'description': str(_('Description'))}

    def template_data(self, event: MilestoneEvent, link: str) -> Dict:
        """Everything the body template uses."""
        labels = self.labels()
        shown = [('name', event.milestone),
                 ('due', format_time(self.config, event.due)
                  if event.due is not None else None),
                 ('completed', format_time(self.config, event.completed)
                  if event.completed is not None else None)]
        shown = [(labels[k], v) for k, v in shown if v is not None]
        width = max(len(label) for label, _v in shown)
        fields = [(label.rjust(width), value) for label, value in shown]
        return {
            '_': _,
            'event': event,
            'kind': event.kind,
            'milestone': event.milestone,
            'old_name': event.old_name or '',
            'author': event.author or '',
            'summary': summary_line(event),
            'fields': fields,
            'changes': self.changes(event, labels),
            'description': bounded_lines(event.description or '')
            if event.kind in (CREATED, DELETED) or
            'description' in event.old_values else '',
            'link': link,
            'project': {'name': self.env.project_name,
                        'descr': self.env.project_description,
                        'url': project_url(self.env)},
        }

    def changes(self, event: MilestoneEvent, labels: Dict[str, str]
                ) -> List[Tuple[str, str, Optional[str]]]:
        """``[(label, old, new)]`` of the changed properties (new None:
        the description, shown whole below)."""
        found = []
        new_values = {'name': event.milestone, 'due': event.due,
                      'completed': event.completed}
        for key in PROPERTIES:
            if key not in event.old_values:
                continue
            label = labels[key].rstrip(':').rstrip()
            old = event.old_values[key]
            if key == 'description':
                found.append((label, '', None))
            elif key == 'name':
                found.append((label, old or '', new_values[key]))
            else:
                found.append((label, format_time(self.config, old),
                              format_time(self.config, new_values[key])))
        return found


def _digest_items(env, config: NotifyConfig, event: MilestoneEvent,
                  recipients: List[Recipient]) -> list:
    """The digest items of *event* for *recipients* (who chose the daily
    digest): its text, and its HTML for who wants it, once per
    language."""
    formatter = MilestoneMailFormatter(env, config)

    def text(language: str) -> str:
        rendered = formatter.render(event, language)
        with mail_language(env, language):
            return text_block(rendered.body, str(_(
                'Milestone URL: <%(link)s>', link=rendered.link)))

    def html(language: str) -> Optional[str]:
        rendered = formatter.render(event, language)
        with mail_language(env, language):
            return html_fragment(formatter.render_html(event, rendered,
                                                       language, ''))
    return resource_items_for(recipients, MILESTONE, event.milestone,
                              event.time, text, html)


def build_messages(env, config: NotifyConfig, event: MilestoneEvent,
                   digest_items: Optional[list] = None,
                   tokens: Optional[TokenBatch] = None) -> List[NewMessage]:
    """Every message that *event* produces, one per recipient (the
    arguments as :func:`tracnotify.mail.pipeline.build_messages`'s: given
    a *digest_items* list, who chose the daily digest gets an item in it
    instead of a message)."""
    return build_realm_messages(
        env, config, event, REALM, MilestoneRecipientResolver(env, config),
        MilestoneMailFormatter(env, config), thread_ids, _digest_items,
        lambda event, rendered: (('X-Trac-Milestone', event.milestone),
                  ('X-Trac-Milestone-URL', rendered.link)),
        digest_items, tokens)
