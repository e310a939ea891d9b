"""The settings form of the admin panel, as plain Python.

:func:`build_fields` describes every ``[notification]`` option tracnotify
reads (with its docstring), :func:`parse_form` reads a submitted form,
:func:`validate` runs the very rules of :func:`tracnotify.config.load_config`
on the submitted values (plus address checks), :func:`check_stored` runs
them on the stored values (for ``notify status``), and :func:`apply` writes
what changed.  The stored SMTP password never leaves this module: an empty
password field means "keep it".
"""

import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from trac.config import BoolOption, ChoiceOption, IntOption, Option
from trac.core import ComponentMeta

from tracnotify.config import MIME_ENCODINGS, ROLE_OPTIONS, SECTION, load_config
from tracnotify.delivery.transports.options import (
    load_transport_options,
    transport_names,
)
from tracnotify.i18n.domain import N_
from tracnotify.inbound.fetch import load_fetch_settings
from tracnotify.mail.message import AddressError, make_address

PASSWORD = 'smtp_password'
CLEAR_PASSWORD = 'smtp_password_clear'
#: write-only options; ``<name>_clear`` in a form clears the stored one
PASSWORDS = (PASSWORD, 'imap_password')

GROUPS: List[Tuple[str, List[str]]] = [
    (N_('SMTP server'), ['smtp_enabled', 'smtp_server', 'smtp_port',
                         'use_tls', 'smtp_use_ssl', 'smtp_ssl_cafile',
                         'smtp_user', PASSWORD, 'smtp_timeout']),
    (N_('Sender'), ['smtp_from', 'smtp_from_name', 'smtp_replyto',
                    'smtp_from_author', 'smtp_from_author_name',
                    'smtp_subject_prefix']),
    (N_('Recipients'), ['smtp_default_domain', 'use_short_addr',
                        'smtp_always_cc', 'smtp_always_bcc', 'use_public_cc',
                        'ignore_domains', 'admit_domains'] +
     list(ROLE_OPTIONS)),
    (N_('Message'), ['mime_encoding']),
    (N_('Outgoing method'), ['mail_transport', 'sendmail_path',
                             'sendmail_args', 'sendmail_recipients',
                             'sendmail_timeout', 'mail_directory',
                             'mail_database', 'console_output']),
    (N_('Delivery'), ['delivery', 'outbox_max_attempts',
                      'outbox_retry_delay', 'outbox_poll_interval',
                      'outbox_batch_size', 'outbox_lease_seconds',
                      'smtp_connections', 'smtp_burst',
                      'smtp_burst_pause']),
]
OTHER_GROUP = N_('Other tracnotify options')
ADDRESS_OPTIONS = ('smtp_from', 'smtp_replyto')
ADDRESS_LIST_OPTIONS = ('smtp_always_cc', 'smtp_always_bcc')
_TRUE = ('yes', 'true', 'on', '1', 'enabled')


@dataclass
class Field:
    """One option on the form."""

    name: str
    kind: str                    # text | int | bool | tristate | choice | password
    doc: str = ''
    default: str = ''
    value: str = ''              # what the form shows ('' for the password)
    choices: Tuple[str, ...] = ()
    error: str = ''
    is_set: bool = False         # password: one is stored


@dataclass
class Group:
    """A fieldset of the form."""

    label: str
    fields: List[Field] = field(default_factory=list)


def tracnotify_option_names() -> List[str]:
    """``[notification]`` options declared by tracnotify's own components."""
    names = []
    for cls in ComponentMeta._components:
        if not cls.__module__.startswith('tracnotify'):
            continue
        for value in vars(cls).values():
            if isinstance(value, Option) and value.section == SECTION:
                names.append(value.name)
    return sorted(set(names))


def _registry(name: str) -> Optional[Option]:
    return Option.registry.get((SECTION, name))


