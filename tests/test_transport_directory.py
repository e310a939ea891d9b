"""The directory transport: real files in a real folder."""

import email
import email.policy
import os
from email.message import EmailMessage
from email.policy import SMTP

from tests.support.outbox_rows import stored_messages
from tests.support.tickets import change_ticket, create_ticket, deliver
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.transports import directory
from tracnotify.delivery.transports.directory import DirectoryTransport
from tracnotify.outbox import OutgoingMessage


def outgoing(recipient, id=1, sender='trac@example.org',
             body='Hello.\n.\nBye.\n') -> OutgoingMessage:
    msg = EmailMessage(policy=SMTP)
    msg['From'] = sender
    msg['To'] = 'undisclosed-recipients: ;'
    msg['Subject'] = 'Ticket #%d' % id
    msg.set_content(body)
    return OutgoingMessage(id, 1, 1, 'changed', '<%d@x>' % id, sender,
                           recipient, 'bcc', 'subject', msg.as_string(), 0)


def eml_files(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith('.eml'))


def read(path) -> email.message.EmailMessage:
    with open(path, 'rb') as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def test_one_readable_file_per_message(tmp_path):
    folder = tmp_path / 'mail'
    messages = [outgoing('user%d@example.net' % i, id=i) for i in range(30)]
    old_umask = os.umask(0o022)
    try:
        results = DirectoryTransport(str(folder)).send(messages)
    finally:
        os.umask(old_umask)
    assert all(r.ok for r in results)
    names = eml_files(folder)
    assert len(names) == 30
    assert os.listdir(folder) == [n for n in os.listdir(folder)
                                  if not n.startswith(directory.TEMP_PREFIX)]
    by_recipient = {}
    for name in names:
        path = folder / name
        assert path.stat().st_mode & 0o777 == 0o644   # not mkstemp's 0600
        msg = read(path)
        by_recipient[msg['X-Envelope-To']] = msg
        assert msg['Return-Path'] == '<trac@example.org>'
        assert msg.get_content() == 'Hello.\n.\nBye.\n'
    assert set(by_recipient) == {m.recipient for m in messages}
    raw = (folder / names[0]).read_bytes()
    assert raw.count(b'\r\n') == raw.count(b'\n')     # CRLF throughout


def test_creates_missing_folders(tmp_path):
    folder = tmp_path / 'a' / 'b' / 'c'
    assert DirectoryTransport(str(folder)).send([outgoing('x@y.org')])[0].ok
    assert len(eml_files(folder)) == 1


def test_folder_that_is_a_file_is_retryable(tmp_path):
    blocker = tmp_path / 'mail'
    blocker.write_text('not a folder')
    for folder in (blocker, blocker / 'sub'):
        results = DirectoryTransport(str(folder)).send(
            [outgoing('x@y.org', id=1), outgoing('z@y.org', id=2)])
        assert [r.ok or r.permanent for r in results] == [False, False]
        assert str(folder) in results[0].error


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    folder = tmp_path / 'mail'

    def full_disk(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(directory.os, 'replace', full_disk)
    result, = DirectoryTransport(str(folder)).send([outgoing('x@y.org')])
    assert not result.ok and not result.permanent
    assert 'No space left on device' in result.error
    assert os.listdir(folder) == []


def test_unwritable_folder_is_retryable(tmp_path):
    folder = tmp_path / 'mail'
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(str(folder), os.W_OK):     # root ignores permissions
            return
        result, = DirectoryTransport(str(folder)).send([outgoing('x@y.org')])
        assert not result.ok and not result.permanent
        assert 'Permission denied' in result.error
    finally:
        folder.chmod(0o700)


def test_envelope_with_line_break_is_dead(tmp_path):
    bad = outgoing('x@y.org\r\nBcc: spy@evil.example')
    result, = DirectoryTransport(str(tmp_path)).send([bad])
    assert not result.ok and result.permanent
    assert eml_files(tmp_path) == []


def test_relative_folder_is_in_the_environment(make_env):
    env = make_env(mail_transport='directory', mail_directory='outgoing')
    transport = Deliverer(env).transport
    assert isinstance(transport, DirectoryTransport)
    assert transport.folder == os.path.join(env.path, 'outgoing')
    env = make_env(mail_transport='directory')
    assert Deliverer(env).transport.folder == os.path.join(env.path, 'mail')


def test_ticket_change_lands_in_folder(make_env, tmp_path):
    folder = tmp_path / 'pickup'
    env = make_env(mail_transport='directory', mail_directory=str(folder),
                   smtp_always_bcc='archive@example.net', smtp_port='1')
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, comment='Done.', status='closed',
                  resolution='fixed')
    report = deliver(env)
    assert report.retrying == report.dead == 0
    names = eml_files(folder)
    assert len(names) == report.sent >= 4
    stored = stored_messages(env)
    for name in names:
        raw = (folder / name).read_bytes()
        msg = read(folder / name)
        assert 'Bcc' not in msg
        key = (msg['X-Envelope-To'], msg['Message-ID'])
        assert raw.split(b'\r\n', 2)[2] == stored[key].encode()
        assert msg['Subject'].startswith(('[Test Project]',
                                          'Re: [Test Project]'))
    archive = [n for n in names
               if read(folder / n)['X-Envelope-To'] == 'archive@example.net']
    assert len(archive) == 2
