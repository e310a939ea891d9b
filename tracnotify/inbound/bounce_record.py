"""Bounces counted against addresses, and the addresses they disable.

Each bounced copy counts once against its address (one row of
``tracnotify_bounce`` per address and ``tracnotify_message.id``, whether
the bounce came back by mail, twice, or as an SMTP 5xx when it was sent).
Within the last ``bounce_days`` days an address's score is

    hard bounces + (days with a soft bounce - 1, when there are two or more)

so a soft bounce (4.x.x: mailbox full, greylisted, delayed) counts only
when it repeats on another day; a one-day outage of a server counts
nothing.  When the score reaches ``bounce_threshold`` the address is
disabled: a row of ``tracnotify_suppress`` with reason ``bounced``
(:mod:`tracnotify.mail.suppression`), so it gets no more mail of any
kind, until an administrator resets it (Admin > Notification > Bouncing
addresses) or the user changes their address.
"""

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from trac.config import IntOption
from trac.core import Component

from tracnotify.config import SECTION, _Reader
from tracnotify.mail import suppression

US = 1000000
DAY_US = 86400 * US
MAX_DETAIL = 500


class BounceOptions(Component):
    """Options of `[notification]` for counting bounces."""

    bounce_threshold = IntOption(SECTION, 'bounce_threshold', 3,
        """Bounces within `bounce_days` after which an address gets no
        more mail (shown in Admin > Notification > Bouncing addresses,
        where it can be reset). Each bounced copy counts once; a soft
        bounce (mailbox full, 4.x.x) only counts when the address
        soft-bounces again on another day. An SMTP 5xx refusal when
        sending counts as a hard bounce. 0 turns disabling off (bounces
        are still counted and shown). (tracnotify)""")

    bounce_days = IntOption(SECTION, 'bounce_days', 30,
        """Days within which bounces count toward `bounce_threshold`.
        (tracnotify)""")


@dataclass
class BounceSettings:
    """Validated bounce counting settings."""

    threshold: int = 3
    days: int = 30
    errors: List[str] = field(default_factory=list)


def load_bounce_settings(env) -> BounceSettings:
    """``bounce_threshold`` and ``bounce_days`` of *env*; never raises."""
    r = _Reader(env.config)
    s = BounceSettings(threshold=r.integer('bounce_threshold', 3, 0, 1000),
                       days=r.integer('bounce_days', 30, 1, 3650))
    s.errors = r.errors
    return s


def now_us() -> int:
    return int(time.time() * US)


@dataclass(frozen=True)
class Counted:
    """What recording one bounce did."""

    counted: bool          # False: this copy had bounced for it already
    score: int
    disabled: bool         # the address was disabled by this bounce


def record_bounce(env, address: str, message_id: int, hard: bool,
                  status: str = '', detail: str = '',
                  settings: Optional[BounceSettings] = None,
                  now: Optional[int] = None) -> Counted:
    """Count a bounce of copy *message_id* to *address*, and disable the
    address when its score reaches the threshold."""
    settings = settings or load_bounce_settings(env)
    key = suppression.normalize(address)
    now = now_us() if now is None else now
    counted = False
    with env.db_transaction as db:
        if not db("""SELECT 1 FROM tracnotify_bounce
                     WHERE address=%s AND message_id=%s""",
                  (key, message_id)):
            db("""INSERT INTO tracnotify_bounce
                      (address, message_id, hard, created, status, detail)
                  VALUES (%s, %s, %s, %s, %s, %s)""",
               (key, message_id, 1 if hard else 0, now, status[:20],
                (detail or '')[:MAX_DETAIL]))
            counted = True
    value = score(env, key, settings.days, now)
    disabled = False
    if counted and settings.threshold and value >= settings.threshold and \
            suppression.suppression(env, key) is None:
        disabled = suppression.suppress(
            env, key, suppression.BOUNCED, author='tracnotify',
            note='%d bounces within %d days, the last: %s' % (
                value, settings.days, (status or detail or '?')[:100]))
    return Counted(counted, value, disabled)


def score(env, address: str, days: int, now: Optional[int] = None) -> int:
    """The score of *address* (see the module doc)."""
    hard, soft_days = _counts(env, [address], days, now).get(
        suppression.normalize(address), (0, 0))
    return hard + max(0, soft_days - 1)


