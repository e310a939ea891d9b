"""Bounces stop mail to dead addresses: real copies sent to a real SMTP
server with their VERP envelope senders, bounces written back to those
addresses through the one inbound entry (receive), and SMTP refusals at
send time; the address is disabled after bounce_threshold, shown to the
admin (panel, reset) and to the user (Preferences), and `notify status`."""

import pytest
import trac.admin.web_ui  # noqa: F401  (admin.html and AdminModule)
from trac.admin.web_ui import AdminModule
from trac.perm import PermissionError, PermissionSystem
from trac.test import MockRequest
from trac.web.api import HTTPBadRequest, RequestDone
from trac.web.chrome import Chrome

from tests.support.bounce_mail import bounce_bytes
from tests.support.inbound import inbound_rows
from tests.support.tickets import add_users, change_ticket, create_ticket, deliver
from tests.support.users import set_session, users
from tracnotify.inbound import bounce_record
from tracnotify.inbound.receive import receive
from tracnotify.mail import suppression, verp
from tracnotify.web.bounces import BouncesAdminPanel, preferences_notice, status_lines

BOUNCE = 'trac+bounce-{token}@example.org'
ALICE = 'alice@example.net'
TOKEN = 'form-token-123'


@pytest.fixture
def site(make_env, smtp_sink):
    sink = smtp_sink()
    env = make_env(smtp_port=str(sink.port), smtp_server='127.0.0.1',
                   bounce_address=BOUNCE)
    add_users(env, *users('alice', 'bob'))
    ticket = create_ticket(env)          # reporter alice
    sink.received.clear()
    deliver(env)
    return env, sink, ticket.id


def copies_to(env, sink, address, ticket, n):
    """Make *n* changes and deliver them: the envelope sender and
    Message-ID of each copy sent to *address*."""
    sink.received.clear()
    for i in range(n):
        change_ticket(env, ticket, author='bob', comment='change %d' % i)
    deliver(env)
    return [(r.mail_from, r.message['Message-ID']) for r in sink.received
            if r.rcpt_tos == [address]]


def bounce(env, name, verp_address, message_id, recipient=ALICE, **kw):
    return receive(env, bounce_bytes(name, verp=verp_address,
                                     recipient=recipient,
                                     message_id=message_id), **kw)


def test_a_dsn_and_a_postfix_bounce_disable_the_address(site):
    env, sink, ticket = site
    copies = copies_to(env, sink, ALICE, ticket, 3)
    assert len(copies) == 3
    for (sender, msgid), name in zip(copies, ('dsn_hard', 'postfix_legacy')):
        outcome = bounce(env, name, sender, msgid)
        assert (outcome.exit_code, outcome.kind, outcome.outcome) == \
            (0, 'bounce', 'taken'), outcome
    assert suppression.suppression(env, ALICE) is None
    assert bounce_record.score(env, ALICE, 30) == 2
    outcome = bounce(env, 'exim', *copies[2])       # the third: threshold
    assert outcome.outcome == 'taken' and 'address disabled' in \
        outcome.reason
    assert suppression.suppression(env, ALICE) == suppression.BOUNCED
    # no more mail of any kind to alice; bob still gets his
    sent = copies_to(env, sink, ALICE, ticket, 1)
    assert sent == []
    assert [r.rcpt_tos for r in sink.received] == [['bob@example.net']]
    kinds = [row[:2] for row in inbound_rows(env)]
    assert kinds == [('bounce', 'taken')] * 3


def test_each_copy_counts_once(site):
    env, sink, ticket = site
    (sender, msgid), = copies_to(env, sink, ALICE, ticket, 1)
    assert bounce(env, 'dsn_hard', sender, msgid).outcome == 'taken'
    again = bounce(env, 'postfix_legacy', sender, msgid)
    assert (again.exit_code, again.outcome) == (0, 'dropped')
    assert 'counted already' in again.reason
    assert bounce_record.score(env, ALICE, 30) == 1


