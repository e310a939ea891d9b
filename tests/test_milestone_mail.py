"""Milestones through the outbox: created, due date changed, completed,
renamed, deleted; mailed to the milestone's watchers and, with
``milestone_notify_ticket_people``, to the owners and reporters of its open
tickets; MILESTONE_VIEW checked per recipient; threaded per milestone; the
tickets retargeted from a completed milestone as one batch mail per
recipient."""

from datetime import datetime

import pytest
import trac.ticket.roadmap  # noqa: F401  (MILESTONE_VIEW, as in a real Trac)
from trac.core import Component, implements
from trac.db.api import DatabaseManager
from trac.notification.model import Subscription
from trac.perm import IPermissionPolicy
from trac.test import MockRequest
from trac.ticket.model import Milestone
from trac.util.datefmt import datetime_now, utc

from tests.support.mails import check_html, parts
from tests.support.mails import text_of as body
from tests.support.tickets import by_recipient, create_ticket, deliver
from tests.support.tickets import mails_by_recipient as delivered
from tests.support.users import set_session, users
from tracnotify import outbox, watches
from tracnotify.listener import WebRequestMarker, _web
from tracnotify.milestone_listener import MilestoneAuthorMarker, _request
from tracnotify.milestone_subscribers import WATCH_CLASS, milestone_watchers
from tracnotify.schema import SCHEMA

USERS = users('alice', 'bob', 'dave', 'hans', 'hidden', 'joe')
SECRET = 'secret'


class HideMilestonePolicy(Component):
    """Denies MILESTONE_VIEW on milestone 'secret' to the user 'hidden'."""

    implements(IPermissionPolicy)

    def check_permission(self, action, username, resource, perm):
        if action == 'MILESTONE_VIEW' and username == 'hidden' and \
                resource is not None and resource.realm == 'milestone' and \
                resource.id == SECRET:
            return False
        return None


@pytest.fixture
def env(sink_env):
    return sink_env(USERS)


@pytest.fixture
def web_request():
    """Factory: this thread serves a web request of *user* (what tracd's
    request filters mark), until the test ends."""
    def factory(env, user):
        WebRequestMarker(env).pre_process_request(None, None)
        MilestoneAuthorMarker(env).pre_process_request(
            MockRequest(env, authname=user), None)
    yield factory
    _web.serving = False
    _request.authname = ''


def watch(env, sid, name):
    assert watches.watch(env, sid, WATCH_CLASS, 'milestone', name)


def only(mails, address):
    assert len(mails[address]) == 1, mails[address]
    return mails[address][0]


def create(env, name, **values):
    milestone = Milestone(env)
    milestone.name = name
    for key, value in values.items():
        setattr(milestone, key, value)
    milestone.insert()
    return Milestone(env, name)


