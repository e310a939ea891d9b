"""Preferences -> Notifications: the "Ticket mail" section (MockRequest),
and what the choices do to the mail a real SMTP server receives."""

import pytest
import trac.notification.prefs  # noqa: F401  (Trac's Notifications panel)
from trac.notification.model import Subscription
from trac.prefs.web_ui import PreferencesModule
from trac.test import MockRequest
from trac.web.api import RequestDone
from trac.web.chrome import Chrome
from trac.web.session import DetachedSession

from tests.support.tickets import (
    add_users,
    change_ticket,
    create_ticket,
    mail_to_each,
)
from tests.support.users import users
from tracnotify.config import load_config
from tracnotify.event import TicketEvent
from tracnotify.mail.choices import delivery_choice, event_categories
from tracnotify.web.preferences import TicketMailPreferences

TOKEN = 'form-token-123'
USERS = users('alice', 'joe', 'bob')


def prefs_request(env, method='GET', authname='alice', **args):
    args.setdefault('panel_id', 'notification')
    if method == 'POST':
        args['__FORM_TOKEN'] = TOKEN
    return MockRequest(env, authname=authname, method=method, args=args,
                       form_token=TOKEN, path_info='/prefs/notification')


def prefs_page(env, authname='alice') -> str:
    """Trac's Notifications page, rendered as Trac renders it."""
    req = prefs_request(env, authname=authname)
    template, data = PreferencesModule(env).process_request(req)[:2]
    return Chrome(env).render_template(req, template, data,
                                       {'iterable': False}).decode('utf-8')


def save(env, authname='alice', **form):
    """Submit Trac's Notifications form (its rules kept) with *form*."""
    form.setdefault('tracnotify_prefs', '1')
    form.setdefault('action', 'replace_all')
    req = prefs_request(env, 'POST', authname, **form)
    with pytest.raises(RequestDone):
        PreferencesModule(env).process_request(req)
    assert req.headers_sent.get('Location', '').endswith(
        '/prefs/notification')
    req.session.save()  # what Trac's RequestWithSession does on the redirect
    return dict(DetachedSession(env, authname))


def set_session(env, sid, **attrs):
    session = DetachedSession(env, sid)
    for name, value in attrs.items():
        session[name] = value
    session.save()


@pytest.fixture
def env(make_env):
    env = make_env()
    add_users(env, *USERS)
    return env


# The page ------------------------------------------------------------------

def test_section_is_inside_trac_notifications_page(env):
    html = prefs_page(env)
    # Trac's own subscription rules, then our section, in the same form
    form = html.index('<form id="userprefs"')
    rules = html.index('id="subscriptions-section"')
    ours = html.index('id="tracnotify-prefs"')
    save_button = html.index('value="Save changes"')
    assert form < rules < ours < save_button < html.index('</form>', ours)
    assert '<h2 id="tracnotify-section">Ticket mail</h2>' in html
    for event in ('created', 'changed', 'commented', 'closed', 'reassigned'):
        assert 'id="tracnotify-event-%s" checked="checked"' % event in html
    assert 'name="tracnotify_format"' in html
    assert 'name="tracnotify_delivery"' in html
    assert '<option value="de">Deutsch</option>' in html
    assert '<option value="fr">Français</option>' in html
    # not a rival page: the panel has no tab, and its URL goes to Trac's
    assert 'id="tab_tracnotify"' not in html
    req = MockRequest(env, authname='alice', path_info='/prefs/tracnotify',
                      args={'panel_id': 'tracnotify'})
    with pytest.raises(RequestDone):
        PreferencesModule(env).process_request(req)
    assert req.headers_sent['Location'].endswith('/prefs/notification')


def test_anonymous_has_no_section(env):
    assert 'tracnotify-prefs' not in prefs_page(env, authname='anonymous')


