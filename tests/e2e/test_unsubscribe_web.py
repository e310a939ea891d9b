"""Unsubscribe and Watch through a real tracd.

One-click unsubscribe is an HTTP POST of ``List-Unsubscribe=One-Click`` to
the URL of a mail's List-Unsubscribe header, without cookies, login or form
token, as a mail client sends it (RFC 8058); a GET only shows a
confirmation page.  The admin panel lists and lifts unsubscribes and keeps
the never-mail list.  The Watch button of the ticket page makes a user a
recipient.
"""

import hashlib
import os
import re
import sqlite3
import time
import urllib.error
import urllib.request

import pytest

CARL = 'carl@example.com'          # a bare cc address, no account


@pytest.fixture(scope='module')
def site(start_site):
    return start_site(always_notify_reporter='true')


def mails_after(sink, before, expected, timeout=20.0):
    """``{recipient: message}`` of the mails after *before*, once
    *expected* have come and a short wait brought no more."""
    sink.wait_for(before + expected, timeout)
    time.sleep(1.5)
    mails = sink.received[before:]
    assert len(mails) == expected, [m.rcpt_tos for m in mails]
    return {m.rcpt_tos[0]: m.message for m in mails}


def one_click_url(message) -> str:
    return re.match(r'^<(.*)>$', message['List-Unsubscribe']).group(1)


def raw_post(url: str, body: bytes,
             ctype='application/x-www-form-urlencoded'):
    """A POST as a mail client sends it: no cookies, no form token."""
    request = urllib.request.Request(url, data=body, method='POST',
                                     headers={'Content-Type': ctype})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode('utf-8')


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode('utf-8')


def test_one_click_unsubscribe_admin_undo_and_never_mail(site):
    trac, sink = site
    alice, admin = trac.client('alice'), trac.client('admin')
    before = len(sink.received)
    ticket_id = alice.create_ticket(summary='Unsubscribe me', cc=CARL)
    mails = mails_after(sink, before, 2)
    assert set(mails) == {'alice@example.org', CARL}
    for message in mails.values():
        assert message['List-Id'] == \
            '"Live Project" <live-project.env.127.0.0.1>'
        assert message['List-Unsubscribe-Post'] == \
            'List-Unsubscribe=One-Click'
    url = one_click_url(mails[CARL])
    assert url.startswith(trac.url + '/tracnotify/unsubscribe/')
    assert url != one_click_url(mails['alice@example.org'])

    # a link scanner's GET only shows the confirmation page
    page = get(url)
    assert 'id="unsub-confirm"' in page and CARL in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert CARL not in admin.get('/admin/notification/unsubscribe')

    # a POST without the one-click body does nothing
    with pytest.raises(urllib.error.HTTPError) as e:
        raw_post(url, b'foo=bar')
    assert e.value.code == 400
    # a forged token neither, and the status says so: mail providers read
    # only the status of their one-click POST
    forged = url[:-4] + ('AAAA' if not url.endswith('AAAA') else 'BBBB')
    with pytest.raises(urllib.error.HTTPError) as e:
        raw_post(forged, b'List-Unsubscribe=One-Click')
    assert e.value.code == 404
    assert 'id="unsub-invalid"' in e.value.read().decode('utf-8')
    assert 'id="unsub-invalid"' in get(forged)     # GET keeps its page

    # the mail client's one click: no cookie, no login, no form token
    status, page = raw_post(url, b'List-Unsubscribe=One-Click')
    assert status == 200 and 'id="unsub-done"' in page, page
    before = len(sink.received)
    trac.client('bob').change_ticket(ticket_id, comment='Carl is gone')
    mails = mails_after(sink, before, 2)
    assert set(mails) == {'alice@example.org', 'bob@example.org'}
    assert 'carl@example.com (cc): on the never-mail list (unsubscribed)' \
        in trac.trac_log()

    # the admin sees it and lifts it
    panel = admin.get('/admin/notification/unsubscribe')
    assert CARL in panel and 'unsubscribed' in panel
    admin.post('/admin/notification/unsubscribe',
               {'remove': '1', 'sel': CARL})
    assert CARL not in admin.get('/admin/notification/unsubscribe')
    before = len(sink.received)
    trac.client('bob').change_ticket(ticket_id, comment='Carl is back')
    assert set(mails_after(sink, before, 3)) == \
        {'alice@example.org', 'bob@example.org', CARL}

    # the never-mail list, kept by the admin
    admin.post('/admin/notification/unsubscribe',
               {'add': '1', 'address': 'Bob@Example.org', 'note': 'bounces'})
    panel = admin.get('/admin/notification/unsubscribe')
    assert 'bob@example.org' in panel and 'bounces' in panel
    before = len(sink.received)
    trac.client('bob').change_ticket(ticket_id, comment='Bob hears nothing')
    assert set(mails_after(sink, before, 2)) == {'alice@example.org', CARL}
    admin.post('/admin/notification/unsubscribe',
               {'remove': '1', 'sel': 'bob@example.org'})


