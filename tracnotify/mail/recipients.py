"""Who gets mail about a ticket change, and why.

Built on Trac 1.6's own subscription machinery: every enabled
``INotificationSubscriber`` is asked, ``[notification-subscriber]`` defaults
and each user's rules from Preferences -> Notifications are ranked exactly as
``NotificationSystem.subscriptions`` ranks them.  On top of that:

* the ``always_notify_reporter/owner/updater`` options of older Trac
  releases, when set, force their role in (or out);
* ``smtp_always_cc`` (visible with ``use_public_cc``) and ``smtp_always_bcc``
  (never visible);
* usernames are resolved to the address in their preferences, the default
  domain is appended to bare names, short addresses only with
  ``use_short_addr``, ``ignore_domains`` / ``admit_domains`` as in Trac;
* each address once; broken addresses are skipped and logged;
* roles are those of the ticket *as it was at the change* (the snapshot):
  reporter, owner, cc, and the previous updaters up to that change, so a
  creation expanded after later changes does not go to their authors;
* nobody who lacks ``TICKET_VIEW`` on the ticket (fine-grained policies
  included) gets it; addresses that are not users are checked as
  ``anonymous``.  Addresses an admin lists in always_cc/always_bcc are the
  admin's explicit choice and are not checked, unless they name a user.
"""

from dataclasses import replace
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence

from trac.notification.api import NotificationSystem
from trac.notification.mail import RecipientMatcher
from trac.notification.model import Subscription
from trac.perm import PermissionCache
from trac.resource import Resource

# _ticket_change_subscribers: Trac's own matching of candidates to rules
# (private, but what every ticket subscriber of Trac 1.2 to 1.6 calls)
from trac.ticket.notification import TicketChangeEvent, _ticket_change_subscribers
from trac.util import lazy

from tracnotify.config import NotifyConfig
from tracnotify.event import ATTACHMENT_ADDED, ATTACHMENT_DELETED, CREATED, TicketEvent
from tracnotify.mail.addresses import IDNError, international_address, normalize_address
from tracnotify.mail.choices import MailChoices, load_choices, site_defaults, wants_mail
from tracnotify.mail.intl_recipients import international_rules, match_international
from tracnotify.mail.message import AddressError, Recipient, make_address
from tracnotify.mail.suppression import drop_suppressed
from tracnotify.outbox.reads import recover_aborted_read

#: Trac subscriber class -> reason shown in X-Trac-Notification-Reason
REASONS = {
    'TicketReporterSubscriber': 'reporter',
    'TicketOwnerSubscriber': 'owner',
    'CarbonCopySubscriber': 'cc',
    'TicketUpdaterSubscriber': 'updater',
    'TicketPreviousUpdatersSubscriber': 'previous_updater',
    'TicketWatchSubscriber': 'watcher',      # tracnotify.watch
}
#: always_notify_<role> -> the subscriber class that role stands for
ROLE_CLASSES = {
    'reporter': 'TicketReporterSubscriber',
    'owner': 'TicketOwnerSubscriber',
    'updater': 'TicketUpdaterSubscriber',
}
VISIBLE_AS_TO = ('reporter', 'owner', 'updater')
VISIBILITY_RANK = {'to': 0, 'cc': 1, 'bcc': 2}
SKIPPED_SUBSCRIBERS = ('AlwaysEmailSubscriber',)  # handled below, with Bcc
#: asked with the history up to the change, not Trac's of today
PREVIOUS_UPDATERS = 'TicketPreviousUpdatersSubscriber'

class Rule(NamedTuple):
    """One subscription rule that matched, as Trac ranks them."""

    klass: str                   # the subscriber's class name
    distributor: str             # 'email'
    sid: Optional[str]
    authenticated: int
    address: Optional[str]
    priority: int                # lower wins
    adverb: str                  # always | never

    @classmethod
    def of_match(cls, m) -> 'Rule':
        """The rule of a subscriber's match ``(class, distributor, sid,
        authenticated, address, format, priority, adverb)``."""
        return cls(m[0], m[1], m[2], m[3], m[4], m[6], m[7])