def test_page_in_german(env):
    set_session(env, 'alice', language='de')
    req = prefs_request(env)
    from trac.util.translation import activate, deactivate
    activate('de', env.path)
    try:
        _template, data = TicketMailPreferences(env).render_preference_panel(
            req, 'tracnotify')
        html = Chrome(env).render_fragment(req, 'tracnotify_prefs.html',
                                           data)
    finally:
        deactivate()
    assert 'Mir eine Mail senden, wenn:' in html
    assert 'mir ein Ticket zugewiesen wird' in html
    assert 'Wie meine Spracheinstellung (Deutsch)' in html


def test_save_choices(env):
    attrs = save(env, tracnotify_events=['closed', 'reassigned'],
                 tracnotify_format='both', tracnotify_delivery='digest',
                 tracnotify_language='fr')
    assert attrs['tracnotify.events'] == 'closed,reassigned'
    assert attrs['tracnotify.own_changes'] == '0'   # box left unticked
    assert attrs['tracnotify.format'] == 'both'
    assert attrs['tracnotify.delivery'] == 'digest'
    assert attrs['tracnotify.language'] == 'fr'
    assert delivery_choice(env, 'alice') == 'digest'
    html = prefs_page(env)
    assert 'id="tracnotify-event-closed" checked="checked"' in html
    assert 'id="tracnotify-event-created" checked' not in html
    assert '<option value="both" selected="selected">' in html
    assert '<option value="fr" selected="selected">' in html


def test_defaults_are_not_stored_and_follow_the_admin(env):
    attrs = save(env, tracnotify_events=['created', 'changed', 'commented',
                                         'closed', 'reassigned'],
                 tracnotify_own_changes='1', tracnotify_format='',
                 tracnotify_delivery='', tracnotify_language='xx',
                 tracnotify_announcements='1')
    assert not [k for k in attrs if k.startswith('tracnotify.')]
    assert delivery_choice(env, 'alice') == 'now'
    env.config.set('notification', 'default_delivery', 'digest')
    assert delivery_choice(env, 'alice') == 'digest'


def test_trac_rules_are_saved_with_our_choices(env):
    """One form, one button: Trac's rules and our section together."""
    save(env, tracnotify_events=['closed'],
         **{'adverb-email': ['never'],
            'class-email': ['CarbonCopySubscriber'], 'format-email': ''})
    rules = list(Subscription.find_by_sid_and_distributor(env, 'alice', 1,
                                                          'email'))
    assert [(r['class'], r['adverb']) for r in rules] == \
        [('CarbonCopySubscriber', 'never')]
    assert DetachedSession(env, 'alice')['tracnotify.events'] == 'closed'


def test_a_post_without_our_section_keeps_our_choices(env):
    set_session(env, 'alice', **{'tracnotify.events': 'closed'})
    save(env, tracnotify_prefs='', **{'action': 'replace_all'})
    assert DetachedSession(env, 'alice')['tracnotify.events'] == 'closed'


def test_admin_defaults_are_documented_options(env):
    from trac.config import Option
    registry = Option.get_registry(env.compmgr)
    for name in ('default_events', 'default_own_changes',
                 'default_delivery'):
        option = registry[('notification', name)]
        assert option.__doc__ and '(tracnotify)' in option.__doc__


def test_bad_admin_defaults_are_reported(make_env):
    env = make_env(default_events='closed, exploded',
                   **{'default_format.email': 'text/markdown'})
    config = load_config(env)
    assert config.default_events == ('closed',)
    assert config.default_format == 'text'
    assert any('exploded' in e for e in config.errors)
    assert any('text/markdown' in e for e in config.errors)


# What an event is, for one person -----------------------------------------

def _event(**kw):
    base = dict(kind='ticket_changed', ticket_id=1, time=1, author='bob',
                values={'status': 'closed', 'owner': 'joe'})
    base.update(kw)
    return TicketEvent(**base)


