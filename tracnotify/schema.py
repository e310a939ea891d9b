"""Database tables of the outbox, created by ``trac-admin ENV upgrade``.

The upgrade also hands ticket mail over from Trac's built-in
``EmailDistributor`` to tracnotify (see :mod:`tracnotify.distributor`).
"""

from trac.api import IEnvironmentSetupParticipant
from trac.core import Component, implements
from trac.db.api import DatabaseManager
from trac.db.schema import Column, Index, Table

from tracnotify.i18n.domain import register_domain

SCHEMA_NAME = 'tracnotify_version'
SCHEMA_VERSION = 3

#: ``[components]`` rule written on upgrade: Trac's own e-mail distributor
#: is replaced by :class:`tracnotify.distributor.OutboxDistributor`.
TRAC_DISTRIBUTOR_RULE = 'trac.notification.mail.emaildistributor'

SCHEMA = [
    # One row per ticket change: a snapshot taken inside the ticket's own
    # transaction.  The delivery worker expands it into messages.
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
        Index(['state', 'id']),
    ],
    # One row per recipient and change: the finished RFC 5322 message.
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

#: version -> tables that version adds (upgrade steps from an older one)
UPGRADES = {2: SCHEMA_V2, 3: SCHEMA_V3}


class TracnotifySetup(Component):
    """Creates and upgrades tracnotify's tables; hands mail over from Trac's
    built-in notifier."""

    implements(IEnvironmentSetupParticipant)

    def __init__(self):
        register_domain(self.env)

    def environment_created(self):
        self.upgrade_environment()

    def environment_needs_upgrade(self):
        dbm = DatabaseManager(self.env)
        return dbm.needs_upgrade(SCHEMA_VERSION, SCHEMA_NAME) or \
            self._trac_distributor_enabled()

    def upgrade_environment(self):
        dbm = DatabaseManager(self.env)
        if dbm.needs_upgrade(SCHEMA_VERSION, SCHEMA_NAME):
            with self.env.db_transaction:
                version = dbm.get_database_version(SCHEMA_NAME)
                if version is False:
                    dbm.create_tables(SCHEMA)
                else:
                    # tables that exist already (a DDL that outlived a
                    # failed upgrade on MySQL) are left as they are
                    existing = set(dbm.get_table_names())
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        dbm.create_tables([t for t in UPGRADES.get(step, [])
                                           if t.name not in existing])
                dbm.set_database_version(SCHEMA_VERSION, SCHEMA_NAME)
            self.log.info('tracnotify: outbox tables at version %d',
                          SCHEMA_VERSION)
        if self._trac_distributor_enabled():
            self.config.set('components', TRAC_DISTRIBUTOR_RULE, 'disabled')
            self.config.save()
            self.log.info('tracnotify: Trac\'s built-in EmailDistributor is '
                          'disabled; tracnotify sends ticket mail')

    def _trac_distributor_enabled(self) -> bool:
        value = self.config.get('components', TRAC_DISTRIBUTOR_RULE, '')
        return value.strip().lower() not in ('disabled', 'off', 'false',
                                             'no', '0')
