"""Replies become ticket comments: each copy's own reply address, the new
text of Thunderbird-, Outlook- and Gmail-style replies as a comment by the
right user, and every refusal recorded with nothing saved at all."""

import os
import re
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from trac.perm import DefaultPermissionPolicy, PermissionSystem

from tests.support.inbound import (
    REPLY_ADDRESS,
    attachments,
    comments,
    inbound_rows,
    issue_token,
    reply_mail,
    reply_to,
)
from tests.support.tickets import create_ticket, mails_by_recipient
from tests.support.users import users
from tracnotify.inbound.receive import receive
from tracnotify.inbound.tokens import hash_token

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'replies')
#: fixture -> exactly the comment it must become
EXPECTED = {
    'thunderbird.eml': 'I can reproduce it with Firefox 120 too, and the fix '
                       'in r12 makes it go away for me.\n\n'
                       '  Steps: open the ticket, press Save twice.\n\n'
                       'Thanks \u2013 Bob',
    'outlook.eml': 'Thanks \u2013 I\u2019ll look at it on Monday, the caf\xe9 '
                   'build is broken anyway.',
    'gmail.eml': 'Sounds good, closing it after the release.\n\n'
                 '* checked on Linux\n* checked on Windows \u2714',
    'gmail_html_only.eml': 'Works for me now.\nTested with r12 & r13.',
}
_token_re = re.compile(r'^trac\+([a-z0-9]{26})@example\.org$')


@pytest.fixture
def env(sink_env):
    env = sink_env(users=users('alice', 'bob', 'carol'),
                   reply_address=REPLY_ADDRESS)
    return env


def perms(env) -> PermissionSystem:
    """Trac's permissions, with its 5-second cache of each user's set
    emptied (a test changes them within less)."""
    DefaultPermissionPolicy(env).permission_cache.clear()
    return PermissionSystem(env)


def ticket_mail(env, sink, **values):
    """A new ticket by alice with bob in Cc; ``(ticket, {rcpt: mail})``."""
    values.setdefault('cc', 'bob')
    ticket = create_ticket(env, summary='Crash on save', **values)
    mails = {rcpt: found[-1] for rcpt, found in
             mails_by_recipient(env, sink, check_errors=True).items()}
    return ticket, mails


def fixture(name: str, ticket: int, mail) -> bytes:
    with open(os.path.join(FIXTURES, name), 'rb') as f:
        raw = f.read()
    address = str(mail['Reply-To'])
    for key, value in (('{reply_to}', address),
                       ('{token}', _token_re.match(address).group(1)),
                       ('{message_id}', str(mail['Message-ID']).strip('<>')),
                       ('{ticket}', str(ticket))):
        raw = raw.replace(key.encode(), value.encode())
    return raw


def test_each_copy_carries_its_own_reply_address(env, sink):
    ticket, mails = ticket_mail(env, sink)
    assert set(mails) == {'alice@example.net', 'bob@example.net'}
    found = {}
    for rcpt, mail in mails.items():
        assert len(mail.get_all('Reply-To')) == 1
        match = _token_re.match(str(mail['Reply-To']))
        assert match, mail['Reply-To']
        found[rcpt] = match.group(1)
    assert found['alice@example.net'] != found['bob@example.net']
    rows = env.db_query('SELECT token_hash, ticket, sid, address '
                        'FROM tracnotify_reply_token ORDER BY sid')
    assert sorted(rows) == sorted([
        (hash_token(found['alice@example.net']), ticket.id, 'alice',
         'alice@example.net'),
        (hash_token(found['bob@example.net']), ticket.id, 'bob',
         'bob@example.net')])
    assert not any(found['bob@example.net'] in str(r) for r in rows)


def test_replies_off_keeps_the_shared_reply_to(sink_env, sink):
    env = sink_env(users=users('alice', 'bob'))
    _ticket, mails = ticket_mail(env, sink)
    assert str(mails['bob@example.net']['Reply-To']) == 'trac@example.org'
    assert not env.db_query('SELECT * FROM tracnotify_reply_token')


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_a_client_reply_becomes_exactly_its_new_text(env, sink, name):
    ticket, mails = ticket_mail(env, sink)
    raw = fixture(name, ticket.id, mails['bob@example.net'])
    outcome = receive(env, raw)
    assert (outcome.exit_code, outcome.outcome) == (0, 'taken'), outcome
    assert comments(env, ticket.id) == [('bob', EXPECTED[name])]
    # the comment mails the others like any comment
    after = mails_by_recipient(env, sink, check_errors=True)
    assert ' '.join(EXPECTED[name].split()[:3]) in \
        after['alice@example.net'][0].get_body(('plain',)).get_content()