def test_watcher_gets_each_kind_threaded_per_milestone(env, sink,
                                                       web_request):
    web_request(env, 'alice')
    watch(env, 'dave', 'm1')
    create(env, 'm1', description='The first release.')
    created = only(delivered(env, sink, True), 'dave@example.net')
    assert created['Subject'] == '[Test Project] Milestone: m1'
    assert created['X-Trac-Notification-Type'] == 'milestone_created'
    assert created['X-Trac-Realm'] == 'milestone'
    assert created['X-Trac-Notification-Reason'] == 'watcher'
    assert created['X-Trac-Milestone'] == 'm1'
    assert created['In-Reply-To'] is None
    assert created['List-Unsubscribe'].startswith(
        '<http://trac.example.org/tracnotify/unsubscribe/')
    text = body(created)
    assert text.startswith('Milestone m1 was created by alice.\n\n'
                           'Milestone: m1\n')
    assert 'Description:\nThe first release.\n' in text
    assert 'Milestone URL: <http://trac.example.org/milestone/m1>' in text

    milestone = Milestone(env, 'm1')
    milestone.due = datetime(2030, 5, 1, 18, 0, tzinfo=utc)
    milestone.update(author='alice')
    changed = only(delivered(env, sink, True), 'dave@example.net')
    assert changed['X-Trac-Notification-Type'] == 'milestone_changed'
    assert changed['In-Reply-To'] == created['Message-ID']
    assert changed['References'] == created['Message-ID']
    text = body(changed)
    assert text.startswith('Milestone m1 was changed by alice.\n\n'
                           'Milestone: m1\n      Due: 2030-05-01 18:00 UTC\n')
    assert 'Changes:\n\n * Due:  (none) => 2030-05-01 18:00 UTC\n' in text
    assert 'Description:' not in text        # it did not change

    milestone = Milestone(env, 'm1')
    milestone.completed = datetime(2030, 4, 30, 12, 0, tzinfo=utc)
    milestone.description = 'Released.'
    milestone.update(author='alice')
    completed = only(delivered(env, sink, True), 'dave@example.net')
    assert completed['X-Trac-Notification-Type'] == 'milestone_completed'
    assert completed['In-Reply-To'] == created['Message-ID']
    text = body(completed)
    assert 'Milestone m1 was completed by alice.' in text
    assert ' * Completed:  (none) => 2030-04-30 12:00 UTC\n' \
        ' * Description:  modified\n' in text
    assert 'Description:\nReleased.\n' in text

    milestone = Milestone(env, 'm1')
    milestone.name = 'v1.0'
    milestone.update(author='alice')
    assert milestone_watchers(env, 'v1.0') == [('dave', 1)]
    assert milestone_watchers(env, 'm1') == []
    renamed = only(delivered(env, sink, True), 'dave@example.net')
    assert renamed['X-Trac-Notification-Type'] == 'milestone_renamed'
    assert renamed['Subject'] == '[Test Project] Milestone: v1.0'
    assert renamed['In-Reply-To'] == created['Message-ID']  # the old thread
    assert 'Milestone m1 was renamed to v1.0 by alice.' in body(renamed)
    assert ' * Milestone:  m1 => v1.0\n' in body(renamed)

    Milestone(env, 'v1.0').delete()
    deleted = only(delivered(env, sink, True), 'dave@example.net')
    assert deleted['X-Trac-Notification-Type'] == 'milestone_deleted'
    assert deleted['In-Reply-To'] != created['Message-ID']  # v1.0's thread
    assert 'Milestone v1.0 was deleted by alice.' in body(deleted)
    assert 'Milestone URL: <http://trac.example.org/roadmap>' in \
        body(deleted)


def test_copies_share_one_stored_body(env, sink):
    for sid in ('dave', 'joe', 'hans'):
        watch(env, sid, 'shared')
    create(env, 'shared')
    assert sorted(delivered(env, sink, True)) == [
        'dave@example.net', 'hans@example.net', 'joe@example.net']
    assert env.db_query("""
        SELECT COUNT(*), COUNT(DISTINCT body_id) FROM tracnotify_message
        WHERE kind='milestone_created' AND body_id IS NOT NULL""") == \
        [(3, 1)]


def test_changes_outside_a_request_have_no_author(env, sink):
    watch(env, 'dave', 'm2')
    create(env, 'm2')
    assert body(only(delivered(env, sink, True), 'dave@example.net')) \
        .startswith('Milestone m2 was created.\n')


def test_milestone_view_is_checked_per_recipient(env, sink):
    env.enable_component(HideMilestonePolicy)
    env.config.set('trac', 'permission_policies',
                   'HideMilestonePolicy, DefaultPermissionPolicy, '
                   'LegacyAttachmentPolicy')
    for sid in ('hidden', 'dave'):
        watch(env, sid, SECRET)
        watch(env, sid, 'open')
    create(env, SECRET)
    create(env, 'open')
    got = sorted((m['X-Trac-Milestone'], rcpt) for rcpt, mails
                 in delivered(env, sink, True).items() for m in mails)
    assert got == [('open', 'dave@example.net'),
                   ('open', 'hidden@example.net'),
                   (SECRET, 'dave@example.net')]


