"""Wiki pages and milestones in the daily digest: who chose it gets their
changes in the next digest (under ``Wiki: PageName`` / ``Milestone:
NAME``, text and HTML, in their language), not at once; who did not gets
them at once; WIKI_VIEW / MILESTONE_VIEW are checked as for any mail.
Real Trac environments (SQLite and PostgreSQL), a real SMTP server; the
digest pass is given the time it runs at."""

import pytest
import trac.ticket.roadmap  # noqa: F401  (MILESTONE_VIEW, as in a real Trac)
import trac.wiki.web_ui  # noqa: F401  (WIKI_VIEW, as in a real Trac)
from trac.ticket.model import Milestone
from trac.util.datefmt import datetime_now, utc
from trac.wiki.model import WikiPage

from tests.support.digests import at, delivered, digests, tomorrow
from tests.support.mails import check_html, parts
from tests.support.mails import text_of as text
from tests.support.tickets import create_ticket
from tests.support.users import set_session, users
from tests.test_milestone_mail import SECRET as SECRET_MILESTONE
from tests.test_milestone_mail import HideMilestonePolicy
from tests.test_wiki_mail import SECRET, HideWikiPagePolicy
from tracnotify import watches
from tracnotify.mail.digest import build_digest
from tracnotify.milestone_subscribers import WATCH_CLASS as MILESTONE_WATCH
from tracnotify.wiki_subscribers import WATCH_CLASS as WIKI_WATCH

USERS = users('alice', 'bob', 'dave', 'hans', 'hidden', 'marie')
PAGE = 'DigestPage'


@pytest.fixture
def env(sink_env):
    env = sink_env(USERS, always_notify_reporter='true', digest_hour='7')
    env.config.set('trac', 'default_timezone', 'Europe/Berlin')
    return env


def digest_of(sid, **prefs):
    return dict({'tracnotify.delivery': 'digest'}, **prefs)


def watch_page(env, sid, name=PAGE):
    assert watches.watch(env, sid, WIKI_WATCH, 'wiki', name)


def watch_milestone(env, sid, name):
    assert watches.watch(env, sid, MILESTONE_WATCH, 'milestone', name)


def save(env, name, text_, author='bob', comment=''):
    page = WikiPage(env, name)
    page.text = text_
    page.save(author, comment)


def create_milestone(env, name):
    milestone = Milestone(env)
    milestone.name = name
    milestone.insert()
    return Milestone(env, name)


def test_wiki_change_waits_for_the_digest_of_who_chose_it(env, sink):
    set_session(env, 'alice', **digest_of('alice'))
    watch_page(env, 'alice')
    watch_page(env, 'dave')                  # no digest: mailed at once
    save(env, PAGE, 'line one\nline two\n')
    save(env, PAGE, 'line one\nline 2\n', comment='Shorter')
    mails = delivered(env, sink)
    assert 'alice@example.net' not in mails
    assert [m['Subject'] for m in mails['dave@example.net']] == \
        ['[Test Project] Wiki: %s' % PAGE] * 2

    day = tomorrow()
    assert digests(env, at(day, 6, 59)) == 0
    assert digests(env, at(day, 7)) == 1
    mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net'}
    mail, = mails['alice@example.net']
    assert mail['Subject'] == \
        '[Test Project] Daily digest: 2 changes on 1 wiki page'
    assert mail['X-Trac-Notification-Type'] == 'digest'
    assert mail.get_content_type() == 'text/plain'
    body = text(mail)
    assert body.startswith('Daily digest: 2 changes on 1 wiki page\n\n'
                           'Wiki: DigestPage\n================\n\n'
                           'Page DigestPage was created by bob.\n')
    created = body.index('Page URL: <http://trac.example.org/wiki/'
                         'DigestPage?version=1>')
    changed = body.index('Page DigestPage was changed by bob (version 2).')
    assert created < changed
    assert 'Comment:\nShorter' in body
    assert '-line two\n+line 2' in body       # the diff of the change
    assert body.index('Page URL: <http://trac.example.org/wiki/'
                      'DigestPage?version=2>') > changed
    assert body.count('\n-- \n') == 1         # one signature, at the end
    assert body.rstrip().endswith(
        '<http://trac.example.org/tracnotify/unsubscribe>')
    assert digests(env, at(day, 9)) == 0      # nothing new


