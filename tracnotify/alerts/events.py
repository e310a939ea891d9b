"""The optional notices of ``alert_events``: an account was registered
(``user_created``), a permission was granted or revoked
(``permission_changed``).

These are not failures: they go through the outbox like other mail (to
the alert recipients, ``X-Trac-Notification-Type: alert_event``), and a
log line each.

* Trac 1.6 itself has no event for a new user (accounts come from the web
  server or a plugin); with AccountManager installed its
  ``IAccountChangeListener.user_created`` is used.
* Trac 1.6 has no permission change listener either: every grant and
  revoke, from the admin panel, ``trac-admin ENV permission add/remove`` or
  a plugin, goes through ``PermissionSystem.grant_permission`` /
  ``revoke_permission``, which :class:`PermissionChangeWatch` wraps on the
  environment's instance once it is loaded (by the first request or
  ``trac-admin`` command).
"""

import getpass
import threading
from typing import Optional

from trac.admin.api import IAdminCommandProvider
from trac.core import Component, implements
from trac.perm import PermissionSystem
from trac.util.text import exception_to_unicode
from trac.web.api import IRequestFilter

from tracnotify import outbox
from tracnotify.alerts.mail import EVENT, build_all
from tracnotify.alerts.options import (
    PERMISSION_CHANGED,
    USER_CREATED,
    load_alert_settings,
)
from tracnotify.alerts.recipients import alert_recipients
from tracnotify.config import load_config
from tracnotify.i18n.domain import _

_actor = threading.local()


def current_actor() -> str:
    """Who is acting: the logged-in user of this thread's request, else
    the operating-system user of a command (``trac-admin``)."""
    name = getattr(_actor, 'name', None)
    if name:
        return name
    try:
        return 'trac-admin (%s)' % getpass.getuser()
    except Exception:
        return 'trac-admin'


def tell_admins(env, event: str, render) -> int:
    """Queue a notice of *event* to the alert recipients if
    ``alert_events`` names it; *render()* gives ``(title, body)`` in the
    active language.  Returns how many were queued; never raises."""
    try:
        settings = load_alert_settings(env)
        if event not in settings.events:
            return 0
        config = load_config(env)
        title, body = render()
        env.log.warning('tracnotify: alert event %s: %s: %s', event, title,
                        ' | '.join(line for line in body.splitlines()
                                   if line.strip()))
        if not config.can_send:
            return 0
        admins = alert_recipients(env, config, settings)
        messages = build_all(env, config, EVENT, admins, render)
        outbox.add_messages(env, [outbox.NewMessage(
            ticket=0, kind=EVENT, msgid=m.msgid, sender=m.sender,
            recipient=m.recipient, reason=m.reason, subject=m.subject,
            message=m.message) for m in messages])
        if messages:
            from tracnotify.delivery.service import DeliveryService
            DeliveryService(env).wake()
        return len(messages)
    except Exception as e:
        env.log.error('tracnotify: cannot tell the admins about %s: %s',
                      event, exception_to_unicode(e, traceback=True))
        return 0


def permission_text(env, granted: bool, subject: str, action: str,
                    actor: str):
    """``(title, body)`` of a permission notice."""
    if granted:
        title = _('Permission granted: %(action)s to %(subject)s',
                  action=action, subject=subject)
    else:
        title = _('Permission revoked: %(action)s from %(subject)s',
                  action=action, subject=subject)
    body = _('%(actor)s changed the permissions of %(project)s.',
             actor=actor, project=env.project_name)
    return str(title), '\n'.join([str(body), '', env.abs_href.admin(
        'general', 'perm')])


def account_text(env, user: str):
    """``(title, body)`` of a new account notice."""
    title = _('New user: %(user)s', user=user)
    body = _('The account %(user)s was registered at %(project)s.',
             user=user, project=env.project_name)
    return str(title), '\n'.join([str(body), '', env.abs_href.admin(
        'accounts', 'users')])


class PermissionChangeWatch(Component):
    """Tells the admins of permission changes (``alert_events =
    permission_changed``): wraps the grant and revoke of the environment's
    ``PermissionSystem`` once a request or a ``trac-admin`` command loads
    this component."""

    implements(IRequestFilter, IAdminCommandProvider)

    def __init__(self) -> None:
        self._wrap(PermissionSystem(self.env))

    def _wrap(self, perm: PermissionSystem) -> None:
        if getattr(perm, '_tracnotify_watched', False):
            return
        perm._tracnotify_watched = True
        env = self.env
        grant, revoke = perm.grant_permission, perm.revoke_permission

        def told(granted: bool, subject: str, action: str) -> None:
            actor = current_actor()
            tell_admins(env, PERMISSION_CHANGED, lambda: permission_text(
                env, granted, subject, action, actor))

        def grant_permission(username, action):
            result = grant(username, action)
            told(True, username, action)
            return result

        def revoke_permission(username, action):
            result = revoke(username, action)
            told(False, username, action)
            return result

        grant_permission.__doc__ = grant.__doc__
        revoke_permission.__doc__ = revoke.__doc__
        perm.grant_permission = grant_permission
        perm.revoke_permission = revoke_permission

    # IRequestFilter methods: who acts

    def pre_process_request(self, req, handler):
        _actor.name = req.authname
        return handler

    def post_process_request(self, req, template, data, metadata):
        _actor.name = None
        return template, data, metadata

    # IAdminCommandProvider methods (none: loaded by trac-admin)

    def get_admin_commands(self):
        return []


IAccountChangeListener: Optional[type]
try:
    from acct_mgr.api import IAccountChangeListener
except ImportError:         # AccountManager is not installed
    IAccountChangeListener = None

if IAccountChangeListener is not None:
    class AccountAlerts(Component):
        """Tells the admins of new accounts (``alert_events =
        user_created``), with AccountManager."""

        implements(IAccountChangeListener)

        def user_created(self, user, password):
            tell_admins(self.env, USER_CREATED,
                        lambda: account_text(self.env, user))

        def user_id_changed(self, old_uid, new_uid):
            pass

        def user_password_changed(self, user, password):
            pass

        def user_deleted(self, user):
            pass

        def user_password_reset(self, user, email, password):
            pass

        def user_email_verification_requested(self, user, token):
            pass

        def user_registration_approval_required(self, user):
            pass
