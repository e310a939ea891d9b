"""Transports are found through a registry: every module of
tracnotify/delivery/transports registers its kind, and a new kind is
chosen, configured and documented without touching any other file."""

from trac.config import Option
from trac.core import Component

from tests.support.tickets import create_ticket
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.transports import base
from tracnotify.delivery.transports.base import SendResult, Transport, TransportKind
from tracnotify.delivery.transports.options import (
    load_transport_options,
    option_components,
    transport_names,
)


def test_every_module_registers_its_transport():
    assert transport_names() == ('smtp', 'sendmail', 'directory', 'database',
                                 'console')


class _PigeonOptions(Component):
    """Options of a transport a test adds."""

    pigeon_loft = Option('notification', 'pigeon_loft', 'roof',
                         """Where the pigeons live. (tracnotify)""")


class _Pigeon(Transport):
    name = 'pigeon'

    def __init__(self, loft: str) -> None:
        self.loft = loft
        self.carried = []

    def send(self, messages):
        self.carried.extend(messages)
        return [SendResult.sent() for _m in messages]


def test_a_registered_transport_is_chosen_configured_and_used(
        make_env, monkeypatch):
    kind = TransportKind(
        'pigeon', 60, build=lambda loft, config, log: _Pigeon(loft),
        read=lambda env, errors: env.config.get('notification',
                                                'pigeon_loft'),
        component=_PigeonOptions)
    monkeypatch.setitem(base._kinds, 'pigeon', kind)
    assert transport_names()[-1] == 'pigeon'
    assert _PigeonOptions in option_components()
    env = make_env(mail_transport='pigeon', pigeon_loft='tower')
    settings = load_transport_options(env)
    assert (settings.name, settings.usable, settings.errors) == \
        ('pigeon', True, [])
    deliverer = Deliverer(env)
    assert isinstance(deliverer.transport, _Pigeon)
    assert deliverer.transport.loft == 'tower'
    create_ticket(env, reporter='someone@example.org')
    report = deliverer.run_once()
    assert not report.errors
    assert [m.recipient for m in deliverer.transport.carried] == \
        ['someone@example.org']
