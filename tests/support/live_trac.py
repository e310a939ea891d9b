"""A real Trac site for end-to-end tests: ``trac-admin initenv`` + ``tracd``.

:class:`LiveTrac` creates an environment with tracnotify enabled, runs
``trac-admin upgrade``, writes an htpasswd file for basic auth and starts
``tracd`` on 127.0.0.1.  :class:`WebClient` logs in and submits Trac's forms
with their form token, like a browser would.
"""

import base64
import hashlib
import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Dict, Optional

from tests.support.smtp_sink import free_port

USERS = {'admin': 'admin-pw', 'alice': 'alice-pw', 'bob': 'bob-pw'}


def trac_admin(env_path: str, *args: str, check: bool = True
               ) -> subprocess.CompletedProcess:
    """Run ``trac-admin ENV args...`` in this Python."""
    return subprocess.run([sys.executable, '-m', 'trac.admin.console',
                           env_path] + list(args), capture_output=True,
                          text=True, check=check, timeout=120)


class LiveTrac:
    """A Trac environment served by a real tracd process."""

    def __init__(self, root: str, notification: Dict[str, str],
                 components: Optional[Dict[str, str]] = None) -> None:
        self.root = root
        self.env_path = os.path.join(root, 'env')
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d/env' % self.port
        self.notification = notification
        self.components = components or {}
        self.proc: Optional[subprocess.Popen] = None

    def create(self) -> 'LiveTrac':
        trac_admin(self.env_path, 'initenv', 'Live Project',
                   'sqlite:db/trac.db')
        from trac.config import Configuration
        ini = Configuration(os.path.join(self.env_path, 'conf', 'trac.ini'))
        ini.set('components', 'tracnotify.*', 'enabled')
        for name, value in self.components.items():
            ini.set('components', name, value)
        ini.set('trac', 'base_url', self.url)
        ini.set('logging', 'log_type', 'file')
        ini.set('logging', 'log_level', 'INFO')
        for name, value in self.notification.items():
            ini.set('notification', name, value)
        ini.save()
        trac_admin(self.env_path, 'upgrade')
        trac_admin(self.env_path, 'permission', 'add', 'admin', 'TRAC_ADMIN')
        trac_admin(self.env_path, 'permission', 'add', 'authenticated',
                   'TICKET_CREATE', 'TICKET_MODIFY', 'TICKET_BATCH_MODIFY')
        for user in USERS:
            trac_admin(self.env_path, 'session', 'add', user, user.title(),
                       '%s@example.org' % user)
        with open(os.path.join(self.root, 'htpasswd'), 'w') as f:
            for user, password in USERS.items():
                digest = base64.b64encode(
                    hashlib.sha1(password.encode()).digest()).decode()
                f.write('%s:{SHA}%s\n' % (user, digest))
        return self

    def start(self) -> 'LiveTrac':
        self.log = open(os.path.join(self.root, 'tracd.log'), 'w')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'trac.web.standalone',
             '--hostname=127.0.0.1', '--port=%d' % self.port,
             '--basic-auth=*,%s,Live' % os.path.join(self.root, 'htpasswd'),
             '--single-env' if False else self.env_path],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None:
                    raise RuntimeError('tracd exited: see %s' % self.log.name)
                time.sleep(0.1)
        raise RuntimeError('tracd did not start')

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
            self.log.close()

    def trac_log(self) -> str:
        path = os.path.join(self.env_path, 'log', 'trac.log')
        return open(path).read() if os.path.exists(path) else ''

    def client(self, user: Optional[str] = None) -> 'WebClient':
        return WebClient(self.url, user, USERS.get(user or ''))