def trac_event(event: TicketEvent, ticket) -> TicketChangeEvent:
    """The equivalent Trac ``TicketChangeEvent`` for Trac's subscribers."""
    category = {CREATED: 'created', ATTACHMENT_ADDED: 'attachment added',
                ATTACHMENT_DELETED: 'attachment deleted'}.get(event.kind,
                                                              'changed')
    return TicketChangeEvent(category, ticket, event.datetime, event.author,
                             event.comment,
                             changes={'fields': event.field_changes})


class RecipientResolver:
    """Computes the recipients of one ticket event."""

    def __init__(self, env, config: NotifyConfig) -> None:
        self.env = env
        self.config = config
        self.log = env.log
        self.matcher = RecipientMatcher(env)
        self.notify_sys = NotificationSystem(env)

    def resolve(self, event: TicketEvent, ticket) -> List[Recipient]:
        """Every recipient of *event*, each address once."""
        rules = self._subscription_rules(trac_event(event, ticket), event)
        rules = self._apply_forced_roles(rules, event)
        chosen: Dict[str, Recipient] = {}
        # users first: their role is the reason shown, not a bare cc entry
        winners = sorted(self._winning_rules(rules), key=lambda r: not r.sid)
        for r in winners:
            self._add(chosen, r.sid, r.authenticated, r.address,
                      REASONS.get(r.klass, 'subscribed'))
        self._apply_choices(chosen, event)  # before always_cc/bcc: they stay
        for entry in self.config.smtp_always_cc:
            self._add_configured(chosen, entry, 'always_cc',
                                 'cc' if self.config.use_public_cc else 'to')
        for entry in self.config.smtp_always_bcc:
            self._add_configured(chosen, entry, 'always_bcc', 'bcc')
        self._set_language_and_format(chosen)
        viewers: Dict[str, bool] = {}   # asked once per user and change
        return drop_suppressed(self.env, [r for r in chosen.values()
                                          if self._may_view(r, event,
                                                            viewers)])

    # Each person's own choices (Preferences -> Notifications)

    @lazy
    def choices(self) -> Dict[str, MailChoices]:
        """Choices of the users seen so far (filled by _apply_choices)."""
        return {}

    def _choices_for(self, sids) -> None:
        missing = [s for s in sids if s and s not in self.choices]
        if missing:
            self.choices.update(load_choices(self.env, self.config, missing))

    def _apply_choices(self, chosen: Dict[str, Recipient],
                       event: TicketEvent) -> None:
        """Drop whoever does not want this event (their chosen events, their
        own changes): this wins over ``always_notify_*`` forcing a role in.
        (A role forced out is brought back by the user's own Trac rule
        "Notify: ...", see _apply_forced_roles.)"""
        self._choices_for([r.sid for r in chosen.values()
                           if r.authenticated])
        defaults = site_defaults(self.env, self.config)
        for key, recipient in list(chosen.items()):
            if recipient.sid and recipient.authenticated:
                choices = self.choices.get(recipient.sid, defaults)
                me = (recipient.sid, recipient.address)
            else:
                choices, me = defaults, (recipient.address,)
            if not wants_mail(choices, event, me):
                self.log.debug('tracnotify: %s does not want %s mail of '
                               'ticket #%s', recipient.address, event.kind,
                               event.ticket_id)
                del chosen[key]

    def _set_language_and_format(self, chosen: Dict[str, Recipient]) -> None:
        self._choices_for([r.sid for r in chosen.values()
                           if r.authenticated])
        defaults = site_defaults(self.env, self.config)
        for key, recipient in chosen.items():
            choices = self.choices.get(recipient.sid, defaults) \
                if recipient.authenticated else defaults
            chosen[key] = replace(recipient, language=choices.language,
                                  format=choices.format)

    # Trac's subscriptions

    def _subscription_rules(self, tevent, event: TicketEvent) -> List[Rule]:
        rules: List[Rule] = []
        for subscriber in self.notify_sys.subscribers:
            name = subscriber.__class__.__name__
            if name in SKIPPED_SUBSCRIBERS:
                continue
            try:
                if name == PREVIOUS_UPDATERS:
                    matches = self._previous_updaters(subscriber, event)
                else:
                    matches = subscriber.matches(tevent)
                for m in matches or ():
                    if m and m[1] == 'email':
                        rules.append(Rule.of_match(m))
            except Exception as e:
                recover_aborted_read(self.env)
                self.log.warning('tracnotify: subscriber %s failed: %s',
                                 name, e)
        # the addresses Trac's matching drops: IDN domains, non-ASCII
        # local parts (see tracnotify.mail.intl_recipients)
        try:
            for m in international_rules(self.env, self.notify_sys.subscribers,
                                         tevent, self.matcher):
                if m and m[1] == 'email':
                    rules.append(Rule.of_match(m))
        except Exception as e:
            recover_aborted_read(self.env)
            self.log.warning('tracnotify: internationalised addresses of '
                             'ticket #%s not matched: %s', tevent.target.id, e)
        return rules

    def _previous_updaters(self, subscriber, event: TicketEvent):
        """Trac's ``TicketPreviousUpdatersSubscriber`` for the ticket as it
        was at the change: who updated it *before* then (Trac asks the
        history of today, which names later updaters too when the worker
        expands an older change, e.g. the creation)."""
        if event.kind == CREATED:
            return ()
        updaters = [author for author, in self.env.db_query("""
                SELECT DISTINCT author FROM ticket_change
                WHERE ticket=%s AND time<%s""", (event.ticket_id, event.time))
                    if author != event.author]
        return _ticket_change_subscribers(subscriber, updaters)

    def _user_rule(self, sid: str, auth: int, klass: str) -> Optional[str]:
        for s in Subscription.find_by_sid_and_distributor(self.env, sid, auth,
                                                          'email'):
            if s['class'] == klass:
                return s['adverb']
        return None

    def _apply_forced_roles(self, rules: List[Rule],
                            event: TicketEvent) -> List[Rule]:
        for role, forced in self.config.forced_roles.items():
            klass = ROLE_CLASSES[role]
            if forced:
                for candidate in self._role_candidates(role, event):
                    match = self.matcher.match_recipient(candidate)
                    if not match:
                        continue
                    sid, auth, addr = match
                    if sid and self._user_rule(sid, auth, klass) == 'never':
                        continue
                    rules.append(Rule(klass, 'email', sid, auth, addr, 100,
                                      'always'))
            else:
                rules = [r for r in rules if r.klass != klass or
                         (r.sid and self._user_rule(
                             r.sid, r.authenticated, klass) == 'always')]
        return rules

    @staticmethod
    def _role_candidates(role: str, event: TicketEvent) -> List[str]:
        if role == 'reporter':
            return [event.values.get('reporter') or '']
        if role == 'updater':
            return [event.author]
        owners = [event.values.get('owner') or '']
        if 'owner' in event.field_changes:
            owners.append(event.field_changes['owner']['old'] or '')
        return owners

    @staticmethod
    def _winning_rules(rules: Sequence[Rule]) -> Iterator[Rule]:
        """Trac's ranking: per (sid, authenticated) the rule of highest
        priority (lowest number) decides; address-only rules each count."""
        ordered = sorted(rules, key=lambda r: ('' if r.sid is None else r.sid,
                                               r.authenticated, r.priority))
        previous = None
        for rule in ordered:
            user = (rule.sid, rule.authenticated)
            if rule.sid and user == previous:
                continue
            if rule.adverb == 'always':
                yield rule
            if rule.sid:
                previous = user

    # Addresses

    def _address_for(self, sid: Optional[str], auth: int,
                     addr: Optional[str]) -> Optional[str]:
        if sid and not addr:
            for resolver in self._resolvers():
                addr = resolver.get_address_for_session(sid, auth) or None
                if addr:
                    break
            if auth and not addr:
                addr = sid
        if not addr:
            return None
        if self.matcher.nodomaddr_re.match(addr):
            if self.config.use_short_addr:
                return addr
            if self.config.smtp_default_domain:
                return '%s@%s' % (addr, self.config.smtp_default_domain)
            return None
        if self.matcher.is_email(addr):
            return addr
        return international_address(addr, self.matcher.ignore_domains)

    @lazy
    def _users_by_address(self) -> Dict[str, str]:
        users: Dict[str, str] = {}
        for username, _name, email in self.env.get_known_users():
            if email:
                users.setdefault(email.strip().lower(), username)
        return users

    def _resolvers(self):
        # imported here: the distributor (a Trac edge) imports the
        # listeners, which import the delivery service, which imports
        # this package
        from tracnotify.distributor import OutboxDistributor
        return OutboxDistributor(self.env).resolvers

    def _add(self, chosen: Dict[str, Recipient], sid, auth, addr,
             reason: str, visibility: Optional[str] = None) -> None:
        address = self._address_for(sid, auth, addr)
        if not address:
            self.log.info('tracnotify: no usable e-mail address for %r '
                          '(%s); skipped', sid or addr, reason)
            return
        try:
            address = normalize_address(address)   # IDN domain: punycode
            make_address(address, utf8=True)        # SMTPUTF8 local part
        except (AddressError, IDNError) as e:
            self.log.warning('tracnotify: %s (%s); skipped', e, reason)
            return
        key = address.lower()
        if not sid and key in self._users_by_address:
            # a user's own address typed in a field is still that user
            sid, auth = self._users_by_address[key], 1
        if visibility is None:
            visibility = 'to' if (reason in VISIBLE_AS_TO or
                                  not self.config.use_public_cc) else 'cc'
        new = Recipient(address, reason, visibility, sid, bool(auth))
        old = chosen.get(key)
        if old is not None:
            # one copy per address: a user outranks a bare address (its
            # permissions and role count), the most visible header wins
            if old.sid or not sid:
                new = old
            chosen[key] = replace(new, visibility=min(
                old.visibility, visibility, key=VISIBILITY_RANK.get))
            return
        chosen[key] = new

    def _add_configured(self, chosen, entry: str, reason: str,
                        visibility: str) -> None:
        match = self.matcher.match_recipient(entry) or \
            match_international(self.matcher, entry)
        if not match:
            self.log.warning('tracnotify: %s entry %r is not a usable '
                             'address; skipped', reason, entry)
            return
        sid, auth, addr = match
        self._add(chosen, sid, auth, addr, reason, visibility)

    # Permissions

    def _may_view(self, recipient: Recipient, event: TicketEvent,
                  viewers: Optional[Dict[str, bool]] = None) -> bool:
        """Whether *recipient* may see the ticket (TICKET_VIEW); *viewers*
        keeps the answers for the other copies of the change (most are
        anonymous: one question for all of them)."""
        if recipient.reason in ('always_cc', 'always_bcc') and \
                not recipient.sid:
            return True
        username = recipient.sid if recipient.sid and \
            recipient.authenticated else 'anonymous'
        allowed = None if viewers is None else viewers.get(username)
        if allowed is None:
            perm = PermissionCache(self.env, username,
                                   Resource('ticket', event.ticket_id))
            allowed = 'TICKET_VIEW' in perm
            if viewers is not None:
                viewers[username] = allowed
        if not allowed:
            self.log.info('tracnotify: %s (%s) may not view ticket #%s; '
                          'no mail', recipient.address, username,
                          event.ticket_id)
        return allowed