def test_never_rule_and_own_changes(env, sink, web_request):
    web_request(env, 'dave')
    env.config.set('notification', 'default_own_changes', 'false')
    watch(env, 'dave', 'm3')
    watch(env, 'bob', 'm3')
    Subscription.add(env, {'sid': 'bob', 'authenticated': 1,
                           'distributor': 'email', 'format': None,
                           'adverb': 'never', 'class': WATCH_CLASS})
    create(env, 'm3')
    assert delivered(env, sink) == {}           # dave's own, bob's never
    set_session(env, 'dave', **{'tracnotify.own_changes': '1'})
    milestone = Milestone(env, 'm3')
    milestone.description = 'Now with a plan.'
    milestone.update()
    assert set(delivered(env, sink, True)) == {'dave@example.net'}


def test_ticket_people_by_option(env, sink):
    create(env, 'm4')
    create_ticket(env, milestone='m4', reporter='alice', owner='joe')
    create_ticket(env, milestone='m4', reporter='outside@example.com',
                  owner='joe')
    create_ticket(env, milestone='m4', reporter='bob', owner='hans',
                  status='closed')
    deliver(env)
    milestone = Milestone(env, 'm4')
    milestone.due = datetime(2031, 1, 1, tzinfo=utc)
    milestone.update()
    assert delivered(env, sink) == {}           # no watchers, option off
    env.config.set('notification', 'milestone_notify_ticket_people', 'true')
    milestone = Milestone(env, 'm4')
    milestone.due = datetime(2031, 2, 1, tzinfo=utc)
    milestone.update()
    mails = delivered(env, sink, True)
    # not bob and hans: their ticket is closed
    assert sorted(mails) == ['alice@example.net', 'joe@example.net',
                             'outside@example.com']
    assert only(mails, 'joe@example.net')[
        'X-Trac-Notification-Reason'] == 'owner'
    assert only(mails, 'alice@example.net')[
        'X-Trac-Notification-Reason'] == 'reporter'


def test_deleted_milestone_reaches_the_people_of_its_retargeted_tickets(
        env, sink, web_request):
    web_request(env, 'alice')
    env.config.set('notification', 'milestone_notify_ticket_people', 'true')
    create(env, 'gone')
    create(env, 'next')
    create_ticket(env, milestone='gone', reporter='alice', owner='joe')
    deliver(env)
    sink.received.clear()
    milestone = Milestone(env, 'gone')
    # what the roadmap's delete form does: retarget, then delete
    milestone.move_tickets('next', 'alice',
                           'Ticket retargeted after milestone deleted')
    milestone.delete()
    mails = delivered(env, sink, True)
    kinds = sorted(m['X-Trac-Notification-Type'] for m in
                   mails['joe@example.net'])
    assert kinds == ['milestone_deleted', 'ticket_changed']


def test_completion_retargets_in_one_batch_mail_per_recipient(
        sink_env, sink, web_request):
    """What the roadmap's form does when a milestone is completed with
    "retarget open tickets": ``Milestone.update`` (milestone_changed),
    then ``move_tickets`` (one ``ticket_changed`` per ticket, one author,
    one time, one transaction)."""
    env = sink_env(USERS, batch_window='5', always_notify_reporter='true')
    web_request(env, 'bob')
    create(env, 'm5')
    create(env, 'm6')
    watch(env, 'dave', 'm5')
    ids = [create_ticket(env, summary='Ticket %d' % i, milestone='m5',
                         owner='joe', status='new').id for i in (1, 2, 3)]
    create_ticket(env, summary='Done', milestone='m5', status='closed')
    deliver(env)
    sink.received.clear()
    milestone = Milestone(env, 'm5')
    milestone.completed = datetime_now(utc)
    milestone.update(author='bob')
    moved = milestone.move_tickets('m6', 'bob', 'Moving on',
                                   exclude_closed=True)
    assert sorted(moved) == ids     # Trac's SELECT has no ORDER BY
    report = deliver(env)
    assert report.events == 4
    mails = by_recipient(sink.received)
    assert {r: [m['X-Trac-Notification-Type'] for m in ms]
            for r, ms in mails.items()} == {
        'dave@example.net': ['milestone_completed'],
        'alice@example.net': ['batchmodify'],   # the reporter
        'joe@example.net': ['batchmodify'],     # the owner
        'bob@example.net': ['batchmodify']}     # the updater
    batch = mails['joe@example.net'][0]
    # by ticket id, whatever order Trac moved them in
    assert batch['Subject'] == '[Test Project] Batch modify: #1, #2, #3'
    text = body(batch)
    assert text.count(' * milestone:  m5 => m6') == 3
    assert text.count('Moving on') == 3
    assert outbox.counts(env)['events'] == 0


