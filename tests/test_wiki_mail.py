"""Wiki pages through the outbox: created, changed (with Trac's unified
diff and the change comment), renamed, deleted, attachments; mailed to the
page's watchers and to previous authors who opted in, WIKI_VIEW checked per
recipient, threaded per page."""

import io

import pytest
import trac.wiki.web_ui  # noqa: F401  (WIKI_VIEW, as in a real Trac)
from trac.attachment import Attachment
from trac.core import Component, implements
from trac.notification.model import Subscription
from trac.perm import IPermissionPolicy
from trac.wiki.model import WikiPage

from tests.support.tickets import create_ticket
from tests.support.tickets import mails_by_recipient as delivered
from tracnotify import watches
from tracnotify.config import load_config
from tracnotify.mail.wiki import thread_ids
from tracnotify.wiki_event import WikiEvent
from tracnotify.wiki_subscribers import AUTHORS_CLASS, WATCH_CLASS

USERS = (('alice', 'Alice A', 'alice@example.net'),
         ('bob', 'Bob B', 'bob@example.net'),
         ('dave', 'Dave D', 'dave@example.net'),
         ('hidden', 'Hidden H', 'hidden@example.net'))
SECRET = 'SecretPage'


class HideWikiPagePolicy(Component):
    """Denies WIKI_VIEW on SecretPage to the user 'hidden'."""

    implements(IPermissionPolicy)

    def check_permission(self, action, username, resource, perm):
        if action == 'WIKI_VIEW' and username == 'hidden' and \
                resource is not None and resource.realm == 'wiki' and \
                resource.id == SECRET:
            return False
        return None


@pytest.fixture
def env(sink_env):
    return sink_env(USERS)


def save(env, name, text, author='alice', comment=''):
    page = WikiPage(env, name)
    page.text = text
    page.save(author, comment)
    return page


def watch(env, sid, name):
    assert watches.watch(env, sid, WATCH_CLASS, 'wiki', name)


def body(mail) -> str:
    return mail.get_content().replace('\r\n', '\n')


def only(mails, address):
    assert len(mails[address]) == 1, mails[address]
    return mails[address][0]


def add_rule(env, sid, klass, adverb='always'):
    Subscription.add(env, {'sid': sid, 'authenticated': 1,
                           'distributor': 'email', 'format': None,
                           'adverb': adverb, 'class': klass})


def test_watcher_gets_the_change_with_diff_and_comment(env, sink):
    watch(env, 'dave', 'WikiStart2')
    save(env, 'WikiStart2', 'line one\nline two\nline three\n')
    created = only(delivered(env, sink, True), 'dave@example.net')
    assert created['Subject'] == '[Test Project] Wiki: WikiStart2'
    assert created['X-Trac-Notification-Type'] == 'wiki_created'
    assert created['X-Trac-Realm'] == 'wiki'
    assert created['X-Trac-Notification-Reason'] == 'watcher'
    assert created['In-Reply-To'] is None
    assert 'line two' in body(created)

    save(env, 'WikiStart2', 'line one\nline 2\nline three\n', author='bob',
         comment='Numbers are shorter')
    mails = delivered(env, sink, True)
    assert set(mails) == {'dave@example.net'}   # alice did not opt in
    mail = only(mails, 'dave@example.net')
    assert mail['X-Trac-Notification-Type'] == 'wiki_changed'
    assert mail['In-Reply-To'] == created['Message-ID']
    assert mail['References'] == created['Message-ID']
    assert mail['X-Trac-Wiki-Page'] == 'WikiStart2'
    assert mail['List-Unsubscribe'].startswith(
        '<http://trac.example.org/tracnotify/unsubscribe/')
    text = body(mail)
    assert 'Page WikiStart2 was changed by bob (version 2).' in text
    assert 'Comment:\nNumbers are shorter\n' in text
    assert ('--- WikiStart2\t(version 1)\n+++ WikiStart2\t(version 2)\n'
            '@@ -1,3 +1,3 @@\n line one\n-line two\n+line 2\n line three\n'
            ) in text
    assert 'Changes (http://trac.example.org/wiki/WikiStart2?action=diff' \
        '&old_version=1&version=2):' in text
    assert 'To stop these e-mails: <http://trac.example.org/tracnotify/' \
        'unsubscribe>' in text


def test_previous_authors_who_opt_in_and_own_changes(env, sink):
    env.config.set('notification', 'default_own_changes', 'false')
    save(env, 'Notes', 'first')
    save(env, 'Notes', 'second', author='bob')
    assert delivered(env, sink) == {}           # nobody watches, no rules
    add_rule(env, 'alice', AUTHORS_CLASS)
    add_rule(env, 'bob', AUTHORS_CLASS)
    save(env, 'Notes', 'third', author='bob')
    mails = delivered(env, sink, True)
    # bob edited before too, but it is his own change
    assert set(mails) == {'alice@example.net'}
    assert only(mails, 'alice@example.net')[
        'X-Trac-Notification-Reason'] == 'previous_author'
    watch(env, 'bob', 'Notes')
    save(env, 'Notes', 'fourth', author='bob')
    assert set(delivered(env, sink, True)) == {'alice@example.net'}
    env.config.set('notification', 'default_own_changes', 'true')
    save(env, 'Notes', 'fifth', author='bob')   # as a watcher, he wants it
    assert set(delivered(env, sink, True)) == {'alice@example.net',
                                               'bob@example.net'}


