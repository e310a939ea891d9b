"""A lean SMTP sink for benchmarks: asyncio protocol, counts and discards.

Much cheaper per message than aiosmtpd, so that it is not what limits the
throughput benchmark (``python -m bench.fast_sink --selftest`` says what it
sustains on its own).  ``--delay`` holds each DATA reply (slow server);
a negative delay makes a server that accepts connections and never answers
(e.g. an SMTPS port that a client speaks plain SMTP to).

    python -m bench.fast_sink --port 2526 [--delay 0.2]
"""

import argparse
import asyncio
import os
import signal
import smtplib
import socket
import sys
import threading
import time
from multiprocessing import Process, Value


class SinkProtocol(asyncio.Protocol):
    """Just enough SMTP: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def __init__(self, counter, delay: float, first=None, last=None) -> None:
        self.counter = counter
        self.first = first      # time.time() of the first and last mail
        self.last = last
        self.delay = delay
        self.buffer = b''
        self.in_data = False

    def connection_made(self, transport):
        self.transport = transport
        if self.delay >= 0:     # a negative delay: a server that never talks
            transport.write(b'220 fast-sink ESMTP\r\n')

    def data_received(self, data):
        if self.delay < 0:
            return
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b'\r\n.\r\n')
                if end < 0:
                    return
                self.buffer = self.buffer[end + 5:]
                self.in_data = False
                with self.counter.get_lock():
                    self.counter.value += 1
                    if self.last is not None:
                        self.last.value = time.time()
                        if not self.first.value:
                            self.first.value = self.last.value
                if self.delay:
                    asyncio.get_running_loop().call_later(
                        self.delay, self.transport.write, b'250 OK\r\n')
                else:
                    self.transport.write(b'250 OK\r\n')
                continue
            end = self.buffer.find(b'\r\n')
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            verb = line[:4].upper()
            if verb == b'EHLO':
                self.transport.write(b'250-fast-sink\r\n250-8BITMIME\r\n'
                                     b'250 PIPELINING\r\n')
            elif verb == b'DATA':
                self.in_data = True
                self.transport.write(b'354 go ahead\r\n')
                if self.buffer.startswith(b'.\r\n'):
                    self.buffer = b'\r\n' + self.buffer
            elif verb == b'QUIT':
                self.transport.write(b'221 bye\r\n')
                self.transport.close()
                return
            else:
                self.transport.write(b'250 OK\r\n')


def serve(port: int, counter, delay: float, first=None, last=None) -> None:
    """Run the sink until SIGTERM."""
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SinkProtocol(counter, delay, first, last), '127.0.0.1',
            port,
            backlog=256)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()
    asyncio.run(main())


class FastSink:
    """The sink in a child process; ``count`` is shared memory."""

    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.port = port
        self.counter = Value('q', 0)
        self.first = Value('d', 0.0)
        self.last = Value('d', 0.0)
        self.process = Process(target=serve, args=(port, self.counter, delay,
                                                   self.first, self.last),
                               daemon=True)

    @property
    def count(self) -> int:
        return self.counter.value

    def reset_times(self) -> None:
        """Forget the first and last mail (``first_at``/``last_at``)."""
        self.first.value = self.last.value = 0.0

    @property
    def first_at(self) -> float:
        """``time.time()`` of the first mail since :meth:`reset_times`."""
        return self.first.value

    @property
    def last_at(self) -> float:
        """``time.time()`` of the latest mail."""
        return self.last.value

    def start(self) -> 'FastSink':
        self.process.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('fast sink did not start')

    def stop(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.join(5)


def selftest(port: int, messages: int, connections: int) -> float:
    """Messages/s the sink takes from plain smtplib clients (no database)."""
    body = (b'From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n'
            + b'x' * 1500 + b'\r\n')
    per = messages // connections

    def client():
        conn = smtplib.SMTP('127.0.0.1', port)
        for _ in range(per):
            conn.sendmail('a@example.org', ['b@example.org'], body)
        conn.quit()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * connections / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=2526)
    parser.add_argument('--delay', type=float, default=0.0)
    parser.add_argument('--selftest', action='store_true')
    args = parser.parse_args()
    if args.selftest:
        sink = FastSink(args.port).start()
        try:
            for n in (1, 4):
                print('fast sink alone, %d connection(s): %.0f msg/s'
                      % (n, selftest(args.port, 10000, n)))
        finally:
            sink.stop()
        return
    counter = Value('q', 0)
    print('fast sink on 127.0.0.1:%d' % args.port, file=sys.stderr)
    serve(args.port, counter, args.delay)


if __name__ == '__main__':
    main()
