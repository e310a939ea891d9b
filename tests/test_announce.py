"""Announcements through the outbox: to a permission group (nested groups
resolved), to everyone, to a milestone's watchers; one copy per address,
nobody who opted out, nothing to the never-mail list, each recipient's
language and format, clear errors for what cannot be sent."""

import re

import pytest
import trac.notification.prefs  # noqa: F401  (Trac's Notifications panel)
import trac.wiki.web_ui  # noqa: F401  (WIKI_VIEW, as in a real Trac)
from trac.perm import PermissionSystem
from trac.wiki.model import WikiPage

from tests.support.tickets import mails_by_recipient as delivered
from tests.support.users import set_session, users
from tracnotify import announcements, outbox, watches
from tracnotify.announce_event import AnnouncementError, parse_audience
from tracnotify.mail import suppression
from tracnotify.mail.announce_recipients import group_members

PEOPLE = users('alice', 'bob', 'carol', 'dave', 'hans', 'marie')
#: frank shares alice's address: one copy for the two of them
FRANK = ('frank', 'Frank F', 'alice@example.net')
TEXT = "Hello '''all''', see [wiki:WikiStart].\n\n<script>x()</script>\n"


@pytest.fixture
def env(sink_env):
    env = sink_env(PEOPLE + (FRANK,))
    perms = PermissionSystem(env)
    for subject, group in (('alice', 'dev'), ('bob', 'dev'),
                           ('frank', 'dev'), ('dev', 'staff'),
                           ('carol', 'staff'), ('staff', 'everyone'),
                           ('everyone', 'staff'),      # a cycle: no loop
                           ('hans', 'translators'),
                           ('marie', 'translators'), ('dave', 'WIKI_VIEW')):
        perms.grant_permission(subject, group)
    return env


def announce(env, audience, subject='Maintenance tonight', text=TEXT,
             author='admin'):
    event = announcements.draft(env, author, audience, subject, text)
    announcements.send(env, event)
    return event


def only(mails, address):
    assert len(mails.get(address, [])) == 1, mails
    return mails[address][0]


def text_of(mail) -> str:
    part = mail.get_body(('plain',))
    return part.get_content().replace('\r\n', '\n')


def test_nested_group_members_get_one_copy_each(env, sink):
    announce(env, 'group:staff')
    mails = delivered(env, sink, True)
    assert sorted(mails) == ['alice@example.net', 'bob@example.net',
                             'carol@example.net']     # frank shares alice's
    mail = only(mails, 'bob@example.net')
    assert mail['Subject'] == '[Test Project] Maintenance tonight'
    assert mail['X-Trac-Notification-Type'] == 'announcement'
    assert mail['X-Trac-Realm'] == 'announcement'
    assert mail['X-Trac-Notification-Reason'] == 'announcement'
    assert mail['To'] == 'bob@example.net' and 'Cc' not in mail
    assert re.match(r'<http://trac\.example\.org/tracnotify/unsubscribe/'
                    r'[A-Za-z0-9_-]+>$', mail['List-Unsubscribe'])
    assert mail['List-Unsubscribe-Post'] == 'List-Unsubscribe=One-Click'
    body = text_of(mail)
    assert body.startswith(TEXT)                     # the wiki text as typed
    assert 'Sent by admin to the members of staff.' in body
    assert 'http://trac.example.org/prefs/notification' in body
    assert 'To stop these e-mails: <http://trac.example.org/tracnotify/' \
        'unsubscribe>' in body
    # one outbox event of its own kind, one message per address
    assert env.db_query("SELECT kind, ticket FROM tracnotify_event") == \
        [('announcement', None)]
    assert {m for m, in env.db_query(
        'SELECT kind FROM tracnotify_message')} == {'announcement'}


def test_group_members_are_resolved_through_nested_groups(env):
    assert group_members(env, 'staff') == [('alice', 1), ('bob', 1),
                                           ('carol', 1), ('frank', 1)]
    assert group_members(env, 'dev') == [('alice', 1), ('bob', 1),
                                         ('frank', 1)]
    assert [s for s, _a in group_members(env, 'authenticated')] == \
        sorted(p[0] for p in PEOPLE + (FRANK,))


