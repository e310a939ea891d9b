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
}


def all_table_names() -> List[str]:
    """Every table any released version had."""
    return sorted({t.name for _v, tables in RELEASED.values()
                   for t in tables})