def test_the_same_address_takes_several_replies(env, sink):
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    for text in ('First.', 'Second.'):
        assert receive(env, reply_mail(address, 'bob@example.net',
                                       text)).outcome == 'taken'
    assert comments(env, ticket.id) == [('bob', 'First.'), ('bob', 'Second.')]


def test_a_bare_address_writes_as_that_address(env, sink):
    ticket, mails = ticket_mail(env, sink, cc='bob, guest@example.com')
    perms(env).grant_permission('anonymous', 'TICKET_APPEND')
    perms(env)
    address = str(mails['guest@example.com']['Reply-To'])
    assert receive(env, reply_mail(address, 'guest@example.com',
                                   'Me too.')).outcome == 'taken'
    assert comments(env, ticket.id) == [('guest@example.com', 'Me too.')]


def test_attachments_within_max_size_are_added(env, sink):
    ticket, mails = ticket_mail(env, sink)
    msg = EmailMessage(policy=SMTP)
    msg['From'] = 'bob@example.net'
    msg['To'] = str(mails['bob@example.net']['Reply-To'])
    msg['Subject'] = 'Re: log'
    msg.set_content('The log is attached.')
    msg.add_attachment(b'line 1\nline 2\n', maintype='text',
                       subtype='plain', filename='../../crash.log')
    assert receive(env, msg.as_bytes()).outcome == 'taken'
    assert attachments(env, ticket.id) == ['crash.log']
    assert comments(env, ticket.id)[-1] == ('bob', 'The log is attached.')


# Refused: the reason recorded, nothing saved -------------------------------

def assert_nothing_saved(env, ticket: int) -> None:
    assert comments(env, ticket) == []
    assert attachments(env, ticket) == []
    assert env.db_query("SELECT COUNT(*) FROM ticket_change WHERE ticket=%s",
                        (ticket,))[0][0] == 0


def notices(env) -> list:
    return env.db_query("""
        SELECT m.recipient, COALESCE(m.subject, b.subject)
        FROM tracnotify_message m LEFT JOIN tracnotify_body b
        ON b.id=m.body_id WHERE m.kind='reply_notice'""")


def refused(env, raw: bytes, exit_code: int, reason: str):
    outcome = receive(env, raw)
    assert (outcome.exit_code, outcome.outcome) == (exit_code, 'refused'), \
        outcome
    assert reason in outcome.reason
    kind, state, recorded = inbound_rows(env)[-1]
    assert (state, recorded) == ('refused', outcome.reason)
    return outcome


def test_wrong_from_is_refused_and_the_owner_told(env, sink):
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    refused(env, reply_mail(address, 'mallory@example.com', 'Close it.'), 0,
            'came from mallory@example.com')
    assert_nothing_saved(env, ticket.id)
    assert notices(env) == [('bob@example.net',
                             'Your reply was not added to ticket #%d'
                             % ticket.id)]


def test_wrong_from_is_taken_when_not_required(sink_env, sink):
    env = sink_env(users=users('alice', 'bob'), reply_address=REPLY_ADDRESS,
                   reply_require_from='false')
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    assert receive(env, reply_mail(address, 'bob@home.example',
                                   'From home.')).outcome == 'taken'
    assert comments(env, ticket.id) == [('bob', 'From home.')]


def test_forged_token_is_ex_nouser(env, sink):
    ticket, mails = ticket_mail(env, sink)
    forged = reply_to('a' * 26)
    refused(env, reply_mail(forged, 'bob@example.net', 'Hi'), 67,
            'unknown or altered')
    assert_nothing_saved(env, ticket.id)
    assert notices(env) == []     # no mail to a stranger's From


def test_expired_token_is_ex_nouser_and_told(env, sink):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net', days=1)
    env.db_transaction('UPDATE tracnotify_reply_token SET expires=1')
    refused(env, reply_mail(reply_to(token), 'bob@example.net', 'Late.'), 67,
            'expired')
    assert_nothing_saved(env, ticket.id)
    assert [r for r, _s in notices(env)] == ['bob@example.net']


