"""Hourly delivery counts for the admin panel's chart.

The outbox keeps no log of attempts, so "failed" in an hour counts the
unsent messages (retrying or dead) whose latest failed attempt fell in that
hour.  Rows are bucketed in Python: integer arithmetic in SQL differs
between SQLite, PostgreSQL and MySQL.
"""

from dataclasses import dataclass
from typing import List, Optional

from tracnotify import outbox

HOUR_US = 3600 * 1000000


@dataclass
class HourCount:
    """Mails sent and failed during one hour."""

    start: int          # microseconds since the epoch
    sent: int = 0
    failed: int = 0


def hourly_counts(env, hours: int = 24,
                  now_us: Optional[int] = None) -> List[HourCount]:
    """One :class:`HourCount` per hour, oldest first; the last one is the
    current (partial) hour."""
    now = now_us if now_us is not None else outbox.now_us()
    last_start = now - now % HOUR_US
    first = last_start - (hours - 1) * HOUR_US
    buckets = [HourCount(first + i * HOUR_US) for i in range(hours)]

    def bucket(when: Optional[int]) -> Optional[HourCount]:
        if when is None or when < first:
            return None
        index = (when - first) // HOUR_US
        return buckets[index] if index < hours else None

    for when, in env.db_query("""
            SELECT sent_at FROM tracnotify_message
            WHERE state=%s AND sent_at>=%s""", (outbox.SENT, first)):
        b = bucket(when)
        if b:
            b.sent += 1
    for when, in env.db_query("""
            SELECT updated FROM tracnotify_message
            WHERE state IN (%s, %s) AND attempts>0 AND last_error IS NOT NULL
            AND updated>=%s""", (outbox.PENDING, outbox.DEAD, first)):
        b = bucket(when)
        if b:
            b.failed += 1
    return buckets


@dataclass
class Bar:
    """One hour of the chart, in SVG user units."""

    x: float
    width: float
    sent_y: float
    sent_h: float
    failed_y: float
    failed_h: float
    hour: HourCount


@dataclass
class Chart:
    """Geometry of a stacked bar chart (sent below, failed on top)."""

    width: int
    height: int
    top: int
    bars: List[Bar]
    maximum: int


def chart(counts: List[HourCount], width: int = 480, height: int = 120,
          top: int = 10) -> Chart:
    """Lay out *counts* as bars; the tallest bar reaches *top*."""
    maximum = max([c.sent + c.failed for c in counts] + [1])
    slot = width / max(len(counts), 1)
    scale = (height - top) / maximum
    bars = []
    for i, c in enumerate(counts):
        sent_h = c.sent * scale
        failed_h = c.failed * scale
        bars.append(Bar(x=round(i * slot + 1, 1),
                        width=round(max(slot - 2, 1), 1),
                        sent_y=round(height - sent_h, 1),
                        sent_h=round(sent_h, 1),
                        failed_y=round(height - sent_h - failed_h, 1),
                        failed_h=round(failed_h, 1), hour=c))
    return Chart(width, height, top, bars, maximum)