def test_public_cc_never_lists_the_audience(sink_env, sink):
    env = sink_env(PEOPLE, use_public_cc='true')
    announce(env, 'all')
    mails = delivered(env, sink, True)
    assert len(mails) == len(PEOPLE)
    for address, (mail,) in mails.items():
        assert mail['To'] == address and 'Cc' not in mail


def test_who_opted_out_gets_none(env, sink):
    set_session(env, 'bob', **{'tracnotify.announcements': '0'})
    announce(env, 'group:dev')
    assert sorted(delivered(env, sink, True)) == ['alice@example.net']


def test_suppressed_addresses_get_none(env, sink):
    suppression.suppress(env, 'Carol@example.net', suppression.UNSUBSCRIBED)
    announce(env, 'group:staff')
    assert sorted(delivered(env, sink, True)) == ['alice@example.net',
                                                  'bob@example.net']


def test_goes_at_once_to_who_chose_the_daily_digest(env, sink):
    set_session(env, 'bob', **{'tracnotify.delivery': 'digest'})
    announce(env, 'group:dev')
    assert sorted(delivered(env, sink, True)) == ['alice@example.net',
                                                  'bob@example.net']
    assert not env.db_query('SELECT 1 FROM tracnotify_digest_item')


def test_everyone_with_an_address(env, sink):
    announce(env, 'all')
    assert sorted(delivered(env, sink, True)) == sorted(
        p[2] for p in PEOPLE)


def test_each_recipient_in_their_language_and_format(env, sink):
    page = WikiPage(env, 'WikiStart')
    page.text = 'Welcome'
    page.save('admin', '')
    set_session(env, 'hans', **{'tracnotify.language': 'de'})
    set_session(env, 'marie', **{'tracnotify.language': 'fr',
                                 'tracnotify.format': 'html'})
    announce(env, 'group:translators')
    mails = delivered(env, sink, True)
    german = text_of(only(mails, 'hans@example.net'))
    assert 'Gesendet von admin an die Mitglieder von translators.' in german
    french = only(mails, 'marie@example.net')
    assert french.get_content_type() == 'text/html'
    html = french.get_content()
    assert '<strong>all</strong>' in html
    assert 'href="http://trac.example.org/wiki/WikiStart"' in html
    assert '<script' not in html and 'x()' not in html.split('</p>')[0]
    assert 'Envoyé par admin aux membres de translators.' in html


def test_watchers_of_a_milestone(env, sink):
    # rows as the milestone Watch button writes them (any subscriber class)
    env.db_transaction.executemany("""
        INSERT INTO notify_watch (sid, authenticated, class, realm, target)
        VALUES (%s, 1, %s, 'milestone', %s)""", [
        ('dave', 'MilestoneWatchSubscriber', 'milestone1'),
        ('carol', 'MilestoneWatchSubscriber', 'milestone1'),
        ('bob', 'MilestoneWatchSubscriber', 'milestone2')])
    assert watches.realm_watchers(env, 'milestone', 'milestone1') == \
        [('carol', 1), ('dave', 1)]
    announce(env, 'milestone:milestone1')
    mails = delivered(env, sink, True)
    assert sorted(mails) == ['carol@example.net', 'dave@example.net']
    assert 'to the watchers of milestone milestone1.' in \
        text_of(mails['dave@example.net'][0])


@pytest.mark.parametrize('audience, message', [
    ('group:nosuch', 'No permission group nosuch (groups: anonymous, '
                     'authenticated, dev, everyone, staff, translators)'),
    ('group:WIKI_VIEW', 'WIKI_VIEW is a permission, not a permission group'),
    ('milestone:nosuch', 'No milestone nosuch'),
    ('team:x', 'Unknown audience "team:x": use all, group:NAME or '
               'milestone:NAME'),
    ('group:', 'Unknown audience "group:"'),
])
def test_a_bad_audience_is_a_clear_error_and_nothing_is_stored(
        env, audience, message):
    with pytest.raises(AnnouncementError) as info:
        announce(env, audience)
    assert message in str(info.value)
    assert not env.db_query('SELECT 1 FROM tracnotify_event')


@pytest.mark.parametrize('subject, text, message', [
    ('', 'text', 'needs a subject'),
    ('\r\n ', 'text', 'needs a subject'),
    ('x' * 201, 'text', 'longer than 200 characters'),
    ('Hi', '  \n', 'needs a text'),
])
def test_subject_and_text_are_required(env, subject, text, message):
    with pytest.raises(AnnouncementError, match=message):
        announce(env, 'all', subject=subject, text=text)


