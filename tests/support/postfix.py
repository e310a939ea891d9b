"""A private Postfix (Debian's) on 127.0.0.1: its own configuration,
queue and log under one temporary folder, its SMTP server on a free port,
local delivery of one alias to a command.  Nothing of the system's own
Postfix (/etc/postfix, port 25) is used or touched.

Postfix runs commands of an alias owned by root as ``default_privs``
(nobody), never as root: the command and the Trac environment it writes
must be usable by that user (see :func:`interpreter_for`).
"""

import os
import pwd
import shutil
import subprocess
import sys
import time
from typing import Optional

from tests.support.smtp_sink import free_port

POSTFIX = '/usr/sbin/postfix'
RUN_AS = 'nobody'

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
config_directory = {etc}
queue_directory = {root}/spool
data_directory = {root}/data
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
default_privs = {run_as}
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination = {domain}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
local_recipient_maps = $alias_maps
alias_maps = hash:{etc}/aliases
alias_database = hash:{etc}/aliases
recipient_delimiter = +
relayhost = [127.0.0.1]:9
biff = no
smtputf8_enable = no
message_size_limit = 52428800
mailbox_size_limit = 0
"""


def available() -> bool:
    """Whether Debian's postfix is installed and we may start one (root)."""
    return os.path.exists(POSTFIX) and os.geteuid() == 0


def interpreter_for(user: str = RUN_AS) -> str:
    """A Python of this version that *user* can run: this one, or the
    system's (a pyenv Python under /root is out of reach of nobody)."""
    wanted = '%d.%d' % sys.version_info[:2]
    for candidate in (sys.executable, '/usr/bin/python' + wanted):
        if not os.path.exists(candidate):
            continue
        try:
            done = subprocess.run([candidate, '-c', 'import sys; print('
                                   '"%d.%d" % sys.version_info[:2])'],
                                  user=user, capture_output=True, text=True)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == wanted:
            return candidate
    raise RuntimeError('no Python %s that %s can run' % (wanted, user))


def give_to(path: str, user: str = RUN_AS) -> None:
    """Make *path* (a tree) belong to *user*."""
    entry = pwd.getpwnam(user)
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)


class PrivatePostfix:
    """``with PrivatePostfix(root, alias_command) as mta: mta.port``."""

    def __init__(self, root: str, aliases: dict,
                 domain: str = 'example.org') -> None:
        self.root = root
        self.etc = os.path.join(root, 'etc')
        self.aliases = aliases
        self.domain = domain
        self.port: Optional[int] = None

    def postfix(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([POSTFIX, '-c', self.etc] + list(args),
                              capture_output=True, text=True, timeout=60)

    def start(self) -> 'PrivatePostfix':
        os.makedirs(self.etc, exist_ok=True)
        os.makedirs(os.path.join(self.root, 'data'), exist_ok=True)
        os.makedirs(os.path.join(self.root, 'spool'), exist_ok=True)
        self.port = free_port()
        with open(os.path.join(self.etc, 'main.cf'), 'w') as f:
            f.write(MAIN_CF.format(etc=self.etc, root=self.root,
                                   domain=self.domain, run_as=RUN_AS))
        with open(os.path.join(self.etc, 'master.cf'), 'w') as f:
            f.write(MASTER_CF.format(port=self.port))
        with open(os.path.join(self.etc, 'aliases'), 'w') as f:
            for name, target in self.aliases.items():
                f.write('%s: %s\n' % (name, target))
        subprocess.run(['/usr/sbin/postalias',
                        os.path.join(self.etc, 'aliases')], check=True,
                       env=dict(os.environ, MAIL_CONFIG=self.etc))
        pf_data = os.path.join(self.root, 'data')
        entry = pwd.getpwnam('postfix')
        os.chown(pf_data, entry.pw_uid, entry.pw_gid)
        done = self.postfix('start')
        if done.returncode != 0:
            raise RuntimeError('postfix start failed: %s%s\n%s' % (
                done.stdout, done.stderr, self.log()))
        deadline = time.monotonic() + 20
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError('postfix did not listen:\n' + self.log())

    def stop(self) -> None:
        self.postfix('stop')
        deadline = time.monotonic() + 10
        pid = os.path.join(self.root, 'spool', 'pid', 'master.pid')
        while os.path.exists(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def log(self) -> str:
        try:
            with open(os.path.join(self.root, 'maillog')) as f:
                return f.read()
        except OSError:
            return ''

    def __enter__(self) -> 'PrivatePostfix':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def remove(root: str) -> None:
    shutil.rmtree(root, ignore_errors=True)