def _kind(name: str, option: Optional[Option]) -> Tuple[str, Tuple[str, ...]]:
    if name in PASSWORDS:
        return 'password', ()
    if name in ROLE_OPTIONS:
        return 'tristate', ('', 'true', 'false')
    if name == 'mail_transport':
        return 'choice', ('',) + transport_names()
    if name == 'mime_encoding':
        return 'choice', tuple(e for e in MIME_ENCODINGS
                               if e != 'quoted-printable')
    if isinstance(option, BoolOption):
        return 'bool', ()
    if isinstance(option, IntOption):
        return 'int', ()
    if isinstance(option, ChoiceOption):
        return 'choice', tuple(sorted(option.choices))
    return 'text', ()


def current_value(config, name: str, kind: str) -> str:
    """The value the form shows for *name* (never the password)."""
    if kind == 'password':
        return ''
    if kind == 'tristate':
        if not config.has_option(SECTION, name, defaults=False):
            return ''
        return 'true' if config.getbool(SECTION, name) else 'false'
    if kind == 'bool':
        return 'true' if config.getbool(SECTION, name) else 'false'
    value = config.get(SECTION, name)
    if kind == 'choice':
        value = value.strip().lower()
        return 'qp' if value == 'quoted-printable' else value
    return value


def build_fields(config) -> List[Group]:
    """The form's fieldsets with the current values of *config*."""
    groups = [Group(label, []) for label, _names in GROUPS]
    listed = {n for _label, names in GROUPS for n in names}
    extra = [n for n in tracnotify_option_names() if n not in listed]
    if extra:
        groups.append(Group(OTHER_GROUP, []))
    names_per_group = [names for _label, names in GROUPS] + \
        ([extra] if extra else [])
    for group, names in zip(groups, names_per_group):
        for name in names:
            option = _registry(name)
            if option is None:
                continue
            kind, choices = _kind(name, option)
            group.fields.append(Field(
                name=name, kind=kind, choices=choices,
                doc=option.doc if option else '',
                default=str(option.default) if option else '',
                value=current_value(config, name, kind),
                is_set=bool(config.get(SECTION, name))
                if kind == 'password' else False))
    return groups


def all_fields(groups: List[Group]) -> Dict[str, Field]:
    """name -> field."""
    return {f.name: f for g in groups for f in g.fields}


def parse_form(groups: List[Group], args: Mapping) -> Dict[str, Optional[str]]:
    """Submitted values; ``None`` means "remove from trac.ini" (tri-state
    options left unset) and a missing password key means "keep"."""
    values: Dict[str, Optional[str]] = {}
    for f in all_fields(groups).values():
        raw = args.get(f.name)
        if isinstance(raw, list):
            raw = raw[-1] if raw else None
        if f.kind == 'bool':
            values[f.name] = 'true' if raw and str(raw).lower() in _TRUE \
                else 'false'
        elif f.kind == 'tristate':
            raw = (raw or '').strip().lower()
            values[f.name] = raw if raw in ('true', 'false') else None
        elif f.kind == 'password':
            if args.get(f.name + '_clear'):
                values[f.name] = ''
            elif raw:
                values[f.name] = raw
        else:
            values[f.name] = (raw or '').strip()
    return values


class _Overlay:
    """A read-only config: the submitted values over the stored ones."""

    def __init__(self, config, values: Mapping[str, Optional[str]]) -> None:
        self._config = config
        self._values = values

    def get(self, section, name, default=''):
        if section == SECTION and name in self._values:
            value = self._values[name]
            if value is not None:
                return value
            option = _registry(name)
            return option.default if option else default
        return self._config.get(section, name, default)

    def has_option(self, section, name, defaults=True):
        if section == SECTION and name in self._values:
            return self._values[name] is not None or \
                (defaults and _registry(name) is not None)
        return self._config.has_option(section, name, defaults)


class _EnvView:
    """Just enough of an Environment for the config loaders."""

    def __init__(self, config, path: str = '') -> None:
        self.config = config
        self.path = path


_error_re = re.compile(r'^\[notification\] (\w+)')
_suffix_re = re.compile(r'; (using|ignored).*$')


