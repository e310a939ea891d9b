"""Who gets alerts: ``alert_to``, or the users with ``TRAC_ADMIN`` who
have an address; each in their own language."""

from dataclasses import dataclass
from typing import Dict, List

from trac.perm import PermissionSystem

from tracnotify.alerts.options import AlertSettings
from tracnotify.config import NotifyConfig
from tracnotify.i18n.language import default_language
from tracnotify.mail.choices import choices_from, session_attributes

ADMIN_PERMISSION = 'TRAC_ADMIN'


@dataclass(frozen=True)
class Admin:
    """One alert recipient: address, user name (if a user), language."""

    address: str
    sid: str = ''
    language: str = 'en'


def _users_by_address(env) -> Dict[str, str]:
    return {(email or '').strip().lower(): sid
            for sid, _name, email in env.get_known_users() if email}


def alert_recipients(env, config: NotifyConfig,
                     settings: AlertSettings) -> List[Admin]:
    """The admins that alerts go to (none with ``alert_to = log``)."""
    if settings.log_only:
        return []
    known = env.get_known_users(as_dict=True)
    pairs = []                       # (address, sid)
    if settings.to:
        by_address = _users_by_address(env)
        for item in settings.to:
            if '@' in item:
                pairs.append((item, by_address.get(item.lower(), '')))
            elif item in known and known[item][1]:
                pairs.append((known[item][1], item))
            else:
                env.log.warning('tracnotify: alert_to: %s is neither an '
                                'address nor a user with one; skipped', item)
    else:
        for sid in PermissionSystem(env).get_users_with_permission(
                ADMIN_PERMISSION):
            email = (known.get(sid) or ('', ''))[1]
            if email and '@' in email:
                pairs.append((email.strip(), sid))
    attrs = session_attributes(env, [sid for _a, sid in pairs if sid])
    fallback = default_language(env)
    admins, seen = [], set()
    for address, sid in pairs:
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        language = choices_from(env, config, attrs[sid]).language \
            if sid in attrs else fallback
        admins.append(Admin(address, sid, language))
    return admins
