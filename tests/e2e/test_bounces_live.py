"""Bounces through a real tracd: tickets changed through the web form,
the copies to alice refused by the SMTP server with 550 at send time
(VERP envelope senders on every copy), alice disabled after
bounce_threshold; Admin > Notification > Bouncing addresses lists her for
admins only, reset needs Trac's form token; alice reads it in her
Preferences; mail to her resumes after the reset."""

import time
import urllib.error
import urllib.parse

import pytest

from tracnotify.mail import verp

ALICE = 'alice@example.org'
BOUNCE = 'trac+bounce-{token}@example.org'


@pytest.fixture(scope='module')
def site(start_site):
    trac, sink = start_site(bounce_address=BOUNCE, bounce_threshold='2',
                            always_notify_reporter='true', batch_window='0')
    sink.handler.rcpt_replies[ALICE] = '550 5.1.1 <%s>: no such user' % ALICE
    return trac, sink


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError('timed out')


def test_refusals_disable_alice_and_the_admin_resets_her(site):
    trac, sink = site
    alice, bob, admin = (trac.client(u) for u in ('alice', 'bob', 'admin'))
    ticket = alice.create_ticket(summary='Bounce me', description='x',
                                 cc='bob@example.org')
    bob.change_ticket(ticket, comment='One.')
    panel = '/admin/notification/bounces'
    page = wait_for(lambda: (lambda p: 'tracnotify-disabled' in p and p)(
        admin.get(panel)))
    assert ALICE in page and '5.1.1' in page
    # every copy that reached the server had its own VERP envelope sender
    senders = [r.mail_from for r in sink.received]
    assert senders and all(verp.find_token(BOUNCE, [s]) for s in senders)
    assert len(set(senders)) == len(senders)
    # alice gets no more mail: the next change mails bob only
    sink.received.clear()
    sink.handler.rcpt_replies.clear()
    bob.change_ticket(ticket, comment='Two.')
    wait_for(lambda: sink.received)
    time.sleep(1.5)
    assert {r.rcpt_tos[0] for r in sink.received} == {'bob@example.org'}
    # alice is told in her preferences
    prefs = alice.get('/prefs/notification')
    assert 'id="tracnotify-bouncing"' in prefs
    assert 'gets no more mail' in prefs
    # not for bob; no reset without the form token
    with pytest.raises(urllib.error.HTTPError) as denied:
        bob.get(panel)
    # (Trac answers 404 to a user with no admin panel at all)
    assert denied.value.code in (403, 404)
    assert ALICE not in denied.value.read().decode('utf-8', 'replace')
    data = urllib.parse.urlencode({'reset': '1', 'sel': ALICE}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        admin.opener.open(trac.url + panel, data, timeout=60)
    assert refused.value.code == 400
    assert 'tracnotify-disabled' in admin.get(panel)
    # the admin resets her: mail resumes
    page = admin.post(panel, {'reset': '1', 'sel': ALICE})
    assert 'reset' in page and 'No mail has bounced.' in page
    sink.received.clear()
    bob.change_ticket(ticket, comment='Three.')
    wait_for(lambda: ALICE in {r.rcpt_tos[0] for r in sink.received})
    assert 'tracnotify-bouncing' not in alice.get('/prefs/notification')