def test_the_copy_names_the_address_not_the_bounce(site):
    """A bounce claiming another address counts against the copy's own
    recipient (the VERP token says which copy it was)."""
    env, sink, ticket = site
    (sender, msgid), = copies_to(env, sink, ALICE, ticket, 1)
    outcome = bounce(env, 'dsn_hard', sender, msgid,
                     recipient='victim@example.com')
    assert outcome.outcome == 'taken'
    assert bounce_record.bounce_state(env, ALICE).total == 1
    assert bounce_record.bounce_state(env, 'victim@example.com') is None


def test_a_forged_token_is_refused_67_and_counts_nothing(site):
    env, sink, ticket = site
    (sender, msgid), = copies_to(env, sink, ALICE, ticket, 1)
    token = verp.find_token(BOUNCE, [sender])
    number, mac = token.split('-')
    forged = [BOUNCE.replace('{token}', t) for t in (
        '%d-%s' % (int(number) + 1, mac),                # another copy
        number + '-' + ('0' * len(mac)),                 # a guessed mac
        number + '-short',                               # damaged
        'garbage')]
    for address in forged:
        outcome = bounce(env, 'dsn_hard', address, msgid)
        assert (outcome.exit_code, outcome.kind, outcome.outcome) == \
            (67, 'bounce', 'refused'), address
    # the envelope recipient the MTA gives wins over the headers
    outcome = receive(env, bounce_bytes('dsn_hard', verp=sender),
                      recipient=forged[0])
    assert outcome.exit_code == 67
    assert bounce_record.bounce_state(env, ALICE) is None
    refused = inbound_rows(env, 'refused')
    assert len(refused) == 5
    assert all('bounce address' in reason for _k, _o, reason in refused)


def test_an_auto_reply_to_the_envelope_sender_is_dropped(site):
    env, sink, ticket = site
    (sender, msgid), = copies_to(env, sink, ALICE, ticket, 1)
    outcome = bounce(env, 'vacation', sender, msgid)
    assert (outcome.exit_code, outcome.kind, outcome.outcome) == \
        (0, 'bounce', 'dropped')
    assert bounce_record.bounce_state(env, ALICE) is None


def test_without_bounce_address_a_bounce_is_no_business_of_ours(make_env):
    env = make_env()
    outcome = receive(env, bounce_bytes(
        'dsn_hard', verp='trac+bounce-1-0123456789abcdef0123@example.org'))
    assert outcome.kind != 'bounce'
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_bounce')[0][0] == 0


def test_soft_bounces_count_only_when_they_repeat_on_another_day(make_env):
    env = make_env(bounce_threshold='2', bounce_days='10')
    day = bounce_record.DAY_US
    now = 1000 * day
    for i in range(3):                  # three copies bounce the same day
        bounce_record.record_bounce(env, ALICE, i + 1, False, '4.2.2',
                                    now=now + i)
    assert bounce_record.score(env, ALICE, 10, now) == 0
    bounce_record.record_bounce(env, ALICE, 10, False, '4.2.2',
                                now=now + day)
    assert bounce_record.score(env, ALICE, 10, now + day) == 1
    assert suppression.suppression(env, ALICE) is None
    done = bounce_record.record_bounce(env, ALICE, 11, False, '4.2.2',
                                       now=now + 2 * day)
    assert done.disabled and done.score == 2
    # older than bounce_days: forgotten
    assert bounce_record.score(env, ALICE, 10, now + 15 * day) == 0


def test_a_soft_dsn_through_receive_counts_nothing_alone(site):
    env, sink, ticket = site
    copies = copies_to(env, sink, ALICE, ticket, 2)
    for sender, msgid in copies:
        outcome = bounce(env, 'dsn_soft', sender, msgid)
        assert outcome.outcome == 'taken' and 'soft bounce' in \
            outcome.reason
    state = bounce_record.bounce_state(env, ALICE)
    assert (state.hard, state.soft, state.score, state.total) == \
        (0, 1, 0, 2)


