"""The check after each delivery pass: decide, remember, send.

:func:`check_delivery` is the one call the delivery pass makes
(:meth:`tracnotify.delivery.deliverer.Deliverer.run_once`).  It looks at
the outbox at most every few seconds per process, and sends

* an ``alert`` when mail has waited ``alert_after`` with nothing delivered,
  when messages went dead, or for the configuration errors this process
  found at its start; never two within ``alert_interval`` (a failing that
  goes on is repeated after it);
* an ``alert_recovered`` mail, at once, when mail is delivered again after
  an alert said it was failing.
"""

import hashlib
import threading
import time
import weakref
from typing import Callable, Dict, List, Tuple

from trac.util.text import exception_to_unicode

from tracnotify.alerts import state as rows
from tracnotify.alerts.detect import delivered_since, look, stalled
from tracnotify.alerts.mail import (
    ALERT,
    RECOVERED,
    Problems,
    alert_text,
    build_all,
    recovered_text,
)
from tracnotify.alerts.options import AlertSettings, load_alert_settings
from tracnotify.alerts.recipients import alert_recipients
from tracnotify.alerts.send import log_alert, send_alert_mail
from tracnotify.config import NotifyConfig
from tracnotify.outbox import now_us

#: seconds between two looks at the outbox by one process, at most (less
#: for a short ``alert_after`` or ``alert_interval``)
CHECK_SECONDS = 10.0
MIN_CHECK_SECONDS = 0.2

_lock = threading.Lock()
_last_check: Dict[str, float] = {}
#: environment object -> the configuration errors it found at its start
#: that no alert reported yet
_startup_errors: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()
#: environment objects whose configuration was looked at
_seen: 'weakref.WeakSet' = weakref.WeakSet()


def check_delivery(env, config: NotifyConfig) -> None:
    """After a delivery pass: alert the admins if delivery is failing, or
    that it works again.  Never raises."""
    try:
        settings = load_alert_settings(env)
        _note_startup_errors(env, config, settings)
        if not _due(env, settings):
            return
        Monitor(env, config, settings).check()
    except Exception as e:
        env.log.error('tracnotify: the delivery check for admin alerts '
                      'failed: %s', exception_to_unicode(e, traceback=True))


def _due(env, settings: AlertSettings) -> bool:
    """Whether this process should look again now."""
    every = min(CHECK_SECONDS, settings.interval / 4)
    if settings.after:
        every = min(every, settings.after / 4)
    every = max(every, MIN_CHECK_SECONDS)
    key = env.path
    now = time.monotonic()
    with _lock:
        if now - _last_check.get(key, -every) < every:
            return False
        _last_check[key] = now
    return True


def configuration_errors(env, config: NotifyConfig,
                         settings: AlertSettings) -> List[str]:
    """What ``notify status`` lists: the ``[notification]`` values that are
    wrong (config.py, the transports, the settings page), the alerts'."""
    from tracnotify.delivery.transports import load_transport_options
    from tracnotify.web.settings_form import check_stored
    errors = list(config.errors) + load_transport_options(env).errors
    try:
        refused, warnings = check_stored(env.config, env.path)
        errors += list(refused.values()) + list(warnings)
    except Exception as e:
        errors.append('the settings check failed: %s'
                      % exception_to_unicode(e))
    errors += settings.errors
    unique: List[str] = []
    for error in errors:
        if error not in unique:
            unique.append(error)
    return unique


def _note_startup_errors(env, config: NotifyConfig,
                         settings: AlertSettings) -> None:
    with _lock:
        if env in _seen:
            return
        _seen.add(env)
    errors = configuration_errors(env, config, settings)
    with _lock:
        if errors:
            _startup_errors[env] = errors


def fingerprint(errors: List[str]) -> str:
    """The same errors give the same row value."""
    return hashlib.sha1('\n'.join(sorted(errors)).encode('utf-8')
                        ).hexdigest()


class Monitor:
    """One look at the outbox and the alert rows."""

    def __init__(self, env, config: NotifyConfig,
                 settings: AlertSettings) -> None:
        self.env = env
        self.config = config
        self.settings = settings

    def check(self) -> None:
        env = self.env
        saved = rows.read_state(env)
        now = now_us()
        health = look(env, now, rows.as_int(saved[rows.DEAD_MARK]))
        opened = saved[rows.OPEN_SINCE]
        open_since = rows.as_int(opened)
        if open_since and delivered_since(health, open_since):
            if not rows.swap(env, rows.OPEN_SINCE, opened, ''):
                return              # another process says it
            self.send(RECOVERED,
                      lambda: recovered_text(env, health, open_since))
            opened, open_since = '', 0
        problems = Problems(health=health)
        problems.stalled = stalled(health, int(self.settings.after * 1e6))
        with _lock:
            errors = _startup_errors.get(env) or []
        if errors and fingerprint(errors) == saved[rows.CONFIG]:
            self._forget_startup_errors(errors)
            errors = []
        problems.config_errors = errors
        if not problems:
            return
        last = rows.as_int(saved[rows.LAST_SENT])
        if last and now - last < self.settings.interval * 1e6:
            return                  # one alert per interval at most
        marks = {}
        if problems.stalled and not open_since:
            marks[rows.OPEN_SINCE] = (opened, str(now))
        if problems.dead:
            marks[rows.DEAD_MARK] = (saved[rows.DEAD_MARK],
                                     str(health.dead_until))
        if errors:
            marks[rows.CONFIG] = (saved[rows.CONFIG], fingerprint(errors))
        if not rows.claim(env, rows.LAST_SENT, saved[rows.LAST_SENT],
                          str(now), marks):
            return                  # another process sends this one
        if errors:
            self._forget_startup_errors(errors)
        interval = int(self.settings.interval * 1e6)
        self.send(ALERT, lambda: alert_text(env, problems, interval))

    def _forget_startup_errors(self, errors: List[str]) -> None:
        with _lock:
            if _startup_errors.get(self.env) == errors:
                del _startup_errors[self.env]

    def send(self, kind: str, render: Callable[[], Tuple[str, str]]) -> None:
        """Log the alert (in the site's language) and mail it to each
        admin in theirs."""
        env = self.env
        title, body = render()
        log_alert(env, kind, title, body)
        if not self.config.can_send:
            return
        admins = alert_recipients(env, self.config, self.settings)
        messages = build_all(env, self.config, kind, admins, render)
        send_alert_mail(env, self.config, self.settings, messages)
