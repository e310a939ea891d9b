"""Each copy of a ticket mail with its own reply address.

With ``[notification] reply_address`` set, every copy of a ticket change
gets ``Reply-To:`` that address with a token made for its recipient (a
Trac login, or the bare address for someone who is no user).  Copies to
list addresses (``smtp_always_cc`` / ``_bcc``) get ``smtp_replyto``
instead: a token there would let any member of the list write as the list.
"""

from dataclasses import replace
from typing import List, Optional, Sequence, Tuple

from tracnotify.inbound.options import ReplyConfig, load_reply_config
from tracnotify.inbound.tokens import ReplyTokens, store_rows
from tracnotify.mail.suppression import is_list_copy, list_addresses


def with_reply_addresses(env, recipients: Sequence, ticket_id: int,
                         config, batch=None,
                         reply: Optional[ReplyConfig] = None
                         ) -> Tuple[List, bool]:
    """``(recipients, personal)``: each recipient with its ``reply_to``
    when replies are on (*personal* True: the shared part then carries no
    Reply-To of its own).  The token rows go into *batch* (a
    :class:`~tracnotify.mail.suppression.TokenBatch`, stored with the
    copies) or are stored at once."""
    reply = reply or load_reply_config(env)
    if not reply.enabled or not ticket_id:
        return list(recipients), False
    lists = list_addresses(config)
    made = ReplyTokens(reply.token_days)
    out = []
    for recipient in recipients:
        if is_list_copy(recipient, lists):
            address = config.smtp_replyto or None
        else:
            sid = recipient.sid if recipient.authenticated else None
            address = reply.address_for(made.issue(ticket_id, sid,
                                                   recipient.address))
        out.append(replace(recipient, reply_to=address))
    if batch is not None:
        batch.later(lambda db: made.store(env, db))
    else:
        store_rows(env, made.rows)
    return out, True
