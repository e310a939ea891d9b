"""A PostgreSQL server of one test's own, which that test may restart.

The shared server of the test run (``scripts/start-postgres.sh``, port
54329) must never be restarted: other tests use it.  :class:`PrivatePostgres`
runs ``initdb`` in a fresh folder, starts ``postgres`` on a free port of
127.0.0.1 and offers ``restart()`` (``pg_ctl restart -m fast``), ``stop()``
and ``start()``.  As root, the server runs as the ``postgres`` user (it
refuses to run as root), in a folder under /tmp that user may enter.
"""

import glob
import os
import shutil
import subprocess
import tempfile
from typing import List, Optional

from tests.support.smtp_sink import free_port


def postgres_bin() -> Optional[str]:
    """The newest ``/usr/lib/postgresql/N/bin`` folder, or None."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/pg_ctl'),
                   key=lambda p: int(p.split('/')[4]) if
                   p.split('/')[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


class PrivatePostgres:
    """A throw-away PostgreSQL server on 127.0.0.1 (see module doc)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError('PostgreSQL is not installed')
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix='tracnotify-private-pg-')
        self.data = os.path.join(self.folder, 'data')
        self.log = os.path.join(self.folder, 'log')
        self._as_root = os.geteuid() == 0
        if self._as_root:
            os.chmod(self.folder, 0o755)
            shutil.chown(self.folder, 'postgres')

    @property
    def uri(self) -> str:
        """Trac's database URI (the caller adds ``?schema=...`` if it
        wants one)."""
        return 'postgres://postgres@127.0.0.1:%d/postgres' % self.port

    def _run(self, tool: str, *args: str, check: bool = True
             ) -> subprocess.CompletedProcess:
        command: List[str] = [os.path.join(self.bin, tool)] + list(args)
        if self._as_root:
            command = ['runuser', '-u', 'postgres', '--'] + command
        return subprocess.run(command, capture_output=True, text=True,
                              check=check, timeout=120)

    def _ctl(self, *args: str, check: bool = True
             ) -> subprocess.CompletedProcess:
        return self._run('pg_ctl', '-D', self.data, '-l', self.log, '-w',
                         '-o', '-h 127.0.0.1 -p %d -k %s -c fsync=off '
                         '-c synchronous_commit=off -c max_connections=100'
                         % (self.port, self.folder), *args, check=check)

    def init(self) -> 'PrivatePostgres':
        """``initdb`` and start."""
        self._run('initdb', '-D', self.data, '-U', 'postgres', '-A', 'trust')
        return self.start()

    def start(self) -> 'PrivatePostgres':
        self._ctl('start')
        return self

    def stop(self) -> None:
        self._ctl('stop', '-m', 'fast')

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is dropped."""
        self._ctl('restart', '-m', 'fast')

    def destroy(self) -> None:
        """Stop the server (if it runs) and remove its files."""
        self._run('pg_ctl', '-D', self.data, 'stop', '-m', 'immediate',
                  check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> 'PrivatePostgres':
        return self.init()

    def __exit__(self, *exc) -> None:
        self.destroy()