def test_no_ticket_append_is_refused(env, sink):
    perms(env).revoke_permission('authenticated', 'TICKET_MODIFY')
    perms(env).grant_permission('bob', 'TICKET_APPEND')
    ticket, mails = ticket_mail(env, sink, cc='bob, carol')
    refused(env, reply_mail(str(mails['carol@example.net']['Reply-To']),
                            'carol@example.net', 'Me!'), 0, 'TICKET_APPEND')
    assert_nothing_saved(env, ticket.id)
    assert receive(env, reply_mail(str(mails['bob@example.net']['Reply-To']),
                                   'bob@example.net', 'OK')).outcome == \
        'taken'


def test_the_permission_is_checked_at_receipt(env, sink):
    ticket, mails = ticket_mail(env, sink)
    perms(env).revoke_permission('authenticated', 'TICKET_MODIFY')
    perms(env)
    refused(env, reply_mail(str(mails['bob@example.net']['Reply-To']),
                            'bob@example.net', 'Now?'), 0, 'TICKET_APPEND')
    assert_nothing_saved(env, ticket.id)


def test_auto_reply_is_dropped(env, sink):
    ticket, mails = ticket_mail(env, sink)
    outcome = receive(env, reply_mail(
        str(mails['bob@example.net']['Reply-To']), 'bob@example.net',
        'I am out of the office until Monday.', Auto_Submitted='auto-replied',
        subject='Out of office'))
    assert (outcome.exit_code, outcome.kind, outcome.outcome) == \
        (0, 'auto', 'dropped')
    assert inbound_rows(env)[-1][:2] == ('auto', 'dropped')
    assert_nothing_saved(env, ticket.id)
    assert notices(env) == []


def test_a_mail_loop_is_dropped(env, sink):
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    # our own copy, forwarded back to the reply address by some alias
    own = mails['alice@example.net']
    del own['Auto-Submitted']
    del own['Precedence']
    del own['To']
    own['To'] = address
    outcome = receive(env, own.as_bytes())
    assert (outcome.kind, outcome.outcome) == ('auto', 'dropped')
    assert 'loop' in outcome.reason
    # mail from the tracker's own address
    outcome = receive(env, reply_mail(address, 'trac@example.org', 'x'))
    assert 'loop' in outcome.reason
    assert_nothing_saved(env, ticket.id)
    assert notices(env) == []


def test_the_rate_limit_stops_a_flood(sink_env, sink):
    env = sink_env(users=users('alice', 'bob'), reply_address=REPLY_ADDRESS,
                   reply_rate_limit='3')
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    outcomes = [receive(env, reply_mail(address, 'bob@example.net',
                                        'Reply %d' % i)).outcome
                for i in range(5)]
    assert outcomes == ['taken'] * 3 + ['dropped'] * 2
    assert len(comments(env, ticket.id)) == 3


def test_a_30_mb_attachment_refuses_the_whole_reply(env, sink):
    ticket, mails = ticket_mail(env, sink)
    msg = EmailMessage(policy=SMTP)
    msg['From'] = 'bob@example.net'
    msg['To'] = str(mails['bob@example.net']['Reply-To'])
    msg['Subject'] = 'Re: dump'
    msg.set_content('Here is the core dump.')
    msg.add_attachment(b'\x7fELF' + b'\0' * (30 * 1024 * 1024),
                       maintype='application', subtype='octet-stream',
                       filename='core')
    refused(env, msg.as_bytes(), 0, 'too large')
    assert_nothing_saved(env, ticket.id)
    assert not os.path.exists(os.path.join(env.path, 'files', 'attachments',
                                           'ticket'))


def test_malformed_mime_is_refused(env, sink):
    ticket, mails = ticket_mail(env, sink)
    raw = ('From: bob@example.net\r\nTo: %s\r\nSubject: Re: x\r\n'
           'MIME-Version: 1.0\r\n'
           'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
           '--XYZ\r\nContent-Type: text/plain\r\n\r\nHalf a reply\r\n'
           '--XYZ\r\nContent-Type: application/octet-stream\r\n'
           'Content-Transfer-Encoding: base64\r\n\r\nAAAA'
           % mails['bob@example.net']['Reply-To']).encode()
    refused(env, raw, 0, 'malformed MIME')
    assert_nothing_saved(env, ticket.id)