def test_smtp_5xx_at_send_time_counts_the_same_way(site):
    env, sink, ticket = site
    sink.handler.rcpt_replies[ALICE] = \
        '550 5.1.1 <alice@example.net>: Recipient address rejected'
    sink.handler.rcpt_replies['bob@example.net'] = '450 4.2.0 try later'
    for n in (1, 2):
        copies_to(env, sink, ALICE, ticket, 1)
        state = bounce_record.bounce_state(env, ALICE)
        assert (state.hard, state.last_status) == (n, '5.1.1')
        assert suppression.suppression(env, ALICE) is None
    copies_to(env, sink, ALICE, ticket, 1)
    assert suppression.suppression(env, ALICE) == suppression.BOUNCED
    # a temporary refusal is retried, never counted
    assert bounce_record.bounce_state(env, 'bob@example.net') is None


def test_reset_forgets_and_mails_again(site):
    env, sink, ticket = site
    for i in range(3):
        bounce_record.record_bounce(env, ALICE, 100 + i, True, '5.1.1')
    assert suppression.suppression(env, ALICE) == suppression.BOUNCED
    assert bounce_record.reset(env, ALICE)
    assert suppression.suppression(env, ALICE) is None
    assert bounce_record.bounce_state(env, ALICE) is None
    assert len(copies_to(env, sink, ALICE, ticket, 1)) == 1


def test_reset_does_not_lift_an_unsubscribe(make_env):
    env = make_env()
    suppression.suppress(env, ALICE, suppression.UNSUBSCRIBED)
    for i in range(3):
        bounce_record.record_bounce(env, ALICE, i + 1, True, '5.1.1')
    assert suppression.suppression(env, ALICE) == suppression.UNSUBSCRIBED
    bounce_record.reset(env, ALICE)
    assert suppression.suppression(env, ALICE) == suppression.UNSUBSCRIBED


def test_threshold_zero_counts_but_never_disables(make_env):
    env = make_env(bounce_threshold='0')
    for i in range(5):
        bounce_record.record_bounce(env, ALICE, i + 1, True, '5.1.1')
    assert suppression.suppression(env, ALICE) is None
    assert bounce_record.bounce_state(env, ALICE).score == 5


def test_bad_bounce_options_are_messages(make_env):
    env = make_env(bounce_threshold='many', bounce_days='-1')
    settings = bounce_record.load_bounce_settings(env)
    assert (settings.threshold, settings.days) == (3, 30)
    assert len(settings.errors) == 2


# Surfaces ------------------------------------------------------------------

def disabled_alice(env):
    for i in range(3):
        bounce_record.record_bounce(env, ALICE, i + 1, True, '5.1.1',
                                    'host said: 550 5.1.1 unknown user')
    bounce_record.record_bounce(env, 'carol@example.net', 9, True, '5.2.1')


def admin_request(env, method='GET', authname='admin', token=True, **args):
    if method == 'POST' and token:
        args['__FORM_TOKEN'] = TOKEN
    return MockRequest(env, authname=authname, method=method, args=args,
                       form_token=TOKEN,
                       path_info='/admin/notification/bounces')


def panel_html(env) -> str:
    req = admin_request(env)
    req.args.update({'cat_id': 'notification', 'panel_id': 'bounces'})
    template, data, meta = AdminModule(env).process_request(req)
    meta['iterable'] = False
    return Chrome(env).render_template(req, template, data, meta
                                       ).decode('utf-8')


def test_admin_panel_lists_and_resets(make_env):
    env = make_env(bounce_address=BOUNCE)
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    disabled_alice(env)
    page = panel_html(env)
    assert 'Bouncing addresses' in page
    assert ALICE in page and 'carol@example.net' in page
    assert 'tracnotify-disabled' in page and '5.1.1' in page
    assert page.index(ALICE) < page.index('carol@example.net')
    assert 'name="__FORM_TOKEN"' in page
    assert 'Received bounces' not in page
    receive(env, bounce_bytes('dsn_hard', verp=BOUNCE.replace(
        '{token}', '1-' + '0' * 20)))
    page = panel_html(env)
    assert 'Received bounces' in page and 'refused' in page
    assert 'unknown or altered bounce address' in page
    panel = BouncesAdminPanel(env)
    req = admin_request(env, 'POST', reset='1', sel=[ALICE])
    with pytest.raises(RequestDone):
        panel.render_admin_panel(req, 'notification', 'bounces', None)
    assert suppression.suppression(env, ALICE) is None
    assert bounce_record.bounce_state(env, ALICE) is None
    assert bounce_record.bounce_state(env, 'carol@example.net') is not None


