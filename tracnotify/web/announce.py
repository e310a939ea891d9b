"""Administration > Notification > Announce: mail a message to many people.

The admin writes a subject and wiki text, picks the audience (everyone
with an address, a permission group, the watchers of a milestone) and
previews the mail exactly as it will be sent (headers, text part, HTML
part, who gets it); *Send* then records it in the outbox
(:mod:`tracnotify.announcements`).  Send is taken only for the text that
was previewed (a digest of it travels with the form), and only once (the
announcement's key).

Needs ``TRAC_ADMIN`` (anyone else gets 403 Forbidden at the panel's
address, not Trac's "no administration panels") and Trac's form token on
every POST.
"""

import hashlib
from typing import Dict, List, Tuple

from pkg_resources import resource_filename
from trac.admin.api import IAdminPanelProvider
from trac.core import Component, implements
from trac.perm import PermissionError, PermissionSystem
from trac.resource import Resource
from trac.ticket.model import Milestone
from trac.util.datefmt import format_datetime, from_utimestamp
from trac.web.api import HTTPBadRequest, IRequestFilter
from trac.web.chrome import ITemplateProvider, add_notice, add_stylesheet, add_warning

from tracnotify import announcements
from tracnotify.announce_event import (
    ALL,
    GROUP,
    KIND,
    MILESTONE,
    AnnouncementError,
    AnnouncementEvent,
)
from tracnotify.config import load_config
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import available_languages
from tracnotify.mail.announce import preview
from tracnotify.mail.announce_recipients import BUILTIN_GROUPS, REASON
from tracnotify.mail.choices import load_choices
from tracnotify.mail.message import Recipient

CATEGORY = 'notification'
PAGE = 'announce'
PATH = '/admin/%s/%s' % (CATEGORY, PAGE)
#: addresses listed in the preview (the count is always shown)
SHOWN_RECIPIENTS = 200
#: headers the preview shows, in this order
PREVIEW_HEADERS = ('From', 'To', 'Reply-To', 'Subject', 'Date',
                   'Message-ID', 'X-Trac-Notification-Type',
                   'X-Trac-Notification-Reason')
RECENT = 10


def form_digest(audience: str, subject: str, text: str) -> str:
    """What Send checks: the previewed audience, subject and text."""
    data = '\0'.join((audience, subject, text.replace('\r\n', '\n')))
    return hashlib.sha256(data.encode('utf-8')).hexdigest()[:32]


