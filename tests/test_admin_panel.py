"""The Notification admin panels, driven with Trac's MockRequest."""

import os

import pytest
import trac.admin.web_ui  # noqa: F401  (admin.html and AdminModule)
from trac.config import Configuration
from trac.perm import PermissionError, PermissionSystem
from trac.web.api import HTTPBadRequest, RequestDone

from tests.support.admin_pages import (
    TOKEN,
    add_messages,
    call,
    html,
    mark_sent,
    request,
    with_admin,
)
from tracnotify import outbox
from tracnotify.outbox import maintenance as queue_admin
from tracnotify.outbox import stats
from tracnotify.web.admin import NotifyAdminPanel


@pytest.fixture
def env(make_env, tmp_path):
    """An environment whose trac.ini is a real file, with an admin."""
    return with_admin(make_env(smtp_password='s3cret-pw'), str(tmp_path / 'trac.ini'))


def saved_ini(env) -> Configuration:
    return Configuration(env.config.filename)


# Permissions and form token --------------------------------------------------

def test_panels_are_listed_for_admins_only(env):
    panels = list(NotifyAdminPanel(env).get_admin_panels(
        request(env, 'settings')))
    assert [p[2] for p in panels] == ['settings', 'status', 'queue', 'test']
    assert all(p[0] == 'notification' for p in panels)
    assert list(NotifyAdminPanel(env).get_admin_panels(
        request(env, 'settings', authname='alice'))) == []


@pytest.mark.parametrize('page', ['settings', 'status', 'queue', 'test'])
def test_non_admins_get_403(env, page):
    with pytest.raises(PermissionError):
        call(env, page, authname='alice')


@pytest.mark.parametrize('page', ['settings', 'queue', 'test'])
def test_post_without_form_token_is_refused(env, page):
    with pytest.raises(HTTPBadRequest):
        call(env, page, method='POST', token=False, smtp_port='26',
             address='a@example.net', retry='1', sel='1')
    assert saved_ini(env).get('notification', 'smtp_port') == '25'


def test_templates_use_the_plugin_domain_and_admin_layout(env):
    _req, template, _data, meta = call(env, 'settings')
    assert template == 'tracnotify_admin_settings.html'
    assert meta == {'domain': 'tracnotify'}
    page = html(env, 'settings')
    assert 'id="tabcontent"' in page and 'Mail Settings' in page
    assert 'name="__FORM_TOKEN" value="%s"' % TOKEN in page


# Settings --------------------------------------------------------------------

def test_settings_form_shows_every_option_with_its_doc(env):
    _req, _t, data, _m = call(env, 'settings')
    names = [f.name for g in data['groups'] for f in g.fields]
    for name in ('smtp_enabled', 'smtp_server', 'smtp_port', 'use_tls',
                 'smtp_use_ssl', 'smtp_password', 'smtp_from',
                 'mime_encoding', 'always_notify_owner', 'delivery',
                 'outbox_max_attempts', 'smtp_timeout', 'smtp_ssl_cafile'):
        assert name in names
    assert len(names) == len(set(names))
    assert 'STARTTLS' in str(data['docs']['smtp_use_ssl'])


def test_password_is_never_sent_to_the_browser(env):
    page = html(env, 'settings')
    assert 's3cret-pw' not in page
    assert 'type="password"' in page


def test_valid_settings_are_written_to_trac_ini(env):
    form = {'smtp_enabled': 'true', 'smtp_server': 'mail.example.org',
            'smtp_port': '587', 'use_tls': 'true', 'smtp_password': '',
            'smtp_from': 'trac@example.org', 'mime_encoding': 'base64',
            'always_notify_owner': 'true', 'delivery': 'worker'}
    req = request(env, 'settings', method='POST', **form)
    with pytest.raises(RequestDone):
        NotifyAdminPanel(env).render_admin_panel(req, 'notification',
                                                 'settings', None)
    assert req.headers_sent['Location'].endswith('/admin/notification/'
                                                 'settings')
    ini = saved_ini(env)
    assert ini.get('notification', 'smtp_server') == 'mail.example.org'
    assert ini.get('notification', 'smtp_port') == '587'
    assert ini.getbool('notification', 'use_tls') is True
    assert ini.get('notification', 'mime_encoding') == 'base64'
    assert ini.getbool('notification', 'always_notify_owner') is True
    # an empty password field keeps the stored password
    assert ini.get('notification', 'smtp_password') == 's3cret-pw'


def test_password_can_be_replaced_and_cleared(env):
    base = {'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
            'smtp_replyto': 'trac@example.org', 'delivery': 'worker'}
    with pytest.raises(RequestDone):
        call(env, 'settings', method='POST', smtp_password='n3w', **base)
    assert saved_ini(env).get('notification', 'smtp_password') == 'n3w'
    with pytest.raises(RequestDone):
        call(env, 'settings', method='POST', smtp_password_clear='1', **base)
    assert saved_ini(env).get('notification', 'smtp_password') == ''


