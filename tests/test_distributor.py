"""OutboxDistributor: Trac's ``email`` transport, minus what tracnotify
mails itself.

Ticket notifications that tracnotify does not record (a reminder plugin's
``TicketChangeEvent('reminder')``, say) must still be mailed by Trac's own
distribution, through Trac's ``NotificationSystem.notify`` and a real SMTP
server, exactly as they are with Trac alone.
"""

import pytest
from trac.core import Component, implements
from trac.notification.api import INotificationSubscriber, NotificationSystem
from trac.test import EnvironmentStub
from trac.ticket.notification import TicketChangeEvent

from tests.support.tickets import create_ticket, deliver_to_sink
from tracnotify.attachments import AttachmentMailListener
from tracnotify.distributor import OutboxDistributor
from tracnotify.listener import TicketMailListener
from tracnotify.schema import TRAC_DISTRIBUTOR_RULE

REMINDED = 'reminded@example.org'


class ReminderSubscriber(Component):
    """What a reminder plugin adds: a subscriber of its own category."""

    implements(INotificationSubscriber)

    def matches(self, event):
        if event.realm == 'ticket' and event.category == 'reminder':
            yield ('ReminderSubscriber', 'email', None, False, REMINDED,
                   None, 1, 'always')

    def description(self):
        return 'Ticket reminders'

    def default_subscriptions(self):
        return ()

    def requires_authentication(self):
        return False


def remind(env, sink, ticket) -> list:
    """A reminder plugin's notification; what reached the sink."""
    sink.received.clear()
    NotificationSystem(env).notify(TicketChangeEvent(
        'reminder', ticket, ticket['changetime'], 'reminder-bot',
        comment='Ticket is due'))
    return sink.wait_for(1, timeout=3)


@pytest.fixture
def env(sink_env, sink):
    env = sink_env()
    env.enable_component(ReminderSubscriber)
    return env


def test_trac_alone_mails_the_reminder(tmp_path, sink):
    trac_alone = EnvironmentStub(default_data=True,
                                 path=str(tmp_path / 'trac-alone'),
                                 enable=['trac.*', ReminderSubscriber])
    for name, value in (('smtp_enabled', 'true'),
                        ('smtp_server', '127.0.0.1'),
                        ('smtp_port', str(sink.port)),
                        ('smtp_from', 'trac@example.org')):
        trac_alone.config.set('notification', name, value)
    assert not trac_alone.is_enabled(OutboxDistributor)
    try:
        ticket = create_ticket(trac_alone)
        received = remind(trac_alone, sink, ticket)
        assert [r.rcpt_tos for r in received] == [[REMINDED]]
    finally:
        trac_alone.reset_db()
        trac_alone.shutdown()


def test_tracnotify_hands_unrecorded_ticket_events_to_trac(env, sink):
    assert env.is_enabled(OutboxDistributor)
    assert not env.is_component_enabled(TRAC_DISTRIBUTOR_RULE)
    ticket = create_ticket(env)
    deliver_to_sink(env, sink)
    received = remind(env, sink, ticket)
    assert [r.rcpt_tos for r in received] == [[REMINDED]]
    assert '#%d: Test' % ticket.id in received[0].message['Subject']


def test_recorded_categories_are_left_to_tracnotify(env):
    distributor = OutboxDistributor(env)
    for category in ('created', 'changed', 'batchmodify',
                     'attachment added', 'attachment deleted'):
        assert distributor.recorded_by_tracnotify('ticket', category)
    assert not distributor.recorded_by_tracnotify('ticket', 'reminder')
    assert not distributor.recorded_by_tracnotify('wiki', 'changed')


def test_disabled_listener_leaves_its_categories_to_trac(env):
    env.disable_component(TicketMailListener)
    distributor = OutboxDistributor(env)
    assert not distributor.recorded_by_tracnotify('ticket', 'changed')
    assert distributor.recorded_by_tracnotify('ticket', 'attachment added')
    env.disable_component(AttachmentMailListener)
    assert not distributor.recorded_by_tracnotify('ticket',
                                                  'attachment added')
