"""Schema 7: the Message-ID, sender and subject all copies of a change
share are stored once, on their body row; the copies keep NULL there.
The upgrade from version 6 moves them out of a populated outbox without
changing one byte of what is then delivered, and the queue and the
sent-mail history still show and find them."""


from trac.db.api import DatabaseManager

from tests.support.outbox_rows import delivered_copies
from tests.support.schema_history import RELEASED
from tests.support.tickets import change_ticket, create_ticket, deliver_to_sink
from tracnotify import outbox
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.outbox import bodies, maintenance
from tracnotify.schema import SCHEMA_NAME, SCHEMA_VERSION, TracnotifySetup

CC = ', '.join('cc%02d@example.org' % i for i in range(12))


def copies(env) -> list:
    return env.db_query("""SELECT recipient, msgid, sender, subject
                           FROM tracnotify_message ORDER BY id""")


def test_copies_keep_only_what_differs(make_env):
    env = make_env()
    ticket = create_ticket(env, summary='Shared columns', cc=CC)
    change_ticket(env, ticket.id, author='bob', comment='Again.')
    Deliverer(env).expand_events(PassReport())
    assert {row[1:] for row in copies(env)} == {(None, None, None)}
    shared = env.db_query('SELECT msgid, sender, subject FROM '
                          'tracnotify_body ORDER BY id')
    assert len(shared) == 2 and all(all(row) for row in shared)
    assert '#%d' % ticket.id in shared[0][2]
    claimed = outbox.claim_messages(env, 100)
    assert {(m.msgid, m.sender, m.subject) for m in claimed} == set(shared)


def test_a_copy_that_differs_keeps_its_own(make_env):
    env = make_env()
    shared = 'From: T <t@example.org>\r\nSubject: s\r\n\r\nbody\r\n'
    made = [outbox.NewMessage(ticket=1, kind='ticket_changed', msgid=msgid,
                              sender='trac@example.org', recipient=rcpt,
                              reason='cc', subject='s',
                              message='To: %s\r\n' % rcpt, shared=shared)
            for msgid, rcpt in (('<a@x>', 'a@example.org'),
                                ('<b@x>', 'b@example.org'))]
    outbox.add_messages(env, made)
    assert copies(env) == [('a@example.org', None, None, None),
                           ('b@example.org', '<b@x>', None, None)]
    assert [(m.recipient, m.msgid, m.subject) for m in
            outbox.claim_messages(env, 10)] == [
        ('a@example.org', '<a@x>', 's'), ('b@example.org', '<b@x>', 's')]


def downgrade_to_version_6(env) -> None:
    """The outbox as version 6 kept it: every copy with its own msgid,
    sender and subject, and body rows without them (same ids)."""
    dbm = DatabaseManager(env)
    _version, tables = RELEASED['v6']
    old_body, = [t for t in tables if t.name == 'tracnotify_body']
    whole = env.db_query("""
        SELECT m.id, COALESCE(m.msgid, b.msgid), COALESCE(m.sender, b.sender),
               COALESCE(m.subject, b.subject)
        FROM tracnotify_message m
        LEFT JOIN tracnotify_body b ON b.id=m.body_id""")
    kept = env.db_query('SELECT id, created, data FROM tracnotify_body')
    dbm.drop_tables(['tracnotify_body'])
    dbm.create_tables([old_body])
    with env.db_transaction as db:
        db.executemany('INSERT INTO tracnotify_body (id, created, data) '
                       'VALUES (%s, %s, %s)', kept)
        db.executemany('UPDATE tracnotify_message SET msgid=%s, sender=%s, '
                       'subject=%s WHERE id=%s',
                       [row[1:] + row[:1] for row in whole])
    if dbm.connection_uri.startswith('postgres'):
        env.db_transaction("""SELECT setval('tracnotify_body_id_seq',
                                  (SELECT MAX(id) FROM tracnotify_body))""")
    dbm.set_database_version(6, SCHEMA_NAME)


