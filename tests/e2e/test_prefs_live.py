"""Preferences -> Notifications through a real tracd: a user saves ticket
mail choices with the web form (form token, session cookie) and the mail
that arrives honours them."""

import time

import pytest


@pytest.fixture(scope='module')
def site(start_site):
    return start_site()


def mails_to(sink, before, address, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in sink.received[before:] if address in m.rcpt_tos]
        if found:
            time.sleep(1.0)
            return [m for m in sink.received[before:]
                    if address in m.rcpt_tos]
        time.sleep(0.2)
    return []


def test_choices_saved_through_the_web_are_honoured(site):
    trac, sink = site
    bob = trac.client('bob')
    page = bob.get('/prefs/notification')
    assert 'id="tracnotify-prefs"' in page and 'Ticket mail' in page
    bob.post('/prefs/notification', {
        'action': 'replace_all', 'format-email': '',
        'tracnotify_prefs': '1',
        'tracnotify_events': 'closed',
        'tracnotify_format': 'both',
        'tracnotify_language': 'de',
        'tracnotify_delivery': 'now',
    })
    assert bob.last_url.endswith('/prefs/notification')
    page = bob.get('/prefs/notification')
    assert 'id="tracnotify-event-closed" checked="checked"' in page
    assert 'id="tracnotify-event-created" checked' not in page
    assert '<option value="both" selected="selected">' in page

    alice = trac.client('alice')
    before = len(sink.received)
    ticket_id = alice.create_ticket(summary='Live prefs', cc='bob',
                                    description='x')
    alice.change_ticket(ticket_id, comment='Just a comment.')
    assert mails_to(sink, before, 'alice@example.org')
    assert not mails_to(sink, before, 'bob@example.org', timeout=3)

    before = len(sink.received)
    alice.change_ticket(ticket_id, comment='Fixed.', action='resolve',
                        action_resolve_resolve_resolution='fixed')
    (mail,) = mails_to(sink, before, 'bob@example.org')
    message = mail.message
    assert message.get_content_type() == 'multipart/alternative'
    text, html = [p for p in message.walk() if not p.is_multipart()]
    assert text.get_content_type() == 'text/plain'
    assert html.get_content_type() == 'text/html'
    assert 'Kommentar:' in text.get_content()
    assert 'lang="de"' in html.get_content()
