"""A ticket change reaches a real SMTP server through the outbox."""

from tests.support.tickets import add_users, change_ticket, create_ticket, deliver
from tests.support.users import users


def test_created_and_changed_ticket_mail_arrives(make_env, smtp_sink):
    sink = smtp_sink()
    env = make_env(smtp_port=str(sink.port), smtp_server='127.0.0.1')
    add_users(env, *users('alice'))
    ticket = create_ticket(env, cc='carol@example.com')
    change_ticket(env, ticket.id, author='bob', comment='Looks good',
                  status='closed', resolution='fixed')
    report = deliver(env)
    assert report.sent == len(sink.received) == 5
    by_rcpt = {(r.rcpt_tos[0], r.message['X-Trac-Notification-Type'])
               for r in sink.received}
    assert by_rcpt == {
        ('alice@example.net', 'ticket_created'),
        ('carol@example.com', 'ticket_created'),
        ('alice@example.net', 'ticket_changed'),
        ('carol@example.com', 'ticket_changed'),
        ('bob@example.org', 'ticket_changed'),
    }