def test_upgrade_from_version_6_moves_them_without_changing_a_byte(
        sink_env, sink, tokens):
    env = sink_env(mime_encoding='qp')
    ticket = create_ticket(env, summary='Grüße vor dem Upgrade', cc=CC)
    change_ticket(env, ticket.id, author='bob', comment='Second change.')
    Deliverer(env).expand_events(PassReport())
    tokens()
    env.db_transaction("""UPDATE tracnotify_message SET state='sent',
                              sent_at=5 WHERE id IN (1, 2)""")
    downgrade_to_version_6(env)
    assert all(all(row[1:]) for row in copies(env))     # v6: all filled
    # what version 6 would have sent, and what it showed, read as it did
    queue_before = env.db_query("""
        SELECT recipient, subject FROM tracnotify_message
        WHERE state IN ('pending', 'dead') ORDER BY id""")
    sent_before = env.db_query("""
        SELECT recipient, subject, msgid FROM tracnotify_message
        WHERE state='sent' ORDER BY sent_at DESC, id DESC""")
    assert len(sent_before) == 2
    expected = {(r, msgid): (head + shared).encode('utf-8')
                for r, msgid, head, shared in env.db_query("""
                    SELECT m.recipient, m.msgid, m.message, b.data
                    FROM tracnotify_message m
                    JOIN tracnotify_body b ON b.id=m.body_id
                    WHERE m.state='pending'""")}

    setup = TracnotifySetup(env)
    assert setup.environment_needs_upgrade()
    setup.upgrade_environment()
    dbm = DatabaseManager(env)
    assert dbm.get_database_version(SCHEMA_NAME) == SCHEMA_VERSION == 7
    assert {row[1:] for row in copies(env)} == {(None, None, None)}
    assert [(q.recipient, q.subject) for q in
            maintenance.list_queue(env, limit=None)] == queue_before
    assert [(s.recipient, s.subject, s.msgid) for s in
            maintenance.list_sent(env, 'Grüße')] == sent_before
    assert maintenance.count_sent(env, 'Grüße vor') == 2
    assert maintenance.count_sent(env, sent_before[0][2]) == 2   # by id
    got = delivered_copies(env, sink)
    assert len(got) == len(expected) > 20
    assert got == expected


def test_the_unsubscribe_post_line_is_stored_once_where_all_share_it(
        sink_env, sink, tokens):
    env = sink_env()
    create_ticket(env, summary='Tail', cc=CC)
    Deliverer(env).expand_events(PassReport())
    heads = [h for h, in env.db_query('SELECT message FROM '
                                      'tracnotify_message')]
    assert heads and not any('List-Unsubscribe-Post' in h for h in heads)
    assert all('List-Unsubscribe: <' in h for h in heads)
    data, = env.db_query('SELECT data FROM tracnotify_body')[0]
    assert data.startswith(bodies.COMMON_TAIL + 'From: ')
    for item in deliver_to_sink(env, sink, check_errors=True):
        assert item.message['List-Unsubscribe-Post'] == \
            'List-Unsubscribe=One-Click'
        assert item.message['List-Unsubscribe'].startswith('<http')


def test_a_copy_without_the_line_keeps_every_copy_as_it_was(make_env):
    shared = 'From: T <t@example.org>\r\nSubject: s\r\n\r\nbody\r\n'
    tail = bodies.COMMON_TAIL
    made = [outbox.NewMessage(ticket=1, kind='ticket_changed', msgid='<m@x>',
                              sender='trac@example.org', recipient=rcpt,
                              reason='cc', subject='s', message=head,
                              shared=shared)
            for rcpt, head in (
                ('a@example.org', 'To: a@example.org\r\n' + tail),
                ('list@example.org', 'To: list@example.org\r\n'))]
    assert bodies.hoist_common_tail(made) == made
    both = [made[0], outbox.NewMessage(**{**made[0].__dict__,
                                          'recipient': 'b@example.org'})]
    hoisted = bodies.hoist_common_tail(both)
    assert [m.text for m in hoisted] == [m.text for m in both]
    assert hoisted[0].shared is hoisted[1].shared == tail + shared
    env = make_env()
    outbox.add_messages(env, made + both)
    assert sorted(m.data for m in outbox.claim_messages(env, 10)) == \
        sorted(m.text.encode('utf-8') for m in made + both)
