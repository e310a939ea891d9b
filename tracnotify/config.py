"""One typed, validated view of the ``[notification]`` section.

Options that Trac 1.6 already declares (``smtp_server``, ``smtp_from``,
``use_tls``, ``mime_encoding``...) are read here, not declared again.  The
options Trac lacks are declared once, below, on :class:`TracnotifyOptions`,
so that ``[[TracIni(notification)]]`` documents them.

:func:`load_config` never raises: a bad value is replaced by its default and
named in :attr:`NotifyConfig.errors`, which the log and the admin panel show.
"""

import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from trac.config import (
    BoolOption,
    ChoiceOption,
    FloatOption,
    IntOption,
    ListOption,
    Option,
)
from trac.core import Component
from trac.notification.mail import EmailDistributor

from tracnotify.mail.verp import template_error

SECTION = 'notification'
#: ``[components]`` rule written on upgrade: Trac's own e-mail distributor
#: is replaced by :class:`tracnotify.distributor.OutboxDistributor`.
TRAC_DISTRIBUTOR_RULE = 'trac.notification.mail.emaildistributor'
MIME_ENCODINGS = ('none', 'base64', 'qp', 'quoted-printable')
DELIVERY_MODES = ('inline', 'worker')
SMTPS_PORT = 465
#: the events a user picks from on the preferences page
MAIL_EVENTS = ('created', 'changed', 'commented', 'closed', 'reassigned')
#: the mail formats: text only, HTML only, both (multipart/alternative)
MAIL_FORMATS = ('text', 'html', 'both')
#: Trac's ``default_format.email`` value -> tracnotify's format
TRAC_FORMATS = {'text/plain': 'text', 'text/html': 'html',
                'multipart/alternative': 'both'}
MAIL_DELIVERIES = ('now', 'digest')
#: Trac's defaults of ticket_subject_template and batch_subject_template
TICKET_SUBJECT = '${prefix} #${ticket.id}: ${summary}'
BATCH_SUBJECT = '${prefix} Batch modify: ${tickets_descr}'
ROLE_OPTIONS = ('always_notify_reporter', 'always_notify_owner',
                'always_notify_updater')

_address_re = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+$")
#: a name without domain, completed by smtp_default_domain (as in Trac)
_bare_name_re = re.compile(r"^[-A-Za-z0-9!*+/=_.]+$")


