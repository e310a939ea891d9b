"""A rendering context for wiki text in mail: what an anonymous reader of
the web site would see.

The mail is built by the delivery worker, outside any web request, and
one HTML body goes to every recipient of a language, so wiki text is
rendered for ``anonymous``.  Macros (``TicketQuery``, ``Image``...) expect
a request: they get a real :class:`trac.web.api.Request` for a GET of the
site's front page by ``anonymous``, with a real :class:`PermissionCache`,
an anonymous session that is never saved, and absolute links (``[trac]
base_url``) since a mail has no page to be relative to.
"""

import io
from typing import Optional
from urllib.parse import urlsplit

from trac.perm import PermissionCache
from trac.resource import Resource
from trac.util.datefmt import get_timezone, localtz
from trac.util.translation import get_negotiated_locale
from trac.web.api import Request
from trac.web.chrome import Chrome, web_context
from trac.web.session import DetachedSession

try:
    from babel.core import Locale
except ImportError:  # Trac without Babel: dates in English
    Locale = None


def _start_response(status, headers, exc_info=None):
    """Nothing is ever sent: the request exists for macros to read."""
    return lambda data: None


def _locale(language: Optional[str]):
    if not language or Locale is None:
        return None
    try:
        negotiated = get_negotiated_locale([language]) or language
        return Locale.parse(negotiated.replace('-', '_'))
    except Exception:
        return None


def anonymous_request(env, language: Optional[str] = None) -> Request:
    """A GET of the front page by ``anonymous``, for macros to read."""
    base_url = env.abs_href()
    parts = urlsplit(base_url)
    secure = parts.scheme == 'https'
    environ = {
        'trac.base_url': base_url,
        'wsgi.url_scheme': parts.scheme or 'http',
        'wsgi.input': io.BytesIO(b''),
        'wsgi.errors': io.StringIO(),
        'REQUEST_METHOD': 'GET',
        'PATH_INFO': '/',
        'QUERY_STRING': '',
        'SCRIPT_NAME': parts.path.rstrip('/'),
        'SERVER_NAME': parts.hostname or 'localhost',
        'SERVER_PORT': str(parts.port or (443 if secure else 80)),
        'REMOTE_ADDR': '127.0.0.1',
        'HTTP_ACCEPT_LANGUAGE': language or '',
    }
    req = Request(environ, _start_response)
    req.href = env.abs_href      # every link a macro makes: absolute
    perm = PermissionCache(env, 'anonymous')
    locale = _locale(language)
    tz = get_timezone(env.config.get('trac', 'default_timezone')) or localtz
    session = DetachedSession(env, None)
    req.callbacks.update({
        'authname': lambda req: 'anonymous',
        'perm': lambda req: perm,
        'session': lambda req: session,
        'chrome': Chrome(env).prepare_request,
        'locale': lambda req: locale,
        'lc_time': lambda req: locale,
        'tz': lambda req: tz,
        'form_token': lambda req: None,
        'use_xsendfile': lambda req: False,
        'xsendfile_header': lambda req: None,
        'configurable_headers': lambda req: [],
    })
    return req


def anonymous_context(env, resource: Resource,
                      language: Optional[str] = None):
    """A rendering context of *resource* for ``anonymous``, absolute
    links, with a request for the macros that need one."""
    return web_context(anonymous_request(env, language), resource,
                       absurls=True)
