"""The part all copies of a change share is stored once (schema 5), the
copies delivered are byte for byte the whole messages built in memory by
the ``email`` package, and the upgrade from version 4 splits a populated
outbox without changing one byte of what is then delivered."""


import pytest
from trac.db.api import DatabaseManager

import tracnotify.mail.message as message_module
import tracnotify.mail.suppression as suppression
from tests.support.outbox_rows import delivered_copies
from tests.support.schema_history import RELEASED
from tests.support.tickets import change_ticket, create_ticket
from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.event import TicketEvent
from tracnotify.mail.pipeline import build_messages
from tracnotify.outbox import bodies, maintenance
from tracnotify.schema import (
    SCHEMA_NAME,
    SCHEMA_V5,
    SCHEMA_VERSION,
    TracnotifySetup,
)

CC = ', '.join('cc%02d@example.org' % i for i in range(12))


def reference_messages(env, monkeypatch) -> dict:
    """Every pending event's copies built whole in memory, the personal
    headers by the ``email`` package (as before the splice), keyed by
    (recipient, Message-ID)."""
    config = load_config(env)
    found = {}
    with monkeypatch.context() as m:
        m.setattr(message_module, '_spliced_headers', lambda r, c: None)
        for payload, in env.db_query("""SELECT payload FROM tracnotify_event
                                        WHERE state='pending' ORDER BY id"""):
            for msg in build_messages(env, config,
                                      TicketEvent.from_json(payload),
                                      tokens=suppression.TokenBatch()):
                found[(msg.recipient, msg.msgid)] = msg.text.encode('utf-8')
    return found


def test_copies_share_one_stored_body_and_keep_their_bytes(
        sink_env, sink, tokens, monkeypatch):
    env = sink_env(mime_encoding='qp')
    ticket = create_ticket(env, summary='Grüße', cc=CC,
                           description='Ünïcode text. ' * 200)
    change_ticket(env, ticket.id, author='bob', comment='A comment ✓')
    expected = reference_messages(env, monkeypatch)
    assert len(expected) >= 2 * 13      # 12 cc and the reporter, twice
    tokens()
    assert delivered_copies(env, sink) == expected
    (n_bodies, size), = env.db_query(
        'SELECT COUNT(*), SUM(LENGTH(data)) FROM tracnotify_body')
    assert n_bodies == 2                # one per change
    largest, = env.db_query('SELECT MAX(LENGTH(message)) '
                            'FROM tracnotify_message')[0]
    assert largest < 400 < size / 2     # a copy: its own headers only


def test_claimed_copies_share_one_string(make_env):
    env = make_env()
    create_ticket(env, cc=CC)
    from tracnotify.delivery.deliverer import Deliverer, PassReport
    Deliverer(env).expand_events(PassReport())
    claimed = outbox.claim_messages(env, 100)
    assert len(claimed) == 13
    assert len({id(m.shared) for m in claimed}) == 1
    assert all(m.data.startswith(b'To: ') for m in claimed)


def populate_version_4(env, monkeypatch) -> dict:
    """The outbox as version 4 kept it: whole messages in the old table
    (pending, dead and sent ones, and one with no From line)."""
    expected = reference_messages(env, monkeypatch)
    dbm = DatabaseManager(env)
    version, tables = RELEASED['v4']
    old_message, = [t for t in tables if t.name == 'tracnotify_message']
    dbm.drop_tables(['tracnotify_message'] + [t.name for t in SCHEMA_V5])
    dbm.create_tables([old_message])
    dbm.set_database_version(version, SCHEMA_NAME)
    rows = []
    events = {msgid: n + 1 for n, msgid in enumerate(
        sorted({msgid for _r, msgid in expected}))}
    for n, ((recipient, msgid), data) in enumerate(sorted(expected.items())):
        state = ('pending', 'pending', 'dead', 'sent')[n % 4]
        rows.append((events[msgid], 1, 1, 'changed', msgid, 'trac@example.org',
                     recipient, 'cc', 'Subject', data.decode('utf-8'),
                     state, 0, 0, 0))
    rows.append((None, 1, 0, 'other', '<x@y>', 'trac@example.org',
                 'odd@example.org', 'x', 'S',
                 'To: odd@example.org\r\nSubject: S\r\n\r\nNo From.\r\n',
                 'pending', 0, 0, 0))
    with env.db_transaction as db:
        db.executemany("""INSERT INTO tracnotify_message
            (event_id, created, ticket, kind, msgid, sender, recipient,
             reason, subject, message, state, attempts, next_attempt,
             updated) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""",
                       rows)
        db("UPDATE tracnotify_event SET state='done'")
    return expected


def test_upgrade_from_version_4_splits_a_populated_outbox(
        sink_env, sink, tokens, monkeypatch):
    env = sink_env()
    ticket = create_ticket(env, summary='Upgrade', cc=CC)
    change_ticket(env, ticket.id, author='bob', comment='Second change.')
    expected = populate_version_4(env, monkeypatch)
    setup = TracnotifySetup(env)
    assert setup.environment_needs_upgrade()
    setup.upgrade_environment()
    dbm = DatabaseManager(env)
    assert dbm.get_database_version(SCHEMA_NAME) == SCHEMA_VERSION >= 5
    assert not setup.environment_needs_upgrade()
    states = dict(env.db_query("""
        SELECT state, COUNT(body_id) FROM tracnotify_message
        GROUP BY state"""))
    kept = [('pending', 'pending', 'dead', 'sent')[n % 4]
            for n in range(len(expected))]
    assert states == {'pending': kept.count('pending'),
                      'dead': kept.count('dead'), 'sent': 0}
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_body')[0][0] == 2
    # the dead ones and the odd one too: everything queued goes out
    outbox.retry_now(env)
    got = delivered_copies(env, sink)
    unsent = {k: v for n, (k, v) in enumerate(sorted(expected.items()))
              if n % 4 != 3}
    odd = got.pop(('odd@example.org', None))
    assert odd == b'To: odd@example.org\r\nSubject: S\r\n\r\nNo From.\r\n'
    assert got == unsent


def test_purges_drop_bodies_no_message_uses(make_env):
    env = make_env()
    create_ticket(env, cc='a@example.org')
    create_ticket(env, cc='b@example.org')
    from tracnotify.delivery.deliverer import Deliverer, PassReport
    Deliverer(env).expand_events(PassReport())
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_body')[0][0] == 2
    first = [i for i, in env.db_query("""
        SELECT id FROM tracnotify_message WHERE body_id=(
            SELECT MIN(id) FROM tracnotify_body)""")]
    assert maintenance.delete(env, first) == 2
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_body')[0][0] == 1
    env.db_transaction("UPDATE tracnotify_message SET state='sent', "
                       "sent_at=1")
    assert maintenance.purge_sent(env, 0)[0] == 2
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_body')[0][0] == 0


@pytest.mark.parametrize('text, parts', [
    ('To: a@b\r\nX-R: cc\r\nFrom: T <t@b>\r\nSubject: s\r\n\r\nbody',
     ('To: a@b\r\nX-R: cc\r\n', 'From: T <t@b>\r\nSubject: s\r\n\r\nbody')),
    ('From: T <t@b>\r\n\r\nbody', ('', 'From: T <t@b>\r\n\r\nbody')),
    ('To: a@b\r\n\r\nbody\r\nFrom: not a header\r\n', None),
    ('To: a@b\r\n\r\n', None),
])
def test_split_copy(text, parts):
    assert bodies.split_copy(text) == parts
