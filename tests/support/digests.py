"""Driving the daily digest in tests: time is not waited for, the digest
pass is given the time it runs at."""

from datetime import date, datetime, timedelta

from zoneinfo import ZoneInfo

from tests.support.tickets import by_recipient
from tracnotify.config import load_config
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.mail import digest

BERLIN = ZoneInfo('Europe/Berlin')


def delivered(env, sink):
    """Expand and send, without the digest pass (whose clock is the real
    one): the tests run it themselves, at the time they choose."""
    sink.received.clear()
    deliverer = Deliverer(env)
    report = PassReport()
    deliverer.expand_events(report)
    deliverer.send_due(report)
    return by_recipient(sink.received)


def at(day: date, hour: int, minute: int = 0, tz=BERLIN) -> datetime:
    """*day* at *hour*:*minute* in *tz*."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def tomorrow(tz=BERLIN) -> date:
    """Tomorrow's date in *tz*."""
    return datetime.now(tz).date() + timedelta(days=1)


def digests(env, now) -> int:
    """Run the digest pass as at *now*; how many digests it made."""
    return digest.run_digests(env, load_config(env), now).digests
