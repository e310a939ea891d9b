"""directory: one ``.eml`` file per message in a folder.

Each file is written under a temporary name in the same folder, flushed to
disk, then renamed: a reader (a mail client, a pickup service) never sees a
half-written file.  The file is the message as it would travel (CRLF line
ends), preceded by ``Return-Path`` and ``X-Envelope-To`` so that the
envelope, which no other header carries for a Bcc copy, is not lost.
"""

import os
import time
import uuid
from typing import List, Sequence

from trac.config import Option
from trac.core import Component

from tracnotify.delivery.transports.base import (
    SendResult,
    Transport,
    TransportKind,
    register,
)
from tracnotify.delivery.transports.options import SECTION, env_path
from tracnotify.outbox import OutgoingMessage

TEMP_PREFIX = '.tmp-'
DEFAULT_MAIL_DIRECTORY = 'mail'


class DirectoryOptions(Component):
    """Options of `[notification]` for `mail_transport = directory`."""

    mail_directory = Option(SECTION, 'mail_directory',
                            DEFAULT_MAIL_DIRECTORY,
        """Folder that receives one `.eml` file per message with
        `mail_transport = directory`. Relative to the environment
        directory; created when missing. (tracnotify)""")


def envelope_headers(message: OutgoingMessage) -> bytes:
    """``Return-Path`` and ``X-Envelope-To`` lines (raises ValueError)."""
    for value in (message.sender, message.recipient):
        if any(c in value for c in '\r\n<>'):
            raise ValueError('invalid envelope address %r' % value)
    return ('Return-Path: <%s>\r\nX-Envelope-To: %s\r\n'
            % (message.sender, message.recipient)).encode('utf-8')


def file_name(message: OutgoingMessage) -> str:
    """A unique, sortable file name: time, outbox id, random part."""
    return '%s-%06d-%d-%s.eml' % (
        time.strftime('%Y%m%d-%H%M%S', time.gmtime()),
        int(time.time() * 1000000) % 1000000, message.id,
        uuid.uuid4().hex[:8])


class DirectoryTransport(Transport):
    """Writes each message atomically into ``folder``."""

    name = 'directory'

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def describe(self) -> str:
        return 'directory %s' % self.folder

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as e:
            error = 'cannot create %s: %s' % (self.folder, e.strerror or e)
            return [SendResult.retry(error) for _m in messages]
        results = [self._write(m) for m in messages]
        _sync_folder(self.folder)
        return results

    def _write(self, message: OutgoingMessage) -> SendResult:
        try:
            data = envelope_headers(message) + message.data
        except ValueError as e:
            return SendResult.dead(str(e))
        name = file_name(message)
        temp = os.path.join(self.folder, TEMP_PREFIX + name)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, 'wb') as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, os.path.join(self.folder, name))
            except BaseException:
                _remove(temp)
                raise
        except OSError as e:
            return SendResult.retry('cannot write %s: %s' % (
                os.path.join(self.folder, name), e.strerror or e))
        return SendResult.sent()


def _sync_folder(folder: str) -> None:
    """Make the renames durable (best effort: not every system can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


register(TransportKind(
    'directory', 30,
    build=lambda folder, config, log: DirectoryTransport(folder),
    read=lambda env, errors: env_path(env, 'mail_directory',
                                      DEFAULT_MAIL_DIRECTORY),
    component=DirectoryOptions))
