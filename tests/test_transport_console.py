"""The console transport, and how [notification] chooses a transport."""

import io
import logging
import sys
from email.message import EmailMessage
from email.policy import SMTP

from tests.support.tickets import change_ticket, create_ticket, deliver
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.transports import (
    UnusableTransport,
    build_transport,
    create_transport,
    load_transport_options,
)
from tracnotify.delivery.transports.console import ConsoleTransport
from tracnotify.delivery.transports.options import TransportSettings, option_components
from tracnotify.delivery.transports.sendmail import SendmailTransport
from tracnotify.delivery.transports.smtp import SmtpTransport
from tracnotify.outbox import OutgoingMessage


def outgoing(recipient, id=1) -> OutgoingMessage:
    msg = EmailMessage(policy=SMTP)
    msg['From'] = 'trac@example.org'
    msg['To'] = 'undisclosed-recipients: ;'
    msg['Subject'] = 'Ticket #%d' % id
    msg.set_content('Body of %d.\n' % id)
    return OutgoingMessage(id, 1, 1, 'changed', '<%d@x>' % id,
                           'trac@example.org', recipient, 'bcc', 'subject',
                           msg.as_string(), 0)


def test_stdout_shows_envelope_and_message(capsys):
    results = ConsoleTransport('stdout').send([outgoing('a@x.org', 1),
                                               outgoing('b@x.org', 2)])
    assert [r.ok for r in results] == [True, True]
    out = capsys.readouterr().out
    assert '\r' not in out
    first, second = out.split('Envelope-From: ')[1:]
    assert 'Envelope-To: a@x.org\n\n' in first and 'Body of 1.' in first
    assert 'Envelope-To: b@x.org\n\n' in second and 'Subject: Ticket #2' in \
        second


def test_stderr(capsys):
    assert ConsoleTransport('stderr').send([outgoing('a@x.org')])[0].ok
    captured = capsys.readouterr()
    assert captured.out == '' and 'Envelope-To: a@x.org' in captured.err


def test_log(caplog):
    log = logging.getLogger('tracnotify.test.console')
    with caplog.at_level(logging.INFO, logger=log.name):
        assert ConsoleTransport('log', log).send([outgoing('a@x.org')])[0].ok
    record, = caplog.records
    assert record.levelno == logging.INFO
    assert 'not sent' in record.getMessage()
    assert 'Subject: Ticket #1' in record.getMessage()


def test_closed_stream_is_retryable(monkeypatch):
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, 'stdout', closed)
    result, = ConsoleTransport('stdout').send([outgoing('a@x.org')])
    assert not result.ok and not result.permanent
    assert result.error.startswith('cannot write to stdout')


def test_ticket_change_goes_to_stdout_not_to_smtp(make_env, smtp_sink,
                                                  capsys):
    sink = smtp_sink()
    env = make_env(mail_transport='console', console_output='stdout',
                   smtp_server='127.0.0.1', smtp_port=str(sink.port))
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, comment='Done.')
    report = deliver(env)
    assert report.sent >= 3 and report.retrying == report.dead == 0
    out = capsys.readouterr().out
    assert out.count('Envelope-To: ') == report.sent
    assert 'Envelope-To: carol@example.com' in out
    assert 'X-Trac-Ticket-ID: 1' in out
    assert sink.wait_for(1, timeout=0.3) == []
    assert deliver(env).sent == 0          # reported sent: not repeated


# choosing a transport ------------------------------------------------------

def test_default_follows_email_sender(make_env):
    env = make_env()
    assert isinstance(Deliverer(env).transport, SmtpTransport)
    env = make_env(email_sender='SendmailEmailSender')
    assert isinstance(Deliverer(env).transport, SendmailTransport)
    env = make_env(email_sender='SendmailEmailSender', mail_transport='smtp')
    assert isinstance(Deliverer(env).transport, SmtpTransport)


def test_unknown_names_are_messages(make_env):
    env = make_env(mail_transport='carrier-pigeon')
    settings = load_transport_options(env)
    assert settings.name == 'smtp'
    assert settings.errors == [
        "[notification] mail_transport = 'carrier-pigeon' is not one of "
        "smtp, sendmail, directory, database, console; using smtp"]
    env = make_env(email_sender='MyFancyEmailSender')
    settings = load_transport_options(env)
    assert settings.name == 'smtp'
    assert 'MyFancyEmailSender' in settings.errors[0]
    env = make_env(mail_transport='Console', console_output='printer')
    settings = load_transport_options(env)
    assert (settings.name, settings.options['console']) == ('console', 'log')
    assert "console_output = 'printer'" in settings.errors[0]


def test_errors_are_logged_once(make_env, caplog):
    env = make_env(mail_transport='sendmail', sendmail_timeout='-3')
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            create_transport(None, env)
    warnings = [r for r in caplog.records if 'sendmail_timeout' in
                r.getMessage()]
    assert len(warnings) == 1


def test_unusable_transport_keeps_messages_waiting():
    settings = TransportSettings(name='sendmail', usable=False,
                                 errors=['broken'])
    transport = build_transport(settings, None)
    assert isinstance(transport, UnusableTransport)
    assert 'broken' in transport.describe()
    results = transport.send([outgoing('a@x.org'), outgoing('b@x.org', 2)])
    assert [(r.ok, r.permanent, r.error) for r in results] == \
        [(False, False, 'broken')] * 2


def test_options_are_documented(make_env):
    env = make_env()
    documented = {option.name: option.__doc__
                  for component in option_components()
                  for option in component.__dict__.values()
                  if hasattr(option, 'section')}
    assert set(documented) == {
        'mail_transport', 'sendmail_args', 'sendmail_recipients',
        'sendmail_timeout', 'mail_directory', 'mail_database',
        'console_output'}
    assert all('(tracnotify)' in doc for doc in documented.values())
    assert env.config.get('notification', 'sendmail_path') == 'sendmail'
