"""The optional ``alert_events``: a permission granted or revoked (by
``trac-admin``'s command, wrapped on PermissionSystem) and a new account
(AccountManager's IAccountChangeListener) are mailed to the admins through
the outbox; nothing without the option."""

import pytest
from trac.admin.api import AdminCommandError, AdminCommandManager
from trac.perm import PermissionSystem

from tests.support.tickets import deliver
from tests.support.users import users

ADMIN = ('admin', 'Ada Admin', 'admin@example.net')


def notices(sink):
    return [r.message for r in sink.received
            if r.message['X-Trac-Notification-Type'] == 'alert_event']


def admin_env(sink_env, **options):
    env = sink_env(users=(ADMIN,) + users('bob'), **options)
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    return env


def test_permission_granted_and_revoked_with_trac_admin(sink_env, sink):
    env = admin_env(sink_env, alert_events='permission_changed')
    commands = AdminCommandManager(env)
    commands.execute_command('permission', 'add', 'bob', 'TICKET_ADMIN')
    commands.execute_command('permission', 'remove', 'bob', 'TICKET_ADMIN')
    deliver(env)
    granted, revoked = notices(sink)
    assert granted['To'] == 'admin@example.net'
    assert granted['Subject'] == \
        '[Test Project] Permission granted: TICKET_ADMIN to bob'
    assert revoked['Subject'] == \
        '[Test Project] Permission revoked: TICKET_ADMIN from bob'
    assert 'trac-admin' in granted.get_content()
    assert '/admin/general/perm' in granted.get_content()


def test_no_notice_without_the_option(sink_env, sink):
    env = admin_env(sink_env)
    AdminCommandManager(env).execute_command('permission', 'add', 'bob',
                                             'TICKET_ADMIN')
    assert 'TICKET_ADMIN' in PermissionSystem(env).get_user_permissions('bob')
    deliver(env)
    assert notices(sink) == []


def test_a_failed_grant_tells_nothing(sink_env, sink):
    env = admin_env(sink_env, alert_events='permission_changed')
    commands = AdminCommandManager(env)
    with pytest.raises(AdminCommandError):
        commands.execute_command('permission', 'add', 'bob',
                                 'NO_SUCH_ACTION')
    deliver(env)
    assert notices(sink) == []


def test_new_account_with_account_manager(sink_env, sink):
    pytest.importorskip('acct_mgr')
    from acct_mgr.api import AccountManager
    from acct_mgr.db import SessionStore
    from acct_mgr.pwhash import HtDigestHashMethod
    env = admin_env(sink_env, alert_events='user_created')
    for component in (AccountManager, SessionStore,
                      HtDigestHashMethod):
        env.enable_component(component)
    env.config.set('account-manager', 'password_store', 'SessionStore')
    AccountManager(env).set_password('newbie', 'secret-pw')
    deliver(env)
    notice, = notices(sink)
    assert notice['Subject'] == '[Test Project] New user: newbie'
    assert 'The account newbie was registered' in notice.get_content()
    assert 'secret-pw' not in notice.as_string()
