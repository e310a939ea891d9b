"""Preferences -> Notifications: each user's ticket mail choices.

No page of its own: a *child panel* of Trac 1.6's own Notifications panel
(``get_preference_panels`` yields ``(name, label, 'notification')``), which
Trac renders inside that page, below its subscription rules, in the same
form and with the same "Save changes" button.  Which roles (reporter, owner,
cc, previous updater...) mail a user stays with Trac's own subscription rules
just above; this section adds the events, own changes, format, delivery and
language (see :mod:`tracnotify.userprefs` for what each means).

Trac renders child panels before the parent panel, so on a POST the choices
are stored here first, then Trac's panel stores its rules and redirects.
"""

from pkg_resources import resource_filename
from trac.core import Component, implements
from trac.prefs.api import IPreferencePanelProvider
from trac.util.translation import domain_functions, functions
from trac.web.chrome import ITemplateProvider

from tracnotify.config import MAIL_DELIVERIES, MAIL_EVENTS, MAIL_FORMATS, load_config
from tracnotify.i18n.domain import N_, _
from tracnotify.i18n.language import available_languages
from tracnotify.mail.choices import (  # noqa: F401  (delivery_choice: API)
    NAMES,
    PREFIX,
    TRAC_FORMAT,
    TRAC_LANGUAGE,
    choices_from,
    delivery_choice,
    site_defaults,
)
from tracnotify.web.bounces import preferences_notice

PANEL = 'tracnotify'
PARENT = 'notification'
FORM_MARKER = 'tracnotify_prefs'

EVENT_LABELS = {
    'created': N_('A ticket is created'),
    'changed': N_('A ticket is changed'),
    'commented': N_('A comment is added or edited'),
    'closed': N_('A ticket is closed'),
    'reassigned': N_('A ticket is reassigned to me'),
}
FORMAT_LABELS = {
    'text': N_('Plain text'),
    'html': N_('HTML'),
    'both': N_('HTML with a plain text version'),
}
DELIVERY_LABELS = {
    'now': N_('Immediately, one mail per change'),
    'digest': N_('Once a day, in a digest'),
}
LANGUAGE_LABELS = {'en': 'English', 'de': 'Deutsch', 'fr': 'Français'}


class TicketMailPreferences(Component):
    """Ticket mail choices, inside Preferences -> Notifications."""

    implements(IPreferencePanelProvider, ITemplateProvider)

    # IPreferencePanelProvider methods

    def get_preference_panels(self, req):
        if req.is_authenticated:
            yield PANEL, _('Ticket mail'), PARENT

    def render_preference_panel(self, req, panel, path_info=None):
        if req.args.get('panel_id') == PANEL:
            # a child panel is no page of its own: Trac's page shows it
            req.redirect(req.href.prefs(PARENT))
        if req.method == 'POST' and req.args.get(FORM_MARKER):
            self.save(req)
        data = self.data(req)
        symbols = list(functions)
        data.update(zip(symbols, domain_functions('tracnotify', symbols)))
        return 'tracnotify_prefs.html', data

    # ITemplateProvider methods

    def get_htdocs_dirs(self):
        return []

    def get_templates_dirs(self):
        return [resource_filename('tracnotify', 'templates/web')]

    # Internal methods

    def _session_attrs(self, req):
        names = [PREFIX + n for n in NAMES]
        names += [TRAC_LANGUAGE, TRAC_FORMAT]
        return {n: req.session[n] for n in names if n in req.session}

    def data(self, req) -> dict:
        config = load_config(self.env)
        defaults = site_defaults(self.env, config)
        choices = choices_from(self.env, config, self._session_attrs(req))
        session = req.session
        return {
            'tracnotify': {
                'events': [(e, _(EVENT_LABELS[e]), e in choices.events)
                           for e in MAIL_EVENTS],
                'own_changes': choices.own_changes,
                'announcements': choices.announcements,
                'formats': [(f, _(FORMAT_LABELS[f])) for f in MAIL_FORMATS],
                'format': session.get(PREFIX + 'format', ''),
                'default_format': _(FORMAT_LABELS[choices_from(
                    self.env, config, {TRAC_FORMAT: session.get(
                        TRAC_FORMAT, '')}).format]),
                'deliveries': [(d, _(DELIVERY_LABELS[d]))
                               for d in MAIL_DELIVERIES],
                'delivery': session.get(PREFIX + 'delivery', ''),
                'default_delivery': _(DELIVERY_LABELS[defaults.delivery]),
                'languages': [(lang, LANGUAGE_LABELS.get(lang, lang))
                              for lang in available_languages()],
                'language': session.get(PREFIX + 'language', ''),
                'default_language': LANGUAGE_LABELS.get(
                    choices_from(self.env, config, {
                        TRAC_LANGUAGE: session.get(TRAC_LANGUAGE, '')
                    }).language),
                'marker': FORM_MARKER,
                'bouncing': preferences_notice(self.env,
                                               session.get('email')),
            },
        }

    def save(self, req) -> None:
        """Store the choices of the form in the session.  A choice equal
        to the site default is not stored: when the admin changes the
        default, it follows."""
        config = load_config(self.env)
        defaults = site_defaults(self.env, config)
        session = req.session
        events = [e for e in MAIL_EVENTS
                  if e in req.args.getlist('tracnotify_events')]
        self._store(session, 'events', ','.join(events),
                    set(events) == set(defaults.events))
        own = '1' if req.args.get('tracnotify_own_changes') else '0'
        self._store(session, 'own_changes', own,
                    (own == '1') == defaults.own_changes)
        # announcements: received unless the box is left unticked
        wants = bool(req.args.get('tracnotify_announcements'))
        self._store(session, 'announcements', '0', wants)
        for name, allowed in (('format', MAIL_FORMATS),
                              ('delivery', MAIL_DELIVERIES),
                              ('language', available_languages())):
            value = req.args.get('tracnotify_' + name, '')
            self._store(session, name, value,
                        value == '' or value not in allowed)

    @staticmethod
    def _store(session, name: str, value: str, is_default: bool) -> None:
        if is_default:
            if PREFIX + name in session:
                del session[PREFIX + name]
        else:
            session[PREFIX + name] = value