def _counts(env, addresses: Optional[List[str]], days: int,
            now: Optional[int] = None) -> Dict[str, Tuple[int, int]]:
    """``{address: (hard bounces, days with a soft bounce)}`` within the
    last *days* days (of *addresses*, or of all)."""
    since = (now_us() if now is None else now) - days * DAY_US
    sql = """SELECT address, hard, created FROM tracnotify_bounce
             WHERE created>=%s"""
    args: list = [since]
    if addresses is not None:
        keys = [suppression.normalize(a) for a in addresses]
        sql += ' AND address IN (%s)' % ','.join(['%s'] * len(keys))
        args += keys
    hard: Dict[str, int] = {}
    soft: Dict[str, set] = {}
    for address, is_hard, created in env.db_query(sql, args):
        if is_hard:
            hard[address] = hard.get(address, 0) + 1
        else:
            soft.setdefault(address, set()).add(created // DAY_US)
    return {a: (hard.get(a, 0), len(soft.get(a, ())))
            for a in set(hard) | set(soft)}


@dataclass
class BouncingAddress:
    """One address with bounces, for the admin panel and ``notify status``."""

    address: str
    hard: int              # within bounce_days
    soft: int
    score: int
    last: int              # microseconds
    last_status: str
    last_detail: str
    disabled: bool         # suppressed with reason 'bounced'
    total: int             # all bounces kept for it


def bouncing_addresses(env, settings: Optional[BounceSettings] = None
                       ) -> List[BouncingAddress]:
    """Every address with a bounce on record, the disabled ones first."""
    settings = settings or load_bounce_settings(env)
    counts = _counts(env, None, settings.days)
    found: Dict[str, BouncingAddress] = {}
    for address, created, status, detail in env.db_query("""
            SELECT address, created, status, detail
            FROM tracnotify_bounce ORDER BY created"""):
        h, soft_days = counts.get(address, (0, 0))
        row = found.get(address)
        if row is None:
            row = found[address] = BouncingAddress(
                address, h, soft_days, h + max(0, soft_days - 1), 0, '',
                '', False, 0)
        row.total += 1
        row.last, row.last_status, row.last_detail = created, status or '', \
            detail or ''
    listed = suppression.suppressed(env, list(found))
    for address, row in found.items():
        row.disabled = listed.get(address) == suppression.BOUNCED
    return sorted(found.values(), key=lambda r: (not r.disabled, -r.score,
                                                 r.address))


def bounce_state(env, address: str) -> Optional[BouncingAddress]:
    """The bounces of *address*, or None when it has none."""
    key = suppression.normalize(address)
    if not key:
        return None
    for row in bouncing_addresses(env):
        if row.address == key:
            return row
    return None


def reset(env, address: str) -> bool:
    """Forget the bounces of *address* and lift its 'bounced' suppression
    (not an unsubscribe or an administrator's entry); True if anything
    was there."""
    key = suppression.normalize(address)
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute('DELETE FROM tracnotify_bounce WHERE address=%s',
                       (key,))
        forgot = cursor.rowcount > 0
    lifted = suppression.unsuppress(env, key, only_reason=suppression.BOUNCED)
    return forgot or lifted


# At send time ------------------------------------------------------------------

#: what the SMTP transport writes for a recipient it refused
RECIPIENT_REFUSED = 'recipient refused: '


def record_refusal(env, message, error: str) -> Optional[Counted]:
    """Count an SMTP 5xx refusal of *message*'s recipient at send time
    like a hard bounce (the deliverer's dead-letter path); other
    permanent failures (a message refused for its content, SMTPUTF8
    missing) are not the address's fault and count nothing.  Never
    raises."""
    if not error.startswith(RECIPIENT_REFUSED):
        return None
    code = error[len(RECIPIENT_REFUSED):].split(' ', 2)
    status = code[1] if len(code) > 1 and code[1][:1] == '5' and \
        code[1].count('.') == 2 else code[0]
    try:
        return record_bounce(env, message.recipient, message.id, True,
                             status, error)
    except Exception as e:
        env.log.warning('tracnotify: SMTP refusal of %s not counted: %s',
                        message.recipient, e)
        return None
