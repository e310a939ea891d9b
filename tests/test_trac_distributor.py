"""Trac's own EmailDistributor enabled again next to tracnotify (issue 12,
item 11): no "needs to be upgraded", a warning instead, and no ticket mail
twice at run time."""

import logging

from trac.notification.api import NotificationSystem
from trac.notification.mail import EmailDistributor
from trac.ticket.model import Ticket
from trac.ticket.notification import TicketChangeEvent
from trac.ticket.web_ui import TicketModule  # noqa: F401  (Trac's mail templates)

from tests.support.tickets import create_ticket, mails_by_recipient
from tests.support.users import users
from tracnotify.config import (
    TRAC_DISTRIBUTOR_RULE,
    load_config,
    trac_distributor_enabled,
)
from tracnotify.distributor import OutboxDistributor

USERS = users('alice', 'bob')


def enable_trac_distributor(env):
    """As an admin re-enabling it in Admin -> Plugins (Trac then reloads
    the environment: no distributor exists yet)."""
    env.config.set('components', TRAC_DISTRIBUTOR_RULE, 'enabled')
    env.enable_component(EmailDistributor)
    assert OutboxDistributor not in env.components


def test_trac_distributor_sends_no_ticket_mail_next_to_tracnotify(
        sink_env, sink, caplog):
    env = sink_env(USERS, always_notify_reporter='true',
                   always_notify_updater='true')
    enable_trac_distributor(env)
    assert trac_distributor_enabled(env)
    ticket = create_ticket(env, summary='Twice?', cc='carol@example.com')
    sink.received.clear()
    with caplog.at_level(logging.WARNING):
        # what Trac's ticket module does after a web save
        NotificationSystem(env).notify(TicketChangeEvent(
            'created', Ticket(env, ticket.id), ticket['time'], 'alice'))
    assert list(sink.received) == []          # Trac's copy was not sent
    assert any(TRAC_DISTRIBUTOR_RULE in r.getMessage()
               for r in caplog.records)
    mails = mails_by_recipient(env, sink, check_errors=True)
    assert {k: len(v) for k, v in mails.items()} == {
        'alice@example.net': 1, 'carol@example.com': 1}
    # the status page and `notify status` name it
    assert any(TRAC_DISTRIBUTOR_RULE in e for e in load_config(env).errors)


def test_no_warning_while_it_is_disabled(sink_env):
    env = sink_env(USERS)
    assert not trac_distributor_enabled(env)
    assert not any(TRAC_DISTRIBUTOR_RULE in e
                   for e in load_config(env).errors)
