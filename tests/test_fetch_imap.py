"""`trac-admin ENV notify fetch` against Debian's Dovecot on 127.0.0.1 (a
private configuration on free ports, its own Maildirs): a reply and
bounces delivered into the mailbox are taken, a failure is moved aside,
a locked database leaves the message for later; STARTTLS and implicit
TLS with certificate checks; the password is never shown; `notify
worker` fetches at imap_fetch_interval."""

import os
import sqlite3
import subprocess
import sys
import uuid

import pytest
from trac.env import Environment
from trac.web.session import DetachedSession

from tests.support.bounce_mail import bounce_bytes
from tests.support.disk_env import make_disk_env
from tests.support.dovecot import DOVECOT, PrivateDovecot
from tests.support.inbound import (
    REPLY_ADDRESS,
    comments,
    issue_token,
    reply_mail,
    reply_to,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.tickets import change_ticket, create_ticket
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.worker import Worker
from tracnotify.inbound import bounce_record
from tracnotify.inbound.fetch import FetchError, MailboxFetcher, load_fetch_settings
from tracnotify.mail import suppression

pytestmark = pytest.mark.skipif(not os.path.exists(DOVECOT),
                                reason='dovecot-imapd is not installed')
BOUNCE = 'trac+bounce-{token}@example.org'
ALICE = 'alice@example.net'


@pytest.fixture(scope='module')
def dovecot(tmp_path_factory):
    import trustme
    folder = tmp_path_factory.mktemp('imap-tls')
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1', 'localhost')
    cert.private_key_pem.write_to_path(str(folder / 'key.pem'))
    cert.cert_chain_pems[0].write_to_path(str(folder / 'cert.pem'))
    ca.cert_pem.write_to_path(str(folder / 'ca.pem'))
    server = PrivateDovecot((str(folder / 'cert.pem'),
                             str(folder / 'key.pem'))).start()
    server.cafile = str(folder / 'ca.pem')
    yield server
    server.stop()


@pytest.fixture(scope='module')
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def site(tmp_path_factory, dovecot, sink):
    """A Trac environment on disk, whose copies to alice went out through
    the sink with their VERP envelope senders; its own IMAP user."""
    user = 'trac-%s' % uuid.uuid4().hex[:8]
    path = make_disk_env(str(tmp_path_factory.mktemp('fetch')), {
        'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
        'smtp_server': '127.0.0.1', 'smtp_port': str(sink.port),
        'delivery': 'worker', 'bounce_address': BOUNCE,
        'bounce_threshold': '2', 'reply_address': REPLY_ADDRESS,
        'imap_host': '127.0.0.1', 'imap_port': str(dovecot.port),
        'imap_tls': 'starttls', 'imap_ssl_cafile': dovecot.cafile,
        'imap_user': user, 'imap_password': dovecot.password,
        'always_notify_reporter': 'true', 'batch_window': '0'})
    env = Environment(path)
    for sid in ('alice', 'bob'):
        session = DetachedSession(env, sid)
        session['email'] = '%s@example.net' % sid
        session.save()
    ticket = create_ticket(env, reporter='alice')
    change_ticket(env, ticket.id, author='bob', comment='Second change.')
    sink.received.clear()
    Deliverer(env).run_once()
    copies = [(r.mail_from, r.message['Message-ID']) for r in sink.received
              if r.rcpt_tos == [ALICE]]
    assert len(copies) == 2
    yield path, env, ticket.id, user, copies
    env.shutdown()


def notify_fetch(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'trac.admin.console', path,
                           'notify', 'fetch'] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_fetch_takes_replies_and_bounces_and_moves_failures_aside(
        site, dovecot):
    path, env, ticket, user, copies = site
    token = issue_token(env, ticket, 'bob', 'bob@example.net')
    dovecot.deliver(reply_mail(reply_to(token), 'bob@example.net',
                               'Replied by mail, fetched by IMAP.'),
                    user=user)
    (verp1, msgid1), (verp2, msgid2) = copies
    dovecot.deliver(bounce_bytes('dsn_hard', verp=verp1, recipient=ALICE,
                                 message_id=msgid1), user=user)
    forged = verp2[:verp2.index('-', len('trac+bounce-')) + 1] + \
        '0' * 20 + '@example.org'
    dovecot.deliver(bounce_bytes('postfix_legacy', verp=forged,
                                 recipient=ALICE), user=user)
    done = notify_fetch(path)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert 'Fetched 3 message(s)' in done.stdout
    assert '2 taken, 1 moved to tracnotify-failed, 0 left' in done.stdout
    assert dovecot.password not in done.stdout + done.stderr
    assert dovecot.messages(user=user) == []
    aside = dovecot.messages('tracnotify-failed', user=user)
    assert len(aside) == 1 and forged.encode() in aside[0][1]
    assert comments(env, ticket)[-1] == ('bob',
                                         'Replied by mail, fetched by IMAP.')
    assert bounce_record.bounce_state(env, ALICE).total == 1
    assert suppression.suppression(env, ALICE) is None
    # the Postfix-style bounce of the other copy: the threshold (2)
    dovecot.deliver(bounce_bytes('postfix_legacy', verp=verp2,
                                 recipient=ALICE, message_id=msgid2),
                    user=user)
    done = notify_fetch(path, '--quiet')
    assert done.returncode == 0 and done.stdout == '', done.stderr
    assert dovecot.messages(user=user) == []
    assert suppression.suppression(env, ALICE) == suppression.BOUNCED
    # nothing left: nothing done
    done = notify_fetch(path)
    assert 'Fetched 0 message(s)' in done.stdout


def test_a_locked_database_leaves_the_message_for_later(site, dovecot):
    path, env, ticket, user, copies = site
    token = issue_token(env, ticket, 'bob', 'bob@example.net')
    dovecot.deliver(reply_mail(reply_to(token), 'bob@example.net',
                               'Waits for the lock.'), user=user)
    ini = os.path.join(path, 'conf', 'trac.ini')
    with open(ini) as f:
        saved = f.read()
    with open(ini, 'w') as f:          # wait 1 s for the lock, not 10
        f.write(saved.replace('sqlite:db/trac.db',
                              'sqlite:db/trac.db?timeout=1'))
    lock = sqlite3.connect(os.path.join(path, 'db', 'trac.db'))
    try:
        lock.execute('BEGIN IMMEDIATE')
        done = notify_fetch(path)
    finally:
        lock.rollback()
        lock.close()
        with open(ini, 'w') as f:
            f.write(saved)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert '0 taken, 0 moved to tracnotify-failed, 1 left' in done.stdout
    assert 'temporary failure' in done.stderr
    assert len(dovecot.messages(user=user)) == 1
    done = notify_fetch(path)
    assert done.returncode == 0 and '1 taken' in done.stdout
    assert comments(env, ticket)[-1] == ('bob', 'Waits for the lock.')


def settings_for(env, dovecot, user, **changes):
    for name, value in changes.items():
        env.config.set('notification', name, value)
    env.config.set('notification', 'imap_user', user)
    return load_fetch_settings(env)


@pytest.mark.parametrize('tls', ['ssl', 'starttls'])
def test_tls_with_a_checked_certificate(make_env, dovecot, tls):
    env = make_env(bounce_address=BOUNCE)
    user = 'tls-%s' % uuid.uuid4().hex[:8]
    settings = settings_for(
        env, dovecot, user, imap_host='127.0.0.1', imap_tls=tls,
        imap_port=str(dovecot.ssl_port if tls == 'ssl' else dovecot.port),
        imap_ssl_cafile=dovecot.cafile, imap_password=dovecot.password)
    assert settings.errors == []
    dovecot.deliver(bounce_bytes(
        'vacation', verp='trac+bounce-1-0123456789abcdef0123@example.org'),
        user=user)
    report = MailboxFetcher(env, settings).run()
    assert (report.taken, report.moved, report.left) == (0, 1, 0)
    assert report.kinds == {'bounce': 1}      # a forged token: aside
    # the system's CAs do not know the test CA: refused, before login
    settings.cafile = ''
    with pytest.raises(FetchError) as failed:
        MailboxFetcher(env, settings).run()
    assert 'TLS failure' in str(failed.value) or 'certificate' in \
        str(failed.value)


def test_a_wrong_password_is_a_clear_error_that_never_shows_it(make_env,
                                                               dovecot):
    env = make_env()
    settings = settings_for(env, dovecot, 'someone', imap_host='127.0.0.1',
                            imap_tls='none', imap_port=str(dovecot.port),
                            imap_password='Wrong-Secret-42')
    with pytest.raises(FetchError) as failed:
        MailboxFetcher(env, settings).run()
    text = str(failed.value)
    assert 'login as someone refused' in text
    assert 'Wrong-Secret-42' not in text
    assert 'Wrong-Secret-42' not in repr(settings)


def test_the_settings_form_never_shows_the_imap_password(make_env):
    from tracnotify.web import settings_form
    env = make_env(imap_password='Stored-Secret-7')
    fields = settings_form.all_fields(settings_form.build_fields(env.config))
    field = fields['imap_password']
    assert field.kind == 'password' and field.value == '' and field.is_set
    values = settings_form.parse_form(settings_form.build_fields(env.config),
                                      {'imap_host': ''})
    assert 'imap_password' not in values           # empty: kept
    values = settings_form.parse_form(settings_form.build_fields(env.config),
                                      {'imap_password_clear': '1'})
    assert values['imap_password'] == ''


def test_bad_imap_options_are_messages(make_env):
    env = make_env(imap_host='imap.example.org', imap_tls='tls',
                   imap_port='99999', imap_ssl_cafile='/no/such.pem')
    settings = load_fetch_settings(env)
    assert (settings.tls, settings.port, settings.cafile) == \
        ('starttls', 143, '')
    assert len(settings.errors) == 4      # the three and imap_user unset
    assert any('imap_user' in e for e in settings.errors)


def test_notify_worker_fetches_at_its_interval(make_env, dovecot):
    env = make_env(bounce_address=BOUNCE, smtp_server='127.0.0.1',
                   smtp_port='1')
    user = 'worker-%s' % uuid.uuid4().hex[:8]
    settings_for(env, dovecot, user, imap_host='127.0.0.1', imap_tls='none',
                 imap_port=str(dovecot.port), imap_password=dovecot.password,
                 imap_fetch_interval='3600')
    dovecot.deliver(reply_mail('nobody@example.org', 'x@example.net',
                               'Not for anyone.'), user=user)
    worker = Worker(env)
    worker.run_pass()
    assert worker.fetcher.runs == 1
    assert dovecot.messages(user=user) == []       # taken (or aside)
    dovecot.deliver(reply_mail('nobody@example.org', 'x@example.net',
                               'Later.'), user=user)
    worker.run_pass()                               # not due yet
    assert worker.fetcher.runs == 1
    assert len(dovecot.messages(user=user)) == 1
    env.config.set('notification', 'imap_fetch_interval', '0')
    worker.run_pass()
    assert worker.fetcher.runs == 1


def test_an_internal_error_is_moved_aside_not_retried_forever(make_env,
                                                              dovecot):
    """receive() answers 75 for a bug too; no retry cures that one, so it
    must not block the folder at every run (the handler stands in for a
    receive() that hits a bug: the mailbox handling is what is tested)."""
    from tracnotify.inbound.receive import EX_TEMPFAIL, Outcome, receive
    env = make_env()
    user = 'bug-%s' % uuid.uuid4().hex[:8]
    settings = settings_for(env, dovecot, user, imap_host='127.0.0.1',
                            imap_tls='none', imap_port=str(dovecot.port),
                            imap_password=dovecot.password)
    for i in range(2):
        dovecot.deliver(reply_mail('nobody@example.org', 'x@example.net',
                                   'Message %d.' % i), user=user)

    def buggy(env, raw):
        if b'Message 0.' in raw:
            return Outcome(EX_TEMPFAIL, 'unknown', 'failed',
                           'internal error: KeyError: 1')
        return receive(env, raw)
    report = MailboxFetcher(env, settings, buggy).run()
    assert (report.moved, report.left) == (2, 0)   # the second: 67, aside
    assert dovecot.messages(user=user) == []
    assert len(dovecot.messages('tracnotify-failed', user=user)) == 2
