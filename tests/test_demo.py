"""./scripts/demo.sh --serve: the demo's mails arrive, their links work on
the tracd it starts (with a demo login), and Ctrl-C stops tracd and the
SMTP sink, leaving nothing running."""

import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.support.live_trac import WebClient
from tests.support.smtp_sink import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: runs argv[1:] with SIGINT at its default, as a terminal's shell starts a
#: command.  A test run started in the background (``pytest ... &`` in a
#: script) ignores SIGINT, its children inherit that, and bash can neither
#: trap nor reset a signal ignored on entry: Ctrl-C would never reach
#: demo.sh, which would wait for tracd for ever.
AS_AT_A_TERMINAL = ('import os, signal, sys; '
                    'signal.signal(signal.SIGINT, signal.SIG_DFL); '
                    'os.execv(sys.argv[1], sys.argv[1:])')


def _get(url: str, user: str = 'alice', password: str = 'demo') -> str:
    token = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
    request = urllib.request.Request(url, headers={
        'Authorization': 'Basic ' + token})
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.read().decode('utf-8')


def _session_pids(sid: int) -> list:
    """Processes of the session *sid* (the demo and all it started)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != 'Z':
            found.append(int(pid))
    return found


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = dict(os.environ, TRACNOTIFY_SKIP_SETUP='1',
               TRACNOTIFY_DEMO_DIR=str(tmp_path / 'demo'),
               TRACNOTIFY_DEMO_PORT=str(port))
    proc = subprocess.Popen([sys.executable, '-c', AS_AT_A_TERMINAL,
                             os.path.join(ROOT, 'scripts', 'demo.sh'),
                             '--serve'], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    yield proc, port, tmp_path / 'demo'
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_demo_serves_the_links_of_its_mails_and_stops_on_ctrl_c(demo):
    proc, port, folder = demo
    out = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        out.append(line)
        if 'press Ctrl-C' in line or time.monotonic() > deadline:
            break
    text = ''.join(out)
    assert 'press Ctrl-C' in text, text[-3000:]
    # the story: 7 mails at once from the script (the creation to alice,
    # carol and the archive; bob's change also to bob, its updater, who
    # was nobody yet when the ticket was created), 4 more after notify send
    assert 'the sink has received 7 mails' in text
    assert re.search(r'^Pending: 0 .*Unprocessed changes: 1$', text, re.M)
    assert 'Sent 4, retrying 0, dead 0' in text
    assert '== the 11 mails received' in text
    links = set(re.findall(r'^X-Trac-Ticket-URL: (\S+)', text, re.M))
    assert links
    for link in links:
        assert link.startswith('http://127.0.0.1:%d/demo/ticket/1' % port)
        assert 'The printer is on fire' in _get(link)
    alice = WebClient('http://127.0.0.1:%d/demo' % port, 'alice', 'demo')
    assert 'Mail Queue' in alice.get('/admin/notification/queue')
    assert len(_session_pids(proc.pid)) >= 3     # bash, tracd, the sink
    os.killpg(proc.pid, signal.SIGINT)           # what Ctrl-C does
    assert proc.wait(30) == 0
    assert '== stopping' in proc.stdout.read()
    deadline = time.monotonic() + 10
    while _session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_pids(proc.pid) == []
    with pytest.raises(OSError):
        urllib.request.urlopen('http://127.0.0.1:%d/demo' % port, timeout=5)