def test_unset_tristate_option_is_removed(env):
    env.config.set('notification', 'always_notify_owner', 'true')
    env.config.save()
    with pytest.raises(RequestDone):
        call(env, 'settings', method='POST', smtp_enabled='true',
             smtp_from='trac@example.org', delivery='worker',
             always_notify_owner='')
    assert not saved_ini(env).has_option('notification',
                                         'always_notify_owner',
                                         defaults=False)


@pytest.mark.parametrize('field,form,message', [
    ('smtp_port', {'smtp_port': '70000'}, 'out of range'),
    ('smtp_port', {'smtp_port': 'abc'}, 'not a whole number'),
    ('smtp_use_ssl', {'use_tls': 'true', 'smtp_use_ssl': 'true'},
     'cannot both be on'),
    ('smtp_from', {'smtp_from': 'a@@b'}, 'not an e-mail address'),
    ('mime_encoding', {'mime_encoding': 'utf7'}, 'not one of'),
    ('smtp_always_cc', {'smtp_always_cc': 'ok@example.org, bad<x>@y'},
     'invalid e-mail address'),
    ('smtp_timeout', {'smtp_timeout': '0'}, 'out of range'),
])
def test_invalid_settings_are_shown_next_to_the_field(env, field, form,
                                                      message):
    base = {'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
            'smtp_port': '25', 'delivery': 'worker', 'smtp_server': 'x'}
    base.update(form)
    req, _t, data, _m = call(env, 'settings', method='POST', **base)
    fields = {f.name: f for g in data['groups'] for f in g.fields}
    assert message in fields[field].error
    assert req.chrome['warnings']
    assert saved_ini(env).get('notification', 'smtp_server') == 'localhost'
    page = html(env, 'settings', method='POST', **base)
    assert 'id="error-%s"' % field in page
    # what the admin typed is shown again, to be corrected
    assert fields[field].value == base.get(field, fields[field].value)


# Status ----------------------------------------------------------------------

def test_status_shows_counts_last_error_chart_and_config_errors(env):
    env.config.set('trac', 'base_url', '')
    add_messages(env, 2)
    add_messages(env, 1, outbox.DEAD, 3, '550 5.1.1 no such user')
    _req, _t, data, _m = call(env, 'status')
    assert data['counts']['pending'] == 2
    assert data['counts']['dead'] == 1
    assert data['last_error']['error'] == '550 5.1.1 no such user'
    assert data['totals'] == {'sent': 0, 'failed': 1}
    assert len(data['chart'].bars) == 24
    assert any('[trac] base_url is not set' in e
               for e in data['config'].errors)
    page = html(env, 'status')
    assert '<svg' in page and 'class="failed"' in page
    assert '550 5.1.1 no such user' in page
    assert 'SMTP localhost:25 (plain)' in page
    assert '<script' not in page.split('id="tabcontent"')[1].split(
        '</svg>')[0]


def test_hourly_counts_bucket_sent_and_failed(env):
    ids = add_messages(env, 3)
    mark_sent(env, ids[:2])
    now = outbox.now_us()
    env.db_transaction("UPDATE tracnotify_message SET sent_at=%s WHERE id=%s",
                       (now - 5 * stats.HOUR_US, ids[0]))
    counts = stats.hourly_counts(env, now_us=now)
    assert counts[-1].sent == 1 and counts[-6].sent == 1
    assert sum(c.sent for c in counts) == 2
    chart = stats.chart(counts)
    assert chart.maximum == 1
    assert chart.bars[-1].sent_h == chart.height - chart.top


# Queue -----------------------------------------------------------------------

def test_queue_is_paginated_and_filtered(env):
    add_messages(env, 3, outbox.DEAD, 8, 'boom')
    add_messages(env, 27)
    _req, _t, data, _m = call(env, 'queue')
    assert data['paginator'].num_items == 30
    assert len(data['messages']) == 25
    _req, _t, data, _m = call(env, 'queue', page='2')
    assert len(data['messages']) == 5
    _req, _t, data, _m = call(env, 'queue', status='dead')
    assert [r['m'].status for r in data['messages']] == ['dead'] * 3
    page = html(env, 'queue', status='dead')
    assert 'name="retry_one"' in page and 'boom' in page


def test_retry_one_dead_message(env):
    dead = add_messages(env, 1, outbox.DEAD, 8, 'boom')[0]
    req = request(env, 'queue', method='POST', retry_one=str(dead))
    with pytest.raises(RequestDone):
        NotifyAdminPanel(env).render_admin_panel(req, 'notification',
                                                 'queue', None)
    row = queue_admin.list_queue(env)[0]
    assert (row.state, row.attempts) == (outbox.PENDING, 0)
    assert req.chrome['notices']


