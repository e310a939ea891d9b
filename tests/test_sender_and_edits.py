"""From with ``smtp_from_author`` when the author's address cannot be a
From (issue 12, item 4), and each comment edit as mail of its own
(item 7); on the mail a real SMTP server receives."""

import logging
from datetime import timedelta

import pytest
from trac.notification.mail import create_message_id
from trac.ticket.model import Ticket

from tests.support.tickets import change_ticket, create_ticket, deliver_to_sink
from tests.support.users import users

USERS = users('alice', 'joe', 'jane')


@pytest.fixture
def env(sink_env):
    return sink_env(USERS, smtp_from_author='true')


@pytest.mark.parametrize('author', ['jane', 'a..b@example.org',
                                    '.dot@example.org'])
def test_unusable_author_address_falls_back_to_smtp_from(env, sink, caplog,
                                                         author):
    ticket = create_ticket(env, owner='joe')
    deliver_to_sink(env, sink, check_errors=True)
    change_ticket(env, ticket.id, author=author, comment='Hi', priority='minor')
    with caplog.at_level(logging.WARNING):
        received = deliver_to_sink(env, sink, check_errors=True)
    assert sorted(r.rcpt_tos[0] for r in received) == [
        'alice@example.net', 'joe@example.net']
    for item in received:
        assert item.message['From'].addresses[0].addr_spec == \
            'trac@example.org'
        assert item.mail_from == 'trac@example.org'
    warnings = [r for r in caplog.records
                if 'cannot be the From' in r.getMessage()]
    assert len(warnings) == 1, 'logged once for the change'


def test_usable_author_address_is_the_from(env, sink):
    ticket = create_ticket(env, owner='joe')
    deliver_to_sink(env, sink, check_errors=True)
    change_ticket(env, ticket.id, author='joe', comment='Hi')
    received = deliver_to_sink(env, sink, check_errors=True)
    assert {str(r.message['From'].addresses[0].addr_spec)
            for r in received} == {'joe@example.net'}


def test_each_comment_edit_has_its_own_message_id_and_date(sink_env, sink):
    env = sink_env(USERS)
    ticket = create_ticket(env, owner='joe')
    created = deliver_to_sink(env, sink, check_errors=True)
    root = created[0].message['Message-ID']
    change_ticket(env, ticket.id, author='joe', comment='First text')
    commented = deliver_to_sink(env, sink, check_errors=True)
    ticket = Ticket(env, ticket.id)
    cdate = ticket['changetime']
    seen = {commented[0].message['Message-ID']}
    dates = {commented[0].message['Date'].datetime}
    for n, text in enumerate(['Second text', 'Third text'], 1):
        when = cdate + timedelta(minutes=5 * n)
        Ticket(env, ticket.id).modify_comment(cdate, 'joe', text, when)
        edited = deliver_to_sink(env, sink, check_errors=True)
        assert edited, 'the edit is mailed'
        ids = {r.message['Message-ID'] for r in edited}
        assert len(ids) == 1, 'one Message-ID per edit'
        assert not ids & seen, 'never the id of an earlier mail'
        seen |= ids
        for item in edited:
            assert item.message['In-Reply-To'] == root
            assert item.message['References'] == root
            assert item.message['Date'].datetime.replace(tzinfo=None) == \
                when.replace(microsecond=0, tzinfo=None)
            assert text in item.message.get_content()
        dates.add(edited[0].message['Date'].datetime)
    assert len(seen) == 3 and len(dates) == 3


def test_edit_message_id_is_stable_when_rebuilt(sink_env):
    from tracnotify.config import load_config
    from tracnotify.event import TicketEvent
    from tracnotify.mail.pipeline import build_messages
    env = sink_env(USERS)
    ticket = create_ticket(env, owner='joe')
    change_ticket(env, ticket.id, author='joe', comment='One')
    cdate = Ticket(env, ticket.id)['changetime']
    Ticket(env, ticket.id).modify_comment(cdate, 'joe', 'Two',
                                          cdate + timedelta(seconds=30))
    (payload,), = env.db_query(
        'SELECT payload FROM tracnotify_event ORDER BY id DESC LIMIT 1')
    event = TicketEvent.from_json(payload)
    assert event.old_comment == 'One'
    config = load_config(env)
    first = {m.msgid for m in build_messages(env, config, event)}
    again = {m.msgid for m in build_messages(env, config, event)}
    assert first == again and len(first) == 1
    assert first != {create_message_id(env, '%08d' % ticket.id,
                                       'trac@example.org', event.datetime,
                                       'alice.' + event.kind)}
