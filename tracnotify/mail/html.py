"""The HTML part of a ticket mail (``templates/mail/ticket_body.html``).

Rendered from a Genshi ``MarkupTemplate`` that an admin overrides by
dropping a file of that name into the environment's ``templates/mail/``.
Comments and new descriptions are Trac wiki text, rendered by Trac's own
formatter as the anonymous user (the same HTML goes to every recipient of a
language, so it may show no more than anonymous sees) with absolute links
(:mod:`tracnotify.mail.wikitext`), then sanitised
(:mod:`tracnotify.mail.sanitize`): mail clients ignore stylesheets and
should load nothing, so the result has inline styles only, no images,
scripts, frames or forms.
"""

from html import escape
from typing import Dict, List, Optional, Sequence, Tuple

from genshi.core import Markup as GenshiMarkup
from genshi.template import MarkupTemplate
from trac.ticket.api import TicketSystem

from tracnotify.event import (
    ATTACHMENT_ADDED,
    CHANGED,
    COMMENT,
    CREATED,
    DELETED,
    TicketEvent,
)
from tracnotify.i18n.domain import _
from tracnotify.mail.chrome import project_url
from tracnotify.mail.format import RenderedTicketMail, TicketMailFormatter
from tracnotify.mail.sanitize import INLINE_STYLES, clean_html  # noqa: F401
from tracnotify.mail.templates import load_template
from tracnotify.mail.wikitext import wiki_to_html

HTML_TEMPLATE = 'mail/ticket_body.html'
#: one change inside a digest or batch mail (see :func:`ticket_list_html`)
BLOCK_TEMPLATE = 'mail/ticket_change.html'
#: the changes of one change, shared by the two templates above
CHANGES_TEMPLATE = 'mail/ticket_changes.html'
#: inline styles of the page that lists several tickets' changes
_BODY_STYLE = ('margin:0;padding:16px;background:#ffffff;color:#222222;'
               "font-family:Verdana,Arial,'Bitstream Vera Sans',Helvetica,"
               'sans-serif;font-size:13px;line-height:1.4')
_SMALL_STYLE = 'margin:0;font-size:11px;color:#777777'

class HtmlMailRenderer:
    """The HTML body of a ticket change, built next to the text body."""

    def __init__(self, env, formatter: TicketMailFormatter) -> None:
        self.env = env
        self.formatter = formatter

    def render(self, event: TicketEvent, rendered: RenderedTicketMail,
               language: Optional[str] = None, footer: str = '') -> str:
        """The HTML document for *event* (the translations of *language*
        must already be active, as they are in ``render_mail``)."""
        data = self.template_data(event, rendered, language or 'en', footer)
        data['changes_block'] = self._changes_block(data)
        template = self._load_template()
        return template.generate(**data).render('html', doctype='html5',
                                                encoding=None)

    def render_block(self, event: TicketEvent, rendered: RenderedTicketMail,
                     language: Optional[str] = None) -> str:
        """The HTML of *event* alone (``ticket_change.html``), as a digest
        or batch mail lists it under its ticket's heading."""
        data = self.template_data(event, rendered, language or 'en', '')
        data['changes_block'] = self._changes_block(data)
        template = self._load_template(BLOCK_TEMPLATE)
        return template.generate(**data).render('html', encoding=None)

    def _changes_block(self, data: Dict) -> GenshiMarkup:
        """``ticket_changes.html`` rendered, for either template above."""
        template = self._load_template(CHANGES_TEMPLATE)
        return GenshiMarkup(template.generate(**data).render(
            'html', encoding=None))

    def _load_template(self, name: str = HTML_TEMPLATE) -> MarkupTemplate:
        return load_template(self.env.templates_dir, name, MarkupTemplate)

    # Template data

    def template_data(self, event: TicketEvent,
                      rendered: RenderedTicketMail, language: str,
                      footer: str) -> Dict:
        """Everything the HTML templates use."""
        f = self.formatter
        changes, cc_added, cc_removed = self._changes(event)
        old_descr, new_descr = self._descriptions(event)
        comment = event.comment if event.kind in (CHANGED, COMMENT) else ''
        props, big = self._props(event)
        return {
            '_': _,
            'lang': language,
            'event': event,
            'subject': rendered.subject,
            'ticket_id': event.ticket_id,
            'summary': event.values.get('summary') or '',
            'link': rendered.link,
            'kind': event.kind,
            'is_new': event.kind == CREATED,
            'is_deleted': event.kind == DELETED,
            'comment_edited': event.old_comment is not None,
            'author': f._format_author(event.attachment_author
                                       if event.is_attachment
                                       else event.author),
            'props': props,
            'big_props': big,
            'changes': changes,
            'cc_added': cc_added,
            'cc_removed': cc_removed,
            'attachment': self._attachment_line(event),
            'description_html': GenshiMarkup(wiki_to_html(
                self.env, event.ticket_id,
                event.values.get('description') or '', language))
            if event.kind == CREATED else '',
            'old_description': old_descr,
            'new_description': new_descr,
            'comment_html': GenshiMarkup(wiki_to_html(
                self.env, event.ticket_id, comment, language))
            if comment else '',
            'cnum': event.cnum,
            'project': {'name': self.env.project_name,
                        'descr': self.env.project_description,
                        'url': project_url(self.env)},
            'footer': footer.strip(),
        }

    @staticmethod
    def _descriptions(event: TicketEvent
                      ) -> Tuple[Optional[str], Optional[str]]:
        """The old and new description of a change of it, else Nones."""
        if event.kind in (CHANGED, COMMENT) and \
                'description' in event.field_changes:
            change = event.field_changes['description']
            return change['old'] or '', change['new'] or ''
        return None, None

    @staticmethod
    def _attachment_line(event: TicketEvent) -> str:
        """``Attachment "x" added.`` (or removed) for attachment events."""
        if not event.is_attachment:
            return ''
        return str(_('Attachment "%(name)s" added.', name=event.filename)
                   if event.kind == ATTACHMENT_ADDED else
                   _('Attachment "%(name)s" removed.', name=event.filename))

    def _labels(self) -> Dict[str, str]:
        ts = TicketSystem(self.env)
        fields = ts.get_ticket_fields() if self.formatter.translated \
            else ts.fields
        return {f['name']: str(f['label']) for f in fields}

    def _changes(self, event: TicketEvent
                 ) -> Tuple[List[Tuple[str, str, str]], List[str], List[str]]:
        f = self.formatter
        labels = self._labels()
        rows = []
        cc_added: List[str] = []
        cc_removed: List[str] = []
        if event.kind not in (CHANGED, COMMENT):
            return rows, cc_added, cc_removed
        for name, old, new in event.sorted_changes():
            if name == 'description':
                continue
            if name == 'cc':
                cc_added, cc_removed = f._diff_cc(old, new)
                continue
            if name in ('owner', 'reporter'):
                old, new = f._format_author(old), f._format_author(new)
            elif name in f.time_fields:
                old, new = f._format_time(name, old), f._format_time(name,
                                                                     new)
            rows.append((labels.get(name, name), str(old), str(new)))
        return rows, cc_added, cc_removed

    def _props(self, event: TicketEvent):
        f = self.formatter
        small: List[Tuple[str, str]] = []
        big: List[Tuple[str, str]] = []
        for field in f._props_fields(event):
            if field['name'] == 'description':
                continue
            value = f._prop_value(field['name'], event)
            if value is None:
                continue
            label = str(field['label'])
            if field['type'] == 'textarea' or '\n' in value:
                big.append((label, value))
            else:
                small.append((label, value))
        if len(small) % 2:
            small.append(('', ''))
        rows = [small[i] + small[i + 1] for i in range(0, len(small), 2)]
        return rows, big


