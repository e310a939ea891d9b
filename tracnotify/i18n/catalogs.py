"""Compiling the ``tracnotify`` message catalogs (``.po`` -> ``.mo``).

Only the ``.po`` files are in git.  They are compiled

* during the build, by the in-tree PEP 517 backend
  (``build_backend/tracnotify_build.py``, named in ``pyproject.toml``), so
  that wheels and ``pip install`` get the ``.mo`` files next to the sources;
* at run time, on first use, when the package holds no up-to-date ``.mo``
  (a source checkout, an editable install): :func:`catalog_dir` compiles
  them into a cache folder keyed by the content of the ``.po`` files.

This module imports only Babel (not Trac), so that the build backend can
load it by file path inside an isolated build environment.
"""

import hashlib
import os
import tempfile
from typing import List, Optional, Tuple

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = 'tracnotify'
LOCALE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'locale')
_cached_dir: Optional[str] = None


def po_files(locale_dir: str = LOCALE_DIR) -> List[Tuple[str, str]]:
    """``(language, path)`` of every catalog in *locale_dir*."""
    found = []
    if not os.path.isdir(locale_dir):
        return found
    for lang in sorted(os.listdir(locale_dir)):
        po = os.path.join(locale_dir, lang, 'LC_MESSAGES', DOMAIN + '.po')
        if os.path.isfile(po):
            found.append((lang, po))
    return found


def part_files(po_path: str) -> List[str]:
    """The fragments of one catalog: ``LC_MESSAGES/parts/*.po``, one per
    feature, so that features translated side by side never edit the same
    file; they are compiled into the catalog's one ``.mo``."""
    folder = os.path.join(os.path.dirname(po_path), 'parts')
    if not os.path.isdir(folder):
        return []
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.endswith('.po')]


def _sources(po_path: str) -> List[str]:
    return [po_path] + part_files(po_path)


def compile_po(po_path: str, mo_path: str) -> None:
    """Compile one catalog and its fragments, atomically (safe with
    concurrent processes); the main file wins where both translate."""
    with open(po_path, 'rb') as f:
        catalog = read_po(f, domain=DOMAIN)
    for part in part_files(po_path):
        with open(part, 'rb') as f:
            for message in read_po(f, domain=DOMAIN):
                if message.id and message.id not in catalog:
                    catalog[message.id] = message
    os.makedirs(os.path.dirname(mo_path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(mo_path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write_mo(f, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def compile_all(locale_dir: str = LOCALE_DIR,
                dest_dir: Optional[str] = None) -> List[str]:
    """Compile every catalog of *locale_dir* into *dest_dir* (by default
    next to the ``.po`` files); returns the ``.mo`` paths written."""
    written = []
    for lang, po in po_files(locale_dir):
        mo = os.path.join(dest_dir or locale_dir, lang, 'LC_MESSAGES',
                          DOMAIN + '.mo')
        compile_po(po, mo)
        written.append(mo)
    return written


def _up_to_date(locale_dir: str) -> bool:
    for _lang, po in po_files(locale_dir):
        mo = po[:-3] + '.mo'
        if not os.path.isfile(mo) or any(
                os.path.getmtime(mo) < os.path.getmtime(src)
                for src in _sources(po)):
            return False
    return True


def _cache_root() -> str:
    root = os.environ.get('TRACNOTIFY_CACHE_DIR') or \
        os.environ.get('XDG_CACHE_HOME') or \
        os.path.join(os.path.expanduser('~'), '.cache')
    try:
        os.makedirs(root, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    return tempfile.gettempdir()


def catalog_dir(locale_dir: str = LOCALE_DIR) -> str:
    """A folder with compiled catalogs for every ``.po`` of *locale_dir*:
    *locale_dir* itself when the build compiled them, else a cache folder
    compiled now (once per process, and once per content change)."""
    global _cached_dir
    if _up_to_date(locale_dir):
        return locale_dir
    if _cached_dir and locale_dir == LOCALE_DIR:
        return _cached_dir
    digest = hashlib.sha256()
    for lang, po in po_files(locale_dir):
        digest.update(lang.encode())
        for src in _sources(po):
            with open(src, 'rb') as f:
                digest.update(f.read())
    target = os.path.join(_cache_root(), 'tracnotify',
                          'locale-' + digest.hexdigest()[:16])
    missing = [lang for lang, _po in po_files(locale_dir)
               if not os.path.isfile(os.path.join(
                   target, lang, 'LC_MESSAGES', DOMAIN + '.mo'))]
    if missing:
        compile_all(locale_dir, target)
    if locale_dir == LOCALE_DIR:
        _cached_dir = target
    return target


def languages(locale_dir: str = LOCALE_DIR) -> List[str]:
    """The languages tracnotify has a catalog for (plus English)."""
    return ['en'] + [lang for lang, _po in po_files(locale_dir)
                     if lang != 'en']
