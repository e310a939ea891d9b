"""The mail body and subject are Trac 1.6's own, character for character:
each case renders the same ticket change with tracnotify and with Trac's
``TicketFormatter`` and compares the two."""

import os
from datetime import datetime

import pytest
import trac.ticket.web_ui  # noqa: F401  (registers Trac's ticket templates)
from trac.ticket.api import TicketSystem
from trac.ticket.model import Ticket
from trac.util.datefmt import utc

from tests.support.tickets import add_users, change_ticket, create_ticket
from tests.support.trac_reference import last_event, tracs
from tests.support.users import users
from tracnotify.mail.chrome import MAX_SUBJECT_CHARS
from tracnotify.mail.format import TicketMailFormatter
from tracnotify.mail.pipeline import snapshot_ticket

LONG_TEXT = ('A long description that goes on and on, well past the width '
             'of one line of a mail, so that it has to wrap. ') * 4
WIDE = '日本語のチケットの題名、とても長いです。' * 3


@pytest.fixture
def env(make_env):
    env = make_env()
    add_users(env, *users('alice', 'joe'))
    return env


def add_custom_fields(env) -> None:
    section = env.config['ticket-custom']
    section.set('myfield', 'text')
    section.set('myfield.label', 'My Field')
    section.set('due', 'time')
    section.set('due.format', 'date')
    section.set('notes', 'textarea')
    ticket_system = TicketSystem(env)
    del ticket_system.custom_fields
    ticket_system.reset_ticket_fields()


def ours(env):
    """tracnotify's subject and body for the last recorded change."""
    event = last_event(env)
    rendered = TicketMailFormatter(env, snapshot_ticket(env, event)).render(
        event)
    return rendered.subject, rendered.body


def assert_same_as_trac(env, ticket) -> str:
    subject, body = ours(env)
    trac_subject, trac_body = tracs(env, ticket)
    assert body == trac_body
    assert subject == trac_subject
    return body


def test_new_ticket(env):
    ticket = create_ticket(env, owner='joe', cc='carol@example.com, dave',
                           component='component1', keywords='mail smtp',
                           description=LONG_TEXT)
    body = assert_same_as_trac(env, ticket)
    assert body.startswith('#1: Test\n')


def test_new_ticket_with_custom_fields_and_long_values(env):
    add_custom_fields(env)
    ticket = create_ticket(env, owner='joe', myfield='x' * 90,
                           keywords=' '.join(['keyword%d' % i
                                              for i in range(20)]),
                           due=datetime(2024, 5, 1, tzinfo=utc),
                           notes='first line\nsecond line')
    body = assert_same_as_trac(env, ticket)
    assert 'My Field:' in body and 'Notes:\nfirst line\nsecond line' in body


def test_change_of_several_fields_with_comment(env):
    add_custom_fields(env)
    ticket = create_ticket(env, owner='joe', myfield='old')
    change_ticket(env, ticket.id, author='alice', comment='Fixed in [42].',
                  status='closed', resolution='fixed', owner='alice',
                  priority='minor', myfield='new',
                  due=datetime(2024, 6, 1, tzinfo=utc),
                  summary='A new summary')
    subject, body = ours(env)
    assert subject == \
        'Re: [Test Project] #1: A new summary (was: Test)'
    assert 'Changes (by Alice A):' in body and '\nComment:\n' in body
    assert_same_as_trac(env, Ticket(env, ticket.id))


def test_long_description_change_is_summarised(env):
    ticket = create_ticket(env, description=LONG_TEXT)
    change_ticket(env, ticket.id, author='alice',
                  description=LONG_TEXT.replace('long', 'longer'))
    body = assert_same_as_trac(env, Ticket(env, ticket.id))
    assert 'Description changed by Alice A:' in body
    assert 'Old description:' in body and 'New description:' in body


def test_cc_added_and_removed(env):
    ticket = create_ticket(env, cc='carol@example.com, dave')
    change_ticket(env, ticket.id, author='alice',
                  cc='dave, erin@example.com, joe')
    body = assert_same_as_trac(env, Ticket(env, ticket.id))
    assert '(added)' in body and '(removed)' in body


def test_comment_only(env):
    ticket = create_ticket(env)
    change_ticket(env, ticket.id, author='joe',
                  comment='First paragraph.\n\n' + LONG_TEXT)
    body = assert_same_as_trac(env, Ticket(env, ticket.id))
    assert 'Comment (by Joe Owner):' in body
    assert '#comment:1>' in body


def test_wide_characters_and_wrapping(env):
    add_custom_fields(env)
    ticket = create_ticket(env, summary=WIDE, description=WIDE * 2,
                           keywords='東京都 大阪府 名古屋市 ' * 4,
                           myfield='長い値 ' * 15, owner='joe')
    assert_same_as_trac(env, ticket)
    change_ticket(env, ticket.id, author='joe', comment=WIDE,
                  keywords='札幌市', summary=WIDE[:10])
    assert_same_as_trac(env, Ticket(env, ticket.id))


def test_ambiguous_characters_double_width(make_env):
    env = make_env(ambiguous_char_width='double')
    ticket = create_ticket(env, keywords='±§° ambiguous ×÷',
                           component='component1')
    assert_same_as_trac(env, ticket)


def test_full_names_and_hidden_addresses(make_env):
    env = make_env()
    env.config.set('trac', 'show_email_addresses', 'false')
    env.config.set('trac', 'show_full_names', 'true')
    add_users(env, *users('joe'))
    ticket = create_ticket(env, reporter='someone@example.com', owner='joe')
    change_ticket(env, ticket.id, author='joe', owner='other@example.com')
    assert_same_as_trac(env, Ticket(env, ticket.id))


def test_admin_template_override(env):
    folder = os.path.join(env.templates_dir, 'mail')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'ticket_body.txt'), 'w',
              encoding='utf-8') as f:
        f.write('Custom: ${ticket_body_hdr}\nSee ${link}\n')
    create_ticket(env, summary='Überschrift')
    assert ours(env)[1] == \
        'Custom: #1: Überschrift\nSee http://trac.example.org/ticket/1'


# Subject -------------------------------------------------------------------

@pytest.mark.parametrize('prefix, expected', [
    ('__default__', '[Test Project] #1: Test'),
    ('[Bugs]', '[Bugs] #1: Test'),
    ('', '#1: Test'),
])
def test_subject_prefix(make_env, prefix, expected):
    env = make_env(smtp_subject_prefix=prefix)
    ticket = create_ticket(env)
    assert ours(env)[0] == expected
    change_ticket(env, ticket.id, author='joe', comment='x')
    assert ours(env)[0] == 'Re: ' + expected
    assert ours(env)[0] == tracs(env, Ticket(env, ticket.id))[0]


def test_summary_change_shows_old_summary(env):
    ticket = create_ticket(env, summary='Old')
    change_ticket(env, ticket.id, author='joe', summary='New')
    assert ours(env)[0] == 'Re: [Test Project] #1: New (was: Old)'


def test_subject_is_one_bounded_line(env):
    create_ticket(env, summary='x' * 5000)
    subject = ours(env)[0]
    assert len(subject) <= MAX_SUBJECT_CHARS
    assert subject.startswith('[Test Project] #1: xxx')
    assert subject.endswith('\u2026')
