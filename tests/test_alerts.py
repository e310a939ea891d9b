"""Alerts to admins (tracnotify/alerts): a relay that is down, dead
messages and configuration errors alert the admins once per interval,
through the transport directly or the fallback, and the log; a mail says
when delivery works again.  Real SMTP servers (aiosmtpd), real Trac
environments (SQLite, and PostgreSQL when configured)."""

import os
import threading
import time

import pytest
from trac.admin.api import AdminCommandManager
from trac.perm import PermissionSystem

from tests.support.smtp_sink import free_port
from tests.support.tickets import add_users, create_ticket, deliver
from tests.support.users import set_session, users
from tracnotify.alerts import state as rows
from tracnotify.alerts.monitor import Monitor, configuration_errors
from tracnotify.alerts.options import load_alert_settings
from tracnotify.alerts.recipients import alert_recipients
from tracnotify.config import load_config

ADMIN = ('admin', 'Ada Admin', 'admin@example.net')


@pytest.fixture
def outage(make_env, smtp_sink):
    """An environment whose relay is a dead port, a second relay for the
    alerts (``alert_fallback = smtp``), an admin and alice."""
    fallback = smtp_sink()
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()),
                   alert_after='0.01', alert_interval='10',
                   alert_fallback='smtp',
                   alert_smtp_server='127.0.0.1:%d' % fallback.port)
    add_users(env, ADMIN, *users('alice'))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    return env, fallback


def alerts_in(received, kind='alert'):
    return [r.message for r in received
            if r.message['X-Trac-Notification-Type'] == kind]


def wait_past(seconds):
    time.sleep(seconds + 0.05)


def test_outage_alerts_once_via_fallback_then_recovers(outage, smtp_sink,
                                                       caplog):
    env, fallback = outage
    create_ticket(env)
    report = deliver(env)
    assert report.retrying and not fallback.received  # not yet alert_after
    wait_past(0.6)
    deliver(env)
    alert, = alerts_in(fallback.wait_for(1))
    assert alert['To'] == 'admin@example.net'
    assert alert['Subject'] == '[Test Project] Alert: mail delivery is failing'
    assert alert['X-Trac-Realm'] == 'notification'
    assert alert['List-Id'] and alert['Auto-Submitted'] == 'auto-generated'
    text = alert.get_content()
    assert 'message is waiting' in text and 'connection refused' in text
    assert '/admin/notification/queue' in text
    assert any('alert' in r.getMessage() and 'failing' in r.getMessage()
               for r in caplog.records)
    # still failing: no second alert within alert_interval
    wait_past(0.6)
    deliver(env)
    wait_past(0.3)
    deliver(env)
    assert len(fallback.received) == 1
    # the relay is back: the ticket mail drains, a recovered mail follows
    relay = smtp_sink()
    env.config.set('notification', 'smtp_port', str(relay.port))
    with env.db_transaction as db:
        db("UPDATE tracnotify_message SET next_attempt=0")
    wait_past(0.2)
    deliver(env)
    received = relay.wait_for(2)
    recovered, = alerts_in(received, 'alert_recovered')
    assert recovered['To'] == 'admin@example.net'
    assert recovered['Subject'] == \
        '[Test Project] Alert over: mail delivery works again'
    assert 'delivered again' in recovered.get_content()
    assert [r.rcpt_tos for r in received if r.message[
        'X-Trac-Notification-Type'] != 'alert_recovered'] == \
        [['alice@example.net']]
    assert rows.read_state(env)[rows.OPEN_SINCE] == ''
    wait_past(0.2)
    deliver(env)
    assert len(relay.received) == 2 and len(fallback.received) == 1


def test_fallback_to_a_directory_and_notify_status(make_env, tmp_path,
                                                  capsys):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()),
                   alert_after='0.01', alert_fallback='directory',
                   mail_directory=str(tmp_path / 'alerts'))
    add_users(env, ADMIN)
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    add_users(env, *users('alice'))
    create_ticket(env)
    deliver(env)
    wait_past(0.6)
    deliver(env)
    files = list((tmp_path / 'alerts').glob('*.eml'))
    assert len(files) == 1
    text = files[0].read_text()
    assert 'X-Trac-Notification-Type: alert' in text
    assert 'To: admin@example.net' in text
    AdminCommandManager(env).execute_command('notify', 'status')
    out = capsys.readouterr().out
    assert 'Alerts to: admin@example.net' in out
    assert 'Alert open: delivery failing since ' in out
    assert 'Last alert: ' in out
    env.config.set('notification', 'alert_interval', '-1')
    AdminCommandManager(env).execute_command('notify', 'status')
    assert 'Configuration: [notification] alert_interval = -1 is out of ' \
        'range' in capsys.readouterr().out


