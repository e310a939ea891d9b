"""./scripts/test.sh leaves nothing behind: the PostgreSQL server it started
is stopped and its data deleted, a server it found running is left alone,
and scratch files (TLS keys, screenshots...) live under pytest's own
temporary folders.

The nested runs use a port and folders of their own, never the shared
server of other developers (54329)."""

import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from tests.support.smtp_sink import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, 'scripts')
#: a few quick tests that make a TLS key and use PostgreSQL
SELECTION = ('test_starttls or (test_plain_notify_lists_the_subcommands '
             'and postgres)')

pytestmark = pytest.mark.skipif(shutil.which('pg_ctlcluster') is None,
                                reason="needs Debian's postgresql")


@pytest.fixture
def scratch():
    """A TMPDIR for the nested run that the postgres user can enter."""
    folder = tempfile.mkdtemp(prefix='tracnotify-runner-')
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _environ(scratch: str, port: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ('TRACNOTIFY_PG_URI', 'PGDATA_TRACNOTIFY',
                        'PYTEST_ADDOPTS', 'PYTEST_CURRENT_TEST')}
    env.update(TMPDIR=scratch, PGPORT_TRACNOTIFY=str(port),
               TRACNOTIFY_SKIP_SETUP='1')
    return env


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(('127.0.0.1', port)) == 0


def _postgres_on(port: int) -> list:
    """Pids of postgres processes started with ``-p <port>``."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if args and args[0].endswith(b'postgres') and \
                str(port).encode() in args:
            pids.append(int(pid))
    return pids


def _run_tests(scratch: str, port: int) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [os.path.join(SCRIPTS, 'test.sh'), '-q', '-rA', '-k', SELECTION],
        cwd=ROOT, env=_environ(scratch, port), capture_output=True,
        text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'PASSED' in done.stdout and '[postgres]' in done.stdout
    return done


def _left_in(scratch: str) -> list:
    """What the run left in its TMPDIR, besides pytest's own folders."""
    return sorted(n for n in os.listdir(scratch)
                  if not n.startswith('pytest-of-') and n != 'shared-pg')


def test_runner_stops_the_server_it_started(scratch):
    port = free_port()
    assert not _answers(port)
    done = _run_tests(scratch, port)
    assert 'a private server on port %d' % port in done.stdout
    assert 'stopping the PostgreSQL server this run started' in done.stdout
    assert not _answers(port)
    assert _postgres_on(port) == []
    assert _left_in(scratch) == []
    # the TLS key of the run was under pytest's folder
    keys = [os.path.join(folder, 'key.pem')
            for folder, _, files in os.walk(scratch) if 'key.pem' in files]
    assert keys and all('/pytest-of-' in key for key in keys)


def test_runner_leaves_a_server_it_found_running(scratch):
    port = free_port()
    data = os.path.join(scratch, 'shared-pg')
    env = _environ(scratch, port)
    env['PGDATA_TRACNOTIFY'] = data
    subprocess.run([os.path.join(SCRIPTS, 'start-postgres.sh')], env=env,
                   check=True, capture_output=True, timeout=120)
    try:
        done = _run_tests(scratch, port)
        assert 'already running on port %d (left running)' % port in \
            done.stdout
        assert _answers(port) and _postgres_on(port)
        assert _left_in(scratch) == []
    finally:
        subprocess.run([os.path.join(SCRIPTS, 'start-postgres.sh'),
                        '--stop'], env=env, check=True, timeout=120)
    assert not _answers(port)
    assert not os.path.exists(data)
