"""The copies of one wiki or milestone change: the steps their pipelines
share (digest split, thread, unsubscribe links, one shared part per
language and format, personal heads), with the realm's own resolver,
formatter and resource headers."""

from typing import Callable, List, Optional, Tuple

from tracnotify.config import NotifyConfig
from tracnotify.i18n.language import mail_language
from tracnotify.mail.chrome import footer, standard_headers
from tracnotify.mail.digest import split_digest
from tracnotify.mail.message import (
    MailHeaders,
    build_heads,
    encode_shared_part,
)
from tracnotify.mail.pipeline import group_recipients
from tracnotify.mail.suppression import TokenBatch, with_unsubscribe_links
from tracnotify.outbox import NewMessage


def build_realm_messages(env, config: NotifyConfig, event, realm: str,
                         resolver, formatter, thread_ids: Callable,
                         digest_items_of: Callable,
                         resource_headers: Callable[..., Tuple],
                         digest_items: Optional[list] = None,
                         tokens: Optional[TokenBatch] = None
                         ) -> List[NewMessage]:
    """Every message *event* produces, one per recipient; given a
    *digest_items* list, who chose the daily digest gets an item in it
    (``digest_items_of(env, config, event, recipients)``) instead.
    ``resource_headers(event, rendered)`` are the realm's X-Trac-* lines."""
    recipients = resolver.resolve(event)
    if recipients and digest_items is not None:
        recipients, later = split_digest(env, config, resolver, recipients)
        digest_items.extend(digest_items_of(env, config, event, later))
    if not recipients:
        return []
    msgid, root = thread_ids(env, config, event)
    recipients = with_unsubscribe_links(env, recipients, config, tokens)
    copies = {}
    for (language, fmt), group in group_recipients(recipients):
        rendered = formatter.render(event, language)
        html = None
        with mail_language(env, language):
            body = rendered.body + str(footer(env))
            if fmt in ('html', 'both'):
                html = formatter.render_html(event, rendered, language,
                                             str(footer(env)))
        headers = MailHeaders(
            from_name=config.smtp_from_name or env.project_name,
            from_addr=config.envelope_from, reply_to=config.smtp_replyto,
            subject=rendered.subject, msgid=msgid, root_msgid=root,
            date=event.time / 1000000.0,
            extra=standard_headers(env, config, event.kind, realm=realm) +
            resource_headers(event, rendered))
        # stored once for all the copies (tracnotify_body)
        shared = encode_shared_part(headers, body, config, html,
                                    fmt).decode('ascii')
        for recipient, head in build_heads(group, config, recipients):
            copies[id(recipient)] = (rendered.subject, head, shared)
    return [NewMessage(ticket=None, kind=event.kind, msgid=msgid,
                       sender=config.envelope_from,
                       recipient=recipient.address, reason=recipient.reason,
                       subject=copies[id(recipient)][0],
                       message=copies[id(recipient)][1],
                       shared=copies[id(recipient)][2])
            for recipient in recipients]
