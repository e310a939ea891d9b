"""Wiki mail through a real tracd: the Watch button on a page, an edit by
the web form (the diff in the mail is Trac's own unified diff of the two
versions it stored) and a rename (the watcher follows the page)."""

import time

import pytest
from trac.env import Environment
from trac.versioncontrol.diff import unified_diff
from trac.wiki.model import WikiPage

from tests.support.live_trac import trac_admin

OLD = 'Intro\r\n\r\n * one\r\n * two\r\n * three\r\n\r\nEnd of page.\r\n'
NEW = 'Intro\r\n\r\n * one\r\n * 2\r\n * three\r\n * four\r\n\r\nEnd of page.\r\n'


@pytest.fixture(scope='module')
def site(start_site):
    trac, sink = start_site()
    trac_admin(trac.env_path, 'permission', 'add', 'admin', 'WIKI_RENAME')
    return trac, sink


def edit_page(client, name: str, text: str, comment: str = '') -> str:
    """Save a page through Trac's edit form, as a browser does."""
    page = client.get('/wiki/%s?action=edit' % name)
    version = client.hidden_inputs(page).get('version', '0')
    return client.post('/wiki/%s' % name, {
        'action': 'edit', 'version': version, 'text': text,
        'comment': comment, 'save': 'Submit changes'})


def new_mails(sink, before, expected, timeout=20.0):
    sink.wait_for(before + expected, timeout)
    time.sleep(1.5)              # no duplicates follow
    return sink.received[before:]


def test_watch_edit_and_rename_through_tracd(site):
    trac, sink = site
    alice, bob = trac.client('alice'), trac.client('bob')
    before = len(sink.received)
    edit_page(alice, 'LivePage', OLD, 'first')
    page = alice.get('/wiki/LivePage')
    assert 'id="tracnotify-watch"' in page and 'tracnotify-unwatch' not in page
    alice.post('/tracnotify/watch/wiki/LivePage', {'action': 'watch'})
    assert 'id="tracnotify-unwatch"' in alice.get('/wiki/LivePage')

    edit_page(bob, 'LivePage', NEW, 'Numbers and one more')
    mails = new_mails(sink, before, 1)
    assert [m.rcpt_tos for m in mails] == [['alice@example.org']]
    mail = mails[0].message
    assert mail['Subject'] == '[Live Project] Wiki: LivePage'
    assert mail['X-Trac-Notification-Type'] == 'wiki_changed'
    assert mail['X-Trac-Notification-Reason'] == 'watcher'
    body = mail.get_content().replace('\r\n', '\n')
    assert 'Page LivePage was changed by bob (version 2).' in body
    assert 'Numbers and one more' in body
    env = Environment(trac.env_path)
    try:
        old = WikiPage(env, 'LivePage', 1).text
        new = WikiPage(env, 'LivePage', 2).text
    finally:
        env.shutdown()
    tracs = list(unified_diff(old.splitlines(), new.splitlines(), 3))
    assert tracs[0] == '@@ -1,7 +1,8 @@'
    ours = body.split('+++ LivePage\t(version 2)\n', 1)[1].split('\n')
    assert ours[:len(tracs)] == tracs
    assert ours[len(tracs)] == ''              # the diff ends there

    before = len(sink.received)
    trac.client('admin').post('/wiki/LivePage', {
        'action': 'rename', 'new_name': 'LiveRenamed',
        'submit': 'Rename page'})
    mails = new_mails(sink, before, 1)
    assert [m.rcpt_tos for m in mails] == [['alice@example.org']]
    renamed = mails[0].message
    assert renamed['Subject'] == '[Live Project] Wiki: LiveRenamed'
    assert renamed['X-Trac-Notification-Type'] == 'wiki_renamed'
    assert renamed['In-Reply-To'] == mail['In-Reply-To']   # the page's thread
    assert 'id="tracnotify-unwatch"' in alice.get('/wiki/LiveRenamed')


def test_page_change_goes_into_the_digest_of_who_chose_it(site):
    """Admin chose the daily digest (its hour far away in his time zone):
    bob's edit by the web form reaches alice at once and admin's digest
    only, which tracd's worker then sends."""
    from datetime import datetime, timedelta, timezone

    from trac.web.session import DetachedSession

    from tracnotify.config import load_config
    from tracnotify.mail import digest

    trac, sink = site
    # a zone where it is about 1 o'clock now: digest_hour (7) is hours away
    hour = datetime.now(timezone.utc).hour
    offset = (1 - hour + 12) % 24 - 12
    zone = 'Etc/GMT%+d' % -offset if offset else 'Etc/GMT'
    env = Environment(trac.env_path)
    try:
        session = DetachedSession(env, 'admin')
        session['tracnotify.delivery'] = 'digest'
        session['tz'] = zone
        session.save()
    finally:
        env.shutdown()
    bob_client = trac.client('bob')
    edit_page(bob_client, 'DigestLive', OLD, 'first')
    for user in ('admin', 'alice'):
        trac.client(user).post('/tracnotify/watch/wiki/DigestLive',
                               {'action': 'watch'})
    before = len(sink.received)
    edit_page(bob_client, 'DigestLive', NEW, 'For the digest')
    mails = new_mails(sink, before, 1)
    assert [m.rcpt_tos for m in mails] == [['alice@example.org']]

    env = Environment(trac.env_path)
    try:
        assert env.db_query("""
            SELECT ticket, summary FROM tracnotify_digest_item
            WHERE address='admin@example.org' AND digest_day IS NULL
            """) == [(0, 'wiki:DigestLive')]
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        report = digest.run_digests(env, load_config(env), tomorrow.replace(
            hour=23, minute=0) + timedelta(hours=-offset))
        assert report.digests == 1
    finally:
        env.shutdown()
    before = len(sink.received)
    mails = new_mails(sink, before, 1)        # sent by tracd's worker
    assert [m.rcpt_tos for m in mails] == [['admin@example.org']]
    mail = mails[0].message
    assert mail['Subject'] == \
        '[Live Project] Daily digest: 1 change on 1 wiki page'
    body = mail.get_content().replace('\r\n', '\n')
    assert '\nWiki: DigestLive\n================\n' in body
    assert 'Page DigestLive was changed by bob (version 2).' in body
    assert 'For the digest' in body and '+ * four' in body
