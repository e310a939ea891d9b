"""A plugin's subscriber whose query fails costs nothing but its own
recipients: on PostgreSQL the failed statement aborts the transaction of
the connection it ran on, and the reads of a claim's changes share one
connection (``Deliverer.expand_events``), so that connection must be
rolled back before anything else runs on it."""

from trac.core import Component, implements
from trac.notification.api import INotificationSubscriber

from tests.support.tickets import by_recipient, create_ticket, deliver_to_sink
from tests.support.users import users


class BrokenQuerySubscriber(Component):
    """A third-party subscriber with a wrong query."""

    implements(INotificationSubscriber)

    def matches(self, event):
        self.env.db_query('SELECT missing FROM no_such_table')
        return ()

    def description(self):
        return 'Broken on purpose'

    def default_subscriptions(self):
        return ()

    def requires_authentication(self):
        return False


def test_a_failing_subscriber_query_spoils_no_other_mail(sink_env, sink):
    env = sink_env(users=users('alice'), always_notify_reporter='true')
    env.enable_component(BrokenQuerySubscriber)
    for n in range(3):
        create_ticket(env, summary='Ticket %d' % n, reporter='alice',
                      cc='carol%d@example.org' % n)
    mails = by_recipient(deliver_to_sink(env, sink, check_errors=True))
    assert sorted(mails) == ['alice@example.net', 'carol0@example.org',
                             'carol1@example.org', 'carol2@example.org']
    assert len(mails['alice@example.net']) == 3
    assert env.db_query("""SELECT COUNT(*) FROM tracnotify_event
                           WHERE state='done'""")[0][0] == 3
