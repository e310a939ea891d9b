"""Replies through a real MTA: Debian's Postfix on 127.0.0.1 (a private
instance on a free port) takes mail for ``trac+TOKEN@example.org`` and, by
its ``recipient_delimiter``, delivers it to the alias ``trac``, which pipes
it to ``trac-admin ENV notify receive --recipient "$ORIGINAL_RECIPIENT"``.
Thunderbird-, Outlook- and Gmail-style replies become exactly their new
text as comments by the right user; a forged address is bounced by Postfix
with our reason (exit status 67)."""

import os
import smtplib
import sys
import tempfile
import time

import pytest
from trac.config import Configuration
from trac.env import Environment
from trac.web.session import DetachedSession

from tests.support import postfix
from tests.support.disk_env import make_disk_env
from tests.support.inbound import REPLY_ADDRESS, comments, reply_mail, reply_to
from tests.support.smtp_sink import SmtpSink
from tests.support.tickets import by_recipient, create_ticket
from tests.test_inbound_replies import EXPECTED, fixture
from tracnotify.delivery.deliverer import Deliverer

pytestmark = pytest.mark.skipif(not os.path.exists(postfix.POSTFIX),
                                reason='Debian postfix is not installed')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WRAPPER = """#!{python}
# trac-admin for the user Postfix runs commands as: this Python and the
# test's packages (the test's own interpreter may be out of its reach)
import site
import sys
site.addsitedir({site!r})
sys.path.insert(0, {repo!r})
from trac.admin.console import run
sys.exit(run(sys.argv[1:]))
"""


def _site_packages() -> str:
    return next(p for p in sys.path if p.endswith('site-packages') and
                os.path.isdir(os.path.join(p, 'trac')))


@pytest.fixture(scope='module')
def site():
    root = tempfile.mkdtemp(prefix='tracnotify-postfix-')
    os.chmod(root, 0o755)
    sink = SmtpSink().start()
    try:
        path = make_disk_env(root, {
            'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
            'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
            'smtp_replyto': 'trac@example.org', 'delivery': 'worker',
            'batch_window': '0', 'reply_address': REPLY_ADDRESS})
        ini = Configuration(os.path.join(path, 'conf', 'trac.ini'))
        ini.set('logging', 'log_type', 'none')
        ini.save()
        env = Environment(path)
        for sid in ('alice', 'bob'):
            session = DetachedSession(env, sid)
            session['email'] = '%s@example.net' % sid
            session.save()
        wrapper = os.path.join(root, 'trac-admin')
        with open(wrapper, 'w') as f:
            f.write(WRAPPER.format(python=postfix.interpreter_for(),
                                   site=_site_packages(), repo=REPO))
        os.chmod(wrapper, 0o755)
        postfix.give_to(path)
        command = '"|%s %s notify receive --recipient \\"$ORIGINAL_RECIPIENT\\""' \
            % (wrapper, path)
        mta = postfix.PrivatePostfix(os.path.join(root, 'mta'),
                                     {'trac': command}).start()
        try:
            yield env, sink, mta
        finally:
            mta.stop()
            env.shutdown()
    finally:
        sink.stop()
        postfix.remove(root)


def ticket_mail(env, sink):
    ticket = create_ticket(env, summary='Crash on save', cc='bob')
    sink.received.clear()
    report = Deliverer(env).run_once()
    assert not report.errors
    return ticket, by_recipient(sink.received)['bob@example.net'][-1]


def through_postfix(mta, raw: bytes, to: str) -> None:
    with smtplib.SMTP('127.0.0.1', mta.port, timeout=30) as smtp:
        smtp.sendmail('bob@example.net', [to], raw)


def wait_for(check, mta, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError('timed out; Postfix log:\n' + mta.log()[-4000:])


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_a_reply_through_postfix_becomes_a_comment(site, name):
    env, sink, mta = site
    ticket, mail = ticket_mail(env, sink)
    through_postfix(mta, fixture(name, ticket.id, mail),
                    str(mail['Reply-To']))
    assert wait_for(lambda: comments(env, ticket.id), mta) == \
        [('bob', EXPECTED[name])]
    assert wait_for(lambda: 'status=sent (delivered to command' in
                    mta.log(), mta)


def test_a_forged_address_is_bounced_by_postfix(site):
    env, sink, mta = site
    ticket, mail = ticket_mail(env, sink)
    forged = reply_to('f' * 26)
    through_postfix(mta, reply_mail(forged, 'bob@example.net', 'Close it'),
                    forged)
    line = wait_for(lambda: [x for x in mta.log().splitlines()
                             if forged in x and 'status=' in x], mta)[0]
    assert 'status=bounced' in line, line
    assert 'unknown or altered reply address' in line
    assert comments(env, ticket.id) == []
