"""Web side of unsubscribing: the one-click handler and its admin panel.

Only proof of control of an address puts it on the never-mail list or takes
it off: a token that was mailed to it.

``/tracnotify/unsubscribe/TOKEN``
    GET shows a confirmation page with a button (link scanners that follow
    links do not unsubscribe anyone); POST with ``List-Unsubscribe=One-Click``
    in the body (RFC 8058, what mail clients send, and what the button
    sends) unsubscribes the address the token was made for.  No login and
    no Trac form token are needed on this one path: a mail client cannot
    send a form token, and the token in the URL is the proof; it can only
    ever (un)subscribe its own address.  A POST with an unknown or expired
    token answers 404 or 410 (mail providers read only the status), a GET
    the page that says so.

``/tracnotify/unsubscribe``
    The page the footer of every mail links to.  The address in a user's
    preferences is not verified, so a logged-in user's button does not act
    on it: it mails a link with a token to that address (through the
    outbox, :mod:`tracnotify.mail.confirmation`), and only that link stops
    (or resumes) the mail.  Everyone else is told about the Unsubscribe
    button of their mail program (the List-Unsubscribe header of each
    mail).

Administration > Notification > Unsubscribes lists every address that gets
no mail, lifts an entry, and adds addresses to the never-mail list.
"""
import re

from trac.admin.api import IAdminPanelProvider
from trac.core import Component, implements
from trac.util.datefmt import format_datetime, from_utimestamp
from trac.web.api import HTTPBadRequest, IRequestFilter, IRequestHandler
from trac.web.chrome import Chrome, add_notice, add_stylesheet, add_warning

from tracnotify.config import load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.i18n.domain import _
from tracnotify.i18n.language import default_language, normalize_language
from tracnotify.inbound import bounce_record
from tracnotify.mail import confirmation
from tracnotify.mail import suppression as unsubscribe
from tracnotify.mail.message import AddressError, make_address

TEMPLATE = 'tracnotify_unsubscribe.html'
ADMIN_TEMPLATE = 'tracnotify_admin_unsubscribe.html'
_token_path_re = re.compile(r'^/tracnotify/unsubscribe/([A-Za-z0-9_-]+)/?$')


class UnsubscribeModule(Component):
    """One-click unsubscribe (RFC 8058) and the unsubscribe page."""

    implements(IRequestFilter, IRequestHandler)

    # IRequestHandler methods

    def match_request(self, req):
        return req.path_info.rstrip('/') == '/tracnotify/unsubscribe' or \
            bool(_token_path_re.match(req.path_info))

    def process_request(self, req):
        match = _token_path_re.match(req.path_info)
        data = self._by_token(req, match.group(1)) if match else \
            self._by_login(req)
        data.setdefault('address', '')
        data['reason'] = unsubscribe.suppression(self.env, data['address']) \
            if data['address'] else None
        data['page_url'] = req.href(*unsubscribe.PAGE_PATH)
        add_stylesheet(req, 'tracnotify/admin.css')
        metadata = {'domain': 'tracnotify'}
        if match and req.method == 'POST' and data['state'] == 'invalid':
            # a mail provider's one-click POST reads only the status: a
            # link that did nothing must not look like a done unsubscribe
            status = 410 if data.get('expired') else 404
            content = Chrome(self.env).render_template(req, TEMPLATE, data,
                                                       metadata)
            req.send(content, 'text/html;charset=utf-8', status)
        return TEMPLATE, data, metadata

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        # The one exemption from Trac's form-token check: a POST to
        # /tracnotify/unsubscribe/TOKEN handled by this component.  The
        # token is the authentication; all it can do is (un)subscribe the
        # address it was made for.
        if handler is self and req.method == 'POST' and \
                _token_path_re.match(req.path_info):
            req.args['__FORM_TOKEN'] = req.form_token
        return handler

    def post_process_request(self, req, template, data, metadata):
        return template, data, metadata

    # Internal methods

    def _by_token(self, req, token: str) -> dict:
        state, address = unsubscribe.token_state(self.env, token)
        if state != unsubscribe.VALID or not address:
            return {'state': 'invalid',
                    'expired': state == unsubscribe.EXPIRED}
        data = {'state': 'confirm', 'address': address,
                'action_url': req.href(*unsubscribe.PAGE_PATH + (token,))}
        if req.method != 'POST':
            return data
        if req.args.get('List-Unsubscribe') == 'One-Click':
            unsubscribe.suppress(self.env, address, unsubscribe.UNSUBSCRIBED,
                                 author='one-click')
            data['state'] = 'done'
        elif req.args.get('action') == 'resubscribe':
            unsubscribe.unsuppress(self.env, address,
                                   only_reason=unsubscribe.UNSUBSCRIBED)
            data['state'] = 'resubscribed'
        else:
            raise HTTPBadRequest(_('Expected List-Unsubscribe=One-Click.'))
        return data

    def _by_login(self, req) -> dict:
        if not req.is_authenticated:
            return {'state': 'anonymous',
                    'login_url': req.href.login()}
        address = (req.session.get('email') or '').strip()
        if not address:
            return {'state': 'no_address',
                    'prefs_url': req.href.prefs()}
        data = {'state': 'account', 'address': address,
                'action_url': req.href(*unsubscribe.PAGE_PATH)}
        if req.method == 'POST':   # Trac has checked the form token
            action = req.args.get('action')
            if action in confirmation.ACTIONS:
                self._mail_link(req, address, action)
            req.redirect(req.href(*unsubscribe.PAGE_PATH))
        return data

    def _mail_link(self, req, address: str, action: str) -> None:
        """Mail *address* the link that does *action*: the address in the
        preferences is unverified, so nothing changes until its owner
        opens the link."""
        reason = unsubscribe.suppression(self.env, address)
        if reason == unsubscribe.ADMIN:
            return                  # the page says so; never mail it
        if (action == confirmation.UNSUBSCRIBE) == bool(reason):
            return                  # already as asked (a second tab)
        language = normalize_language(str(req.locale)) if req.locale \
            else None
        outcome = confirmation.request_confirmation(
            self.env, load_config(self.env), address, action, req.authname,
            language or default_language(self.env))
        if outcome == confirmation.SENT:
            DeliveryService(self.env).wake()
            add_notice(req, _('A link was mailed to %(address)s: open it to '
                              'confirm. Nothing changes until then.',
                              address=address))
        elif outcome == confirmation.LIMITED:
            add_warning(req, _('Several links were mailed to %(address)s in '
                               'the last hour: use one of them, or try '
                               'again later.', address=address))
        elif outcome == confirmation.CANNOT_SEND:
            add_warning(req, _('This Trac sends no mail at the moment: '
                               'nothing was changed.'))
        else:
            add_warning(req, _('%(address)s is not an e-mail address this '
                               'Trac can mail: change it in your '
                               'preferences.', address=address))


