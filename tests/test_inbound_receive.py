"""The one inbound entry, receive(): parsing that never raises, the guards,
the reply path's exit codes, a record of every message, and `notify
receive` as an MTA runs it."""

import io
import sys

import pytest
from trac.admin.console import TracAdmin

from tests.support.inbound import (
    REPLY_ADDRESS,
    comments,
    inbound_rows,
    issue_token,
    reply_mail,
    reply_to,
)
from tests.support.tickets import add_users, create_ticket
from tests.support.users import users
from tracnotify.inbound.receive import Outcome, receive


@pytest.fixture
def env(make_env):
    env = make_env(reply_address=REPLY_ADDRESS)
    add_users(env, *users('alice', 'bob'))
    return env


def test_a_reply_becomes_a_comment_by_the_token_user(env):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    outcome = receive(env, reply_mail(reply_to(token), 'bob@example.net',
                                      'Fixed in r12.'))
    assert outcome == Outcome(0, 'reply', 'taken', 'comment added')
    assert comments(env, ticket.id) == [('bob', 'Fixed in r12.')]
    assert inbound_rows(env) == [('reply', 'taken', 'comment added')]


def test_the_envelope_recipient_wins_over_the_headers(env):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    raw = reply_mail('Trac <trac@example.org>', 'bob@example.net', 'Yes.')
    assert receive(env, raw).exit_code == 67
    assert receive(env, raw, recipient=reply_to(token).upper()).exit_code \
        == 0
    assert comments(env, ticket.id) == [('bob', 'Yes.')]


def test_unknown_or_altered_token_is_ex_nouser(env):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    altered = token[:-1] + ('a' if token[-1] != 'a' else 'b')
    outcome = receive(env, reply_mail(reply_to(altered), 'bob@example.net',
                                      'Hi'))
    assert outcome.exit_code == 67 and outcome.outcome == 'refused'
    assert comments(env, ticket.id) == []


def test_replies_off_is_ex_nouser(make_env):
    env = make_env()
    outcome = receive(env, reply_mail('trac+abcdefabcdefabcdef@example.org',
                                      'bob@example.net', 'Hi'))
    assert outcome.exit_code == 67 and outcome.kind == 'unknown'


@pytest.mark.parametrize('headers', [
    {'Auto_Submitted': 'auto-replied'}, {'Precedence': 'bulk'},
    {'Precedence': 'junk'}, {'Precedence': 'list'}, {'X_Autoreply': 'yes'},
    {'X_Autorespond': 'Out of office'}])
def test_automatic_mail_is_dropped(env, headers):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    outcome = receive(env, reply_mail(reply_to(token), 'bob@example.net',
                                      'I am away.', **headers))
    assert (outcome.exit_code, outcome.kind, outcome.outcome) == \
        (0, 'auto', 'dropped')
    assert comments(env, ticket.id) == []


def test_auto_submitted_no_is_a_person(env):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    assert receive(env, reply_mail(reply_to(token), 'bob@example.net',
                                   'Me.', Auto_Submitted='no')).outcome == \
        'taken'


@pytest.mark.parametrize('raw', [b'', b'\x00\xff' * 100, b'From: \r\n\r\n',
                                 b'Content-Type: multipart/mixed\r\n\r\n--',
                                 b'Subject: =?utf-8?q?=ff?=\r\n\r\nhi'])
def test_garbage_never_raises_and_is_recorded(env, raw):
    outcome = receive(env, raw)
    assert outcome.exit_code == 67 and outcome.outcome == 'refused'
    assert len(inbound_rows(env)) == 1


def test_notify_receive_exit_status(env, monkeypatch, capsys):
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')

    def run(raw, line='notify receive'):
        monkeypatch.setattr(sys, 'stdin', io.TextIOWrapper(io.BytesIO(raw)))
        admin = TracAdmin()
        admin.env_set(env.path, env)
        return admin.onecmd(line)

    assert run(reply_mail(reply_to(token), 'bob@example.net', 'One.')) == 0
    assert 'reply taken: comment added' in capsys.readouterr().out
    assert run(reply_mail('x@example.org', 'bob@example.net', 'Two.'),
               'notify receive --recipient %s' % reply_to(token)) == 0
    assert run(reply_mail(reply_to('z' * 26), 'bob@example.net', 'No.')) == 67
    assert 'unknown or altered reply address' in capsys.readouterr().err
    assert comments(env, ticket.id) == [('bob', 'One.'), ('bob', 'Two.')]