def test_tickets_pages_and_milestones_each_under_a_heading(env, sink):
    set_session(env, 'alice', **digest_of('alice'))
    watch_page(env, 'alice')
    watch_milestone(env, 'alice', 'm1')
    create_milestone(env, 'm1')
    create_ticket(env, summary='A ticket', reporter='alice')
    save(env, PAGE, 'text\n')
    milestone = Milestone(env, 'm1')
    milestone.completed = datetime_now(utc)
    milestone.update(author='bob')      # no web request: no author
    assert 'alice@example.net' not in delivered(env, sink)
    assert digests(env, at(tomorrow(), 8)) == 1
    mail, = delivered(env, sink)['alice@example.net']
    # (a Subject this long is folded before its first word)
    assert mail['Subject'].strip() == '[Test Project] Daily digest: ' \
        '4 changes on 1 ticket, 1 wiki page, 1 milestone'
    body = text(mail)
    ticket = body.index('\nTicket #1: A ticket\n')
    page = body.index('\nWiki: DigestPage\n')
    heading = body.index('\nMilestone: m1\n=============\n')
    assert ticket < page < heading           # tickets, pages, milestones
    assert body.index('Milestone m1 was created.') > heading
    assert body.index('Milestone m1 was completed.') > \
        body.index('Milestone m1 was created.')
    assert 'Milestone URL: <http://trac.example.org/milestone/m1>' in body


def test_html_digest_links_each_page_and_milestone(env, sink):
    set_session(env, 'alice', **digest_of('alice',
                                          **{'tracnotify.format': 'both'}))
    watch_page(env, 'alice')
    watch_milestone(env, 'alice', 'm2')
    save(env, PAGE, 'one\ntwo\n')
    save(env, PAGE, 'one\n2\n', comment='<b>bold</b> comment')
    create_milestone(env, 'm2')
    create_ticket(env, summary='Ticket <i>', reporter='alice')
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 7)) == 1
    mail, = delivered(env, sink)['alice@example.net']
    (t1, body), (t2, html) = parts(mail)
    assert (t1, t2) == ('text/plain', 'text/html')
    assert 'Wiki: DigestPage' in body
    checker = check_html(html)
    tags = checker.tags
    heads = [tags[n + 1][1]['href'] for n, (tag, _a) in enumerate(tags)
             if tag == 'h2']
    assert heads == ['http://trac.example.org/ticket/1',
                     'http://trac.example.org/wiki/DigestPage',
                     'http://trac.example.org/milestone/m2']
    assert '>Wiki: DigestPage</a></h2>' in html
    assert '>Milestone: m2</a></h2>' in html
    assert 'background:#dfd' in html            # the page's coloured diff
    assert '&lt;b&gt;bold&lt;/b&gt; comment' in html and '<b>' not in html
    assert '<body' not in html[html.index('<body') + 1:]   # fragments
    assert html.count('<html') == 1


@pytest.mark.parametrize('sid, title, wiki, milestone', [
    ('hans', 'Tägliche Zusammenfassung: 2 Änderungen an 1 Wiki-Seite, '
             '1 Meilenstein', 'Wiki: DigestPage', 'Meilenstein: m3'),
    ('marie', 'Résumé quotidien : 2 modifications sur 1 page wiki, 1 jalon',
              'Wiki : DigestPage', 'Jalon : m3'),
])
def test_digest_in_the_recipients_language(env, sink, sid, title, wiki,
                                           milestone):
    set_session(env, sid, **digest_of(sid, **{
        'tracnotify.language': {'hans': 'de', 'marie': 'fr'}[sid]}))
    watch_page(env, sid)
    watch_milestone(env, sid, 'm3')
    save(env, PAGE, 'Text\n')
    create_milestone(env, 'm3')
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 7)) == 1
    mail, = delivered(env, sink)['%s@example.net' % sid]
    assert mail['Subject'] == '[Test Project] %s' % title
    body = text(mail)
    assert body.startswith(title + '\n')
    assert '\n%s\n' % wiki in body and '\n%s\n' % milestone in body
    if sid == 'hans':
        assert 'Seite DigestPage wurde von bob angelegt.' in body
        assert 'Meilenstein m3 wurde angelegt.' in body


