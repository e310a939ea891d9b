"""The sendmail transport: Debian's msmtp against a real SMTP sink, and
scripts that record, fail and hang."""

import os
import shutil
import stat
import time
from email.message import EmailMessage
from email.policy import SMTP
from types import SimpleNamespace

import pytest

from tests.support.outbox_rows import stored_messages
from tests.support.smtp_sink import free_port
from tests.support.tickets import change_ticket, create_ticket, deliver
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.transports import UnusableTransport, create_transport
from tracnotify.delivery.transports.sendmail import SendmailSettings, SendmailTransport
from tracnotify.outbox import OutgoingMessage

MSMTP = shutil.which('msmtp') or '/usr/bin/msmtp'
needs_msmtp = pytest.mark.skipif(not os.path.exists(MSMTP),
                                 reason='msmtp is not installed')
DOTTED = 'first line\n.\n..two dots\n.leading dot\nlast line\n'


def outgoing(recipient, to=None, body=DOTTED, id=1, cc=None,
             sender='trac@example.org') -> OutgoingMessage:
    msg = EmailMessage(policy=SMTP)
    msg['From'] = sender
    msg['To'] = to if to is not None else recipient
    if cc:
        msg['Cc'] = cc
    msg['Subject'] = 'Ticket #%d' % id
    msg['Message-ID'] = '<%d.test@example.org>' % id
    msg.set_content(body, cte='7bit')
    return OutgoingMessage(id, 1, 1, 'changed', '<%d@x>' % id, sender,
                           recipient, 'cc', 'subject', msg.as_string(), 0)


def content(received) -> str:
    return received.message.get_content().replace('\r\n', '\n')


def msmtp_args(sink) -> str:
    return '--host=127.0.0.1 --port=%d -f {sender}' % sink.port


def msmtp(sink, **kwargs) -> SendmailTransport:
    settings = SendmailSettings(path=MSMTP, args=msmtp_args(sink).split(),
                                **kwargs)
    return SendmailTransport(settings)


def script(tmp_path, body: str, name='fake-sendmail') -> str:
    path = tmp_path / name
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def recorder(tmp_path) -> str:
    """A sendmail stand-in that saves its argv and stdin."""
    return script(tmp_path, 'printf "%%s\\n" "$@" > %s/argv\ncat > %s/stdin\n'
                  % (tmp_path, tmp_path))


# msmtp, a real sendmail-compatible program --------------------------------

@needs_msmtp
def test_msmtp_delivers_whole_message_with_dot_lines(smtp_sink):
    sink = smtp_sink()
    results = msmtp(sink).send([outgoing('alice@example.net')])
    assert results[0].ok, results[0].error
    received, = sink.wait_for(1)
    assert received.mail_from == 'trac@example.org'
    assert received.rcpt_tos == ['alice@example.net']
    assert content(received) == DOTTED
    assert received.message['Subject'] == 'Ticket #1'


@needs_msmtp
def test_msmtp_bcc_copy_reaches_envelope_recipient_only(smtp_sink):
    sink = smtp_sink()
    copy = outgoing('secret@example.net', to='undisclosed-recipients: ;')
    assert msmtp(sink).send([copy])[0].ok
    received, = sink.wait_for(1)
    assert received.rcpt_tos == ['secret@example.net']
    assert b'secret@example.net' not in received.data
    assert 'Bcc' not in received.message


@needs_msmtp
def test_msmtp_headers_mode_reads_recipients_from_headers(smtp_sink):
    sink = smtp_sink()
    transport = msmtp(sink, recipients='headers')
    results = transport.send([
        outgoing('alice@example.net', id=1),
        outgoing('secret@example.net', to='undisclosed-recipients: ;', id=2),
        outgoing('bob@example.net', to='bob@example.net',
                 cc='carol@example.net', id=3),
    ])
    assert results[0].ok, results[0].error
    assert not results[1].ok and results[1].permanent
    assert 'Bcc' in results[1].error
    assert not results[2].ok and results[2].permanent
    assert 'carol@example.net' in results[2].error
    received, = sink.wait_for(1)
    assert received.rcpt_tos == ['alice@example.net']
    assert content(received) == DOTTED


@needs_msmtp
def test_msmtp_refusal_is_retryable_with_its_stderr(smtp_sink):
    sink = smtp_sink()
    sink.handler.rcpt_replies['nobody@example.net'] = '550 5.1.1 no such user'
    results = msmtp(sink).send([outgoing('nobody@example.net', id=1),
                                outgoing('alice@example.net', id=2)])
    assert not results[0].ok and not results[0].permanent
    assert 'exited with status' in results[0].error
    assert '550 5.1.1 no such user' in results[0].error
    assert results[1].ok
    assert [r.rcpt_tos for r in sink.wait_for(1)] == [['alice@example.net']]


@needs_msmtp
def test_msmtp_unreachable_server_is_retryable():
    closed = SimpleNamespace(port=free_port())
    result, = msmtp(closed).send([outgoing('alice@example.net')])
    assert not result.ok and not result.permanent
    assert 'cannot connect' in result.error or 'refused' in result.error


# scripts -------------------------------------------------------------------