class TracnotifyOptions(Component):
    """Options of `[notification]` that tracnotify adds to Trac's own."""

    smtp_use_ssl = BoolOption(SECTION, 'smtp_use_ssl', 'false',
        """Connect with implicit TLS (SMTPS, usually port 465) instead of
        plain SMTP. Cannot be combined with `use_tls` (STARTTLS).
        (tracnotify)""")

    smtp_ssl_cafile = Option(SECTION, 'smtp_ssl_cafile', '',
        """A PEM file of CA certificates to trust for STARTTLS and SMTPS
        (e.g. a private CA). Server certificates are always verified.
        (tracnotify)""")

    smtp_timeout = IntOption(SECTION, 'smtp_timeout', 30,
        """Seconds to wait for the SMTP server to connect or answer before
        the delivery attempt fails and is retried later. (tracnotify)""")

    always_notify_reporter = BoolOption(SECTION, 'always_notify_reporter',
                                        'false',
        """When set, force (`true`) or drop (`false`) mail to the ticket's
        reporter, whatever `[notification-subscriber]` says. When not set,
        Trac's subscription rules alone decide. A user's own choice on the
        Preferences page wins. (tracnotify, as in Trac 0.12)""")

    always_notify_owner = BoolOption(SECTION, 'always_notify_owner', 'false',
        """When set, force (`true`) or drop (`false`) mail to the ticket's
        owner (and previous owner on reassignment). When not set, Trac's
        subscription rules alone decide. (tracnotify, as in Trac 0.12)""")

    always_notify_updater = BoolOption(SECTION, 'always_notify_updater',
                                       'true',
        """When set, force (`true`) or drop (`false`) mail to the person who
        made the change. When not set, Trac's subscription rules alone
        decide (a new Trac environment subscribes updaters).
        (tracnotify, as in Trac 0.12)""")

    smtp_from_author_name = BoolOption(SECTION, 'smtp_from_author_name',
                                       'false',
        """Show the name of the person who made the change as the sender's
        name, with the address of `smtp_from` (e.g.
        `"Jane Doe (via Trac)" <trac@example.org>`). (tracnotify)""")

    delivery = ChoiceOption(SECTION, 'delivery', DELIVERY_MODES,
        """`inline`: each Trac process runs a background thread that
        delivers the outbox right after a change. `worker`: only
        `trac-admin ENV notify worker` (or `notify send` from cron)
        delivers. (tracnotify)""")

    outbox_max_attempts = IntOption(SECTION, 'outbox_max_attempts', 8,
        """How many times a message is tried before it is marked dead.
        (tracnotify)""")

    outbox_retry_delay = IntOption(SECTION, 'outbox_retry_delay', 60,
        """Seconds before the first retry of a failed message; each further
        retry waits twice as long, up to six hours. (tracnotify)""")

    outbox_poll_interval = IntOption(SECTION, 'outbox_poll_interval', 5,
        """Seconds between two looks at the outbox by the delivery thread,
        for retries and for changes made by other processes. (tracnotify)""")

    outbox_lease_seconds = IntOption(SECTION, 'outbox_lease_seconds', 300,
        """Seconds a worker owns the messages it claimed. If it dies (even
        with `kill -9`), another worker takes them over after this time;
        only that in-flight batch can then be sent twice, with the same
        Message-ID. Must exceed the time one batch takes. (tracnotify)""")

    smtp_connections = IntOption(SECTION, 'smtp_connections', 1,
        """SMTP connections used in parallel by one delivery pass.
        (tracnotify)""")

    smtp_burst = IntOption(SECTION, 'smtp_burst', 0,
        """For relays that throttle: send at most this many messages, then
        pause `smtp_burst_pause` seconds. 0 means no limit. (tracnotify)""")

    smtp_burst_pause = FloatOption(SECTION, 'smtp_burst_pause', 0,
        """Seconds to pause after each burst of `smtp_burst` messages.
        (tracnotify)""")

    outbox_batch_size = IntOption(SECTION, 'outbox_batch_size', 100,
        """Messages claimed and sent over one SMTP connection at a time.
        (tracnotify)""")

    default_events = ListOption(SECTION, 'default_events',
                                ','.join(MAIL_EVENTS), doc=
        """Which ticket events people get mail about unless they chose
        otherwise under Preferences -> Notifications: any of `created`,
        `changed`, `commented`, `closed`, `reassigned` (the ticket was
        given to me). Does not apply to `smtp_always_cc` /
        `smtp_always_bcc`. (tracnotify)""")

    default_own_changes = BoolOption(SECTION, 'default_own_changes', 'true',
        """Whether people get mail about the changes they make themselves,
        unless they chose otherwise under Preferences -> Notifications.
        A user's choice wins over `always_notify_updater`. (The default
        mail format is Trac's own `default_format.email`: `text/plain`,
        `text/html`, or `multipart/alternative` for both.) (tracnotify)""")

    default_delivery = ChoiceOption(SECTION, 'default_delivery',
                                    MAIL_DELIVERIES,
        """How a user's ticket mail is delivered unless they choose
        otherwise under Preferences -> Notifications: `now` (the default),
        right after each change; `digest`, one mail a day listing every
        change. (tracnotify)""")

    digest_hour = IntOption(SECTION, 'digest_hour', 7,
        """Hour of the day (0-23) from which the daily digest is sent, in
        each user's own time zone (Preferences -> Date & Time), else
        `[trac] default_timezone`. Each address gets at most one digest a
        day, however many workers run. (tracnotify)""")

    batch_window = IntOption(SECTION, 'batch_window', 10,
        """Seconds within which changes by one author to several tickets
        (a batch modify, a script) are sent as one mail per recipient
        listing them all, instead of one mail per ticket. Such changes
        wait this long before they are mailed. 0 turns this off.
        (tracnotify)""")

    milestone_notify_ticket_people = BoolOption(
        SECTION, 'milestone_notify_ticket_people', 'false',
        """Mail the changes of a milestone (created, due date changed,
        completed, renamed, deleted) also to the owners and reporters of
        its open tickets, not only to its watchers. (tracnotify)""")