@pytest.mark.parametrize('event, me, expected', [
    (_event(kind='ticket_created', old_values={}), 'joe', {'created'}),
    (_event(old_values={'status': 'new', 'resolution': ''},
            values={'status': 'closed', 'resolution': 'fixed'}), 'joe',
     {'closed'}),
    (_event(old_values={'status': 'new'}, comment='done'), 'joe',
     {'closed', 'commented'}),
    (_event(old_values={'owner': 'bob'}), 'joe', {'reassigned'}),
    (_event(old_values={'owner': 'bob'}), 'kim', {'changed'}),
    (_event(kind='ticket_comment', comment='hi'), 'joe', {'commented'}),
    (_event(old_values={'owner': 'bob', 'priority': 'minor'},
            values={'owner': 'joe', 'priority': 'major'}), 'joe',
     {'reassigned', 'changed'}),
])
def test_event_categories(event, me, expected):
    assert event_categories(event, [me]) == expected


# The mail that arrives ------------------------------------------------------

@pytest.fixture
def mail_env(sink_env):
    return sink_env(USERS)


def delivered(env, sink):
    return mail_to_each(env, sink)


def test_event_filter_only_closed(mail_env, sink):
    set_session(mail_env, 'joe', **{'tracnotify.events': 'closed'})
    ticket = create_ticket(mail_env, owner='joe')
    assert 'joe@example.net' not in delivered(mail_env, sink)
    change_ticket(mail_env, ticket.id, author='bob', comment='A comment.')
    assert 'joe@example.net' not in delivered(mail_env, sink)
    change_ticket(mail_env, ticket.id, author='bob', status='closed',
                  resolution='fixed', comment='Done.')
    mails = delivered(mail_env, sink)
    assert 'joe@example.net' in mails
    assert 'alice@example.net' in mails   # the reporter chose nothing


def test_reassigned_to_me(mail_env, sink):
    set_session(mail_env, 'joe', **{'tracnotify.events': 'reassigned'})
    ticket = create_ticket(mail_env, owner='kim')
    delivered(mail_env, sink)
    change_ticket(mail_env, ticket.id, author='bob', owner='joe')
    assert 'joe@example.net' in delivered(mail_env, sink)
    change_ticket(mail_env, ticket.id, author='bob', priority='minor')
    assert 'joe@example.net' not in delivered(mail_env, sink)


def test_own_changes_opt_out_wins_over_always_notify_updater(sink_env, sink):
    env = sink_env(USERS, always_notify_updater='true')
    ticket = create_ticket(env)
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', comment='Mine.')
    assert 'bob@example.net' in delivered(env, sink)
    set_session(env, 'bob', **{'tracnotify.own_changes': '0'})
    change_ticket(env, ticket.id, author='bob', comment='Mine again.')
    mails = delivered(env, sink)
    assert 'bob@example.net' not in mails
    assert 'alice@example.net' in mails


def test_admin_default_own_changes_off(sink_env, sink):
    env = sink_env(USERS, default_own_changes='false')
    ticket = create_ticket(env)
    delivered(env, sink)
    change_ticket(env, ticket.id, author='bob', comment='Mine.')
    assert 'bob@example.net' not in delivered(env, sink)
    set_session(env, 'bob', **{'tracnotify.own_changes': '1'})
    change_ticket(env, ticket.id, author='bob', comment='Mine again.')
    assert 'bob@example.net' in delivered(env, sink)


def test_always_cc_is_not_filtered(sink_env, sink):
    env = sink_env(USERS, smtp_always_cc='audit@example.org',
                   default_events='closed')
    create_ticket(env, owner='joe')
    mails = delivered(env, sink)
    assert set(mails) == {'audit@example.org'}


def test_role_filter_through_trac_rules(mail_env, sink):
    """Roles are Trac's subscription rules on the same page."""
    save(mail_env, authname='joe',
         **{'adverb-email': ['never'],
            'class-email': ['TicketOwnerSubscriber'], 'format-email': ''})
    ticket = create_ticket(mail_env, owner='joe', cc='bob')
    mails = delivered(mail_env, sink)
    assert 'joe@example.net' not in mails and 'bob@example.net' in mails
    change_ticket(mail_env, ticket.id, author='alice', cc='bob, joe')
    # joe is now in cc, but his first matching rule (owner: never) decides,
    # exactly as Trac ranks rules
    assert 'joe@example.net' not in delivered(mail_env, sink)
