"""Servers that misbehave: each ends in a clear error recorded on the
message (``last_error``), a retry, never a hung worker or a lost mail.
Each server is a real socket server (``tests/support/bad_smtp.py``, or the
aiosmtpd sink with a self-signed or expired certificate)."""

import threading
import time

import pytest

from tests.support.bad_smtp import BadSmtpServer, make_cert
from tests.support.tickets import create_ticket, deliver

#: a delivery pass against a broken server must end within this
PASS_LIMIT = 20


def messages(env):
    return env.db_query("""SELECT recipient, state, attempts, last_error
                           FROM tracnotify_message ORDER BY id""")


def deliver_bounded(env):
    """One delivery pass in a thread; fails the test if it hangs."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(report=deliver(env)),
                              daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(PASS_LIMIT)
    assert not thread.is_alive(), 'the worker hung'
    return box['report'], time.monotonic() - start


def assert_retried_then_delivered(env, smtp_sink, text, **good_options):
    """Every message waits for a retry with *text* in its error; pointed at
    a working server, all of them go out: nothing was lost."""
    rows = messages(env)
    assert rows
    for _rcpt, state, attempts, error in rows:
        assert (state, attempts) == ('pending', 1)
        assert text in error, error
    sink = smtp_sink()
    env.config.set('notification', 'smtp_port', str(sink.port))
    for name, value in good_options.items():
        env.config.set('notification', name, value)
    env.db_transaction("UPDATE tracnotify_message SET next_attempt=0")
    report, _seconds = deliver_bounded(env)
    assert report.sent == len(rows), report.errors
    assert len(sink.wait_for(len(rows))) == len(rows)


@pytest.mark.parametrize('mode, text', [
    ('silent', 'timed out talking to 127.0.0.1'),
    ('drop_in_data', 'disconnected'),
    ('bad_starttls', 'TLS failure with 127.0.0.1'),
])
def test_broken_server(make_env, smtp_sink, mode, text):
    with BadSmtpServer(mode) as server:
        env = make_env(smtp_server='127.0.0.1', smtp_port=str(server.port),
                       smtp_timeout='1',
                       use_tls='true' if mode == 'bad_starttls' else 'false')
        create_ticket(env, cc='carol@example.com, dave@example.com')
        report, seconds = deliver_bounded(env)
        assert report.retrying == 3 and report.sent == report.dead == 0
        assert seconds < 10
        assert server.connections >= 1
    assert_retried_then_delivered(env, smtp_sink, text, use_tls='false')


@pytest.fixture(scope='module')
def certs(tmp_path_factory):
    import trustme
    folder = str(tmp_path_factory.mktemp('certs'))
    ca = trustme.CA()
    ca_file = folder + '/ca.pem'
    ca.cert_pem.write_to_path(ca_file)
    return {'ca': ca_file,
            'self': make_cert(folder),
            'expired': make_cert(folder, expired=True, issuer=ca)}


@pytest.mark.parametrize('mode', ['starttls', 'smtps'])
@pytest.mark.parametrize('cert, trust, text', [
    ('self', None, 'self-signed certificate'),
    ('expired', 'ca', 'certificate has expired'),
])
def test_bad_certificate_is_refused(make_env, smtp_sink, certs, mode, cert,
                                    trust, text):
    files = certs[cert]
    sink = smtp_sink(mode, tls=(files['cert'], files['key']))
    option = 'use_tls' if mode == 'starttls' else 'smtp_use_ssl'
    options = {option: 'true', 'smtp_timeout': '2'}
    if trust:
        options['smtp_ssl_cafile'] = certs[trust]
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   **options)
    create_ticket(env)
    report, _seconds = deliver_bounded(env)
    assert report.retrying == 1 and sink.received == []
    (_rcpt, state, attempts, error), = messages(env)
    assert (state, attempts) == ('pending', 1)
    assert 'TLS failure' in error and text in error, error


@pytest.mark.parametrize('mode', ['starttls', 'smtps'])
def test_self_signed_certificate_trusted_by_cafile(make_env, smtp_sink,
                                                   certs, mode):
    """smtp_ssl_cafile naming the server's own self-signed certificate is
    the explicit way to trust it."""
    files = certs['self']
    sink = smtp_sink(mode, tls=(files['cert'], files['key']))
    option = 'use_tls' if mode == 'starttls' else 'smtp_use_ssl'
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                   smtp_ssl_cafile=files['cert'], **{option: 'true'})
    create_ticket(env)
    report, _seconds = deliver_bounded(env)
    assert report.sent == 1, report.errors