@dataclass
class NotifyConfig:
    """Validated settings, read from ``[notification]`` (and ``[trac]``)."""

    smtp_enabled: bool = False
    smtp_server: str = 'localhost'
    smtp_port: int = 25
    smtp_user: str = ''
    smtp_password: str = field(default='', repr=False)
    use_tls: bool = False
    smtp_use_ssl: bool = False
    smtp_timeout: int = 30
    smtp_ssl_cafile: str = ''
    smtp_from: str = 'trac@localhost'
    smtp_from_name: str = ''
    smtp_from_author: bool = False
    smtp_from_author_name: bool = False
    smtp_replyto: str = 'trac@localhost'
    #: VERP envelope sender with ``{token}`` (mail/verp.py); '' = off
    bounce_address: str = ''
    smtp_default_domain: str = ''
    smtp_always_cc: List[str] = field(default_factory=list)
    smtp_always_bcc: List[str] = field(default_factory=list)
    #: ``[notification] smtp_subject_prefix``; ``__default__``: [Project]
    smtp_subject_prefix: str = '__default__'
    #: Trac's subject templates (Jinja2 text) for ticket and batch mail
    ticket_subject_template: str = TICKET_SUBJECT
    batch_subject_template: str = BATCH_SUBJECT
    #: width of East-Asian ambiguous characters in the body (1 or 2)
    ambiwidth: int = 1
    use_public_cc: bool = False
    use_short_addr: bool = False
    mime_encoding: str = 'none'
    #: role -> forced value, only for the always_notify_* options that are set
    forced_roles: dict = field(default_factory=dict)
    delivery: str = 'inline'
    max_attempts: int = 8
    retry_delay: int = 60
    poll_interval: int = 5
    batch_size: int = 100
    lease_seconds: int = 300
    smtp_connections: int = 1
    smtp_burst: int = 0
    smtp_burst_pause: float = 0.0
    base_url: str = ''
    #: ``[trac] default_timezone`` (empty: the server's zone)
    default_timezone: str = ''
    #: defaults of the users' choices (Preferences -> Notifications)
    default_events: Tuple[str, ...] = MAIL_EVENTS
    default_own_changes: bool = True
    default_format: str = 'text'
    default_delivery: str = 'now'
    #: daily digest: local hour it is sent from (tracnotify.digest)
    digest_hour: int = 7
    #: seconds to coalesce one author's changes of several tickets
    batch_window: int = 10
    #: milestone mail also to the owners/reporters of its open tickets
    milestone_notify_ticket_people: bool = False
    errors: List[str] = field(default_factory=list)

    @property
    def can_send(self) -> bool:
        """True when mail may be produced at all."""
        return self.smtp_enabled and bool(self.smtp_from or self.smtp_replyto)

    @property
    def envelope_from(self) -> str:
        """The SMTP envelope sender (MAIL FROM)."""
        return self.smtp_from or self.smtp_replyto

    def describe_server(self) -> str:
        """``host:port (mode)`` for logs and the admin panel."""
        mode = 'SMTPS' if self.smtp_use_ssl else \
            'STARTTLS' if self.use_tls else 'plain'
        return '%s:%s (%s)' % (self.smtp_server, self.smtp_port, mode)


def _split_list(value: str) -> List[str]:
    return [v for v in re.split(r'[,\s]+', value or '') if v]


class _Reader:
    """Reads raw values and collects errors instead of raising."""

    def __init__(self, config) -> None:
        self.config = config
        self.errors: List[str] = []

    def text(self, name: str, default: str = '') -> str:
        value = self.config.get(SECTION, name, default)
        return value.strip() if isinstance(value, str) else default

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, '')
        if raw == '':
            return default
        if raw.lower() in ('yes', 'true', 'on', '1', 'enabled'):
            return True
        if raw.lower() in ('no', 'false', 'off', '0', 'disabled'):
            return False
        self.errors.append('[notification] %s = %r is not a boolean; '
                           'using %s' % (name, raw, str(default).lower()))
        return default

    def integer(self, name: str, default: int, low: int,
                high: Optional[int] = None) -> int:
        raw = self.text(name, '')
        if raw == '':
            return default
        try:
            value = int(raw)
        except ValueError:
            self.errors.append('[notification] %s = %r is not a whole '
                               'number; using %d' % (name, raw, default))
            return default
        if value < low or (high is not None and value > high):
            span = '%d..%d' % (low, high) if high is not None else \
                '>= %d' % low
            self.errors.append('[notification] %s = %d is out of range '
                               '(%s); using %d' % (name, value, span, default))
            return default
        return value

    def number(self, name: str, default: float, low: float,
               high: float) -> float:
        raw = self.text(name, '')
        if raw == '':
            return default
        try:
            value = float(raw)
        except ValueError:
            self.errors.append('[notification] %s = %r is not a number; '
                               'using %s' % (name, raw, default))
            return default
        if not low <= value <= high:
            self.errors.append('[notification] %s = %s is out of range '
                               '(%s..%s); using %s' % (name, raw, low, high,
                                                       default))
            return default
        return value

    def choice(self, name: str, choices: Tuple[str, ...], default: str) -> str:
        raw = self.text(name, '').lower()
        if raw == '':
            return default
        if raw not in choices:
            self.errors.append('[notification] %s = %r is not one of %s; '
                               'using %s' % (name, raw, ', '.join(choices),
                                             default))
            return default
        return raw

    def address(self, name: str, default: str) -> str:
        raw = self.text(name, default)
        if raw and not (_address_re.match(raw) or _bare_name_re.match(raw)):
            self.errors.append('[notification] %s = %r is not an e-mail '
                               'address; ignored' % (name, raw))
            return ''
        return raw


