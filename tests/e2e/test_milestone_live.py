"""Milestone mail through a real tracd: the Watch button on a milestone's
page, then its completion by the roadmap's edit form with "retarget the
open tickets": the watcher gets the milestone's mail, and each person of
the retargeted tickets one batch mail listing them, not one per ticket."""

import collections
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.live_trac import trac_admin


@pytest.fixture(scope='module')
def site(start_site):
    trac, sink = start_site(always_notify_reporter='true',
                            always_notify_owner='true',
                            batch_window='3')   # short, to keep it fast
    trac_admin(trac.env_path, 'permission', 'add', 'admin',
               'MILESTONE_MODIFY')
    return trac, sink


def settle(sink, expected, timeout=20.0):
    """All mail so far, once *expected* have come and no more follow."""
    sink.wait_for(expected, timeout)
    time.sleep(1.5)
    return list(sink.received)


def test_complete_with_retargeting_through_the_web_form(site):
    trac, sink = site
    alice, bob, admin = (trac.client(u) for u in ('alice', 'bob', 'admin'))
    page = alice.get('/milestone/milestone1')
    assert 'id="tracnotify-watch"' in page and 'tracnotify-unwatch' not in page
    alice.post('/tracnotify/watch/milestone/milestone1', {'action': 'watch'})
    assert 'id="tracnotify-unwatch"' in alice.get('/milestone/milestone1')

    ids = [bob.create_ticket(summary='Retarget %d' % i,
                             milestone='milestone1', owner='alice')
           for i in (1, 2)]
    # each creation: one mail to the reporter (bob), one to the owner
    before = len(settle(sink, 4))

    completed = (datetime.now(timezone.utc) - timedelta(hours=1)) \
        .strftime('%Y-%m-%dT%H:%M:%SZ')
    admin.post('/milestone/milestone1', {
        'action': 'edit', 'name': 'milestone1', 'description': 'Shipped.',
        'completed': 'on', 'completeddate': completed,
        'retarget': 'on', 'target': 'milestone2', 'comment': 'Moving on',
        'save': 'Submit changes'})
    mails = settle(sink, before + 4, timeout=30)[before:]
    kinds = collections.Counter(
        (r, m.message['X-Trac-Notification-Type'])
        for m in mails for r in m.rcpt_tos)
    assert kinds == {
        ('alice@example.org', 'milestone_completed'): 1,   # the watcher
        ('alice@example.org', 'batchmodify'): 1,           # the owner
        ('bob@example.org', 'batchmodify'): 1,             # the reporter
        ('admin@example.org', 'batchmodify'): 1}           # the updater
    milestone = next(m.message for m in mails if
                     m.message['X-Trac-Notification-Type'] ==
                     'milestone_completed')
    assert milestone['Subject'] == '[Live Project] Milestone: milestone1'
    assert milestone['X-Trac-Notification-Reason'] == 'watcher'
    text = milestone.get_content().replace('\r\n', '\n')
    assert text.startswith('Milestone milestone1 was completed by admin.\n')
    assert ' * Completed:  (none) => ' in text
    assert 'Description:\nShipped.\n' in text
    assert 'Milestone URL: <%s/milestone/milestone1>' % trac.url in text

    descr = ', '.join('#%d' % i for i in ids)
    for mail in mails:
        if mail.message['X-Trac-Notification-Type'] != 'batchmodify':
            continue
        assert mail.message['Subject'] == \
            '[Live Project] Batch modify: %s' % descr
        body = mail.message.get_content().replace('\r\n', '\n')
        assert body.count(' * milestone:  milestone1 => milestone2') == 2
        assert body.count('Moving on') == 2
    assert 'ERROR' not in trac.trac_log()