def test_a_failing_outbox_never_breaks_the_save(env):
    with env.db_transaction as db:
        db('DROP TABLE tracnotify_event')
    try:
        create(env, 'm7')                      # no exception
        assert Milestone(env, 'm7').exists
    finally:
        DatabaseManager(env).create_tables(
            [t for t in SCHEMA if t.name == 'tracnotify_event'])


def test_mail_in_the_recipients_language(env, sink):
    set_session(env, 'hans', **{'tracnotify.language': 'de'})
    watch(env, 'hans', 'm8')
    create(env, 'm8')
    text = body(only(delivered(env, sink, True), 'hans@example.net'))
    assert text.startswith('Meilenstein m8 wurde angelegt.\n')


def test_html_for_who_chose_it(env, sink, web_request):
    web_request(env, 'alice')
    watch(env, 'dave', 'm9')
    watch(env, 'joe', 'm9')
    set_session(env, 'dave', **{'tracnotify.format': 'both'})
    create(env, 'm9', description='Plan <b>& more</b>')
    created = parts(only(delivered(env, sink, True), 'dave@example.net'))
    assert 'Plan &lt;b&gt;&amp; more&lt;/b&gt;' in created[1][1]
    milestone = Milestone(env, 'm9')
    milestone.due = datetime(2030, 5, 1, 18, 0, tzinfo=utc)
    milestone.update()
    mails = delivered(env, sink, True)
    assert only(mails, 'joe@example.net').get_content_type() == 'text/plain'
    (text_type, text), (html_type, html) = parts(
        only(mails, 'dave@example.net'))
    assert (text_type, html_type) == ('text/plain', 'text/html')
    assert text.startswith('Milestone m9 was changed by alice.\n')
    checker = check_html(html)
    assert 'Milestone m9 was changed by alice.' in html
    assert '(none)</del> \u2192 <ins' in html and \
        '2030-05-01 18:00 UTC</ins>' in html
    assert 'http://trac.example.org/milestone/m9' in checker.links


def test_a_broken_html_override_still_sends_the_text(env, sink):
    import os
    folder = os.path.join(env.templates_dir, 'mail')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'milestone_body.html'), 'w') as f:
        f.write('<html><p>${unclosed</html>')
    watch(env, 'dave', 'm10')
    set_session(env, 'dave', **{'tracnotify.format': 'html'})
    create(env, 'm10')
    mail = only(delivered(env, sink, True), 'dave@example.net')
    assert mail.get_content_type() == 'text/plain'
    assert body(mail).startswith('Milestone m10 was created.\n')


def test_watch_button_handler(env):
    from trac.web.api import HTTPBadRequest, RequestDone

    from tracnotify.web.realm_watch import RealmWatchModule
    create(env, 'm11')
    module = RealmWatchModule(env)

    def post(name, action):
        req = MockRequest(env, authname='dave', method='POST',
                          path_info='/tracnotify/watch/milestone/' + name,
                          args={'action': action})
        assert module.match_request(req)
        module.process_request(req)

    with pytest.raises(RequestDone):
        post('m11', 'watch')
    assert milestone_watchers(env, 'm11') == [('dave', 1)]
    with pytest.raises(RequestDone):
        post('m11', 'unwatch')
    assert milestone_watchers(env, 'm11') == []
    with pytest.raises(HTTPBadRequest) as raised:
        post('nope', 'watch')
    assert 'No such milestone.' in str(raised.value)