def test_text_not_in_its_declared_charset_is_refused(env, sink):
    ticket, mails = ticket_mail(env, sink)
    raw = ('From: bob@example.net\r\nTo: %s\r\nSubject: Re: x\r\n'
           'MIME-Version: 1.0\r\n'
           'Content-Type: text/plain; charset=utf-8\r\n'
           'Content-Transfer-Encoding: 8bit\r\n\r\n'
           % mails['bob@example.net']['Reply-To']).encode() + \
        'Gr\xfc\xdfe aus K\xf6ln, \u20ac'.encode('utf-8')[:10] + \
        'M\xfcnchen'.encode('latin-1')
    refused(env, raw, 0, 'not in its declared charset utf-8')
    assert_nothing_saved(env, ticket.id)


def test_parts_in_different_charsets_each_read_in_their_own(env, sink):
    ticket, mails = ticket_mail(env, sink)
    msg = EmailMessage(policy=SMTP)
    msg['From'] = 'bob@example.net'
    msg['To'] = str(mails['bob@example.net']['Reply-To'])
    msg['Subject'] = '=?koi8-r?b?8NLJ18XU?='
    msg.set_content('Grüße aus Köln', charset='iso-8859-1', cte='8bit')
    msg.add_attachment('Привет'.encode('koi8-r'), maintype='text',
                       subtype='plain', filename='ru.txt')
    assert receive(env, msg.as_bytes()).outcome == 'taken'
    assert comments(env, ticket.id) == [('bob', 'Grüße aus Köln')]


def test_an_empty_reply_is_refused(env, sink):
    ticket, mails = ticket_mail(env, sink)
    refused(env, reply_mail(str(mails['bob@example.net']['Reply-To']),
                            'bob@example.net',
                            'On Wed, Dec 2, 2026 at 1:05 PM Trac <trac@example.org> '
                            'wrote:\n> old text\n'),
            0, 'no new text')
    assert_nothing_saved(env, ticket.id)


def test_one_notice_an_hour(env, sink):
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    for _i in range(3):
        refused(env, reply_mail(address, 'eve@example.com', 'x'), 0,
                'came from')
    assert len(notices(env)) == 1
    sent = mails_by_recipient(env, sink, check_errors=True)
    notice, = sent['bob@example.net']
    assert notice['Auto-Submitted'] == 'auto-replied'
    assert 'eve@example.com' in notice.get_content()


def test_the_spliced_reply_to_is_what_email_writes():
    from tracnotify.config import NotifyConfig
    from tracnotify.mail.message import (
        Recipient,
        _spliced_headers,
        email_personal_headers,
    )
    config = NotifyConfig()
    for visibility in ('to', 'cc', 'bcc'):
        recipient = Recipient('bob@example.net', 'cc', visibility,
                              reply_to=reply_to('b' * 26))
        spliced = _spliced_headers(recipient, config)
        assert spliced is not None
        assert spliced == email_personal_headers(recipient, [recipient],
                                                 config)


# Surfaces -----------------------------------------------------------------

def test_admin_panel_lists_received_and_refused(env, sink):
    from trac.perm import PermissionError
    from trac.web.api import HTTPBadRequest

    from tests.support.admin_pages import html, request
    from tracnotify.web.replies import RepliesAdminPanel
    perms(env).grant_permission('admin', 'TRAC_ADMIN')
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    receive(env, reply_mail(address, 'bob@example.net', 'Taken text.',
                            subject='Re: taken one'))
    receive(env, reply_mail(address, 'eve@example.com', 'x',
                            subject='Re: refused one'))
    page = html(env, 'replies')
    assert 'Re: taken one' in page and 'Re: refused one' in page
    assert 'came from eve@example.com, not from the address' in page
    assert 'tracnotify-taken' in page and 'tracnotify-refused' in page
    assert 'Taken: 1, refused: 1' in page
    token = _token_re.match(address).group(1)
    assert token not in page                    # secrets never shown back
    assert token not in str(env.db_query('SELECT * FROM tracnotify_inbound'))
    refused_only = html(env, 'replies', show='refused')
    assert 'Re: refused one' in refused_only
    assert 'Re: taken one' not in refused_only
    panel = RepliesAdminPanel(env)
    assert list(panel.get_admin_panels(request(env, 'replies',
                                               authname='bob'))) == []
    with pytest.raises(PermissionError):
        panel.render_admin_panel(request(env, 'replies', authname='bob'),
                                 'notification', 'replies', None)
    with pytest.raises(HTTPBadRequest):
        panel.render_admin_panel(request(env, 'replies', method='POST',
                                         token=False),
                                 'notification', 'replies', None)