class WebClient:
    """Speaks to tracd like a browser: cookies, login, form tokens."""

    def __init__(self, base: str, user: Optional[str],
                 password: Optional[str]) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.cookies)]
        if user:
            mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            mgr.add_password(None, base, user, password)
            handlers.append(urllib.request.HTTPBasicAuthHandler(mgr))
        self.opener = urllib.request.build_opener(*handlers)
        if user:
            self.get('/login')

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as r:
            return r.read().decode('utf-8')

    def post(self, path: str, fields: Dict[str, str]) -> str:
        fields = dict(fields)
        fields['__FORM_TOKEN'] = self.form_token()
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(self.base + path, data, timeout=60) as r:
            self.last_url = r.geturl()
            return r.read().decode('utf-8')

    def post_multipart(self, path: str, fields: Dict[str, str],
                       files: Dict[str, tuple]) -> str:
        """POST a ``multipart/form-data`` form, like a file upload;
        *files* maps a field name to ``(filename, bytes, content_type)``."""
        boundary = 'tracnotify-%s' % uuid.uuid4().hex
        fields = dict(fields)
        fields['__FORM_TOKEN'] = self.form_token()
        parts = []
        for name, value in fields.items():
            parts.append(('--%s\r\nContent-Disposition: form-data; '
                          'name="%s"\r\n\r\n%s\r\n' % (boundary, name, value)
                          ).encode('utf-8'))
        for name, (filename, content, ctype) in files.items():
            parts.append(('--%s\r\nContent-Disposition: form-data; '
                          'name="%s"; filename="%s"\r\nContent-Type: %s'
                          '\r\n\r\n' % (boundary, name, filename, ctype)
                          ).encode('utf-8') + content + b'\r\n')
        parts.append(('--%s--\r\n' % boundary).encode('ascii'))
        request = urllib.request.Request(
            self.base + path, b''.join(parts),
            {'Content-Type': 'multipart/form-data; boundary=%s' % boundary})
        with self.opener.open(request, timeout=60) as r:
            self.last_url = r.geturl()
            return r.read().decode('utf-8')

    def attach_file(self, ticket_id: int, filename: str, content: bytes,
                    description: str = '') -> str:
        """Upload a file to a ticket through Trac's attachment form."""
        return self.post_multipart(
            '/attachment/ticket/%d/?action=new' % ticket_id,
            {'action': 'new', 'realm': 'ticket', 'id': str(ticket_id),
             'description': description},
            {'attachment': (filename, content, 'text/plain')})

    def delete_attachment(self, ticket_id: int, filename: str) -> str:
        """Remove a ticket's file through Trac's delete confirmation."""
        return self.post('/attachment/ticket/%d/%s' % (
            ticket_id, urllib.parse.quote(filename)), {'action': 'delete'})

    def form_token(self) -> str:
        for cookie in self.cookies:
            if cookie.name == 'trac_form_token':
                return cookie.value
        self.get('/')
        return self.form_token()

    @staticmethod
    def hidden_inputs(html: str) -> Dict[str, str]:
        """name -> value of the hidden inputs of a page."""
        found = {}
        for tag in re.findall(r'<input[^>]*type="hidden"[^>]*>', html):
            name = re.search(r'name="([^"]*)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                found[name.group(1)] = value.group(1) if value else ''
        return found

    def create_ticket(self, **fields: str) -> int:
        form = {'field_' + k: v for k, v in fields.items()}
        form['submit'] = 'Create ticket'
        self.post('/newticket', form)
        return int(re.search(r'/ticket/(\d+)', self.last_url).group(1))

    def change_ticket(self, ticket_id: int, comment: str = '',
                      action: str = 'leave', **fields: str) -> str:
        page = self.get('/ticket/%d' % ticket_id)
        hidden = self.hidden_inputs(page)
        form = {'comment': comment, 'action': action, 'submit': 'Submit',
                'view_time': hidden.get('view_time', ''),
                'start_time': hidden.get('start_time', '')}
        form.update({'field_' + k: v for k, v in fields.items()})
        return self.post('/ticket/%d' % ticket_id, form)

    def batch_modify(self, ids, comment: str = '', **values: str) -> str:
        form = {'selected_tickets': ','.join(map(str, ids)),
                'batchmod_value_comment': comment, 'action': 'leave',
                'query_href': self.base + '/query'}
        form.update({'batchmod_value_' + k: v for k, v in values.items()})
        return self.post('/batchmodify', form)