def test_wiki_view_is_checked_for_digest_items(env, sink):
    env.enable_component(HideWikiPagePolicy)
    env.config.set('trac', 'permission_policies',
                   'HideWikiPagePolicy, DefaultPermissionPolicy, '
                   'LegacyAttachmentPolicy')
    for sid in ('hidden', 'alice'):
        set_session(env, sid, **digest_of(sid))
        watch_page(env, sid, SECRET)
        watch_page(env, sid, 'OpenPage')
    save(env, SECRET, 'The secret text\n')
    save(env, 'OpenPage', 'The open text\n')
    assert delivered(env, sink) == {}
    assert digests(env, at(tomorrow(), 7)) == 2
    mails = delivered(env, sink)
    hidden = text(mails['hidden@example.net'][0])
    assert 'OpenPage' in hidden
    assert SECRET not in hidden and 'secret text' not in hidden
    assert mails['hidden@example.net'][0]['Subject'].endswith(
        '1 change on 1 wiki page')
    assert SECRET in text(mails['alice@example.net'][0])


def test_milestone_view_is_checked_for_digest_items(env, sink):
    env.enable_component(HideMilestonePolicy)
    env.config.set('trac', 'permission_policies',
                   'HideMilestonePolicy, DefaultPermissionPolicy, '
                   'LegacyAttachmentPolicy')
    set_session(env, 'hidden', **digest_of('hidden'))
    watch_milestone(env, 'hidden', SECRET_MILESTONE)
    watch_milestone(env, 'hidden', 'open')
    create_milestone(env, SECRET_MILESTONE)
    create_milestone(env, 'open')
    assert delivered(env, sink) == {}
    assert digests(env, at(tomorrow(), 7)) == 1
    mail, = delivered(env, sink)['hidden@example.net']
    assert mail['Subject'].endswith('1 change on 1 milestone')
    assert 'Milestone: open' in text(mail)
    assert SECRET_MILESTONE not in text(mail)


def test_switching_back_to_immediate_sends_what_was_collected(env, sink):
    set_session(env, 'alice', **digest_of('alice'))
    watch_page(env, 'alice')
    save(env, PAGE, 'Queued\n')
    assert 'alice@example.net' not in delivered(env, sink)
    set_session(env, 'alice', **{'tracnotify.delivery': 'now'})
    save(env, PAGE, 'At once\n')
    mail, = delivered(env, sink)['alice@example.net']
    assert mail['Subject'] == '[Test Project] Wiki: %s' % PAGE
    assert digests(env, at(tomorrow(), 3)) == 1   # whatever the hour
    mail, = delivered(env, sink)['alice@example.net']
    assert 'Queued' in text(mail) and 'At once' not in text(mail)


def test_a_ticket_only_digest_is_unchanged(env):
    """The text of a digest of ticket changes, character for character
    (what it was before digests listed other resources)."""
    from tracnotify.config import load_config
    from tracnotify.mail.digest import DigestRow
    rows = [DigestRow(2, 1, 'First', 10, 'en', 'block 1a', None),
            DigestRow(3, 1, 'First, later', 30, 'en', 'block 1b', None),
            DigestRow(1, 2, 'Second', 20, 'en', 'block 2', None)]
    message = build_digest(env, load_config(env), 'alice@example.net',
                           'alice', '2026-01-01', datetime_now(utc), rows)
    assert message.subject == \
        '[Test Project] Daily digest: 3 changes on 2 tickets'
    data = message.message.decode('ascii') if isinstance(
        message.message, bytes) else message.message
    import email
    from email.policy import SMTP
    mail = email.message_from_string(data, policy=SMTP)
    assert text(mail).split('\n-- \n')[0] == (
        'Daily digest: 3 changes on 2 tickets\n\n'
        'Ticket #1: First, later\n=======================\n\n'
        'block 1a\n\nblock 1b\n\n\n'
        'Ticket #2: Second\n=================\n\nblock 2\n')
