"""The interface every transport implements."""

from dataclasses import dataclass
from typing import List, Sequence

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