def test_notify_status_counts_replies(env, sink, capsys):
    from trac.admin.console import TracAdmin
    ticket, mails = ticket_mail(env, sink)
    address = str(mails['bob@example.net']['Reply-To'])
    receive(env, reply_mail(address, 'bob@example.net', 'One.'))
    receive(env, reply_mail(address, 'eve@example.com', 'x'))
    receive(env, reply_mail(address, 'bob@example.net', 'x',
                            Auto_Submitted='auto-replied'))
    admin = TracAdmin()
    admin.env_set(env.path, env)
    admin.onecmd('notify status')
    out = capsys.readouterr().out
    assert 'Replies (24h): 1 taken, 1 refused, 1 dropped, 0 failed' in out
    assert 'Last refused reply' in out and 'eve@example.com' in out


def test_the_notice_speaks_the_users_language(sink_env, sink):
    from tests.support.users import set_session
    env = sink_env(users=users('alice', 'hans'), reply_address=REPLY_ADDRESS)
    set_session(env, 'hans', language='de')
    ticket, mails = ticket_mail(env, sink, cc='hans')
    refused(env, reply_mail(str(mails['hans@example.net']['Reply-To']),
                            'eve@example.com', 'x'), 0, 'came from')
    assert notices(env) == [('hans@example.net',
                             'Ihre Antwort wurde nicht zu Ticket #%d '
                             'hinzugefügt' % ticket.id)]


def test_notify_purge_removes_expired_addresses_and_old_records(env, sink,
                                                                 capsys):
    from trac.admin.console import TracAdmin
    ticket = create_ticket(env)
    old = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    fresh = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    receive(env, reply_mail(reply_to(fresh), 'bob@example.net', 'Kept.'))
    receive(env, reply_mail(reply_to(fresh), 'bob@example.net', 'Old.'))
    ten_days = 10 * 86400 * 1000000
    env.db_transaction('UPDATE tracnotify_reply_token SET expires=expires-%s'
                       ' WHERE token_hash=%s', (40 * 86400 * 1000000,
                                                hash_token(old)))
    env.db_transaction('UPDATE tracnotify_inbound SET received=received-%s '
                       'WHERE id=(SELECT MIN(id) FROM tracnotify_inbound)',
                       (ten_days,))
    admin = TracAdmin()
    admin.env_set(env.path, env)
    admin.onecmd('notify purge --sent-older-than 5')
    assert 'Purged 1 reply address(es) expired and 1 received mail ' \
        'record(s) older than 5 day(s)' in capsys.readouterr().out
    assert receive(env, reply_mail(reply_to(old), 'bob@example.net',
                                   'x')).reason == \
        'unknown or altered reply address'
    assert receive(env, reply_mail(reply_to(fresh), 'bob@example.net',
                                   'Still.')).outcome == 'taken'


def test_bad_reply_options_are_messages(make_env, capsys):
    from trac.admin.console import TracAdmin

    from tests.support.admin_pages import html
    from tracnotify.inbound.options import load_reply_config
    env = make_env(reply_address='trac@example.org', reply_token_days='x',
                   reply_rate_limit='0')
    config = load_reply_config(env)
    assert not config.enabled and config.token_days == 30 and \
        config.rate_limit == 30
    assert len(config.errors) == 3
    assert 'reply_address' in config.errors[0] and \
        '{token}' in config.errors[0]
    admin = TracAdmin()
    admin.env_set(env.path, env)
    admin.onecmd('notify status')
    out = capsys.readouterr().out
    assert "Configuration: [notification] reply_token_days = 'x'" in out
    perms(env).grant_permission('admin', 'TRAC_ADMIN')
    assert 'reply_rate_limit = 0 is out of range' in html(env, 'replies')


def test_a_list_copy_gets_the_shared_reply_to(sink_env, sink):
    env = sink_env(users=users('alice', 'bob'), reply_address=REPLY_ADDRESS,
                   smtp_always_cc='list@example.org')
    _ticket, mails = ticket_mail(env, sink)
    assert str(mails['list@example.org']['Reply-To']) == 'trac@example.org'
    assert _token_re.match(str(mails['bob@example.net']['Reply-To']))
    assert [a for a, in env.db_query('SELECT address FROM '
                                     'tracnotify_reply_token')
            if a == 'list@example.org'] == []