class UnsubscribeAdminPanel(Component):
    """Administration > Notification > Unsubscribes (``TRAC_ADMIN``)."""

    implements(IAdminPanelProvider)

    def get_admin_panels(self, req):
        if 'TRAC_ADMIN' in req.perm('admin', 'notification/unsubscribe'):
            yield ('notification', _('Notification'), 'unsubscribe',
                   _('Unsubscribes'))

    def render_admin_panel(self, req, cat, page, path_info):
        req.perm('admin', 'notification/unsubscribe').require('TRAC_ADMIN')
        if req.method == 'POST':
            if req.args.get('__FORM_TOKEN') != req.form_token:
                raise HTTPBadRequest(_('Missing or invalid form token. '
                                       'Do you have cookies enabled?'))
            self._action(req)
            req.redirect(req.href.admin('notification', 'unsubscribe'))
        add_stylesheet(req, 'tracnotify/admin.css')
        rows = [{'address': a, 'reason': r, 'author': au, 'note': n,
                 'when': format_datetime(from_utimestamp(c),
                                         '%Y-%m-%d %H:%M', tzinfo=req.tz)
                 if c else ''}
                for a, r, c, au, n in unsubscribe.list_suppressed(self.env)]
        return ADMIN_TEMPLATE, {
            'rows': rows, 'panel': 'unsubscribe',
            'reason_labels': {unsubscribe.UNSUBSCRIBED: _('unsubscribed'),
                              unsubscribe.ADMIN: _('never mail (admin)'),
                              unsubscribe.BOUNCED: _('bounced')},
        }, {'domain': 'tracnotify'}

    def _action(self, req) -> None:
        if 'add' in req.args:
            address = req.args.get('address', '').strip()
            try:
                make_address(address)
            except AddressError:
                add_warning(req, _('%(address)s is not an e-mail address.',
                                   address=address))
                return
            note = req.args.get('note', '').strip()[:200]
            unsubscribe.unsuppress(self.env, address)
            unsubscribe.suppress(self.env, address, unsubscribe.ADMIN,
                                 author=req.authname, note=note)
            add_notice(req, _('%(address)s will get no mail.',
                              address=unsubscribe.normalize(address)))
        elif 'remove' in req.args:
            selected = req.args.getlist('sel')
            if not selected:
                add_warning(req, _('No address selected.'))
                return
            bounced = unsubscribe.suppressed(self.env, selected)
            n = sum(unsubscribe.unsuppress(self.env, a) for a in selected)
            for address, reason in bounced.items():
                if reason == unsubscribe.BOUNCED:   # its bounces go too
                    bounce_record.reset(self.env, address)
            self.log.info('tracnotify: %s lifted unsubscribes of %s',
                          req.authname, ', '.join(selected))
            add_notice(req, _('%(n)d address(es) will get mail again.', n=n))
        else:
            raise HTTPBadRequest(_('Unknown action'))