def test_user_unsubscribes_by_one_click_multipart_then_resubscribes(site):
    trac, sink = site
    alice = trac.client('alice')
    before = len(sink.received)
    ticket_id = alice.create_ticket(summary='Alice leaves')
    url = one_click_url(mails_after(sink, before, 1)['alice@example.org'])
    boundary = 'XyZ'
    body = ('--%s\r\nContent-Disposition: form-data; '
            'name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--%s--\r\n'
            % (boundary, boundary)).encode()
    status, page = raw_post(url, body,
                            'multipart/form-data; boundary=%s' % boundary)
    assert 'id="unsub-done"' in page
    before = len(sink.received)
    trac.client('bob').change_ticket(ticket_id, comment='Alice hears nothing')
    assert set(mails_after(sink, before, 1)) == {'bob@example.org'}
    # the confirmation page now offers the way back, through the same token
    assert 'id="unsub-already"' in get(url)
    status, page = raw_post(url, b'action=resubscribe')
    assert 'id="unsub-confirm"' in page and 'id="unsub-resubscribed"' in page
    before = len(sink.received)
    trac.client('bob').change_ticket(ticket_id, comment='Alice is back')
    assert set(mails_after(sink, before, 2)) == {'alice@example.org',
                                                 'bob@example.org'}


def test_expired_token_answers_410_to_post(site):
    trac, sink = site
    before = len(sink.received)
    trac.client('alice').create_ticket(summary='Old mail')
    url = one_click_url(mails_after(sink, before, 1)['alice@example.org'])
    token = url.rsplit('/', 1)[1]
    db = sqlite3.connect(os.path.join(trac.env_path, 'db', 'trac.db'))
    try:
        with db:
            db.execute('UPDATE tracnotify_unsub_token SET created=? '
                       'WHERE token_hash=?',
                       (int((time.time() - 401 * 86400) * 1000000),
                        hashlib.sha256(token.encode()).hexdigest()))
    finally:
        db.close()
    with pytest.raises(urllib.error.HTTPError) as e:
        raw_post(url, b'List-Unsubscribe=One-Click')
    assert e.value.code == 410
    with pytest.raises(urllib.error.HTTPError) as e:
        raw_post(url, b'action=resubscribe')
    assert e.value.code == 410
    assert 'id="unsub-invalid"' in get(url)
    assert 'alice@example.org' not in \
        trac.client('admin').get('/admin/notification/unsubscribe')


def test_footer_page_for_logged_in_user_and_anonymous(site):
    trac, sink = site
    page = get(trac.url + '/tracnotify/unsubscribe')
    assert 'id="unsub-anonymous"' in page and 'id="unsub-list"' in page
    page = trac.client('bob').get('/tracnotify/unsubscribe')
    assert 'id="unsub-confirm"' in page and 'bob@example.org' in page
    assert 'id="unsub-proof"' in page


def set_email(client, address: str) -> None:
    client.post('/prefs', {'action': 'save', 'name': 'Someone',
                           'email': address})


def mailed_link(sink, before, address: str) -> str:
    """The one link of the confirmation mail to *address*."""
    message = mails_after(sink, before, 1)[address]
    assert message['X-Trac-Notification-Reason'] == 'confirm'
    assert message['List-Unsubscribe'] is None
    urls = re.findall(r'http://\S+/tracnotify/unsubscribe/[A-Za-z0-9_-]+',
                      message.get_content())
    assert len(urls) == 1, message.get_content()
    assert '"alice"' in message.get_content()       # who asked
    return urls[0]


