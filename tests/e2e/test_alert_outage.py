"""An outage of the relay through a real tracd: the admin is alerted once
through the fallback relay (and the log), then told when mail flows again.

The relay is a dead port while a ticket is saved on the web form; after
``alert_after`` (a fraction of a minute here) one alert reaches the admin
through ``alert_fallback = smtp``, and no second one within
``alert_interval``; then a real SMTP server starts on the relay's port,
the waiting mail drains and an ``alert_recovered`` mail arrives.  With
``alert_events = permission_changed``, a grant on Admin > Permissions is
mailed to the admin, naming who made it.
"""

import time

import pytest

from tests.support.smtp_sink import SmtpSink, free_port

AFTER_SECONDS = 3


@pytest.fixture(scope='module')
def outage(start_site):
    fallback = SmtpSink().start()
    relay_port = free_port()
    trac, _sink = start_site(
        smtp_port=str(relay_port), outbox_retry_delay='1',
        alert_after=str(AFTER_SECONDS / 60), alert_interval='10',
        alert_fallback='smtp',
        alert_smtp_server='127.0.0.1:%d' % fallback.port,
        alert_events='permission_changed')
    yield trac, fallback, relay_port
    fallback.stop()


def logged(trac, text, timeout=10.0):
    """Whether tracd's log says *text* (it writes it just after)."""
    deadline = time.monotonic() + timeout
    while text not in trac.trac_log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kinds(received):
    return [(r.rcpt_tos[0], r.message['X-Trac-Notification-Type'])
            for r in received]


def test_alert_after_an_outage_and_the_recovery(outage):
    trac, fallback, relay_port = outage
    saved = time.monotonic()
    trac.client('alice').create_ticket(summary='Saved while the relay is '
                                               'down')
    alert, = fallback.wait_for(1, timeout=30)
    assert time.monotonic() - saved >= AFTER_SECONDS
    assert kinds([alert]) == [('admin@example.org', 'alert')]
    assert alert.message['Subject'] == \
        '[Live Project] Alert: mail delivery is failing'
    assert 'connection refused' in alert.message.get_content()
    assert logged(trac, 'tracnotify: alert: Alert: mail delivery is '
                        'failing: No mail of Live Project')
    assert logged(trac, 'alert mail to admin@example.org sent via SMTP '
                        '127.0.0.1:%d' % fallback.port)
    time.sleep(2)                        # passes go on failing
    assert len(fallback.received) == 1   # alert_interval: none more

    with SmtpSink(port=relay_port) as relay:      # the relay is back
        received = relay.wait_for(2, timeout=40)
        time.sleep(1.5)
        assert sorted(kinds(relay.received)) == [
            ('admin@example.org', 'alert_recovered'),
            ('alice@example.org', 'ticket_created')]
    recovered = [r.message for r in received
                 if r.message['X-Trac-Notification-Type'] ==
                 'alert_recovered'][0]
    assert recovered['Subject'] == \
        '[Live Project] Alert over: mail delivery works again'
    assert len(fallback.received) == 1


def test_a_permission_granted_on_the_admin_page(outage):
    trac, _fallback, relay_port = outage
    with SmtpSink(port=relay_port) as relay:
        trac.client('admin').post('/admin/general/perm', {
            'subject': 'bob', 'action': 'TICKET_ADMIN', 'add': 'Add'})
        notice, = relay.wait_for(1, timeout=20)
    assert kinds([notice]) == [('admin@example.org', 'alert_event')]
    assert notice.message['Subject'] == \
        '[Live Project] Permission granted: TICKET_ADMIN to bob'
    assert 'admin changed the permissions' in notice.message.get_content()
