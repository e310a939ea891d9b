"""Shared fixtures: real Trac environments, real SMTP servers, TLS files.

Database tests run on SQLite, and also on PostgreSQL when
``TRACNOTIFY_PG_URI`` names a server (``.ci/run`` starts one), e.g.
``postgres://tracnotify:tracnotify@127.0.0.1/tracnotify?schema=tractest``.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.envs import make_stub_env  # noqa: E402
from tests.support.smtp_sink import SmtpSink  # noqa: E402
from tests.support.tickets import add_users  # noqa: E402


def _private_schema(uri: str) -> str:
    """The same server and database, in a schema of this test run's own, so
    that runs side by side do not share tables."""
    if not uri:
        return ''
    return '%s?schema=tracnotify_test_%d' % (uri.split('?', 1)[0],
                                             os.getpid())


PG_URI = _private_schema(os.environ.get('TRACNOTIFY_PG_URI', ''))
BACKENDS = ['sqlite'] + (['postgres'] if PG_URI else [])


@pytest.fixture(scope='session', autouse=True)
def _drop_private_schema():
    yield
    if PG_URI:
        import psycopg2
        base = PG_URI.split('?', 1)[0]
        schema = PG_URI.split('schema=', 1)[1]
        conn = psycopg2.connect(base)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % schema)
        conn.close()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each database test runs once per available backend."""
    return request.param


@pytest.fixture
def make_env(backend, tmp_path):
    """Factory: a real Trac environment (EnvironmentStub) with tracnotify
    enabled, its tables created, and ``[notification]`` set from kwargs."""
    envs = []

    def factory(**options):
        env = make_stub_env(str(tmp_path / ('env%d' % len(envs))),
                            PG_URI if backend == 'postgres' else None,
                            options)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        from tracnotify.delivery.service import DeliveryService
        DeliveryService(env).stop(2)
        env.reset_db()
        env.shutdown()


@pytest.fixture(scope='session')
def tls_files(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 (made by trustme), in
    pytest's own temporary folder."""
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1', 'localhost')
    folder = str(tmp_path_factory.mktemp('tls'))
    paths = {
        'ca': os.path.join(folder, 'ca.pem'),
        'cert': os.path.join(folder, 'cert.pem'),
        'key': os.path.join(folder, 'key.pem'),
    }
    ca.cert_pem.write_to_path(paths['ca'])
    cert.cert_chain_pems[0].write_to_path(paths['cert'])
    cert.private_key_pem.write_to_path(paths['key'])
    return paths


@pytest.fixture
def smtp_sink(tls_files):
    """Factory: start a real aiosmtpd server (plain/starttls/smtps, AUTH)."""
    sinks = []

    def factory(mode='plain', **kwargs):
        if mode != 'plain':
            kwargs.setdefault('tls', (tls_files['cert'], tls_files['key']))
        sink = SmtpSink(mode, **kwargs).start()
        sinks.append(sink)
        return sink

    yield factory
    for sink in sinks:
        sink.stop()


@pytest.fixture
def sink(smtp_sink):
    """A plain SMTP server; ``sink_env`` environments deliver to it."""
    return smtp_sink()


@pytest.fixture
def sink_env(make_env, sink):
    """Factory: ``make_env(**options)`` delivering to ``sink``, with *users*
    ((username, name, email) tuples) known to Trac."""
    def factory(users=(), **options):
        env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port),
                       **options)
        add_users(env, *users)
        return env
    return factory


@pytest.fixture
def tokens(monkeypatch):
    """Unsubscribe tokens from a counter: ``tokens()`` starts it again."""
    from tests.support.outbox_rows import counted_tokens
    return counted_tokens(monkeypatch)
