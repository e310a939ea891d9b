"""The ``[notification]`` options of replies by mail, declared once and
read typed (the pattern of :mod:`tracnotify.config`: a bad value is a
message in :attr:`ReplyConfig.errors` and its default, never an error)."""

import re
from dataclasses import dataclass, field
from typing import List, Optional, Pattern

from trac.config import BoolOption, IntOption, Option
from trac.core import Component

from tracnotify.config import SECTION, _Reader

TOKEN_PLACE = '{token}'
#: the Trac default of ``[attachment] max_size`` (bytes)
TRAC_MAX_SIZE = 262144


class ReplyOptions(Component):
    """Options of `[notification]` for replies by e-mail (tracnotify)."""

    reply_address = Option(SECTION, 'reply_address', '',
        """The address replies to ticket mail go to, with `{token}` where
        each copy's personal token goes, e.g. `trac+{token}@example.org`
        (deliver it to `trac-admin ENV notify receive`: see
        docs/replies.md). Each copy then carries `Reply-To:` that address,
        and a reply becomes a comment by the person the mail was sent to.
        Empty (the default): no replies by mail. (tracnotify)""")

    reply_token_days = IntOption(SECTION, 'reply_token_days', 30,
        """Days a reply address stays usable after the mail that carried
        it; replies to an older one are refused (and its sender told).
        (tracnotify)""")

    reply_require_from = BoolOption(SECTION, 'reply_require_from', 'true',
        """When set (the default), a reply is only taken when its `From`
        address is also the e-mail address of the user the reply address
        was made for. The token alone says who writes; this guards
        against a forwarded mail being answered by someone else.
        (tracnotify)""")

    reply_rate_limit = IntOption(SECTION, 'reply_rate_limit', 30,
        """At most this many messages an hour are taken from one sender
        address; the rest are dropped (and logged), so that a mail loop or
        a flood stops by itself. (tracnotify)""")


@dataclass
class ReplyConfig:
    """Validated reply settings."""

    reply_address: str = ''
    token_days: int = 30
    require_from: bool = True
    rate_limit: int = 30
    #: ``[attachment] max_size``: the largest attachment taken (bytes;
    #: negative: no limit, as in Trac)
    max_attachment: int = TRAC_MAX_SIZE
    errors: List[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        """Whether copies carry a reply address."""
        return bool(self.reply_address)

    def address_for(self, token: str) -> str:
        """The reply address that carries *token*."""
        return self.reply_address.replace(TOKEN_PLACE, token)

    @property
    def pattern(self) -> Optional[Pattern]:
        """A regular expression that finds the token in an address (case
        does not matter: mail systems may fold it)."""
        if not self.enabled:
            return None
        before, _t, after = self.reply_address.partition(TOKEN_PLACE)
        return re.compile('^%s([a-z0-9]{16,64})%s$' % (
            re.escape(before.lower()), re.escape(after.lower())))


_reply_re = re.compile(r'^[^@\s<>"(),;:{}]*\{token\}[^@\s<>"(),;:{}]*'
                       r'@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$')


def load_reply_config(env, ini=None) -> ReplyConfig:
    """Read and validate the reply options of *env* (or *ini*)."""
    ini = env.config if ini is None else ini
    r = _Reader(ini)
    c = ReplyConfig()
    address = r.text('reply_address')
    if address and not _reply_re.match(address):
        r.errors.append('[notification] reply_address = %r is not an address '
                        'with {token} in its local part (e.g. '
                        'trac+{token}@example.org); replies are off' % address)
        address = ''
    c.reply_address = address
    c.token_days = r.integer('reply_token_days', 30, 1, 3650)
    c.require_from = r.boolean('reply_require_from', True)
    c.rate_limit = r.integer('reply_rate_limit', 30, 1, 100000)
    try:
        c.max_attachment = ini.getint('attachment', 'max_size', TRAC_MAX_SIZE)
    except Exception:
        r.errors.append('[attachment] max_size is not a whole number; '
                        'using %d' % TRAC_MAX_SIZE)
    c.errors = r.errors
    return c
