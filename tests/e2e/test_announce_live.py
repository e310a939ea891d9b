"""Announcements through a real tracd, in a headless Chromium: the admin
writes one on Administration > Notification > Announce, previews it and
sends it to a permission group; the members' mails arrive at an aiosmtpd
sink (a member of a nested group too), a non-member and a member who
opted out in Preferences get none.  A non-admin gets 403 at the panel, a
POST without Trac's form token is refused, and ``trac-admin ENV notify
announce`` reaches the watchers of a milestone (its Watch button)."""

import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse

import pytest

from tests.support.browser import (
    NEEDS_CHROMIUM,
    login,
    screenshot,
    start_browser,
    submit,
    text_of,
)
from tests.support.live_trac import trac_admin

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = NEEDS_CHROMIUM
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'docs')
PANEL = '/admin/notification/announce'
#: the people and groups of the site, in one process (not one trac-admin
#: each): team = devs (alice, nested), bob (opts out), carol; dave is no
#: member; carol and dave never log in here
PEOPLE = '''
import sys
from trac.env import Environment
from trac.perm import PermissionSystem
from trac.web.session import DetachedSession
env = Environment(sys.argv[1])
for sid in ('carol', 'dave'):
    session = DetachedSession(env, sid)
    session['name'] = sid.title()
    session['email'] = sid + '@example.org'
    session.save()
perms = PermissionSystem(env)
for subject, group in (('alice', 'devs'), ('devs', 'team'),
                       ('bob', 'team'), ('carol', 'team')):
    perms.grant_permission(subject, group)
env.shutdown()
'''


@pytest.fixture(scope='module')
def site(start_site):
    trac, sink = start_site()
    subprocess.run([sys.executable, '-c', PEOPLE, trac.env_path],
                   check=True, timeout=120)
    return trac, sink


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    shots = DOCS if os.environ.get('TRACNOTIFY_SCREENSHOTS') == '1' else \
        str(tmp_path_factory.mktemp('screenshots'))
    driver = start_browser(str(tmp_path_factory.mktemp('chromium')), shots)
    yield driver
    driver.quit()


def settle(sink, expected, timeout=20.0):
    """All mail so far, once *expected* have come and no more follow."""
    sink.wait_for(expected, timeout)
    time.sleep(1.5)
    return list(sink.received)


def announcement_rows(trac):
    db = sqlite3.connect(os.path.join(trac.env_path, 'db', 'trac.db'))
    try:
        return db.execute("SELECT COUNT(*) FROM tracnotify_event "
                          "WHERE kind='announcement'").fetchone()[0]
    finally:
        db.close()


def test_admin_previews_and_sends_to_a_group(site, browser):
    trac, sink = site
    started = time.monotonic()
    bob = trac.client('bob')                 # opts out, with the web form
    bob.post('/prefs/notification', {
        'action': 'replace_all', 'format-email': '', 'tracnotify_prefs': '1',
        'tracnotify_events': 'closed'})      # the announcements box unticked
    assert 'id="tracnotify-announcements"' in bob.get('/prefs/notification')
    assert 'id="tracnotify-announcements" checked' not in \
        bob.get('/prefs/notification')

    login(browser, trac)
    browser.get(trac.url + PANEL)
    Select(browser.find_element(By.ID, 'announce-audience')) \
        .select_by_value('group:team')
    browser.find_element(By.ID, 'announce-subject').send_keys(
        'Server move on Friday')
    browser.find_element(By.ID, 'announce-text').send_keys(
        "The server moves on '''Friday''' at 18:00.\n\n"
        "<script>alert(1)</script>")
    submit(browser, browser.find_element(By.ID, 'announce-preview'))
    assert text_of(browser, '#announce-count') == \
        '2 recipient(s) will get this announcement.'
    assert text_of(browser, '#announce-addresses') == \
        'alice@example.org, carol@example.org'
    assert 'Server move on Friday' in text_of(browser, '#announce-headers')
    assert 'Sent by admin to the members of team.' in \
        text_of(browser, '#announce-preview-text')
    browser.switch_to.frame(browser.find_element(By.ID,
                                                 'announce-preview-html'))
    assert browser.find_element(By.TAG_NAME, 'strong').text == 'Friday'
    browser.switch_to.default_content()
    screenshot(browser, 'admin-announce.png', 1600)
    assert sink.received == []               # a preview sends nothing

    submit(browser, browser.find_element(By.ID, 'announce-send'))
    assert 'on its way to 2 recipient(s)' in text_of(browser, '#notice')
    mails = settle(sink, 2)
    assert sorted(m.rcpt_tos[0] for m in mails) == ['alice@example.org',
                                                    'carol@example.org']
    for mail in mails:
        message = mail.message
        assert message['Subject'] == '[Live Project] Server move on Friday'
        assert message['X-Trac-Notification-Type'] == 'announcement'
        assert message['To'] == mail.rcpt_tos[0]
        assert message['List-Unsubscribe'].startswith(
            '<%s/tracnotify/unsubscribe/' % trac.url)
        body = message.get_body(('plain',)).get_content()
        assert "The server moves on '''Friday''' at 18:00." in body
    assert announcement_rows(trac) == 1
    # the page lists it, sent
    browser.get(trac.url + PANEL)
    assert 'Server move on Friday' in text_of(browser, '#announce-recent')
    assert time.monotonic() - started < 60


def test_non_admins_get_403_and_a_post_needs_the_form_token(site):
    trac, sink = site
    with pytest.raises(urllib.error.HTTPError) as info:
        trac.client('alice').get(PANEL)
    assert info.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as info:
        trac.client().get(PANEL)             # anonymous
    assert info.value.code == 403
    admin = trac.client('admin')
    before = announcement_rows(trac)
    data = urllib.parse.urlencode({
        'audience': 'all', 'subject': 'Forged', 'text': 'x',
        'send': 'Send'}).encode()
    with pytest.raises(urllib.error.HTTPError) as info:
        admin.opener.open(trac.url + PANEL, data, timeout=60)
    assert info.value.code == 400
    assert announcement_rows(trac) == before


def test_trac_admin_announces_to_a_milestone_s_watchers(site, tmp_path):
    trac, sink = site
    before = len(sink.received)
    trac.client('alice').post('/tracnotify/watch/milestone/milestone1',
                              {'action': 'watch'})
    path = tmp_path / 'news.txt'
    path.write_text('milestone1 is frozen.\n', encoding='utf-8')
    out = trac_admin(trac.env_path, 'notify', 'announce', '--to',
                     'milestone:milestone1', '--subject', 'Freeze',
                     str(path)).stdout
    assert 'queued for 1 recipient(s) (milestone:milestone1)' in out
    mails = settle(sink, before + 1)[before:]
    assert [m.rcpt_tos for m in mails] == [['alice@example.org']]
    assert mails[0].message['Subject'] == '[Live Project] Freeze'
    failed = trac_admin(trac.env_path, 'notify', 'announce', '--to',
                        'group:nosuch', '--subject', 'X', str(path),
                        check=False)
    assert failed.returncode == 2
    assert 'No permission group nosuch' in failed.stderr
