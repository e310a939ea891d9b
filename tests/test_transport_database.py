"""The database transport (a real SQLite file) and the reference relay
(contrib/tracnotify-relay.py, run as a real process)."""

import importlib.util
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.support.outbox_rows import stored_messages
from tests.support.tickets import change_ticket, create_ticket, deliver
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.transports import database
from tracnotify.delivery.transports.database import DatabaseTransport
from tracnotify.outbox import OutgoingMessage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELAY = os.path.join(ROOT, 'contrib', 'tracnotify-relay.py')
MSMTP = shutil.which('msmtp') or '/usr/bin/msmtp'


def outgoing(recipient, id=1, sender='trac@example.org') -> OutgoingMessage:
    msg = EmailMessage(policy=SMTP)
    msg['From'] = sender
    msg['To'] = recipient
    msg['Subject'] = 'Ticket #%d' % id
    msg['Message-ID'] = '<%d.test@example.org>' % id
    msg.set_content('Body of %d.\n.\nend\n' % id, cte='7bit')
    return OutgoingMessage(id, 1, 7, 'changed', '<%d@x>' % id, sender,
                           recipient, 'to', 'subject', msg.as_string(), 0)


def rows(path, columns='recipient, state, attempts'):
    with sqlite3.connect(path) as conn:
        return conn.execute('SELECT %s FROM tracnotify_mail ORDER BY id'
                            % columns).fetchall()


def relay(path, *args, timeout=30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RELAY, str(path), '--once',
                           '--retry-delay', '0'] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def recorder(tmp_path, exit_code=0) -> str:
    """A sendmail stand-in: appends its recipient to a log, keeps stdin."""
    path = tmp_path / 'fake-sendmail'
    path.write_text('#!/bin/sh\nfor a; do last="$a"; done\n'
                    'cat > "%s/$last.eml"\necho "$@" >> %s/calls\n'
                    '[ %d = 0 ] || { echo "try later" >&2; exit %d; }\n'
                    % (tmp_path, tmp_path, exit_code, exit_code))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def calls(tmp_path):
    log = tmp_path / 'calls'
    return log.read_text().splitlines() if log.exists() else []


# the transport -------------------------------------------------------------

def test_appends_messages_with_schema(tmp_path):
    path = str(tmp_path / 'db' / 'queue.sqlite')
    messages = [outgoing('a@example.net', 1), outgoing('b@example.net', 2)]
    transport = DatabaseTransport(path)
    assert [r.ok for r in transport.send(messages)] == [True, True]
    transport.close()
    assert rows(path, 'sender, recipient, message, digest, ticket, '
                'outbox_id, state, attempts, next_attempt') == [
        ('trac@example.org', m.recipient, m.data, database.digest(m.data), 7,
         m.id, 'queued', 0, 0) for m in messages]
    with sqlite3.connect(path) as conn:
        assert conn.execute('PRAGMA user_version').fetchone() == (1,)
        assert conn.execute('PRAGMA journal_mode').fetchone() == ('wal',)


def test_same_batch_twice_is_queued_once(tmp_path):
    path = str(tmp_path / 'queue.sqlite')
    transport = DatabaseTransport(path)
    batch = [outgoing('a@example.net', 1), outgoing('b@example.net', 2)]
    assert all(r.ok for r in transport.send(batch))
    assert all(r.ok for r in transport.send(batch + [outgoing('c@x.org', 3)]))
    assert [r[0] for r in rows(path)] == ['a@example.net', 'b@example.net',
                                          'c@x.org']


def test_locked_database_is_retryable_then_recovers(tmp_path):
    path = str(tmp_path / 'queue.sqlite')
    transport = DatabaseTransport(path, timeout=0.2)
    assert transport.send([outgoing('a@example.net', 1)])[0].ok
    other = sqlite3.connect(path, isolation_level=None)
    other.execute('BEGIN EXCLUSIVE')
    try:
        results = transport.send([outgoing('b@example.net', 2),
                                  outgoing('c@example.net', 3)])
    finally:
        other.execute('ROLLBACK')
        other.close()
    for result in results:
        assert not result.ok and not result.permanent
        assert 'database is locked' in result.error
    assert len(rows(path)) == 1
    assert all(r.ok for r in transport.send([outgoing('b@example.net', 2)]))
    assert len(rows(path)) == 2


