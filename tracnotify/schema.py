"""Database tables of the outbox, created by ``trac-admin ENV upgrade``.

Every change of a table bumps :data:`SCHEMA_VERSION` and adds a step to
:data:`UPGRADES`; ``tests/test_schema.py`` builds the tables of every
released version (``tests/support/schema_history.py``) and upgrades them.
Whether an upgrade is needed depends on the database alone: a line of
trac.ini never takes the site down (see :mod:`tracnotify.distributor`).

The upgrade also hands ticket mail over from Trac's built-in
``EmailDistributor`` to tracnotify.
"""

from typing import Callable, Dict, List

from trac.api import IEnvironmentSetupParticipant
from trac.core import Component, implements
from trac.db.api import DatabaseManager
from trac.db.schema import Column, Index, Table

from tracnotify.config import TRAC_DISTRIBUTOR_RULE, trac_distributor_enabled
from tracnotify.i18n.domain import register_domain
from tracnotify.outbox import bodies, reconcile

SCHEMA_NAME = 'tracnotify_version'
SCHEMA_VERSION = 7

SCHEMA = [
    # One row per ticket change: its snapshot (in the ticket's own
    # transaction when Trac calls the listener inside it, just after its
    # commit otherwise).  The delivery worker expands it into messages.
    Table('tracnotify_event', key='id')[
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
        # v4: "<ticket>:<change time>:c|m" for a creation or a change
        # (NULL for other events): the listener and the reconciler
        # (outbox/reconcile.py) can never both record one change
        Column('change_key'),
        Index(['state', 'id']),
        Index(['change_key'], unique=True),
    ],
    # One row per recipient and change: the copy's own headers (v5) and
    # the id of the part it shares with the other copies of the change
    # (tracnotify_body); a row without body_id holds a whole message.
    Table('tracnotify_message', key='id')[
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
        Column('body_id', type='int'),      # v5
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
    ],
]

#: Version 2: unsubscribe tokens and the never-mail list
#: (:mod:`tracnotify.unsubscribe`).
SCHEMA_V2 = [
    # One row per personal List-Unsubscribe link: only the SHA-256 of the
    # token is kept.
    Table('tracnotify_unsub_token', key='token_hash')[
        Column('token_hash'),
        Column('address'),
        Column('created', type='int64'),
        Index(['created']),
    ],
    # Addresses that get no mail at all: unsubscribed by their owner
    # (reason 'unsubscribed') or by an administrator (reason 'admin').
    Table('tracnotify_suppress', key='address')[
        Column('address'),
        Column('reason'),
        Column('created', type='int64'),
        Column('author'),
        Column('note'),
    ],
]
SCHEMA = SCHEMA + SCHEMA_V2

#: Version 3: the daily digest (:mod:`tracnotify.digest`).
SCHEMA_V3 = [
    # One row per change and digest recipient: the change's text block,
    # rendered by the worker in the recipient's language, until a digest
    # takes it (digest_day is then that digest's day).
    Table('tracnotify_digest_item', key='id')[
        Column('id', auto_increment=True),
        Column('created', type='int64'),
        Column('address'),
        Column('sid'),
        Column('ticket', type='int'),
        Column('summary'),
        Column('change_time', type='int64'),
        Column('language'),
        Column('block'),            # the change's text block
        Column('html'),             # its HTML block, for who wants HTML
        Column('digest_day'),
        Index(['digest_day', 'address']),
    ],
    # One row per address and day a digest was made: the primary key is
    # the claim that makes a digest happen once a day, whatever the number
    # of workers (the row is inserted in the transaction that queues the
    # digest message).
    Table('tracnotify_digest', key=('address', 'day'))[
        Column('address'),
        Column('day'),
        Column('created', type='int64'),
        Column('items', type='int'),
        Column('msgid'),
    ],
]
SCHEMA = SCHEMA + SCHEMA_V3

#: Version 4: ``tracnotify_digest_item.html`` (added to version 3 without a
#: bump: environments created in between lack it) and
#: ``tracnotify_event.change_key`` with its unique index.
SCHEMA_V4_TABLES = ('tracnotify_event', 'tracnotify_digest_item')


#: Version 5: the part all copies of a change share is stored once
#: (:mod:`tracnotify.outbox.bodies`); ``tracnotify_message.body_id``.
SCHEMA_V5 = [
    Table('tracnotify_body', key='id')[
        Column('id', auto_increment=True),
        Column('created', type='int64'),
        Column('data'),         # From, Subject, ..., the encoded body
        # v7: what all its copies share; a copy's own column is NULL
        # where it equals this one
        Column('msgid'),
        Column('sender'),
        Column('subject'),
    ],
]
SCHEMA = SCHEMA + SCHEMA_V5

