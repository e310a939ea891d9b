"""A trac.ini with every tracnotify option set to a wrong value: Trac still
starts (a real tracd), tickets still save, and each wrong value is named in
the log, in ``load_config(env).errors`` (or the transport's errors) and on
the admin panel's status page."""

import configparser
import html
import os
import time

import pytest

from tests.support.live_trac import LiveTrac
from tracnotify.config import load_config
from tracnotify.delivery.transports import load_transport_options

#: option -> a wrong value.  Every option tracnotify declares, and the
#: options of Trac's [notification] that it reads and checks.
BAD = {
    # declared by tracnotify (config.py)
    'smtp_use_ssl': 'maybe',
    'smtp_ssl_cafile': '/no/such/ca.pem',
    'smtp_timeout': 'forever',
    'always_notify_reporter': 'sometimes',
    'always_notify_owner': '2',
    'always_notify_updater': 'yess',
    'smtp_from_author_name': 'perhaps',
    'delivery': 'carrier-pigeon',
    'outbox_max_attempts': '-1',
    'outbox_retry_delay': 'soon',
    'outbox_poll_interval': '0',
    'outbox_lease_seconds': '1e9',
    'smtp_connections': '1000',
    'smtp_burst': 'many',
    'smtp_burst_pause': '-3',
    'outbox_batch_size': '0',
    'default_events': 'exploded',
    'default_own_changes': 'whatever',
    'default_delivery': 'by-hand',
    'digest_hour': '25',
    'batch_window': 'ten',
    # declared by tracnotify (delivery/transports/)
    'mail_transport': 'carrier-pigeon',
    'console_output': 'printer',
    # Trac's, read and checked by tracnotify
    'smtp_port': 'twenty-five',
    'mime_encoding': 'rot13',
    'use_tls': 'si',
    'use_public_cc': 'maybe',
    'use_short_addr': 'maybe',
    'smtp_from_author': 'maybe',
    'smtp_from': 'not an address',
    'smtp_replyto': 'Trac <trac@example.org>',
    'default_format.email': 'text/rtf',
}
#: checked when their transport is the one chosen (mail_transport)
SENDMAIL_BAD = {
    'sendmail_args': '-f "{sender}',
    'sendmail_recipients': 'everyone',
    'sendmail_timeout': 'never',
}


def named(text: str, option: str, value: str) -> bool:
    return option in text and (value in text or repr(value) in text)


def all_errors(env):
    return load_config(env).errors + load_transport_options(env).errors


def test_every_bad_value_is_named_in_the_errors(make_env):
    env = make_env(**BAD)
    errors = '\n'.join(all_errors(env))
    missing = [o for o, v in BAD.items() if not named(errors, o, v)]
    assert not missing, errors


def test_sendmail_options_are_named_when_sendmail_is_chosen(make_env):
    env = make_env(mail_transport='sendmail', **SENDMAIL_BAD)
    errors = '\n'.join(load_transport_options(env).errors)
    assert named(errors, 'sendmail_args', SENDMAIL_BAD['sendmail_args'])
    env.config.set('notification', 'sendmail_args', '-f {sender}')
    errors = '\n'.join(load_transport_options(env).errors)
    missing = [o for o, v in SENDMAIL_BAD.items()
               if o != 'sendmail_args' and not named(errors, o, v)]
    assert not missing, errors


@pytest.fixture(scope='module')
def live(tmp_path_factory):
    site = LiveTrac(str(tmp_path_factory.mktemp('badcfg')),
                    {'smtp_enabled': 'true', 'smtp_server': '127.0.0.1'}
                    ).create()
    # written by hand after `trac-admin upgrade`, as an admin would: Trac's
    # Configuration.save() (run by upgrade) rewrites a wrong boolean as
    # 'disabled' or 'enabled', so it must not see these values
    ini = os.path.join(site.env_path, 'conf', 'trac.ini')
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    parser.read(ini, encoding='utf-8')
    for name, value in BAD.items():
        parser.set('notification', name, value)
    with open(ini, 'w', encoding='utf-8') as f:
        parser.write(f)
    site.start()
    yield site
    site.stop()


def test_trac_starts_tickets_save_and_the_log_names_each_value(live):
    alice = live.client('alice')
    ticket_id = alice.create_ticket(summary='Saved despite the config',
                                    description='x')
    alice.change_ticket(ticket_id, comment='Still saves')
    assert 'Saved despite the config' in alice.get('/ticket/%d' % ticket_id)
    assert 'Still saves' in alice.get('/ticket/%d' % ticket_id)
    deadline = time.monotonic() + 20
    missing = list(BAD)
    while missing and time.monotonic() < deadline:
        log = live.trac_log()
        missing = [o for o, v in BAD.items() if not named(log, o, v)]
        time.sleep(0.2)
    assert not missing, live.trac_log()[-5000:]
    assert 'Traceback' not in live.trac_log()


def test_admin_status_page_names_each_value(live):
    page = html.unescape(live.client('admin').get(
        '/admin/notification/status'))
    missing = [o for o, v in BAD.items() if not named(page, o, v)]
    assert not missing
    assert os.path.isdir(live.env_path)