def test_only_a_mailed_link_stops_or_resumes_mail(site):
    """alice types bob's address in her preferences and presses the
    buttons: bob's mail goes on, bob gets a link each time, and only
    bob's click on it changes anything."""
    trac, sink = site
    alice, admin = trac.client('alice'), trac.client('admin')
    set_email(alice, 'bob@example.org')
    try:
        page = alice.get('/tracnotify/unsubscribe')
        assert 'id="unsub-confirm"' in page and 'bob@example.org' in page
        before = len(sink.received)
        page = alice.post('/tracnotify/unsubscribe', {'action': 'unsubscribe'})
        assert 'A link was mailed to bob@example.org' in page
        link = mailed_link(sink, before, 'bob@example.org')
        assert 'bob@example.org' not in \
            admin.get('/admin/notification/unsubscribe')
        before = len(sink.received)
        ticket_id = admin.create_ticket(summary='Bob hears this', cc='bob')
        assert set(mails_after(sink, before, 2)) == {'admin@example.org',
                                                     'bob@example.org'}

        # bob opens the link he was mailed, and confirms
        assert 'id="unsub-confirm"' in get(link)
        status, page = raw_post(link, b'List-Unsubscribe=One-Click')
        assert status == 200 and 'id="unsub-done"' in page
        before = len(sink.received)
        admin.change_ticket(ticket_id, comment='Bob is gone')
        assert set(mails_after(sink, before, 1)) == {'admin@example.org'}

        # lifting it: the same, a link to bob (on the never-mail list or not)
        page = alice.get('/tracnotify/unsubscribe')
        assert 'id="unsub-already"' in page
        before = len(sink.received)
        page = alice.post('/tracnotify/unsubscribe', {'action': 'resubscribe'})
        assert 'A link was mailed to bob@example.org' in page
        link = mailed_link(sink, before, 'bob@example.org')
        before = len(sink.received)
        admin.change_ticket(ticket_id, comment='Bob still hears nothing')
        assert set(mails_after(sink, before, 1)) == {'admin@example.org'}
        assert 'id="unsub-already"' in get(link)
        status, page = raw_post(link, b'action=resubscribe')
        assert 'id="unsub-resubscribed"' in page
        before = len(sink.received)
        admin.change_ticket(ticket_id, comment='Bob is back')
        assert set(mails_after(sink, before, 2)) == {'admin@example.org',
                                                     'bob@example.org'}
    finally:
        set_email(alice, 'alice@example.org')
    assert 'ERROR' not in trac.trac_log()


def test_watch_and_unwatch_from_the_ticket_page(site):
    trac, sink = site
    alice, admin = trac.client('alice'), trac.client('admin')
    before = len(sink.received)
    ticket_id = alice.create_ticket(summary='Watch me')
    mails_after(sink, before, 1)

    page = admin.get('/ticket/%d' % ticket_id)
    assert 'id="tracnotify-watch"' in page
    assert 'name="action" type="hidden" value="watch"' in page
    admin.post('/tracnotify/watch/%d' % ticket_id, {'action': 'watch'})
    assert admin.last_url.endswith('/ticket/%d' % ticket_id)
    page = admin.get('/ticket/%d' % ticket_id)
    assert 'id="tracnotify-unwatch"' in page

    before = len(sink.received)
    alice.change_ticket(ticket_id, comment='Someone is watching')
    mails = mails_after(sink, before, 2)
    assert set(mails) == {'alice@example.org', 'admin@example.org'}
    assert mails['admin@example.org']['X-Trac-Notification-Reason'] == \
        'watcher'
    # the cc field was not touched
    db = sqlite3.connect(os.path.join(trac.env_path, 'db', 'trac.db'))
    try:
        cc, = db.execute('SELECT cc FROM ticket WHERE id=?',
                         (ticket_id,)).fetchone()
    finally:
        db.close()
    assert not cc

    admin.post('/tracnotify/watch/%d' % ticket_id, {'action': 'unwatch'})
    assert 'id="tracnotify-watch"' in admin.get('/ticket/%d' % ticket_id)
    before = len(sink.received)
    alice.change_ticket(ticket_id, comment='Nobody watches')
    assert set(mails_after(sink, before, 1)) == {'alice@example.org'}

    # anonymous users get no button and cannot watch
    assert 'tracnotify-watch' not in get('%s/ticket/%d' % (trac.url,
                                                           ticket_id))
    assert 'ERROR' not in trac.trac_log()