def test_wiki_view_is_checked_per_recipient(env, sink):
    env.enable_component(HideWikiPagePolicy)
    env.config.set('trac', 'permission_policies',
                   'HideWikiPagePolicy, DefaultPermissionPolicy, '
                   'LegacyAttachmentPolicy')
    for sid in ('hidden', 'dave'):
        watch(env, sid, SECRET)
        watch(env, sid, 'OpenPage')
    save(env, SECRET, 'secret text')
    save(env, 'OpenPage', 'open text')
    got = sorted((m['X-Trac-Wiki-Page'], rcpt) for rcpt, mails
                 in delivered(env, sink, True).items() for m in mails)
    assert got == [('OpenPage', 'dave@example.net'),
                   ('OpenPage', 'hidden@example.net'),
                   (SECRET, 'dave@example.net')]


def test_never_rule_wins_over_watching(env, sink):
    watch(env, 'dave', 'Quiet')
    add_rule(env, 'dave', WATCH_CLASS, 'never')
    save(env, 'Quiet', 'text')
    assert delivered(env, sink) == {}


def test_rename_moves_watchers_and_delete_is_mailed(env, sink):
    watch(env, 'dave', 'OldName')
    save(env, 'OldName', 'text')
    created = only(delivered(env, sink, True), 'dave@example.net')
    WikiPage(env, 'OldName').rename('NewName')
    assert watches.watchers(env, WATCH_CLASS, 'wiki', 'NewName') == \
        [('dave', 1)]
    assert watches.watchers(env, WATCH_CLASS, 'wiki', 'OldName') == []
    renamed = only(delivered(env, sink, True), 'dave@example.net')
    assert renamed['X-Trac-Notification-Type'] == 'wiki_renamed'
    assert renamed['Subject'] == '[Test Project] Wiki: NewName'
    assert renamed['In-Reply-To'] == created['Message-ID']
    assert 'Page OldName was renamed to NewName.' in body(renamed)

    save(env, 'NewName', 'more text', author='bob')
    changed = only(delivered(env, sink, True), 'dave@example.net')
    assert changed['In-Reply-To'] != created['Message-ID']  # the new thread
    WikiPage(env, 'NewName').delete(version=2)               # silent
    assert delivered(env, sink) == {}
    WikiPage(env, 'NewName').delete()
    deleted = only(delivered(env, sink, True), 'dave@example.net')
    assert deleted['X-Trac-Notification-Type'] == 'wiki_deleted'
    assert 'Page NewName was deleted.' in body(deleted)


def test_comment_edits_and_readonly_changes_are_silent(env, sink):
    watch(env, 'dave', 'Page')
    save(env, 'Page', 'text')
    delivered(env, sink)
    page = WikiPage(env, 'Page')
    page.edit_comment('a better comment')
    page = WikiPage(env, 'Page')
    page.readonly = 1
    page.save('alice', 'locked')
    assert delivered(env, sink) == {}


def test_attachments_of_a_page_go_to_its_watchers(env, sink):
    watch(env, 'dave', 'Docs')
    save(env, 'Docs', 'see the file')
    delivered(env, sink)
    attachment = Attachment(env, 'wiki', 'Docs')
    attachment.author = 'bob'
    attachment.description = 'The manual'
    attachment.insert('manual.txt', io.BytesIO(b'read me\n'), 8)
    added = only(delivered(env, sink, True), 'dave@example.net')
    assert added['X-Trac-Notification-Type'] == 'wiki_attachment_added'
    assert 'Attachment "manual.txt" was added to page Docs by bob.' in \
        body(added)
    assert 'The manual' in body(added)
    Attachment(env, 'wiki', 'Docs', 'manual.txt').delete()
    removed = only(delivered(env, sink, True), 'dave@example.net')
    assert removed['X-Trac-Notification-Type'] == 'wiki_attachment_deleted'
    assert added['Message-ID'] != removed['Message-ID']


def test_ticket_mail_is_unchanged_beside_wiki_mail(env, sink):
    watch(env, 'dave', 'Page')
    save(env, 'Page', 'text')
    create_ticket(env, cc='bob')
    mails = delivered(env, sink, True)
    assert only(mails, 'dave@example.net')['X-Trac-Realm'] == 'wiki'
    ticket_mail = only(mails, 'bob@example.net')
    assert ticket_mail['X-Trac-Realm'] == 'ticket'
    assert ticket_mail['X-Trac-Notification-Type'] == 'ticket_created'


def test_german_recipient(env, sink):
    env.db_transaction("""
        INSERT INTO session_attribute (sid, authenticated, name, value)
        VALUES ('dave', 1, 'tracnotify.language', 'de')""")
    watch(env, 'dave', 'Seite')
    save(env, 'Seite', 'eins')
    delivered(env, sink)
    save(env, 'Seite', 'zwei', author='bob', comment='besser')
    text = body(only(delivered(env, sink, True), 'dave@example.net'))
    assert 'Seite Seite wurde von bob geändert (Version 2).' in text
    assert 'Kommentar:\nbesser' in text


def test_thread_ids_are_stable_per_page(env):
    config = load_config(env)
    first = WikiEvent(kind='wiki_created', page='P', time=1000000,
                      version=1)
    change = WikiEvent(kind='wiki_changed', page='P', time=2000000,
                       version=2)
    other = WikiEvent(kind='wiki_changed', page='Q', time=2000000,
                      version=2)
    root, none = thread_ids(env, config, first)
    assert none is None
    msgid, parent = thread_ids(env, config, change)
    assert parent == root and msgid != root
    assert thread_ids(env, config, other)[1] != root
    assert WikiEvent.from_json(change.to_json()) == change