class AnnouncePanel(Component):
    """Administration > Notification > Announce."""

    implements(IAdminPanelProvider, IRequestFilter, ITemplateProvider)

    # IAdminPanelProvider

    def get_admin_panels(self, req):
        if 'TRAC_ADMIN' in req.perm('admin', CATEGORY + '/' + PAGE):
            yield CATEGORY, _('Notification'), PAGE, _('Announce')

    def render_admin_panel(self, req, cat, page, path_info):
        req.perm('admin', CATEGORY + '/' + PAGE).require('TRAC_ADMIN')
        if req.method == 'POST' and \
                req.args.get('__FORM_TOKEN') != req.form_token:
            raise HTTPBadRequest(_('Missing or invalid form token. '
                                   'Do you have cookies enabled?'))
        add_stylesheet(req, 'tracnotify/admin.css')
        add_stylesheet(req, 'tracnotify/announce.css')
        form = {name: req.args.get(name, '') for name in
                ('audience', 'subject', 'text', 'key', 'digest', 'language')}
        form['text'] = form['text'].replace('\r\n', '\n')
        data = {'form': form, 'preview': None}
        if req.method == 'POST':
            self._post(req, form, data)
        data.update({'audiences': self._audiences(),
                     'languages': available_languages(),
                     'recent': self._recent(req)})
        return 'tracnotify_admin_announce.html', data, \
            {'domain': 'tracnotify'}

    # IRequestFilter

    def pre_process_request(self, req, handler):
        if req.path_info.rstrip('/') == PATH and \
                'TRAC_ADMIN' not in req.perm('admin', CATEGORY + '/' + PAGE):
            raise PermissionError('TRAC_ADMIN',
                                  Resource('admin', CATEGORY + '/' + PAGE),
                                  self.env)
        return handler

    def post_process_request(self, req, template, data, metadata):
        return template, data, metadata

    # ITemplateProvider

    def get_htdocs_dirs(self):
        return []

    def get_templates_dirs(self):
        return [resource_filename('tracnotify', 'templates/web')]

    # The form

    def _post(self, req, form: Dict[str, str], data: dict) -> None:
        digest = form_digest(form['audience'], form['subject'],
                             form['text'])
        try:
            event = announcements.draft(self.env, req.authname,
                                        form['audience'], form['subject'],
                                        form['text'], form['key'] or None)
            if 'send' in req.args:
                if form['digest'] != digest:
                    add_warning(req, _(
                        'The announcement changed since its preview: '
                        'check this preview, then send it.'))
                else:
                    count = announcements.send(self.env, event)
                    self.log.info('tracnotify: announcement %r to %s sent '
                                  'by %s', event.subject, event.audience,
                                  req.authname)
                    add_notice(req, _(
                        'The announcement "%(subject)s" is on its way to '
                        '%(count)d recipient(s).', subject=event.subject,
                        count=count))
                    req.redirect(req.href.admin(CATEGORY, PAGE))
            form['key'] = event.key
            form['digest'] = digest
            data['preview'] = self._preview(req, event, form['language'])
        except AnnouncementError as e:
            add_warning(req, str(e))

    def _preview(self, req, event: AnnouncementEvent,
                 language: str) -> dict:
        config = load_config(self.env)
        people = announcements.recipients(self.env, event, config)
        sample = self._sample(req, config, people, language)
        msg = preview(self.env, config, event, sample)
        plain = msg.get_body(('plain',))
        html = msg.get_body(('html',))
        return {
            'count': len(people),
            'addresses': [r.address for r in people[:SHOWN_RECIPIENTS]],
            'more': max(len(people) - SHOWN_RECIPIENTS, 0),
            'language': sample.language,
            'headers': [(name, str(msg[name])) for name in PREVIEW_HEADERS
                        if msg[name] is not None],
            'text': plain.get_content() if plain is not None else '',
            'html': html.get_content() if html is not None else '',
        }

    def _sample(self, req, config, people: List[Recipient],
                language: str) -> Recipient:
        """The copy the preview shows: the admin's own (their address and
        language, or the first recipient's address), text and HTML."""
        address = req.session.get('email') or \
            (people[0].address if people else 'recipient@example.org')
        if language not in available_languages():
            language = load_choices(self.env, config, [req.authname])[
                req.authname].language
        return Recipient(address, REASON, 'to', req.authname, True,
                         language=language, format='both')

    # Choices and history

    def _audiences(self) -> List[Tuple[str, str, List[Tuple[str, str]]]]:
        """``(label, kind, [(value, label)])`` for the audience select."""
        groups = sorted(set(PermissionSystem(self.env).get_groups_dict()) |
                        set(BUILTIN_GROUPS))
        milestones = [m.name for m in Milestone.select(self.env, True)]
        return [
            (_('Everyone'), ALL,
             [(ALL, _('Everyone with an address'))]),
            (_('Members of a permission group'), GROUP,
             [('%s:%s' % (GROUP, g), g) for g in groups]),
            (_('Watchers of a milestone'), MILESTONE,
             [('%s:%s' % (MILESTONE, m), m) for m in milestones]),
        ]

    def _recent(self, req) -> List[dict]:
        """The last announcements sent, newest first."""
        from tracnotify.mail.realms import load_event
        rows = self.env.db_query("""
            SELECT e.id, e.payload, e.state,
                   (SELECT COUNT(*) FROM tracnotify_message m
                    WHERE m.event_id=e.id)
            FROM tracnotify_event e WHERE e.kind=%s
            ORDER BY e.id DESC LIMIT %s""", (KIND, RECENT))
        recent = []
        for _id, payload, state, messages in rows:
            try:
                event = load_event(payload)
            except (ValueError, TypeError, KeyError):
                continue
            recent.append({
                'when': format_datetime(from_utimestamp(event.time),
                                        '%Y-%m-%d %H:%M', tzinfo=req.tz),
                'subject': event.subject, 'audience': event.audience,
                'author': event.author, 'state': state,
                'messages': messages,
            })
        return recent