def trac_distributor_enabled(env) -> bool:
    """Whether Trac's own ``EmailDistributor`` is enabled in *env* (False
    for a mere view of a configuration, as the settings form checks)."""
    is_enabled = getattr(env, 'is_enabled', None)
    return bool(is_enabled is not None and is_enabled(EmailDistributor))


def trac_distributor_warning() -> str:
    """What the log and the status page say while it is enabled."""
    return ('[components] %s is enabled: Trac\'s own ticket mail is not sent '
            '(tracnotify sends it, once); set it to "disabled" or run '
            'trac-admin ENV upgrade' % TRAC_DISTRIBUTOR_RULE)


def load_config(env, ini=None) -> NotifyConfig:
    """Read and validate ``[notification]`` of *env*, or of *ini* (a
    ``trac.config.Configuration`` of the environment's trac.ini read
    afresh: see ``delivery/service.py``); never raises."""
    ini = env.config if ini is None else ini
    r = _Reader(ini)
    c = NotifyConfig()
    _read_server(ini, r, c)
    _read_sender(ini, r, c)
    _read_mail(ini, r, c)
    _read_roles(ini, r, c)
    _read_outbox(r, c)
    _read_defaults(r, c)
    _check(r, c)
    if trac_distributor_enabled(env):
        r.errors.append(trac_distributor_warning())
    c.errors = r.errors
    return c


def _read_server(ini, r: _Reader, c: NotifyConfig) -> None:
    """The SMTP server: host, port, TLS, timeout, CAs, login."""
    c.smtp_enabled = r.boolean('smtp_enabled', False)
    c.smtp_server = r.text('smtp_server', 'localhost') or 'localhost'
    c.smtp_use_ssl = r.boolean('smtp_use_ssl', False)
    c.use_tls = r.boolean('use_tls', False)
    if c.smtp_use_ssl and not ini.has_option(SECTION, 'smtp_port',
                                             defaults=False):
        c.smtp_port = SMTPS_PORT      # Trac's own default (25) is for SMTP
    else:
        c.smtp_port = r.integer('smtp_port',
                                SMTPS_PORT if c.smtp_use_ssl else 25, 1, 65535)
    if c.use_tls and c.smtp_use_ssl:
        r.errors.append('[notification] use_tls (STARTTLS) and smtp_use_ssl '
                        '(SMTPS) cannot both be on; using SMTPS')
        c.use_tls = False
    c.smtp_timeout = r.integer('smtp_timeout', 30, 1, 3600)
    c.smtp_ssl_cafile = r.text('smtp_ssl_cafile')
    if c.smtp_ssl_cafile and not os.path.isfile(c.smtp_ssl_cafile):
        r.errors.append('[notification] smtp_ssl_cafile = %r: no such file; '
                        'using the system CAs' % c.smtp_ssl_cafile)
        c.smtp_ssl_cafile = ''
    c.smtp_user = r.text('smtp_user')
    c.smtp_password = ini.get(SECTION, 'smtp_password', '') or ''


def _read_sender(ini, r: _Reader, c: NotifyConfig) -> None:
    """From, Reply-To, the default domain, always_cc/bcc, public Cc."""
    c.smtp_from = r.address('smtp_from', 'trac@localhost')
    c.smtp_from_name = r.text('smtp_from_name')
    c.smtp_from_author = r.boolean('smtp_from_author', False)
    c.smtp_from_author_name = r.boolean('smtp_from_author_name', False)
    c.smtp_replyto = r.address('smtp_replyto', 'trac@localhost')
    c.smtp_default_domain = r.text('smtp_default_domain').lstrip('@')
    c.use_short_addr = r.boolean('use_short_addr', False)
    if not c.use_short_addr and c.smtp_default_domain:
        for name in ('smtp_from', 'smtp_replyto'):
            value = getattr(c, name)
            if value and '@' not in value:
                setattr(c, name, '%s@%s' % (value, c.smtp_default_domain))
    c.smtp_always_cc = _split_list(r.text('smtp_always_cc'))
    c.smtp_always_bcc = _split_list(r.text('smtp_always_bcc'))
    c.use_public_cc = r.boolean('use_public_cc', False)
    c.bounce_address = r.text('bounce_address')
    error = template_error(c.bounce_address) if c.bounce_address else None
    if error:
        r.errors.append('[notification] bounce_address = %r %s; VERP is '
                        'off' % (c.bounce_address, error))
        c.bounce_address = ''


