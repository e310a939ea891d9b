"""The mail body and subject, in Trac 1.6's own format.

The layout (two-column header table, ``Changes (by X):``, comment, footer)
follows ``trac/ticket/notification.py`` character for character; the text is
rendered by a Genshi text template, ``templates/mail/ticket_body.txt``, which
an admin overrides by dropping a file of that name into the environment's
``templates/mail/`` folder.
"""

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from genshi.template import NewTextTemplate
from trac.ticket.api import TicketSystem
from trac.util.datefmt import format_date_or_datetime, from_utimestamp, get_timezone
from trac.util.text import text_width
from trac.util.text import wrap as trac_wrap
from trac.util.translation import deactivate, reactivate
from trac.web.chrome import Chrome

from tracnotify.config import NotifyConfig, load_config
from tracnotify.event import (
    ATTACHMENT_ADDED,
    CHANGED,
    COMMENT,
    CREATED,
    DELETED,
    TicketEvent,
)
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import mail_language
from tracnotify.mail.chrome import clean_header_text, render_subject, subject_prefix
from tracnotify.mail.templates import load_template

COLS = 75
BODY_TEMPLATE = 'mail/ticket_body.txt'
_addrsep_re = re.compile(r'[;\s,]+')
#: longest text (a description, a comment, a field's value, the list of
#: changes) put in a mail; the rest is left out, with a notice
MAX_TEXT_CHARS = 50000
#: words longer than this are cut into lines of this length before
#: wrapping: Trac's wrap() takes time quadratic in a word's length
MAX_WORD_CHARS = 900
_long_word_re = re.compile(r'\S{%d,}' % (MAX_WORD_CHARS + 1))
#: cc addresses listed as added or removed in one change
MAX_LISTED_NAMES = 100


def omitted_notice(count: int) -> str:
    """The line that says how much of a text was left out."""
    return str(_('[... %(count)s characters omitted; see the ticket]',
                 count=count))