def test_admin_panel_needs_trac_admin_and_the_form_token(make_env):
    env = make_env()
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    disabled_alice(env)
    panel = BouncesAdminPanel(env)
    assert list(panel.get_admin_panels(admin_request(env, authname='bob'))
                ) == []
    with pytest.raises(PermissionError):
        panel.render_admin_panel(admin_request(env, authname='bob'),
                                 'notification', 'bounces', None)
    with pytest.raises(PermissionError):
        panel.render_admin_panel(
            admin_request(env, 'POST', authname='bob', reset='1',
                          sel=[ALICE]), 'notification', 'bounces', None)
    with pytest.raises(HTTPBadRequest):
        panel.render_admin_panel(
            admin_request(env, 'POST', token=False, reset='1', sel=[ALICE]),
            'notification', 'bounces', None)
    assert suppression.suppression(env, ALICE) == suppression.BOUNCED


def test_the_user_sees_it_in_preferences(make_env):
    import trac.notification.prefs  # noqa: F401
    from trac.prefs.web_ui import PreferencesModule
    env = make_env()
    add_users(env, *users('alice'))
    assert preferences_notice(env, ALICE) == ''
    disabled_alice(env)
    assert 'gets no more mail' in preferences_notice(env, ALICE)
    set_session(env, 'alice', email=ALICE)
    req = MockRequest(env, authname='alice', path_info='/prefs/notification',
                      args={'panel_id': 'notification'})
    template, data = PreferencesModule(env).process_request(req)[:2]
    page = Chrome(env).render_template(req, template, data,
                                       {'iterable': False}).decode('utf-8')
    assert 'id="tracnotify-bouncing"' in page
    assert 'Mail to %s bounced 3 time(s)' % ALICE in page


def test_notify_status_counts_and_names_them(make_env, capsys):
    from trac.admin.console import TracAdmin
    env = make_env(smtp_server='127.0.0.1', smtp_port='1')
    admin = TracAdmin()
    admin.env_set(env.path, env)
    admin.onecmd('notify status')
    assert 'Bouncing' not in capsys.readouterr().out
    disabled_alice(env)
    admin.onecmd('notify status')
    out = capsys.readouterr().out
    assert 'Bouncing addresses: 2, 1 disabled' in out
    assert '%s  disabled' % ALICE in out
    assert 'carol@example.net  score 1' in out
    assert status_lines(env)[0] == 'Bouncing addresses: 2, 1 disabled'


@pytest.mark.parametrize('lang, words', [
    ('de', ('Unzustellbare Adressen', 'Ausgewählte Adressen zurücksetzen',
            'gesperrt')),
    ('fr', ('Adresses en échec', 'Réinitialiser les adresses sélectionnées',
            'désactivée')),
])
def test_panel_and_status_in_german_and_french(make_env, lang, words):
    from trac.util.translation import activate, deactivate
    env = make_env()
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    disabled_alice(env)
    activate(lang, env.path)
    try:
        page = panel_html(env)
        lines = '\n'.join(status_lines(env))
    finally:
        deactivate()
    assert words[0] in page and words[1] in page
    assert words[2] in lines


def test_lifting_a_bounced_address_on_unsubscribes_forgets_its_bounces(
        make_env):
    from tracnotify.web.unsubscribe import UnsubscribeAdminPanel
    env = make_env()
    PermissionSystem(env).grant_permission('admin', 'TRAC_ADMIN')
    disabled_alice(env)
    req = MockRequest(env, authname='admin', method='POST', form_token=TOKEN,
                      path_info='/admin/notification/unsubscribe',
                      args={'__FORM_TOKEN': TOKEN, 'remove': '1',
                            'sel': [ALICE]})
    with pytest.raises(RequestDone):
        UnsubscribeAdminPanel(env).render_admin_panel(
            req, 'notification', 'unsubscribe', None)
    assert suppression.suppression(env, ALICE) is None
    # else the next bounce would disable it again at once
    assert bounce_record.bounce_state(env, ALICE) is None