def test_mail_that_went_dead_is_no_recovery(outage):
    env, fallback = outage
    create_ticket(env)
    deliver(env)
    wait_past(0.6)
    deliver(env)
    assert alerts_in(fallback.wait_for(1))
    with env.db_transaction as db:       # e.g. outbox_max_attempts reached
        db("UPDATE tracnotify_message SET state='dead'")
    wait_past(0.2)
    deliver(env)
    assert rows.read_state(env)[rows.OPEN_SINCE] != ''
    assert alerts_in(fallback.received, 'alert_recovered') == []


def test_without_fallback_the_alert_is_in_the_log(make_env, caplog):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()),
                   alert_after='0.01')
    add_users(env, ADMIN, *users('alice'))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    create_ticket(env)
    deliver(env)
    wait_past(0.6)
    deliver(env)
    logged = [r.getMessage() for r in caplog.records]
    assert any('alert: Alert: mail delivery is failing' in m for m in logged)
    assert any('alert mail to admin@example.net could not be sent' in m
               for m in logged)
    assert rows.read_state(env)[rows.LAST_SENT]


def test_dead_messages_alert_through_the_transport(sink_env, sink):
    env = sink_env(users=(ADMIN,) + users('alice'))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    sink.handler.rcpt_replies['alice@example.net'] = '550 5.1.1 no such user'
    create_ticket(env)
    deliver(env)
    alert, = alerts_in(sink.wait_for(1))
    assert alert['Subject'] == '[Test Project] Alert: mail was given up'
    assert 'alice@example.net: recipient refused: 550 5.1.1 no such user' \
        in alert.get_content()
    # the same dead message is not reported again, even after the interval
    env.config.set('notification', 'alert_interval', '0')
    wait_past(0.2)
    deliver(env)
    assert len(sink.received) == 1


def test_an_older_message_that_dies_later_is_reported(sink_env, sink):
    env = sink_env(users=(ADMIN,) + users('alice', 'bob'),
                   outbox_max_attempts='2', alert_interval='0')
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    sink.handler.rcpt_replies['bob@example.net'] = '451 try later'
    create_ticket(env, reporter='bob')          # retried, dies later
    deliver(env)
    sink.handler.rcpt_replies['alice@example.net'] = '550 no'
    create_ticket(env)                          # dies at once
    wait_past(0.2)
    deliver(env)
    first, = alerts_in(sink.wait_for(1))
    assert 'alice@example.net' in first.get_content()
    wait_past(1.0)                              # bob's retry is due
    deliver(env)
    second = alerts_in(sink.wait_for(2))[1]
    assert 'bob@example.net: ' in second.get_content()
    assert 'alice@example.net' not in second.get_content()


def test_one_alert_per_interval_across_problems(sink_env, sink):
    env = sink_env(users=(ADMIN,) + users('alice', 'bob'))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    sink.handler.rcpt_replies['alice@example.net'] = '550 no'
    create_ticket(env)
    deliver(env)
    assert len(alerts_in(sink.wait_for(1))) == 1
    sink.handler.rcpt_replies['bob@example.net'] = '550 no'
    create_ticket(env, reporter='bob')
    wait_past(0.2)
    deliver(env)
    assert len(alerts_in(sink.received)) == 1   # alert_interval: 60 min


def test_alert_in_each_admins_language(sink_env, sink):
    env = sink_env(users=(ADMIN,) + users('hans', 'marie', 'alice'))
    perm = PermissionSystem(env)
    for name in ('admin', 'hans', 'marie'):
        perm.grant_permission(name, 'TRAC_ADMIN')
    set_session(env, 'hans', language='de')
    set_session(env, 'marie', language='fr')
    sink.handler.rcpt_replies['alice@example.net'] = '550 no'
    create_ticket(env)
    deliver(env)
    mails = {m['To']: m for m in alerts_in(sink.wait_for(3))}
    assert set(mails) == {'admin@example.net', 'hans@example.net',
                          'marie@example.net'}
    assert mails['admin@example.net']['Subject'].endswith(
        'Alert: mail was given up')
    assert 'Alarm' in mails['hans@example.net']['Subject']
    assert 'Alerte' in mails['marie@example.net']['Subject']
    assert 'wurde aufgegeben (tot)' in mails['hans@example.net'].get_content()


def test_alert_to_names_addresses_and_users(make_env):
    env = make_env(alert_to='ops@example.com, alice, nobody')
    add_users(env, ADMIN, *users('alice'))
    config = load_config(env)
    got = alert_recipients(env, config, load_alert_settings(env))
    assert [a.address for a in got] == ['ops@example.com',
                                        'alice@example.net']
    env.config.set('notification', 'alert_to', 'log')
    assert alert_recipients(env, config, load_alert_settings(env)) == []


def test_a_broken_address_in_alert_to_skips_only_itself(sink_env, sink):
    env = sink_env(users=users('alice'),
                   alert_to='a..b@example.com, ops@example.com')
    sink.handler.rcpt_replies['alice@example.net'] = '550 no'
    create_ticket(env)
    deliver(env)
    alert, = alerts_in(sink.wait_for(1))
    assert alert['To'] == 'ops@example.com'


