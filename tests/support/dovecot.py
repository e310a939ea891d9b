"""A Dovecot IMAP server of one test module's own (Debian's dovecot-imapd).

:class:`PrivateDovecot` writes a private configuration in a fresh folder
under /tmp (its own base_dir, state, log and Maildirs; the system's
/etc/dovecot is not read), listens on free ports of 127.0.0.1 only: IMAP
(STARTTLS offered when TLS files are given) and IMAPS.  Any user name
logs in with :attr:`password`.  As root the mail files belong to
``nobody`` (Dovecot refuses uid 0 for mail).
"""

import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from typing import List, Optional, Tuple

from tests.support.smtp_sink import free_port

DOVECOT = '/usr/sbin/dovecot'

_CONFIG = """\
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = tracnotify-test-{port}
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:{folder}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
{imaps_ssl}  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
"""


class PrivateDovecot:
    """A throw-away Dovecot on 127.0.0.1 (see the module doc)."""

    password = 'imap-secret'

    def __init__(self, tls: Optional[Tuple[str, str]] = None) -> None:
        self.folder = tempfile.mkdtemp(prefix='tracnotify-dovecot-')
        self.port = free_port()
        self.ssl_port = free_port() if tls else 0
        self.tls = tls
        os.chmod(self.folder, 0o755)
        for sub in ('run', 'state', 'mail'):
            os.makedirs(os.path.join(self.folder, sub))
        if os.geteuid() == 0:
            self.uid = self.gid = 65534            # nobody
            shutil.chown(os.path.join(self.folder, 'mail'), self.uid,
                         self.gid)
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
        self.config = os.path.join(self.folder, 'dovecot.conf')

    def _ssl_lines(self) -> str:
        if not self.tls:
            return 'ssl = no'
        cert, key = (self._copy(path) for path in self.tls)
        return 'ssl = yes\nssl_cert = <%s\nssl_key = <%s' % (cert, key)

    def _copy(self, path: str) -> str:
        target = os.path.join(self.folder, os.path.basename(path))
        shutil.copy(path, target)
        return target

    def start(self) -> 'PrivateDovecot':
        with open(self.config, 'w') as f:
            f.write(_CONFIG.format(folder=self.folder, port=self.port,
                                   ssl_port=self.ssl_port,
                                   imaps_ssl='    ssl = yes\n'
                                   if self.tls else '',
                                   ssl=self._ssl_lines(),
                                   password=self.password, uid=self.uid,
                                   gid=self.gid))
        # the daemon keeps what it inherits open: no pipes to wait on
        with open(os.path.join(self.folder, 'start.log'), 'w') as out:
            subprocess.run([DOVECOT, '-c', self.config], check=True,
                           stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=30)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.connect().logout()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError('dovecot did not start: %s'
                                       % self.log_text())
                time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run([DOVECOT, '-c', self.config, 'stop'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        pid_file = os.path.join(self.folder, 'run', 'master.pid')
        deadline = time.monotonic() + 10
        while os.path.exists(pid_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_text(self) -> str:
        try:
            with open(os.path.join(self.folder, 'dovecot.log')) as f:
                return f.read()
        except OSError:
            return ''

    # What a test does as another mail client

    def connect(self, user: str = 'trac') -> imaplib.IMAP4:
        conn = imaplib.IMAP4('127.0.0.1', self.port, timeout=10)
        conn.login(user, self.password)
        return conn

    def deliver(self, raw: bytes, folder: str = 'INBOX',
                user: str = 'trac') -> None:
        """Put *raw* into *folder* (as an MTA's local delivery would)."""
        conn = self.connect(user)
        try:
            if folder != 'INBOX':
                conn.create(folder)
            typ, data = conn.append(folder, None, None, raw)
            assert typ == 'OK', data
        finally:
            conn.logout()

    def messages(self, folder: str = 'INBOX', user: str = 'trac'
                 ) -> List[Tuple[bytes, bytes]]:
        """``[(flags, raw)]`` of the messages in *folder* (none when it
        does not exist)."""
        conn = self.connect(user)
        try:
            typ, _ = conn.select(folder, readonly=True)
            if typ != 'OK':
                return []
            typ, data = conn.uid('SEARCH', None, 'ALL')
            found = []
            for uid in data[0].split():
                typ, parts = conn.uid('FETCH', uid, '(FLAGS BODY.PEEK[])')
                meta, raw = parts[0]
                flags = meta[meta.index(b'FLAGS ('):].split(b')')[0] + b')'
                found.append((flags, raw))
            return found
        finally:
            conn.logout()
