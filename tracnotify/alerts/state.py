"""What the alerts remember, in Trac's ``system`` table (no table of
their own): rows named ``tracnotify_alert_*``.

* ``tracnotify_alert_last_sent``: when the last alert was sent (µs);
* ``tracnotify_alert_open_since``: when the open "delivery is failing"
  alert was first sent ('' when delivery works);
* ``tracnotify_alert_dead_mark``: when the last dead message already
  reported died (µs, its ``updated``);
* ``tracnotify_alert_config``: the fingerprint of the configuration errors
  last reported.

Every change is a compare-and-set (``UPDATE ... WHERE value=<what was
read>``), so that of several processes (tracd, workers, ``notify send``)
that see the same problem at once exactly one sends the alert.
"""

from typing import Dict, Optional, Tuple

PREFIX = 'tracnotify_alert_'
LAST_SENT = PREFIX + 'last_sent'
OPEN_SINCE = PREFIX + 'open_since'
DEAD_MARK = PREFIX + 'dead_mark'
CONFIG = PREFIX + 'config'
NAMES = (LAST_SENT, OPEN_SINCE, DEAD_MARK, CONFIG)


def read_state(env) -> Dict[str, str]:
    """Every ``tracnotify_alert_*`` row, ``''`` for those not written."""
    state = dict.fromkeys(NAMES, '')
    for name, value in env.db_query("""
            SELECT name, value FROM system WHERE name IN (%s, %s, %s, %s)
            """, NAMES):
        state[name] = value or ''
    return state


def as_int(value: Optional[str]) -> int:
    """A stored number; 0 for an empty or broken row."""
    try:
        return int(value or 0)
    except ValueError:
        return 0


def swap(env, name: str, expected: str, value: str) -> bool:
    """Set row *name* to *value* if it still holds *expected* (``''``: the
    row is missing or empty); returns whether this call changed it."""
    return claim(env, name, expected, value, {})


class _Lost(Exception):
    """Another process changed the claimed row first."""


def claim(env, name: str, expected: str, value: str,
          marks: Dict[str, Tuple[str, str]]) -> bool:
    """Swap row *name* from *expected* to *value* and, in the same
    transaction, each of *marks* (``name: (expected, value)``; one that
    changed meanwhile is left as it is).  Returns whether this call won
    *name*; if not, nothing was written, so another process never reads
    the new *name* beside old marks."""
    try:
        with env.db_transaction as db:
            if not _swap_in(db, name, expected, value):
                raise _Lost()
            for mark, (old, new) in marks.items():
                _swap_in(db, mark, old, new)
    except _Lost:
        return False
    except env.db_exc.IntegrityError:
        return False            # another process inserted it first
    return True


def _swap_in(db, name: str, expected: str, value: str) -> bool:
    cursor = db.cursor()
    cursor.execute("""
        UPDATE system SET value=%s WHERE name=%s AND value=%s""",
        (value, name, expected))
    if cursor.rowcount > 0:
        return True
    if expected != '':
        return False
    for _row in db("SELECT 1 FROM system WHERE name=%s", (name,)):
        return False            # someone else's value is there now
    db("INSERT INTO system (name, value) VALUES (%s, %s)", (name, value))
    return True