def bounded(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """*text*, cut after *limit* characters with a notice saying so."""
    if len(text) <= limit:
        return text
    return text[:limit] + '\n' + omitted_notice(len(text) - limit)


def listed(names: List[str], limit: int = MAX_LISTED_NAMES) -> str:
    """``a, b, c``: at most *limit* names, then how many more there are
    (a cc change of thousands of addresses, mailed to each of them)."""
    text = ', '.join(names[:limit])
    if len(names) > limit:
        text += ' ' + str(_('[... %(count)s more]',
                            count=len(names) - limit))
    return text


def _cut_word(match) -> str:
    word = match.group(0)
    return '\n'.join(word[i:i + MAX_WORD_CHARS]
                     for i in range(0, len(word), MAX_WORD_CHARS))


def wrap(text, cols=COLS, initial_indent='', subsequent_indent='',
         linesep='\n', ambiwidth=1) -> str:
    """Trac's ``wrap``, in bounded time and size: the text is cut after
    MAX_TEXT_CHARS and words longer than MAX_WORD_CHARS are broken (the
    same output as Trac's for anything shorter)."""
    text = _long_word_re.sub(_cut_word, bounded(text or ''))
    return trac_wrap(text, cols, initial_indent, subsequent_indent,
                     linesep, ambiwidth)


@dataclass
class RenderedTicketMail:
    """Subject and body of one ticket change, shared by all recipients."""

    subject: str
    body: str
    link: str


class TicketMailFormatter:
    """Renders the subject and text body of a :class:`TicketEvent`."""

    def __init__(self, env, ticket,
                 config: Optional[NotifyConfig] = None) -> None:
        self.env = env
        self.ticket = ticket
        self.config = config or load_config(env)
        self.chrome = Chrome(env)
        self.ambiwidth = self.config.ambiwidth
        self.time_fields = [f['name'] for f in TicketSystem(env).fields
                            if f['type'] == 'time']
        self.abs_href = env.abs_href
        #: True while rendering in a language other than English
        self.translated = False

    # Public API

    def render(self, event: TicketEvent,
               language: Optional[str] = None) -> RenderedTicketMail:
        """Subject and body for *event*, in *language* (by default English,
        exactly like Trac's own)."""
        if language and language != 'en':
            with mail_language(self.env, language):
                self.translated = True
                try:
                    link = self.ticket_link(event)
                    return RenderedTicketMail(self.subject(event),
                                              self.body(event, link), link)
                finally:
                    self.translated = False
        t = deactivate()
        try:
            link = self.ticket_link(event)
            return RenderedTicketMail(self.subject(event),
                                      self.body(event, link), link)
        finally:
            reactivate(t)

    def ticket_link(self, event: TicketEvent) -> str:
        """Absolute URL of the ticket, with the comment anchor if any."""
        link = self.abs_href.ticket(event.ticket_id)
        if event.kind in (CHANGED, COMMENT) and event.cnum is not None:
            link += '#comment:%s' % event.cnum
        return link

    def subject(self, event: TicketEvent) -> str:
        """``<prefix> #<id>: <summary>``, ``Re: `` for changes."""
        summary = event.values.get('summary') or ''
        changes = event.field_changes
        if 'summary' in changes:
            summary = str(_('%(summary)s (was: %(old)s)',
                            summary=changes['summary']['new'],
                            old=changes['summary']['old']))
        prefix = subject_prefix(self.env, self.config)
        subject = render_subject(
            self.env, 'ticket_subject_template',
            self.config.ticket_subject_template,
            ('%s #%s: %s' % (prefix, event.ticket_id, summary)).strip(),
            prefix=prefix, summary=summary, ticket=self.ticket,
            changes={'fields': changes})
        if event.kind != CREATED:
            subject = 'Re: ' + subject
        return clean_header_text(subject)

    def body(self, event: TicketEvent, link: str) -> str:
        """The text body, rendered from the Genshi template."""
        data = self.template_data(event, link)
        template = self._load_template()
        text = template.generate(**data).render(encoding=None)
        # like Trac's Jinja2 templates: no newline after the last line
        return text[:-1] if text.endswith('\n') else text

    # Template data, as Trac computes it

    def template_data(self, event: TicketEvent, link: str) -> Dict:
        """Everything the body template uses."""
        changes_body, changes_descr = self._format_changes(event)
        comment = ''
        if event.comment:
            comment = wrap(event.comment, COLS, ' ', ' ', '\n',
                           self.ambiwidth)
        description = wrap(event.values.get('description') or '', COLS,
                           initial_indent=' ', subsequent_indent=' ',
                           linesep='\n', ambiwidth=self.ambiwidth)
        project = {'name': self.env.project_name,
                   'descr': self.env.project_description,
                   'url': self.env.project_url or self.abs_href()}
        return {
            '_': _,
            'event': event,
            'kind': event.kind,
            'is_new': event.kind == CREATED,
            'is_deleted': event.kind == DELETED,
            'comment_edited': event.old_comment is not None,
            'ticket_body_hdr': self._format_hdr(event),
            'ticket_props': bounded(self._format_props(event)),
            'description': description,
            'changes_body': bounded(changes_body),
            'changes_descr': bounded(changes_descr, 3 * MAX_TEXT_CHARS),
            'author': self._format_author(event.attachment_author
                                          if event.is_attachment
                                          else event.author),
            'filename': event.filename,
            'comment': comment,
            'cnum': event.cnum,
            'link': link,
            'project': project,
        }

    def _load_template(self) -> NewTextTemplate:
        return load_template(self.env.templates_dir, BODY_TEMPLATE,
                             NewTextTemplate)

    def _format_author(self, author: str) -> str:
        return self.chrome.format_author(None, author or '')

    def _format_time(self, name: str, value) -> str:
        if not value:
            return ''
        if isinstance(value, str):
            if not value.isdigit():
                return value
            value = from_utimestamp(int(value))
        field = TicketSystem(self.env).fields.by_name(name) or {}
        tzinfo = get_timezone(self.config.default_timezone)
        return format_date_or_datetime(field.get('format'), value,
                                       tzinfo=tzinfo)

    def _width(self, text: str) -> int:
        return text_width(text, ambiwidth=self.ambiwidth)

    def _format_hdr(self, event: TicketEvent) -> str:
        return '#%s: %s' % (event.ticket_id,
                            wrap(event.values.get('summary') or '', COLS,
                                 linesep='\n', ambiwidth=self.ambiwidth))

    def _diff_cc(self, old: str, new: str) -> Tuple[List[str], List[str]]:
        oldcc = _addrsep_re.split(old or '')
        newcc = _addrsep_re.split(new or '')
        added = [self._format_author(x) for x in newcc
                 if x and x not in oldcc]
        removed = [self._format_author(x) for x in oldcc
                   if x and x not in newcc]
        return added, removed

    def _format_attachment_change(self, event: TicketEvent) -> str:
        """Trac's ``_format_plaintext_attachment`` changes block."""
        body = wrap(' * ' + str(
            _('Attachment "%(name)s" added.', name=event.filename)
            if event.kind == ATTACHMENT_ADDED else
            _('Attachment "%(name)s" removed.', name=event.filename)),
            COLS, ' ', ' ', '\n', self.ambiwidth) + '\n'
        if event.attachment_description:
            body += '\n' + wrap(event.attachment_description, COLS, ' ',
                                 ' ', '\n', self.ambiwidth)
        return body

    def _format_changes(self, event: TicketEvent) -> Tuple[str, str]:
        """``(changes_body, changes_descr)``: the ``Changes`` block and the
        old and new description, as Trac's ``_format_plaintext`` writes
        them."""
        if event.is_attachment:
            return self._format_attachment_change(event), ''
        if event.kind not in (CHANGED, COMMENT):
            return '', ''
        changes_body = ''
        changes_descr = ''
        for name, old, new in event.sorted_changes():
            if name == 'description':
                changes_descr = self._format_description_change(old, new)
            elif name == 'cc':
                changes_body += self._format_cc_change(old, new)
            else:
                changes_body += self._format_field_change(name, old, new)
        return changes_body, changes_descr

    def _format_description_change(self, old: str, new: str) -> str:
        new_descr = wrap(new, COLS, ' ', ' ', '\n', self.ambiwidth)
        old_descr = wrap(old, COLS, '> ', '> ', '\n', self.ambiwidth)
        old_descr = old_descr.replace(2 * '\n', '\n' + '>' + '\n')
        return ('\n' + str(_('Old description:')) + '\n\n' + old_descr +
                '\n\n' + str(_('New description:')) + '\n\n' + new_descr +
                '\n')

    def _format_cc_change(self, old: str, new: str) -> str:
        addcc, delcc = self._diff_cc(old, new)
        chgcc = ''
        if delcc:
            chgcc += wrap(' * cc: ' + str(_('%(names)s (removed)',
                          names=listed(delcc))),
                          COLS, ' ', ' ', '\n', self.ambiwidth) + '\n'
        if addcc:
            chgcc += wrap(' * cc: ' + str(_('%(names)s (added)',
                          names=listed(addcc))),
                          COLS, ' ', ' ', '\n', self.ambiwidth) + '\n'
        return chgcc

    def _format_field_change(self, name: str, old, new) -> str:
        if name in ('owner', 'reporter'):
            old = self._format_author(old)
            new = self._format_author(new)
        elif name in self.time_fields:
            old = self._format_time(name, old)
            new = self._format_time(name, new)
        old, new = str(old), str(new)
        length = 7 + len(name)
        spacer_old, spacer_new = ' ', ' '
        if len(old + new) + length > COLS:
            length = 5
            if len(old) + length > COLS:
                spacer_old = '\n'
            if len(new) + length > COLS:
                spacer_new = '\n'
        chg = '* %s: %s%s%s=>%s%s' % (name, spacer_old, old,
                                      spacer_old, spacer_new, new)
        chg = chg.replace('\n', '\n' + length * ' ')
        chg = wrap(chg, COLS, '', length * ' ', '\n', self.ambiwidth)
        return ' %s%s' % (chg, '\n')

    def _props_fields(self, event: TicketEvent) -> List[dict]:
        ts = TicketSystem(self.env)
        # Trac's labels in the mail's language; English: Trac's own strings
        fields = ts.get_ticket_fields() if self.translated else ts.fields
        return [f for f in fields
                if f['name'] not in ('summary', 'cc', 'time', 'changetime')]

    def _prop_value(self, name: str, event: TicketEvent) -> Optional[str]:
        if name not in event.values:
            return None
        value = event.values.get(name) or ''
        if name in self.time_fields:
            value = self._format_time(name, value)
        if name in ('owner', 'reporter'):
            value = self._format_author(value)
        return str(value)

    def _format_props(self, event: TicketEvent) -> str:
        """The two-column ticket header table: a faithful port of Trac's
        ``TicketFormatter._format_props`` (trac/ticket/notification.py),
        kept whole so that it reads line by line against Trac's."""
        fields = self._props_fields(event)
        width = [0, 0, 0, 0]
        i = 0
        for f in fields:
            if f['type'] == 'textarea':
                continue
            fval = self._prop_value(f['name'], event)
            if fval is None or '\n' in fval:
                continue
            idx = 2 * (i % 2)
            width[idx] = max(self._width(f['label']), width[idx])
            width[idx + 1] = max(self._width(fval), width[idx + 1])
            i += 1
        width_l = width[0] + width[1] + 5
        width_r = width[2] + width[3] + 5
        half_cols = (COLS - 1) // 2
        if width_l + width_r + 1 > COLS:
            if ((width_l > half_cols and width_r > half_cols) or
                    (width[0] > half_cols // 2 or width[2] > half_cols // 2)):
                width_l = half_cols
                width_r = half_cols
            elif width_l > width_r:
                width_l = min((COLS - 1) * 2 // 3, width_l)
                width_r = COLS - width_l - 1
            else:
                width_r = min((COLS - 1) * 2 // 3, width_r)
                width_l = COLS - width_r - 1
        sep = width_l * '-' + '+' + width_r * '-'
        txt = sep + '\n'
        vals_lr: Tuple[list, list] = ([], [])
        big = []
        i = 0
        width_lr = [width_l, width_r]
        for f in fields:
            if f['name'] == 'description':
                continue
            fval = self._prop_value(f['name'], event)
            if fval is None:
                continue
            if f['type'] == 'textarea' or '\n' in fval:
                big.append((f['label'], '\n'.join(fval.splitlines())))
            else:
                str_tmp = '%s:  %s' % (f['label'], fval)
                idx = i % 2
                initial_indent = ' ' * (width[2 * idx] -
                                        self._width(f['label']) + 2 * idx)
                wrapped = wrap(str_tmp, width_lr[idx] - 2 + 2 * idx,
                               initial_indent, '  ', '\n', self.ambiwidth)
                vals_lr[idx].append(wrapped.splitlines())
                i += 1
        if len(vals_lr[0]) > len(vals_lr[1]):
            vals_lr[1].append([])
        cell_l: List[str] = []
        cell_r: List[str] = []
        for i in range(len(vals_lr[0])):
            vals_l = vals_lr[0][i]
            vals_r = vals_lr[1][i]
            vals_diff = len(vals_l) - len(vals_r)
            diff = len(cell_l) - len(cell_r)
            if diff > 0:
                if vals_diff < 0:
                    diff += vals_diff
                cell_r.extend([''] * max(diff, 0))
            elif diff < 0:
                if vals_diff > 0:
                    diff += vals_diff
                cell_l.extend([''] * max(-diff, 0))
            cell_l.extend(vals_l)
            cell_r.extend(vals_r)
        for i in range(max(len(cell_l), len(cell_r))):
            if i >= len(cell_l):
                cell_l.append(width_l * ' ')
            elif i >= len(cell_r):
                cell_r.append('')
            fmt_width = width_l - self._width(cell_l[i]) + len(cell_l[i])
            txt += '%-*s|%s%s' % (fmt_width, cell_l[i], cell_r[i], '\n')
        if big:
            txt += sep
            for name, value in big:
                txt += '\n'.join(['', name + ':', value, '', ''])
        txt += sep
        return txt