def text_as_html(text: str) -> str:
    """Plain text shown as-is (a change whose HTML could not be made)."""
    return '<pre style="%s">%s</pre>' % (INLINE_STYLES['pre'],
                                         escape(text, quote=False))


def ticket_list_html(title: str, intro: str,
                     sections: Sequence[Tuple[str, str, Sequence[str]]],
                     links: Sequence[Tuple[str, str]], footer: str = '',
                     language: str = 'en') -> str:
    """The HTML document of a digest or batch mail: *title*, *intro*, then
    per ticket a section ``(heading, link, [change blocks])`` whose heading
    links to the ticket, then *links* ``(text, url)`` and *footer*.  The
    blocks are trusted HTML (from :meth:`HtmlMailRenderer.render_block`)."""
    link_style = INLINE_STYLES['a']
    out = ['<!DOCTYPE html>',
           '<html lang="%s"><head><meta http-equiv="Content-Type" '
           'content="text/html; charset=utf-8"><title>%s</title></head>'
           % (escape(language), escape(title)),
           '<body style="%s"><div style="max-width:800px">'
           % escape(_BODY_STYLE),
           '<h1 style="font-size:16px;margin:0 0 12px 0">%s</h1>'
           % escape(title)]
    if intro:
        out.append('<p style="margin:0 0 12px 0">%s</p>' % escape(intro))
    for heading, link, blocks in sections:
        out.append('<div style="margin:0 0 16px 0">')
        out.append('<h2 style="font-size:14px;margin:0 0 8px 0;'
                   'border-bottom:1px solid #d7d7d7"><a href="%s" '
                   'style="%s;text-decoration:none">%s</a></h2>'
                   % (escape(link), link_style, escape(heading)))
        out.extend(blocks)
        out.append('</div>')
    out.append('<hr style="border:0;border-top:1px solid #d7d7d7;'
               'margin:16px 0 8px 0">')
    out.append('<p style="%s">%s</p>' % (_SMALL_STYLE, '<br>'.join(
        '<a href="%s" style="%s">%s</a>' % (escape(url), link_style,
                                             escape(text))
        for text, url in links)))
    if footer.strip():
        out.append('<p style="%s;margin-top:8px;white-space:pre-wrap">%s'
                   '</p>' % (_SMALL_STYLE, escape(footer.strip())))
    out.append('</div></body></html>')
    return '\n'.join(out) + '\n'
