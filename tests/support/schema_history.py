"""The tables of every released tracnotify schema, frozen as they shipped.

Never edit a version here: add the new one.  ``tests/test_schema.py``
creates each with Trac's DB API and upgrades it to the current version.
"""

from typing import Dict, List

from trac.db.schema import Column, Index, Table

_EVENT_V1 = Table('tracnotify_event', key='id')[
    Column('id', auto_increment=True),
    Column('created', type='int64'),
    Column('kind'),
    Column('ticket', type='int'),
    Column('author'),
    Column('payload'),
    Column('state'),
    Column('attempts', type='int'),
    Column('lease_owner'),
    Column('lease_until', type='int64'),
    Column('last_error'),
    Index(['state', 'id']),
]
_MESSAGE_V1 = Table('tracnotify_message', key='id')[
    Column('id', auto_increment=True),
    Column('event_id', type='int'),
    Column('created', type='int64'),
    Column('ticket', type='int'),
    Column('kind'),
    Column('msgid'),
    Column('sender'),
    Column('recipient'),
    Column('reason'),
    Column('subject'),
    Column('message'),
    Column('state'),
    Column('attempts', type='int'),
    Column('next_attempt', type='int64'),
    Column('lease_owner'),
    Column('lease_until', type='int64'),
    Column('last_error'),
    Column('updated', type='int64'),
    Column('sent_at', type='int64'),
    Index(['state', 'next_attempt']),
    Index(['event_id']),
    Index(['sent_at']),
]
_EVENT_V4 = Table('tracnotify_event', key='id')[
    _EVENT_V1.columns + [Column('change_key'), Index(['state', 'id']),
                         Index(['change_key'], unique=True)]]
_UNSUB_V2 = [
    Table('tracnotify_unsub_token', key='token_hash')[
        Column('token_hash'),
        Column('address'),
        Column('created', type='int64'),
        Index(['created']),
    ],
    Table('tracnotify_suppress', key='address')[
        Column('address'),
        Column('reason'),
        Column('created', type='int64'),
        Column('author'),
        Column('note'),
    ],
]
_DIGEST_COLUMNS = [
    Column('id', auto_increment=True),
    Column('created', type='int64'),
    Column('address'),
    Column('sid'),
    Column('ticket', type='int'),
    Column('summary'),
    Column('change_time', type='int64'),
    Column('language'),
    Column('block'),
]
_DIGEST_V3 = Table('tracnotify_digest', key=('address', 'day'))[
    Column('address'),
    Column('day'),
    Column('created', type='int64'),
    Column('items', type='int'),
    Column('msgid'),
]
_DIGEST_ITEM_V3_NO_HTML = Table('tracnotify_digest_item', key='id')[
    _DIGEST_COLUMNS + [Column('digest_day'), Index(['digest_day', 'address'])]]
_DIGEST_ITEM_V3 = Table('tracnotify_digest_item', key='id')[
    _DIGEST_COLUMNS + [Column('html'), Column('digest_day'),
                       Index(['digest_day', 'address'])]]

_MESSAGE_V5 = Table('tracnotify_message', key='id')[
    Column('id', auto_increment=True),
    Column('event_id', type='int'),
    Column('created', type='int64'),
    Column('ticket', type='int'),
    Column('kind'),
    Column('msgid'),
    Column('sender'),
    Column('recipient'),
    Column('reason'),
    Column('subject'),
    Column('message'),
    Column('body_id', type='int'),
    Column('state'),
    Column('attempts', type='int'),
    Column('next_attempt', type='int64'),
    Column('lease_owner'),
    Column('lease_until', type='int64'),
    Column('last_error'),
    Column('updated', type='int64'),
    Column('sent_at', type='int64'),
    Index(['state', 'next_attempt']),
    Index(['event_id']),
    Index(['sent_at']),
    Index(['body_id']),
]
_BODY_V5 = Table('tracnotify_body', key='id')[
    Column('id', auto_increment=True),
    Column('created', type='int64'),
    Column('data'),
]

_INBOUND_V6 = [
    # One row per reply address handed out: only the SHA-256 of the token
    # is kept; it names the ticket and who may write with it (a Trac login
    # in sid, or a bare address when sid is empty).
    Table('tracnotify_reply_token', key='token_hash')[
        Column('token_hash'),
        Column('ticket', type='int'),
        Column('sid'),
        Column('address'),
        Column('created', type='int64'),
        Column('expires', type='int64'),
        Index(['expires']),
    ],
    # One row per message received by any inbound path (notify receive,
    # notify fetch): what it was (kind: reply, bounce, auto, unknown) and
    # what became of it (outcome: taken, refused, dropped, failed).
    Table('tracnotify_inbound', key='id')[
        Column('id', auto_increment=True),
        Column('received', type='int64'),
        Column('kind'),
        Column('outcome'),
        Column('reason'),
        Column('sender'),
        Column('recipient'),
        Column('ticket', type='int'),
        Column('sid'),
        Column('message_id'),
        Column('subject'),
        Column('detail'),
        Index(['received']),
        Index(['sender', 'received']),
    ],
    # One row per bounced copy (tracnotify_message.id, NULL when the bounce
    # names no copy) and address: a copy counts once.
    Table('tracnotify_bounce', key='id')[
        Column('id', auto_increment=True),
        Column('address'),
        Column('message_id', type='int'),
        Column('hard', type='int'),
        Column('created', type='int64'),
        Column('status'),
        Column('detail'),
        Index(['address', 'created']),
        Index(['address', 'message_id'], unique=True),
    ],
]

#: released name -> (schema version it stored, its tables)
RELEASED: Dict[str, tuple] = {
    'v1': (1, [_EVENT_V1, _MESSAGE_V1]),
    'v2': (2, [_EVENT_V1, _MESSAGE_V1] + _UNSUB_V2),
    # a42b340 .. bb6bb16: version 3 before digest_item.html existed
    'v3-without-html': (3, [_EVENT_V1, _MESSAGE_V1] + _UNSUB_V2 +
                        [_DIGEST_ITEM_V3_NO_HTML, _DIGEST_V3]),
    'v3': (3, [_EVENT_V1, _MESSAGE_V1] + _UNSUB_V2 +
           [_DIGEST_ITEM_V3, _DIGEST_V3]),
    'v4': (4, [_EVENT_V4, _MESSAGE_V1] + _UNSUB_V2 +
           [_DIGEST_ITEM_V3, _DIGEST_V3]),
    'v5': (5, [_EVENT_V4, _MESSAGE_V5] + _UNSUB_V2 +
           [_DIGEST_ITEM_V3, _DIGEST_V3, _BODY_V5]),
    'v6': (6, [_EVENT_V4, _MESSAGE_V5] + _UNSUB_V2 +
           [_DIGEST_ITEM_V3, _DIGEST_V3, _BODY_V5] + _INBOUND_V6),
}


def all_table_names() -> List[str]:
    """Every table any released version had."""
    return sorted({t.name for _v, tables in RELEASED.values()
                   for t in tables})
