"""The SMTP transport against a real aiosmtpd server: plain, STARTTLS,
SMTPS, AUTH, certificate checks, clear errors, one connection per batch."""

import pytest

from tests.support.smtp_sink import SinkHandler
from tests.support.tickets import create_ticket, deliver

CC = 'carol@example.com, dave@example.com, erin@example.com, x@example.org'
COUNT = 5                      # reporter + 4 cc


class CountingHandler(SinkHandler):
    """Also records the client end of each connection that sent mail."""

    def __post_init__(self):
        super().__post_init__()
        self.peers = set()

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        self.peers.add(session.peer)
        return await super().handle_RCPT(server, session, envelope, address,
                                         rcpt_options)


def messages(env):
    """[(recipient, state, attempts, last_error)]"""
    return env.db_query("""SELECT recipient, state, attempts, last_error
                           FROM tracnotify_message ORDER BY id""")


def run(make_env, sink, **options):
    """Create a ticket with COUNT recipients and deliver it to *sink*."""
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   **options)
    create_ticket(env, cc=CC)
    return env, deliver(env)


def assert_all_sent(env, sink, report) -> None:
    assert report.sent == COUNT, report.errors
    assert len(sink.received) == COUNT
    assert {state for _r, state, _a, _e in messages(env)} == {'sent'}


def assert_all_retrying(env, sink, text: str) -> None:
    rows = messages(env)
    assert len(rows) == COUNT and sink.received == []
    for _rcpt, state, attempts, error in rows:
        assert (state, attempts) == ('pending', 1)
        assert text in error


def test_plain(make_env, smtp_sink):
    sink = smtp_sink()
    env, report = run(make_env, sink)
    assert_all_sent(env, sink, report)


def test_starttls(make_env, smtp_sink, tls_files):
    sink = smtp_sink('starttls')
    env, report = run(make_env, sink, use_tls='true',
                      smtp_ssl_cafile=tls_files['ca'])
    assert_all_sent(env, sink, report)


def test_smtps(make_env, smtp_sink, tls_files):
    sink = smtp_sink('smtps')
    env, report = run(make_env, sink, smtp_use_ssl='true',
                      smtp_ssl_cafile=tls_files['ca'])
    assert_all_sent(env, sink, report)


def test_auth(make_env, smtp_sink):
    sink = smtp_sink(auth=('trac', 's3cret'))
    env, report = run(make_env, sink, smtp_user='trac',
                      smtp_password='s3cret')
    assert_all_sent(env, sink, report)


def test_auth_over_starttls(make_env, smtp_sink, tls_files):
    sink = smtp_sink('starttls', auth=('trac', 's3cret'))
    env, report = run(make_env, sink, use_tls='true', smtp_user='trac',
                      smtp_password='s3cret',
                      smtp_ssl_cafile=tls_files['ca'])
    assert_all_sent(env, sink, report)


def test_wrong_password_is_recorded_and_retried(make_env, smtp_sink):
    sink = smtp_sink(auth=('trac', 's3cret'))
    env, report = run(make_env, sink, smtp_user='trac',
                      smtp_password='wrong')
    assert report.retrying == COUNT and report.dead == 0
    assert_all_retrying(env, sink, 'authentication failed')
    assert sink.auth_attempts >= 1
    env.config.set('notification', 'smtp_password', 's3cret')
    env.db_transaction("UPDATE tracnotify_message SET next_attempt=0")
    assert deliver(env).sent == COUNT


@pytest.mark.parametrize('mode, option', [('starttls', 'use_tls'),
                                          ('smtps', 'smtp_use_ssl')])
def test_untrusted_certificate_is_a_tls_failure(make_env, smtp_sink, mode,
                                                option):
    sink = smtp_sink(mode)
    env, report = run(make_env, sink, **{option: 'true'})
    assert report.retrying == COUNT
    assert_all_retrying(env, sink, 'TLS failure')
    assert 'CERTIFICATE_VERIFY_FAILED' in messages(env)[0][3]


def test_server_requiring_starttls_is_not_a_dead_letter(make_env,
                                                        smtp_sink):
    sink = smtp_sink('starttls')
    env, report = run(make_env, sink)          # use_tls not set
    assert report.dead == 0
    assert_all_retrying(env, sink, '530')


def test_server_requiring_auth_is_not_a_dead_letter(make_env, smtp_sink):
    sink = smtp_sink(auth=('trac', 's3cret'))
    env, report = run(make_env, sink)          # no smtp_user
    assert report.dead == 0
    assert_all_retrying(env, sink, '530')


def test_one_connection_per_batch(make_env, smtp_sink):
    handler = CountingHandler(
        rcpt_replies={'x@example.org': '550 5.1.1 no such user'},
        data_replies=['451 4.3.0 try later'])
    sink = smtp_sink(handler=handler)
    env, report = run(make_env, sink, outbox_batch_size='2')
    assert (report.sent, report.retrying, report.dead) == (COUNT - 2, 1, 1)
    assert len(handler.peers) == 1


def test_slow_server_times_out(make_env, smtp_sink):
    sink = smtp_sink(handler=SinkHandler(delay=1.5))
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   smtp_timeout='1')
    create_ticket(env)
    report = deliver(env)
    assert report.retrying == 1
    (_rcpt, state, _attempts, error), = messages(env)
    assert state == 'pending' and 'timed out' in error