def test_bulk_delete_and_retry(env):
    ids = add_messages(env, 4, outbox.DEAD, 2, 'x')
    with pytest.raises(RequestDone):
        call(env, 'queue', method='POST', delete='1', sel=[str(i) for i in
                                                           ids[:2]])
    assert [m.id for m in queue_admin.list_queue(env)] == ids[2:]
    with pytest.raises(RequestDone):
        call(env, 'queue', method='POST', retry='1', sel=[str(i) for i in
                                                          ids[2:]])
    assert queue_admin.count_queue(env, 'dead') == 0
    assert queue_admin.count_queue(env, 'pending') == 2


def test_purge_deletes_old_sent_messages(env):
    ids = add_messages(env, 3)
    mark_sent(env, ids)
    env.db_transaction("UPDATE tracnotify_message SET sent_at=%s WHERE id=%s",
                       (outbox.now_us() - 40 * queue_admin.DAY_US, ids[0]))
    assert queue_admin.purge_sent(env, 30)[0] == 1
    assert queue_admin.purge_sent(env, 0)[0] == 2


# Test mail -------------------------------------------------------------------

def test_test_mail_arrives(make_env, smtp_sink, tmp_path):
    sink = smtp_sink()
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    _req, _t, data, _m = call(env, 'test', method='POST',
                              address='tester@example.net')
    assert data['outcome'].ok, data['outcome'].error
    received = sink.wait_for(1)
    assert received[0].rcpt_tos == ['tester@example.net']
    assert 'test mail' in received[0].message['Subject']
    assert received[0].message['To'] == 'tester@example.net'


@pytest.mark.parametrize('case', ['refused', 'auth', '5xx', 'tls'])
def test_test_mail_reports_the_exact_failure(make_env, smtp_sink, case):
    from tests.support.smtp_sink import SinkHandler, free_port
    options = {'smtp_server': '127.0.0.1'}
    if case == 'refused':
        options['smtp_port'] = str(free_port())
    elif case == 'auth':
        sink = smtp_sink(auth=('user', 'right'))
        options.update(smtp_port=str(sink.port), smtp_user='user',
                       smtp_password='wrong')
    elif case == '5xx':
        sink = smtp_sink(handler=SinkHandler(rcpt_replies={
            'nobody@example.net': '550 5.1.1 <nobody@example.net>: no such '
                                  'user'}))
        options['smtp_port'] = str(sink.port)
    else:
        sink = smtp_sink('starttls')     # certificate of an unknown CA
        options.update(smtp_port=str(sink.port), use_tls='true')
    env = make_env(**options)
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    _req, _t, data, _m = call(env, 'test', method='POST',
                              address='nobody@example.net')
    outcome = data['outcome']
    assert not outcome.ok
    expected = {'refused': ('connect', 'connection refused'),
                'auth': ('auth', 'authentication failed: 535'),
                '5xx': ('send', '550 5.1.1 <nobody@example.net>: no such '
                                'user'),
                'tls': ('tls', 'CERTIFICATE_VERIFY_FAILED')}[case]
    assert outcome.stage == expected[0]
    assert expected[1] in outcome.error
    page = html(env, 'test', method='POST', address='nobody@example.net')
    assert 'id="test-error"' in page


def test_test_mail_rejects_a_bad_address(env):
    _req, _t, data, _m = call(env, 'test', method='POST', address='not an '
                                                                  'address')
    assert data['outcome'].stage == 'address'


def test_panel_files_exist():
    import tracnotify.web.admin as admin
    panel_dir = os.path.dirname(os.path.dirname(admin.__file__))
    assert os.path.isfile(os.path.join(panel_dir, 'htdocs', 'admin.css'))


def test_transport_options_are_on_the_form_and_validated(env, tmp_path):
    _req, _t, data, _m = call(env, 'settings')
    names = [f.name for g in data['groups'] for f in g.fields]
    assert 'mail_transport' in names and 'sendmail_args' in names
    _req, _t, data, _m = call(env, 'settings', method='POST',
                              smtp_enabled='true', delivery='worker',
                              smtp_from='trac@example.org',
                              mail_transport='carrier-pigeon')
    fields = {f.name: f for g in data['groups'] for f in g.fields}
    assert 'not one of' in fields['mail_transport'].error


def test_test_mail_through_the_directory_transport(make_env, tmp_path):
    env = make_env(mail_transport='directory',
                   mail_directory=str(tmp_path / 'mail'))
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    _req, _t, data, _m = call(env, 'test', method='POST',
                              address='tester@example.net')
    assert data['outcome'].ok, data['outcome'].error
    files = os.listdir(tmp_path / 'mail')
    assert len(files) == 1
