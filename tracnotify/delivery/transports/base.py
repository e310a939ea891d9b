"""The interface every transport implements, and the registry of them."""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from tracnotify.outbox import OutgoingMessage


@dataclass
class SendResult:
    """Outcome of one message: sent, or an error (temporary or not)."""

    ok: bool
    error: str = ''
    permanent: bool = False

    @classmethod
    def sent(cls) -> 'SendResult':
        return cls(True)

    @classmethod
    def retry(cls, error: str) -> 'SendResult':
        return cls(False, error, False)

    @classmethod
    def dead(cls, error: str) -> 'SendResult':
        return cls(False, error, True)


class Transport:
    """Base class: send a batch of messages, report each outcome."""

    name = 'base'

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        raise NotImplementedError

    def describe(self) -> str:
        """A short description for logs and the admin panel."""
        return self.name

    def close(self) -> None:
        """Release connections; the transport may be used again later."""


# The registry ------------------------------------------------------------------
#
# Each transport module registers its kind when it is imported (the package
# imports every module in it): adding a way of sending is adding a module.

@dataclass(frozen=True)
class TransportKind:
    """One way of sending, as its module registers it."""

    name: str                         # the mail_transport value
    #: its place in lists (the admin's choice, error messages)
    rank: int
    #: ``build(options, config, log) -> Transport``: *options* is what
    #: *read* returned, *config* the NotifyConfig
    build: Callable[[Any, Any, Any], Transport]
    #: ``read(env, errors) -> options``: its own options, validated (a bad
    #: value named in *errors*); None when it cannot work as configured
    read: Optional[Callable[[Any, List[str]], Any]] = None
    #: the Component that declares its options (documented on TracIni)
    component: Optional[type] = None
    #: read only when it is the one chosen (its errors stop the sending)
    read_when_chosen: bool = False


_kinds: Dict[str, TransportKind] = {}


def register(kind: TransportKind) -> TransportKind:
    """Make *kind* known by its name (a module calls this on import)."""
    _kinds[kind.name] = kind
    return kind


def registered() -> List[TransportKind]:
    """Every registered way of sending, in rank order."""
    return sorted(_kinds.values(), key=lambda k: (k.rank, k.name))


def kind_named(name: str) -> Optional[TransportKind]:
    """The way of sending called *name*, if one is registered."""
    return _kinds.get(name)
