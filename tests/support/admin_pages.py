"""Driving the Notification admin panels in tests, with Trac's
MockRequest: the panel's own data, or the page as Trac renders it."""

import trac.admin.web_ui  # noqa: F401  (admin.html and AdminModule)
from trac.admin.web_ui import AdminModule
from trac.perm import PermissionSystem
from trac.test import MockRequest
from trac.web.chrome import Chrome

from tracnotify import outbox
from tracnotify.outbox import NewMessage
from tracnotify.web.admin import NotifyAdminPanel

TOKEN = 'form-token-123'


def with_admin(env, ini_path: str):
    """*env* with its trac.ini a real file at *ini_path*, and an admin."""
    env.config.filename = ini_path
    env.config.save()
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    return env


def request(env, panel, method='GET', authname='admin', token=True, **args):
    if method == 'POST' and token:
        args['__FORM_TOKEN'] = TOKEN
    return MockRequest(env, authname=authname, method=method, args=args,
                       form_token=TOKEN,
                       path_info='/admin/notification/' + panel)


def call(env, panel, **kwargs):
    req = request(env, panel, **kwargs)
    template, data, meta = NotifyAdminPanel(env).render_admin_panel(
        req, 'notification', panel, None)
    return req, template, data, meta


def html(env, panel, **kwargs) -> str:
    """The page as Trac renders it, through AdminModule."""
    req = request(env, panel, **kwargs)
    req.args.update({'cat_id': 'notification', 'panel_id': panel})
    template, data, meta = AdminModule(env).process_request(req)
    meta['iterable'] = False
    return Chrome(env).render_template(req, template, data, meta
                                       ).decode('utf-8')


FIXTURE_LEASE = 'test-fixture-lease'


def mark_sent(env, ids):
    """Lease *ids* to this test, then record them as sent."""
    env.db_transaction.executemany(
        'UPDATE tracnotify_message SET lease_owner=%s WHERE id=%s',
        [(FIXTURE_LEASE, i) for i in ids])
    outbox.mark_sent(env, ids, FIXTURE_LEASE)


def add_messages(env, n, state=outbox.PENDING, attempts=0, error=None):
    """Put *n* messages in the outbox; returns the ids of all messages."""
    before = {row[0] for row in env.db_query(
        'SELECT id FROM tracnotify_message')}
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            INSERT INTO tracnotify_event (created, kind, ticket, author,
                payload, state, attempts, lease_owner)
            VALUES (0, 'ticket_changed', 1, 'x', '{}', %s, 0, %s)""",
                       (outbox.PENDING, FIXTURE_LEASE))
        event_id = db.get_last_id(cursor, 'tracnotify_event')
    outbox.complete_event(env, event_id, [NewMessage(
        ticket=1, kind='ticket_changed', msgid='<m%d@x>' % i,
        sender='trac@example.org', recipient='user%d@example.net' % i,
        reason='cc', subject='Ticket #1 message %d' % i,
        message='Subject: x\r\n\r\nbody\r\n') for i in range(n)],
        FIXTURE_LEASE)
    ids = [row[0] for row in env.db_query(
        'SELECT id FROM tracnotify_message ORDER BY id')]
    env.db_transaction.executemany("""
        UPDATE tracnotify_message SET state=%s, attempts=%s, last_error=%s,
            updated=%s
        WHERE id=%s""", [(state, attempts, error, outbox.now_us(), i)
                         for i in ids if i not in before])
    return ids
