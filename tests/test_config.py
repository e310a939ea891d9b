"""``load_config``: every bad value is a named error and a default, never an
exception; without smtp_from and smtp_replyto nothing is sent."""

import logging
import time

import pytest

from tests.support.tickets import create_ticket, deliver
from tracnotify.config import load_config

BAD_VALUES = [
    # option, bad value, attribute, the default used instead
    ('smtp_port', 'abc', 'smtp_port', 25),
    ('smtp_port', '70000', 'smtp_port', 25),
    ('smtp_port', '0', 'smtp_port', 25),
    ('mime_encoding', 'rot13', 'mime_encoding', 'none'),
    ('smtp_enabled', 'maybe', 'smtp_enabled', False),
    ('use_public_cc', 'perhaps', 'use_public_cc', False),
    ('smtp_timeout', '-5', 'smtp_timeout', 30),
    ('outbox_max_attempts', 'many', 'max_attempts', 8),
    ('outbox_retry_delay', '0', 'retry_delay', 60),
    ('delivery', 'carrier-pigeon', 'delivery', 'inline'),
    ('smtp_from', 'not an address', 'smtp_from', ''),
    ('smtp_from', 'trac@@example.org', 'smtp_from', ''),
    ('smtp_from', 'Trac <trac@example.org>', 'smtp_from', ''),
    ('smtp_replyto', 'a b@example.org', 'smtp_replyto', ''),
    ('smtp_ssl_cafile', '/no/such/ca.pem', 'smtp_ssl_cafile', ''),
]


@pytest.mark.parametrize('option, value, attribute, default', BAD_VALUES)
def test_bad_value_is_named_error_and_default(make_env, option, value,
                                              attribute, default):
    env = make_env(**{option: value})
    config = load_config(env)
    assert getattr(config, attribute) == default
    named = [e for e in config.errors if option in e]
    assert named, config.errors
    assert value in named[0] or repr(value) in named[0]


def test_good_values_give_no_errors(make_env, tls_files):
    env = make_env(smtp_port='2525', mime_encoding='base64', use_tls='true',
                   smtp_ssl_cafile=tls_files['ca'], smtp_from='trac',
                   smtp_default_domain='example.org')
    config = load_config(env)
    assert config.errors == []
    assert (config.smtp_port, config.mime_encoding, config.use_tls) == \
        (2525, 'base64', True)
    assert config.smtp_from == 'trac@example.org'


def test_quoted_printable_is_qp(make_env):
    assert load_config(make_env(mime_encoding='quoted-printable')) \
        .mime_encoding == 'qp'


def test_use_tls_and_smtps_together(make_env):
    config = load_config(make_env(use_tls='true', smtp_use_ssl='true'))
    assert (config.use_tls, config.smtp_use_ssl) == (False, True)
    assert any('use_tls' in e and 'smtp_use_ssl' in e for e in config.errors)


def test_smtps_default_port(make_env):
    env = make_env(smtp_use_ssl='true')
    env.config.remove('notification', 'smtp_port')
    assert load_config(env).smtp_port == 465


def test_missing_base_url_is_reported(make_env):
    env = make_env()
    env.config.set('trac', 'base_url', '')
    assert any('base_url' in e for e in load_config(env).errors)


def test_bad_values_never_break_a_ticket_save_or_a_pass(make_env):
    options = {option: value for option, value, _a, _d in BAD_VALUES
               if option not in ('smtp_enabled', 'smtp_from')}
    env = make_env(**options)
    create_ticket(env)
    deliver(env)


def test_no_sender_address_sends_nothing_and_says_why(make_env, smtp_sink,
                                                      caplog):
    sink = smtp_sink()
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   smtp_from='', smtp_replyto='')
    config = load_config(env)
    assert not config.can_send
    assert any('smtp_from' in e and 'smtp_replyto' in e
               for e in config.errors)
    create_ticket(env)
    assert deliver(env).attempted == 0
    assert sink.received == []

    # the delivery thread logs the reason
    env.config.set('notification', 'delivery', 'inline')
    with caplog.at_level(logging.WARNING):
        create_ticket(env)
        deadline = time.monotonic() + 5
        while 'neither smtp_from nor smtp_replyto' not in caplog.text and \
                time.monotonic() < deadline:
            time.sleep(0.05)
    assert 'neither smtp_from nor smtp_replyto' in caplog.text
    assert sink.received == []


def test_mail_options_are_read_into_the_config(make_env):
    """The mail's own options are read by load_config alone (the mail
    modules take them from NotifyConfig): Trac's defaults, then the
    values set."""
    env = make_env()
    config = load_config(env)
    assert config.smtp_subject_prefix == '__default__'
    assert config.ticket_subject_template == \
        '${prefix} #${ticket.id}: ${summary}'
    assert config.batch_subject_template == \
        '${prefix} Batch modify: ${tickets_descr}'
    assert config.ambiwidth == 1
    env = make_env(smtp_subject_prefix='[X]', ambiguous_char_width='double',
                   ticket_subject_template='${summary}',
                   batch_subject_template='B ${tickets_descr}')
    env.config.set('trac', 'default_timezone', 'Europe/Berlin')
    config = load_config(env)
    assert (config.smtp_subject_prefix, config.ticket_subject_template,
            config.batch_subject_template, config.ambiwidth,
            config.default_timezone) == ('[X]', '${summary}',
                                         'B ${tickets_descr}', 2,
                                         'Europe/Berlin')