def test_unusable_path_is_retryable(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    for path in (blocker / 'queue.sqlite', tmp_path):
        result, = DatabaseTransport(str(path)).send([outgoing('a@x.org')])
        assert not result.ok and not result.permanent
        assert result.error.startswith('cannot append to %s' % path)


def test_foreign_table_is_retryable(tmp_path):
    path = str(tmp_path / 'queue.sqlite')
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE tracnotify_mail (id INTEGER, body TEXT)')
    result, = DatabaseTransport(path).send([outgoing('a@x.org')])
    assert not result.ok and not result.permanent
    assert 'cannot append' in result.error and 'column' in result.error


def test_relative_path_is_in_the_environment(make_env):
    env = make_env(mail_transport='database')
    transport = Deliverer(env).transport
    assert isinstance(transport, DatabaseTransport)
    assert transport.path == os.path.join(env.path, 'db',
                                          'tracnotify-mail.sqlite')


# the relay -----------------------------------------------------------------

def test_relay_schema_is_the_transport_schema():
    spec = importlib.util.spec_from_file_location('relay', RELAY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SCHEMA == database.SCHEMA


def test_documented_schema_is_the_schema():
    with open(os.path.join(ROOT, 'docs', 'transports.md')) as f:
        doc = f.read()
    block = doc[doc.index('```sql') + 6:doc.index('-- PRAGMA')]

    def strip(sql):
        return ' '.join(re.sub(r'--[^\n]*', '', sql).split())

    assert strip(block) == strip(database.SCHEMA)


def test_relay_sends_each_message_once(tmp_path):
    path = tmp_path / 'queue.sqlite'
    messages = [outgoing('user%d@example.net' % i, i) for i in range(5)]
    DatabaseTransport(str(path)).send(messages)
    command = '%s -i -f {sender} -- {recipient}' % recorder(tmp_path)
    done = relay(path, '--command', command)
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == ['-i -f trac@example.org -- %s' % m.recipient
                               for m in messages]
    assert [r[1:] for r in rows(path)] == [('sent', 1)] * 5
    for m in messages:
        piped = (tmp_path / (m.recipient + '.eml')).read_bytes()
        assert piped == m.data.replace(b'\r\n', b'\n')
    assert relay(path, '--command', command).returncode == 0
    assert len(calls(tmp_path)) == 5                 # nothing sent twice


def test_relay_failure_retries_then_gives_up(tmp_path):
    path = tmp_path / 'queue.sqlite'
    DatabaseTransport(str(path)).send([outgoing('a@example.net')])
    command = '%s {recipient}' % recorder(tmp_path, exit_code=75)
    done = relay(path, '--command', command, '--max-attempts', '3')
    assert done.returncode == 1
    assert 'try later' in done.stderr
    (recipient, state, attempts, error), = rows(
        path, 'recipient, state, attempts, last_error')
    assert (state, attempts) == ('failed', 3)
    assert error.endswith('exited with status 75: try later')
    assert len(calls(tmp_path)) == 3


def test_relay_hung_command_times_out(tmp_path):
    path = tmp_path / 'queue.sqlite'
    DatabaseTransport(str(path)).send([outgoing('a@example.net')])
    done = relay(path, '--command', 'sleep 30', '--timeout', '1',
                 '--max-attempts', '1', timeout=10)
    assert done.returncode == 1
    assert rows(path, 'state, last_error') == [
        ('failed', 'sleep did not finish within 1.0 s and was killed')]


def test_relay_never_resends_a_claimed_message(tmp_path):
    """A relay that died after piping leaves 'sending': at most once."""
    path = tmp_path / 'queue.sqlite'
    DatabaseTransport(str(path)).send([outgoing('a@example.net', 1),
                                       outgoing('b@example.net', 2)])
    with sqlite3.connect(str(path)) as conn:
        conn.execute("UPDATE tracnotify_mail SET state='sending', "
                     "claimed_by='dead-relay', claimed_at=0 WHERE id=1")
    command = '%s {recipient}' % recorder(tmp_path)
    assert relay(path, '--command', command).returncode == 0
    assert calls(tmp_path) == ['b@example.net']
    assert rows(path, 'state') == [('sending',), ('sent',)]
    done = relay(path, '--command', command, '--requeue-stuck', '60')
    assert done.returncode == 0 and 'requeued 1' in done.stderr
    assert calls(tmp_path) == ['b@example.net', 'a@example.net']


def test_concurrent_relays_share_the_queue(tmp_path):
    path = tmp_path / 'queue.sqlite'
    messages = [outgoing('user%02d@example.net' % i, i) for i in range(40)]
    DatabaseTransport(str(path)).send(messages)
    command = '%s {recipient}' % recorder(tmp_path)
    procs = [subprocess.Popen([sys.executable, RELAY, str(path), '--once',
                               '--command', command]) for _ in range(4)]
    assert [p.wait(60) for p in procs] == [0] * 4
    assert sorted(calls(tmp_path)) == sorted(m.recipient for m in messages)
    assert {r[1] for r in rows(path)} == {'sent'}


@pytest.mark.skipif(not os.path.exists(MSMTP), reason='needs msmtp')
def test_ticket_change_through_queue_and_relay(make_env, smtp_sink,
                                               tmp_path):
    sink = smtp_sink()
    queue = tmp_path / 'queue.sqlite'
    env = make_env(mail_transport='database', mail_database=str(queue),
                   smtp_always_bcc='archive@example.net', smtp_port='1')
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, comment='Fixed.', status='closed',
                  resolution='fixed')
    report = deliver(env)
    assert report.retrying == report.dead == 0
    assert len(rows(queue)) == report.sent >= 4
    command = ('%s --host=127.0.0.1 --port=%d -i -f {sender} -- {recipient}'
               % (MSMTP, sink.port))
    done = relay(queue, '--command', command)
    assert done.returncode == 0, done.stderr
    received = sink.wait_for(report.sent)
    assert len(received) == report.sent
    stored = stored_messages(env)
    for item in received:
        assert 'Bcc' not in item.message
        assert item.data == stored[(item.rcpt_tos[0],
                                    item.message['Message-ID'])].encode()
    assert sum(r.rcpt_tos == ['archive@example.net'] for r in received) == 2
    assert relay(queue, '--command', command).returncode == 0
    assert len(sink.wait_for(report.sent + 1, timeout=0.5)) == report.sent