def test_default_recipients_are_admins_with_an_address(make_env):
    env = make_env()
    add_users(env, ADMIN, *users('alice', 'zoe'))
    perm = PermissionSystem(env)
    perm.grant_permission('zoe', 'TRAC_ADMIN')      # no address
    perm.grant_permission('admin', 'TRAC_ADMIN')
    got = alert_recipients(env, load_config(env), load_alert_settings(env))
    assert [a.address for a in got] == ['admin@example.net']


def test_options_read_typed(make_env):
    env = make_env(alert_after='0.5', alert_interval='abc',
                   alert_fallback='smtp', alert_events='user_created, x')
    s = load_alert_settings(env)
    assert s.after == 30.0 and s.interval == 3600.0
    assert s.fallback == '' and s.events == ('user_created',)
    assert any('alert_interval' in e for e in s.errors)
    assert any('alert_smtp_server' in e for e in s.errors)
    assert any('alert_events' in e for e in s.errors)


def test_sample_alert_options_are_valid(make_env):
    from trac.config import Configuration
    sample = Configuration(os.path.join(os.path.dirname(os.path.dirname(
        __file__)), 'contrib', 'trac.ini.sample'))
    env = make_env()
    names = [n for n, _v in sample.options('notification')
             if n.startswith('alert_')]
    assert len(names) == 6
    for name in names:
        env.config.set('notification', name,
                       sample.get('notification', name))
    s = load_alert_settings(env)
    assert s.errors == [] and s.after == 1800 and s.interval == 3600


def test_configuration_errors_at_start_alert(sink_env, sink):
    env = sink_env(users=(ADMIN,), mime_encoding='rot13')
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    errors = configuration_errors(env, load_config(env),
                                  load_alert_settings(env))
    assert any('mime_encoding' in e for e in errors)
    deliver(env)
    alert, = alerts_in(sink.wait_for(1))
    assert alert['Subject'] == '[Test Project] Alert: configuration errors'
    assert 'mime_encoding' in alert.get_content()
    env.config.set('notification', 'alert_interval', '0')
    wait_past(0.2)
    deliver(env)        # the same errors: reported once
    assert len(sink.received) == 1


def test_state_rows_are_compare_and_set(make_env):
    env = make_env()
    assert rows.swap(env, rows.LAST_SENT, '', '1')
    assert not rows.swap(env, rows.LAST_SENT, '', '2')     # already there
    assert not rows.swap(env, rows.LAST_SENT, '7', '2')    # not what it is
    assert rows.swap(env, rows.LAST_SENT, '1', '3')
    assert rows.read_state(env)[rows.LAST_SENT] == '3'


def test_processes_seeing_one_problem_send_one_alert(backend, sink_env,
                                                     sink):
    """Several processes look at once, round after round: each new dead
    message is alerted exactly once.  (Seen once in CI on PostgreSQL: one
    process read the new last_sent beside the old dead mark and alerted
    the same message again; the marks now commit with the claim.)"""
    if backend == 'sqlite':
        pytest.skip('one in-memory SQLite connection cannot be shared')
    env = sink_env(users=(ADMIN,) + users('alice'))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    sink.handler.rcpt_replies['alice@example.net'] = '550 no'
    env.config.set('notification', 'bounce_threshold', '1000')
    create_ticket(env)
    deliver(env)                # the dead message, and its alert
    assert len(sink.wait_for(1)) == 1
    for round_ in range(1, 6):
        env.config.set('notification', 'alert_interval', '60')
        create_ticket(env)
        deliver(env)            # another dead message: held back
        env.config.set('notification', 'alert_interval', '0')
        config = load_config(env)
        start = threading.Barrier(8)

        def look(start=start, config=config):
            start.wait()
            Monitor(env, config, load_alert_settings(env)).check()
        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sink.wait_for(1 + round_, 5)
        time.sleep(0.3)
        assert len(alerts_in(sink.received)) == 1 + round_


def test_a_lost_claim_writes_none_of_its_marks(make_env):
    env = make_env()
    assert rows.claim(env, rows.LAST_SENT, '', '1',
                      {rows.DEAD_MARK: ('', '5'), rows.CONFIG: ('', 'f')})
    assert not rows.claim(env, rows.LAST_SENT, '', '2',
                          {rows.DEAD_MARK: ('5', '6')})
    assert not rows.claim(env, rows.LAST_SENT, '7', '2',
                          {rows.DEAD_MARK: ('5', '6')})
    state = rows.read_state(env)
    assert (state[rows.LAST_SENT], state[rows.DEAD_MARK],
            state[rows.CONFIG]) == ('1', '5', 'f')
    assert rows.claim(env, rows.LAST_SENT, '1', '3',
                      {rows.DEAD_MARK: ('4', '9'), rows.CONFIG: ('f', 'g')})
    state = rows.read_state(env)
    assert (state[rows.LAST_SENT], state[rows.DEAD_MARK],
            state[rows.CONFIG]) == ('3', '5', 'g')   # a mark that moved
