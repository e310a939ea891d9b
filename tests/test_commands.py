"""``trac-admin ENV notify ...``: output and exit status."""

import pytest
from trac.admin.api import AdminCommandError, AdminCommandManager
from trac.admin.console import TracAdmin

from tests.support.smtp_sink import SinkHandler, free_port
from tests.support.tickets import add_users, create_ticket
from tracnotify import outbox
from tracnotify.outbox import maintenance as queue_admin
from tracnotify.web.settings_form import build_fields, has_errors, parse_form, validate


def run(env, *args):
    """Run a command in-process; raises AdminCommandError on failure."""
    return AdminCommandManager(env).execute_command(*args)


def exit_status(env, line: str) -> int:
    """What ``trac-admin ENV <line>`` would exit with."""
    admin = TracAdmin()
    admin.env_set(env.path, env)
    return admin.onecmd(line)


@pytest.fixture
def env(make_env, smtp_sink):
    sink = smtp_sink(handler=SinkHandler(rcpt_replies={
        'dead@example.net': '550 5.1.1 no such user'}))
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    env.sink = sink
    add_users(env, ('alice', 'Alice', 'alice@example.net'))
    return env


def test_status(env, capsys):
    create_ticket(env)
    run(env, 'notify', 'status')
    out = capsys.readouterr().out
    assert 'Sending: enabled via 127.0.0.1:' in out
    assert 'Unprocessed changes: 1' in out


def test_send_then_status_then_pending(env, capsys):
    create_ticket(env, cc='dead@example.net')
    with pytest.raises(AdminCommandError) as e:
        run(env, 'notify', 'send')
    assert '550 5.1.1 no such user' in str(e.value)
    out = capsys.readouterr().out
    assert out.strip() == 'Sent 1, retrying 0, dead 1'
    run(env, 'notify', 'status')
    out = capsys.readouterr().out
    assert 'Dead: 1' in out and 'Sent (24h): 1' in out
    assert 'Last error' in out and '550 5.1.1' in out
    run(env, 'notify', 'pending')
    out = capsys.readouterr().out
    assert 'dead@example.net' in out and 'dead' in out
    run(env, 'notify', 'pending', 'pending')
    assert 'No unsent messages.' in capsys.readouterr().out


def test_send_quiet_prints_nothing_when_all_is_well(env, capsys):
    create_ticket(env)
    run(env, 'notify', 'send', '--quiet')
    assert capsys.readouterr().out == ''
    assert len(env.sink.wait_for(1)) == 1
    assert exit_status(env, 'notify send --quiet') == 0


def test_send_fails_when_smtp_is_disabled(make_env, capsys):
    env = make_env(smtp_enabled='false')
    assert exit_status(env, 'notify send') == 2
    assert 'smtp_enabled' in capsys.readouterr().err


def test_test_command(env, capsys):
    run(env, 'notify', 'test', 'someone@example.net')
    assert 'sent via SMTP' in capsys.readouterr().out
    assert env.sink.wait_for(1)[0].rcpt_tos == ['someone@example.net']


def test_test_command_reports_a_dead_server(make_env, capsys):
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(free_port()))
    assert exit_status(env, 'notify test someone@example.net') == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'connect failed: connection refused by 127.0.0.1' in err


def test_retry(env, capsys):
    create_ticket(env, cc='dead@example.net')
    with pytest.raises(AdminCommandError):
        run(env, 'notify', 'send')
    dead, = queue_admin.list_queue(env, 'dead')
    run(env, 'notify', 'retry', str(dead.id))
    assert '1 message(s) due now' in capsys.readouterr().out
    assert queue_admin.list_queue(env, 'pending')[0].id == dead.id
    assert exit_status(env, 'notify retry 99999') == 2
    assert 'No unsent message #99999' in capsys.readouterr().err
    assert exit_status(env, 'notify retry nonsense') == 2
    run(env, 'notify', 'retry', 'all')
    assert '1 message(s) due now' in capsys.readouterr().out


def test_purge(env, capsys):
    create_ticket(env)
    run(env, 'notify', 'send')
    env.db_transaction("UPDATE tracnotify_message SET sent_at=%s",
                       (outbox.now_us() - 3 * queue_admin.DAY_US,))
    env.db_transaction("UPDATE tracnotify_event SET created=%s",
                       (outbox.now_us() - 3 * queue_admin.DAY_US,))
    capsys.readouterr()
    run(env, 'notify', 'purge')
    assert 'Purged 0 sent message(s)' in capsys.readouterr().out
    run(env, 'notify', 'purge', '--sent-older-than', '2')
    assert 'Purged 1 sent message(s) and 1 processed change(s)' in \
        capsys.readouterr().out
    assert exit_status(env, 'notify purge --sent-older-than x') == 2
    assert exit_status(env, 'notify purge --older 2') == 2


def test_help_lists_the_commands(env):
    commands = {c[0] for c in AdminCommandManager(env).get_command_help()}
    assert {'notify status', 'notify pending', 'notify send', 'notify test',
            'notify retry', 'notify purge'} <= commands


@pytest.mark.parametrize('name, value', [
    ('smtp_always_cc', 'not-an-address@'),
    ('smtp_always_bcc', 'archive@example.org, a..b@example.org'),
    ('smtp_replyto', '.dot.@example.org'),
    ('smtp_port', 'twenty-five'),
    ('sendmail_timeout', 'forever'),
])
def test_status_names_every_value_the_settings_page_rejects(env, capsys,
                                                            name, value):
    env.config.set('notification', name, value)
    if name.startswith('sendmail'):
        env.config.set('notification', 'mail_transport', 'sendmail')
    # the Mail Settings page refuses the value as it is stored
    groups = build_fields(env.config)
    form = {f.name: f.value for g in groups for f in g.fields}
    validate(groups, env.config, parse_form(groups, form), env.path)
    assert has_errors(groups)
    # and so does `notify status`, with a non-zero exit
    assert exit_status(env, 'notify status') == 2
    captured = capsys.readouterr()
    assert 'Sending: enabled' in captured.out
    assert 'Configuration: [notification] %s' % name in captured.out
    assert name in captured.err


def test_status_of_a_sound_configuration_exits_zero(env, capsys):
    env.config.set('notification', 'smtp_always_cc', 'list@example.org')
    assert exit_status(env, 'notify status') == 0
    assert 'Configuration:' not in capsys.readouterr().out
