"""A real Trac site for the end-to-end tests: tracd and an SMTP sink."""

import pytest

from tests.support.live_trac import LiveTrac
from tests.support.smtp_sink import SmtpSink


@pytest.fixture(scope='module')
def start_site(tmp_path_factory):
    """Factory: ``start_site(**extra_notification)`` starts an SmtpSink and a
    LiveTrac that mails to it and returns ``(trac, sink)``; both are
    stopped at the end of the module.  ``[notification]`` has SMTP on,
    the sink, trac@example.org and a one-second outbox poll, then
    *extra_notification*."""
    started = []

    def factory(**extra_notification):
        sink = SmtpSink().start()
        started.append(sink)
        notification = {
            'smtp_enabled': 'true',
            'smtp_server': '127.0.0.1',
            'smtp_port': str(sink.port),
            'smtp_from': 'trac@example.org',
            'smtp_default_domain': 'example.org',
            'outbox_poll_interval': '1',
        }
        notification.update(extra_notification)
        trac = LiveTrac(str(tmp_path_factory.mktemp('live')), notification)
        started.append(trac)
        trac.create().start()
        return trac, sink

    yield factory
    for server in reversed(started):
        server.stop()
