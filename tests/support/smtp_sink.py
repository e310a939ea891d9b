"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, demo and benchmarks.

Modes: plain, STARTTLS, SMTPS (implicit TLS) and AUTH; it can delay its
answers, answer 4xx/5xx on demand, and records what it received.

Run standalone: ``python -m tests.support.smtp_sink --port 2525``.
"""

import argparse
import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: List[str]
    data: bytes
    peer: tuple = ()            # the client's (host, port): its connection
    at: float = 0.0             # time.monotonic() when DATA completed

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data,
                                        policy=email.policy.default)


@dataclass
class SinkHandler:
    """aiosmtpd handler that records messages and misbehaves on request."""

    delay: float = 0.0
    #: rcpt address -> reply string, e.g. '550 5.1.1 no such user'
    rcpt_replies: Dict[str, str] = field(default_factory=dict)
    #: replies for the next DATA commands, consumed one by one
    data_replies: List[str] = field(default_factory=list)
    received: List[Received] = field(default_factory=list)
    on_message: Optional[Callable[[Received], None]] = None
    keep: bool = True
    count: int = 0
    #: offer PIPELINING (RFC 2920) as Postfix does; aiosmtpd reads the
    #: commands of a group one by one anyway
    pipelining: bool = True

    def __post_init__(self):
        self.cond = threading.Condition()

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, '250-PIPELINING')
        return responses

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.data_replies:
            return self.data_replies.pop(0)
        item = Received(envelope.mail_from, list(envelope.rcpt_tos),
                        envelope.original_content or envelope.content,
                        tuple(session.peer or ()), time.monotonic())
        with self.cond:
            self.count += 1
            if self.keep:
                self.received.append(item)
            self.cond.notify_all()
        if self.on_message:
            self.on_message(item)
        return '250 Message accepted for delivery'


class SmtpSink:
    """A running aiosmtpd server; use as a context manager or start/stop."""

    def __init__(self, mode: str = 'plain', port: Optional[int] = None,
                 auth: Optional[tuple] = None, tls: Optional[tuple] = None,
                 handler: Optional[SinkHandler] = None,
                 smtputf8: bool = False) -> None:
        """*mode*: plain | starttls | smtps; *auth*: (user, password);
        *tls*: (certfile, keyfile) for starttls/smtps; *smtputf8*: offer
        SMTPUTF8 (RFC 6531)."""
        self.mode = mode
        self.port = port or free_port()
        self.handler = handler or SinkHandler()
        self.auth = auth
        self.auth_attempts = 0
        kwargs = {'enable_SMTPUTF8': smtputf8}
        if mode in ('starttls', 'smtps'):
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            if mode == 'starttls':
                kwargs['tls_context'] = context
                kwargs['require_starttls'] = True
            else:
                kwargs['ssl_context'] = context
        if auth:
            kwargs['authenticator'] = self._authenticate
            kwargs['auth_require_tls'] = False
            kwargs['auth_required'] = True
        self.controller = Controller(self.handler, hostname='127.0.0.1',
                                     port=self.port, ready_timeout=10,
                                     **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        self.auth_attempts += 1
        if isinstance(auth_data, LoginPassword) and self.auth and \
                auth_data.login.decode() == self.auth[0] and \
                auth_data.password.decode() == self.auth[1]:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    @property
    def received(self) -> List[Received]:
        return self.handler.received

    def wait_for(self, count: int, timeout: float = 10.0) -> List[Received]:
        """Wait until *count* messages arrived; return them."""
        deadline = time.monotonic() + timeout
        with self.handler.cond:
            while self.handler.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.handler.cond.wait(left)
        return list(self.handler.received)

    def start(self) -> 'SmtpSink':
        if self.mode == 'smtps':
            # aiosmtpd's readiness probe speaks plain TCP; wrap it for TLS
            self.controller._trigger_server = self._trigger_tls
        self.controller.start()
        return self

    def _trigger_tls(self):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(('127.0.0.1', self.port), 5) as raw:
            with context.wrap_socket(raw) as s:
                s.recv(1024)

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> 'SmtpSink':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=2525)
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args()

    def show(item: Received) -> None:
        if not args.quiet:
            print('=' * 72)
            print('MAIL FROM: %s  RCPT TO: %s' % (item.mail_from,
                                                   ', '.join(item.rcpt_tos)))
            print(item.data.decode('utf-8', 'replace'), flush=True)

    sink = SmtpSink(port=args.port,
                    handler=SinkHandler(on_message=show, keep=False))
    sink.start()
    print('SMTP sink listening on 127.0.0.1:%d' % sink.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()


if __name__ == '__main__':
    main()
