"""SMTP servers that misbehave, each a real socket server on 127.0.0.1.

* ``silent``: accepts TCP, never says a word;
* ``drop_in_data``: a normal dialogue until DATA, then hangs up halfway
  through the message;
* ``bad_starttls``: advertises STARTTLS, says 220 to it, then answers the
  TLS handshake with garbage and hangs up.

Certificates that are self-signed or expired are served by the ordinary
aiosmtpd sink (:mod:`tests.support.smtp_sink`) with the files of
:func:`make_cert`.
"""

import datetime
import socket
import threading
from typing import List, Optional

MODES = ('silent', 'drop_in_data', 'bad_starttls')


class BadSmtpServer:
    """A threading TCP server playing one kind of broken SMTP server."""

    def __init__(self, mode: str) -> None:
        assert mode in MODES
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._conns: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> 'BadSmtpServer':
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> 'BadSmtpServer':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.mode == 'silent':
                self._stop.wait()             # holds the socket open, mute
                return
            f = conn.makefile('rb')
            conn.sendall(b'220 bad.example ESMTP\r\n')
            while not self._stop.is_set():
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b'EHLO', b'HELO'):
                    ext = b'250-STARTTLS\r\n' if self.mode == 'bad_starttls' \
                        else b''
                    conn.sendall(b'250-bad.example\r\n' + ext +
                                 b'250 8BITMIME\r\n')
                elif verb == b'STAR':
                    conn.sendall(b'220 go ahead\r\n')
                    conn.sendall(b'this is not TLS\r\n' * 4)
                    conn.close()
                    return
                elif verb == b'DATA':
                    conn.sendall(b'354 go on\r\n')
                    f.read1(100)             # some of the message, then gone
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                    return
                elif verb == b'QUIT':
                    conn.sendall(b'221 bye\r\n')
                    return
                else:                         # MAIL, RCPT, RSET, NOOP
                    conn.sendall(b'250 ok\r\n')
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def make_cert(folder: str, expired: bool = False, issuer=None) -> dict:
    """A certificate for 127.0.0.1 made with ``cryptography``: self-signed,
    or signed by *issuer* (a ``trustme.CA``); *expired* ended yesterday.
    Returns ``{'cert': path, 'key': path}``."""
    import ipaddress
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')])
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=30),
                  now - datetime.timedelta(days=1)) if expired else \
        (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    if issuer is None:
        issuer_name, signing_key = name, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem.bytes())
        issuer_name = issuer_cert.subject
        signing_key = serialization.load_pem_private_key(
            issuer.private_key_pem.bytes(), None)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=issuer is None,
                                                 path_length=None),
                           critical=True)
            .sign(signing_key, hashes.SHA256()))
    tag = ('expired' if expired else 'valid') + \
        ('-self' if issuer is None else '-ca')
    paths = {'cert': os.path.join(folder, tag + '-cert.pem'),
             'key': os.path.join(folder, tag + '-key.pem')}
    with open(paths['cert'], 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths['key'], 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths
