"""Ways of sending: one small class each, all with the same interface.

``transport.send(messages) -> [SendResult]``, one result per message, in
order.  A transport never raises for a delivery problem: it reports it.
"""

from tracnotify.transports.base import SendResult, Transport  # noqa: F401


def create_transport(config):
    """The transport that ``[notification]`` selects."""
    from tracnotify.transports.smtp import SmtpTransport
    return SmtpTransport(config)