#: Version 6: mail coming in (:mod:`tracnotify.inbound`): reply tokens,
#: the log of every message received, and bounces.
SCHEMA_V6 = [
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
SCHEMA = SCHEMA + SCHEMA_V6


def _table(name: str) -> Table:
    return next(t for t in SCHEMA if t.name == name)


def _create(tables: List[Table]) -> Callable[[DatabaseManager], None]:
    def step(dbm: DatabaseManager) -> None:
        # tables that exist already (a DDL that outlived a failed upgrade
        # on MySQL) are left as they are
        existing = set(dbm.get_table_names())
        dbm.create_tables([t for t in tables if t.name not in existing])
    return step


def _upgrade_to_4(dbm: DatabaseManager) -> None:
    """Add the columns of version 4 where they are missing (Trac's
    ``upgrade_tables`` copies the rows into the new table)."""
    for name in SCHEMA_V4_TABLES:
        table = _table(name)
        have = set(dbm.get_column_names(name))
        if any(c.name not in have for c in table.columns):
            dbm.upgrade_tables([table])
    # changes made before this version were mailed (or not) as before:
    # the reconciler looks from now on
    reconcile.start_mark(dbm.env)


def _upgrade_to_5(dbm: DatabaseManager) -> None:
    """tracnotify_body, tracnotify_message.body_id, and the queued whole
    messages split into their own headers and one shared part each."""
    _create(SCHEMA_V5)(dbm)
    table = _table('tracnotify_message')
    if 'body_id' not in set(dbm.get_column_names(table.name)):
        dbm.upgrade_tables([table])
    converted = bodies.convert_queued(dbm.env)
    dbm.env.log.info('tracnotify: %d queued messages now share their body',
                     converted)


def _upgrade_to_7(dbm: DatabaseManager) -> None:
    """tracnotify_body.msgid, sender and subject, taken over from the
    copies that share them (:func:`bodies.move_shared_columns`)."""
    table = _table('tracnotify_body')
    if not set(c.name for c in table.columns) <= \
            set(dbm.get_column_names(table.name)):
        dbm.upgrade_tables([table])
    moved = bodies.move_shared_columns(dbm.env)
    dbm.env.log.info('tracnotify: %d stored messages now share their '
                     'Message-ID, sender and subject', moved)


#: version -> the step that takes the database from version - 1 to it
UPGRADES: Dict[int, Callable[[DatabaseManager], None]] = {
    2: _create(SCHEMA_V2), 3: _create(SCHEMA_V3), 4: _upgrade_to_4,
    5: _upgrade_to_5, 6: _create(SCHEMA_V6), 7: _upgrade_to_7}


class TracnotifySetup(Component):
    """Creates and upgrades tracnotify's tables; hands mail over from Trac's
    built-in notifier."""

    implements(IEnvironmentSetupParticipant)

    def __init__(self):
        register_domain(self.env)

    def environment_created(self):
        self.upgrade_environment()

    def environment_needs_upgrade(self):
        # the database alone: Trac answers every request with "needs to be
        # upgraded" while this is true, so a trac.ini line must never make
        # it so (Trac's EmailDistributor re-enabled is a warning instead,
        # see tracnotify.distributor)
        return DatabaseManager(self.env).needs_upgrade(SCHEMA_VERSION,
                                                       SCHEMA_NAME)

    def upgrade_environment(self):
        dbm = DatabaseManager(self.env)
        if dbm.needs_upgrade(SCHEMA_VERSION, SCHEMA_NAME):
            with self.env.db_transaction:
                version = dbm.get_database_version(SCHEMA_NAME)
                if version is False:
                    dbm.create_tables(SCHEMA)
                    reconcile.start_mark(self.env)
                else:
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        UPGRADES[step](dbm)
                dbm.set_database_version(SCHEMA_VERSION, SCHEMA_NAME)
            self.log.info('tracnotify: outbox tables at version %d',
                          SCHEMA_VERSION)
        if trac_distributor_enabled(self.env):
            self.config.set('components', TRAC_DISTRIBUTOR_RULE, 'disabled')
            self.config.save()
            self.log.info('tracnotify: Trac\'s built-in EmailDistributor is '
                          'disabled; tracnotify sends ticket mail')