def _read_mail(ini, r: _Reader, c: NotifyConfig) -> None:
    """What the mail looks like: subject, encoding, widths, time zone."""
    config = ini
    c.smtp_subject_prefix = config.get(SECTION, 'smtp_subject_prefix',
                                       '__default__')
    c.ticket_subject_template = config.get(
        SECTION, 'ticket_subject_template', TICKET_SUBJECT)
    c.batch_subject_template = config.get(
        SECTION, 'batch_subject_template', BATCH_SUBJECT) or BATCH_SUBJECT
    c.ambiwidth = 2 if config.get(SECTION, 'ambiguous_char_width',
                                  'single') == 'double' else 1
    c.mime_encoding = r.choice('mime_encoding', MIME_ENCODINGS, 'none')
    if c.mime_encoding == 'quoted-printable':
        c.mime_encoding = 'qp'
    c.base_url = (config.get('trac', 'base_url', '') or '').strip()
    c.default_timezone = config.get('trac', 'default_timezone', '') or ''


def _read_roles(ini, r: _Reader, c: NotifyConfig) -> None:
    """The always_notify_* options that are set (they force a role)."""
    for name in ROLE_OPTIONS:
        if ini.has_option(SECTION, name, defaults=False):
            role = name[len('always_notify_'):]
            c.forced_roles[role] = r.boolean(name, role == 'updater')


def _read_outbox(r: _Reader, c: NotifyConfig) -> None:
    """Delivery: mode, attempts, leases, connections, bursts, batches."""
    c.delivery = r.choice('delivery', DELIVERY_MODES, 'inline')
    c.max_attempts = r.integer('outbox_max_attempts', 8, 1, 1000)
    c.retry_delay = r.integer('outbox_retry_delay', 60, 1, 86400)
    c.poll_interval = r.integer('outbox_poll_interval', 5, 1, 3600)
    c.batch_size = r.integer('outbox_batch_size', 100, 1, 10000)
    c.lease_seconds = r.integer('outbox_lease_seconds', 300, 1, 86400)
    c.smtp_connections = r.integer('smtp_connections', 1, 1, 64)
    c.smtp_burst = r.integer('smtp_burst', 0, 0, 1000000)
    c.smtp_burst_pause = r.number('smtp_burst_pause', 0.0, 0.0, 3600.0)


def _read_defaults(r: _Reader, c: NotifyConfig) -> None:
    """The defaults of the users' choices (Preferences -> Notifications),
    the digest's hour and the batch window."""
    events = [e.lower() for e in _split_list(r.text('default_events',
                                                    ','.join(MAIL_EVENTS)))]
    unknown = [e for e in events if e not in MAIL_EVENTS]
    if unknown:
        r.errors.append('[notification] default_events: unknown %s (known: '
                        '%s); ignored' % (', '.join(unknown),
                                          ', '.join(MAIL_EVENTS)))
    c.default_events = tuple(e for e in MAIL_EVENTS if e in events)
    c.default_own_changes = r.boolean('default_own_changes', True)
    c.default_delivery = r.choice('default_delivery', MAIL_DELIVERIES, 'now')
    c.digest_hour = r.integer('digest_hour', 7, 0, 23)
    c.batch_window = r.integer('batch_window', 10, 0, 3600)
    c.milestone_notify_ticket_people = r.boolean(
        'milestone_notify_ticket_people', False)
    trac_format = r.text('default_format.email', 'text/plain') or \
        'text/plain'
    if trac_format.lower() not in TRAC_FORMATS:
        r.errors.append('[notification] default_format.email = %r: tracnotify '
                        'knows %s; using text/plain' % (
                            trac_format, ', '.join(TRAC_FORMATS)))
    c.default_format = TRAC_FORMATS.get(trac_format.lower(), 'text')


def _check(r: _Reader, c: NotifyConfig) -> None:
    """What no single value says: mail that cannot be sent as configured."""
    if c.smtp_enabled and not (c.smtp_from or c.smtp_replyto):
        r.errors.append('[notification] neither smtp_from nor smtp_replyto '
                        'is set: no mail is sent until one is')
    if c.smtp_enabled and not c.base_url:
        r.errors.append('[trac] base_url is not set: links in mail built '
                        'outside a web request cannot be absolute')