def test_nobody_to_send_to_is_refused(env):
    PermissionSystem(env).grant_permission('ghost', 'empty')
    set_session(env, 'ghost', **{'tracnotify.announcements': '0'})
    with pytest.raises(AnnouncementError, match='Nobody would receive'):
        announce(env, 'group:empty')


def test_the_same_announcement_is_sent_once(env, sink):
    event = announcements.draft(env, 'admin', 'group:dev', 'Once', 'Text')
    announcements.send(env, event)
    with pytest.raises(AnnouncementError, match='sent already'):
        announcements.send(env, event)
    assert len(delivered(env, sink, True)) == 2


def test_mail_turned_off_is_refused(sink_env):
    env = sink_env(PEOPLE, smtp_enabled='false')
    event = announcements.draft(env, 'admin', 'all', 'Hi', 'Text')
    with pytest.raises(AnnouncementError, match='smtp_enabled'):
        announcements.send(env, event)


def test_subject_is_one_safe_header_line(env, sink):
    announce(env, 'group:dev', subject='Hi =?utf-8?q?=0D=0ABcc:_x@evil?=')
    mail = only(delivered(env, sink, True), 'bob@example.net')
    assert 'Bcc' not in mail and 'evil' in mail['Subject']


def test_audiences_parse():
    assert str(parse_audience(' all ')) == 'all'
    assert str(parse_audience('group:dev')) == 'group:dev'
    assert parse_audience('milestone:1.0: final').name == '1.0: final'


def test_a_group_gone_before_delivery_fails_the_event_visibly(env, sink):
    announce(env, 'group:translators')
    for subject in ('hans', 'marie'):
        PermissionSystem(env).revoke_permission(subject, 'translators')
    assert delivered(env, sink) == {}
    error, = [e for e, in env.db_query(
        'SELECT last_error FROM tracnotify_event')]
    assert 'No permission group translators' in error
    counts = outbox.counts(env)
    assert counts['events'] + counts['failed_events'] == 1


# The preference (Preferences -> Notifications) ---------------------------

def _save_prefs(env, authname, **form):
    """Submit Trac's Notifications form with tracnotify's section."""
    from trac.prefs.web_ui import PreferencesModule
    from trac.test import MockRequest
    from trac.web.api import RequestDone
    from trac.web.session import DetachedSession
    form.update({'tracnotify_prefs': '1', 'action': 'replace_all',
                 'panel_id': 'notification', '__FORM_TOKEN': 'tok'})
    req = MockRequest(env, authname=authname, method='POST', args=form,
                      form_token='tok', path_info='/prefs/notification')
    with pytest.raises(RequestDone):
        PreferencesModule(env).process_request(req)
    req.session.save()
    return dict(DetachedSession(env, authname))


def _prefs_html(env, authname) -> str:
    from trac.prefs.web_ui import PreferencesModule
    from trac.test import MockRequest
    from trac.web.chrome import Chrome
    req = MockRequest(env, authname=authname, path_info='/prefs/notification',
                      args={'panel_id': 'notification'})
    template, data = PreferencesModule(env).process_request(req)[:2]
    return Chrome(env).render_template(req, template, data,
                                       {'iterable': False}).decode('utf-8')


def test_the_opt_out_is_a_box_in_the_preferences(env, sink):
    box = 'id="tracnotify-announcements" checked="checked"'
    assert box in _prefs_html(env, 'bob')            # default: receive
    attrs = _save_prefs(env, 'bob', tracnotify_own_changes='1')
    assert attrs['tracnotify.announcements'] == '0'  # box left unticked
    html = _prefs_html(env, 'bob')
    assert 'id="tracnotify-announcements"' in html and box not in html
    announce(env, 'group:dev')
    assert sorted(delivered(env, sink, True)) == ['alice@example.net']
    attrs = _save_prefs(env, 'bob', tracnotify_announcements='1')
    assert 'tracnotify.announcements' not in attrs   # the default again
    announce(env, 'group:dev')
    assert sorted(delivered(env, sink, True)) == ['alice@example.net',
                                                  'bob@example.net']