def test_command_line_and_stdin(tmp_path):
    settings = SendmailSettings(path=recorder(tmp_path))
    result, = SendmailTransport(settings).send(
        [outgoing('-oQ/tmp@example.net')])
    assert result.ok, result.error
    argv = (tmp_path / 'argv').read_text().splitlines()
    assert argv == ['-i', '-f', 'trac@example.org', '--',
                    '-oQ/tmp@example.net']
    data = (tmp_path / 'stdin').read_bytes()
    assert b'\r' not in data            # native line ends for a local program
    assert data.endswith(b'\n\n' + DOTTED.encode())


def test_headers_mode_command_line(tmp_path):
    settings = SendmailSettings(path=recorder(tmp_path), recipients='headers',
                                args=['-f', '{sender}', '-oem'])
    assert SendmailTransport(settings).send([outgoing('a@example.net')])[0].ok
    argv = (tmp_path / 'argv').read_text().splitlines()
    assert argv == ['-i', '-t', '-f', 'trac@example.org', '-oem']


def test_non_zero_exit_is_retryable_with_stderr(tmp_path):
    path = script(tmp_path, 'cat >/dev/null\n'
                  'echo "queue directory is full" >&2\nexit 75\n')
    transport = SendmailTransport(SendmailSettings(path=path))
    results = transport.send([outgoing('a@example.net', id=1),
                              outgoing('b@example.net', id=2)])
    for result in results:
        assert not result.ok and not result.permanent
        assert result.error == '%s exited with status 75: queue directory ' \
            'is full' % path


def test_program_that_does_not_read_its_input(tmp_path):
    path = script(tmp_path, 'echo "no, thanks" >&2\nexit 1\n')
    big = outgoing('a@example.net', body='x' * 70 + '\n' * 20000)
    result, = SendmailTransport(SendmailSettings(path=path)).send([big])
    assert not result.ok and 'no, thanks' in result.error


def test_hung_command_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / 'child.pid'
    path = script(tmp_path, 'echo "stuck talking to relay" >&2\n'
                  'sleep 30 &\necho $! > %s\nwait\n' % pidfile)
    transport = SendmailTransport(SendmailSettings(path=path, timeout=1))
    started = time.monotonic()
    result, = transport.send([outgoing('a@example.net')])
    assert time.monotonic() - started < 5
    assert not result.ok and not result.permanent
    assert 'did not finish within 1 s' in result.error
    assert 'stuck talking to relay' in result.error
    child = int(pidfile.read_text())
    for _ in range(50):                 # the orphaned sleep is gone too
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail('child process %d survived the timeout' % child)


def test_missing_program_is_retryable(tmp_path):
    settings = SendmailSettings(path=str(tmp_path / 'no-such-sendmail'))
    result, = SendmailTransport(settings).send([outgoing('a@example.net')])
    assert not result.ok and not result.permanent
    assert result.error.startswith('cannot run %s' % settings.path)


def test_killed_by_signal(tmp_path):
    path = script(tmp_path, 'kill -TERM $$\n')
    result, = SendmailTransport(SendmailSettings(path=path)).send(
        [outgoing('a@example.net')])
    assert not result.ok and 'killed by signal 15' in result.error


# choosing it through trac.ini ------------------------------------------------

def test_email_sender_sendmail_selects_sendmail_path(make_env, tmp_path):
    env = make_env(email_sender='SendmailEmailSender',
                   sendmail_path='/opt/bin/sendmail')
    transport = Deliverer(env).transport
    assert isinstance(transport, SendmailTransport)
    assert transport.settings.path == '/opt/bin/sendmail'
    assert transport.command('t@x', 'r@y') == [
        '/opt/bin/sendmail', '-i', '-f', 't@x', '--', 'r@y']


def test_bad_sendmail_options_are_messages(make_env):
    env = make_env(mail_transport='sendmail', sendmail_timeout='soon',
                   sendmail_recipients='bcc')
    transport = create_transport(None, env)
    assert transport.settings.timeout == 30
    assert transport.settings.recipients == 'envelope'
    env = make_env(mail_transport='sendmail', sendmail_args='-f {from}')
    transport = create_transport(None, env)
    assert isinstance(transport, UnusableTransport)
    result, = transport.send([outgoing('a@example.net')])
    assert not result.ok and not result.permanent
    assert '{from}' in result.error and 'sendmail_args' in result.error
    env = make_env(mail_transport='sendmail', sendmail_args='-f "{sender}')
    assert 'cannot be split' in create_transport(None, env).error


@needs_msmtp
def test_ticket_change_through_msmtp(make_env, smtp_sink):
    sink = smtp_sink()
    env = make_env(mail_transport='sendmail', sendmail_path=MSMTP,
                   sendmail_args=msmtp_args(sink),
                   smtp_always_bcc='archive@example.net',
                   smtp_port='1')     # SMTP itself would fail
    # the footer repeats the project description at the start of a line
    env.config.set('project', 'descr', '.\n.. and after the dot')
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, comment='A line with one dot:\n.\nmore')
    report = deliver(env)
    assert report.retrying == report.dead == 0
    received = sink.wait_for(report.sent)
    assert report.sent == len(received) >= 4
    archive = [r for r in received if r.rcpt_tos == ['archive@example.net']]
    assert len(archive) == 2
    stored = {key: text.encode()
              for key, text in stored_messages(env).items()}
    for item in received:
        assert 'Bcc' not in item.message
        assert item.data == stored[(item.rcpt_tos[0],
                                    item.message['Message-ID'])]
    for item in received:
        assert b'\r\n.\r\n.. and after the dot\r\n' in item.data