def _field_for(error: str, names) -> Optional[str]:
    if 'smtp_use_ssl' in error and 'use_tls' in error:
        return 'smtp_use_ssl'
    if 'neither smtp_from nor smtp_replyto' in error:
        return 'smtp_from'
    match = _error_re.match(error)
    if match and match.group(1) in names:
        return match.group(1)
    return None


def validate(groups: List[Group], config,
             values: Mapping[str, Optional[str]], env_path: str = ''
             ) -> List[str]:
    """Check *values*; errors go on the fields, the rest (e.g. ``[trac]
    base_url`` unset) is returned as warnings that do not block saving."""
    fields = all_fields(groups)
    warnings = []
    view = _EnvView(_Overlay(config, values), env_path)
    errors = load_config(view).errors + \
        load_transport_options(view).errors + load_fetch_settings(view).errors
    for error in errors:
        name = _field_for(error, fields)
        if name:
            message = _suffix_re.sub('', error)
            fields[name].error = fields[name].error or \
                message.replace('[notification] ', '', 1)
        else:
            warnings.append(error)
    for name, f in fields.items():
        value = values.get(name)
        if f.error or not value:
            continue
        if f.kind == 'int':
            try:
                int(value)
            except ValueError:
                f.error = '%s = %r is not a whole number' % (name, value)
        elif f.kind == 'choice' and value.lower() not in f.choices + \
                (('quoted-printable',) if name == 'mime_encoding' else ()):
            f.error = '%s = %r is not one of %s' % (name, value,
                                                    ', '.join(f.choices))
        elif name in ADDRESS_OPTIONS:
            f.error = _address_error(name, [value])
        elif name in ADDRESS_LIST_OPTIONS:
            f.error = _address_error(name, re.split(r'[,\s]+', value))
    for name, value in values.items():
        if name in fields:
            fields[name].value = '' if fields[name].kind == 'password' \
                else (value or '')
    return warnings


def _address_error(name: str, addresses: List[str]) -> str:
    for address in addresses:
        if not address:
            continue
        try:
            make_address(address)
        except AddressError as e:
            return '%s: %s' % (name, e)
    return ''


def has_errors(groups: List[Group]) -> bool:
    return any(f.error for g in groups for f in g.fields)


def stored_values(groups: List[Group]) -> Dict[str, Optional[str]]:
    """The values *groups* show, as :func:`parse_form` would read them back
    from an unchanged form (the stored password is kept)."""
    values: Dict[str, Optional[str]] = {}
    for f in all_fields(groups).values():
        if f.kind == 'password':
            continue
        value = (f.value or '').strip()
        values[f.name] = (value or None) if f.kind == 'tristate' else value
    return values


def check_stored(config, env_path: str = ''
                 ) -> Tuple[Dict[str, str], List[str]]:
    """What the settings page says about the values stored in *config*:
    ``(errors, warnings)``.  *errors* maps each option whose value it would
    refuse to save to one line (``[notification] name ...``); warnings do
    not block saving (e.g. ``[trac] base_url`` unset).  ``notify status``
    uses it."""
    groups = build_fields(config)
    warnings = validate(groups, config, stored_values(groups), env_path)
    errors = {f.name: '[%s] %s' % (SECTION, f.error)
              for f in all_fields(groups).values() if f.error}
    return errors, warnings


def apply(groups: List[Group], config,
          values: Mapping[str, Optional[str]]) -> List[str]:
    """Write the values that differ from *config*; returns their names.
    The caller saves the configuration."""
    changed = []
    for name, f in all_fields(groups).items():
        if name not in values:
            continue                      # password left empty: keep it
        value = values[name]
        if f.kind == 'password':
            if value != config.get(SECTION, name):
                config.set(SECTION, name, value)
                changed.append(name)
        elif value is None:
            if config.has_option(SECTION, name, defaults=False):
                config.remove(SECTION, name)
                changed.append(name)
        elif value != current_value(config, name, f.kind):
            config.set(SECTION, name, value)
            changed.append(name)
    return changed
