"""PEP 517 build backend: setuptools, after compiling the message catalogs.

Only the ``.po`` files are in git; wheels (and so ``pip install``) must
carry the compiled ``.mo`` files.  This backend compiles them into the
source tree (``*.mo`` is git-ignored), then hands every hook to
``setuptools.build_meta`` unchanged; ``setup.cfg``'s ``package_data``
ships them.  ``tracnotify/i18n/catalogs.py`` is loaded by file path: the build
environment has Babel but not Trac.
"""

import importlib.util
import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every other hook)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _compile_catalogs() -> None:
    path = os.path.join(_ROOT, 'tracnotify', 'i18n', 'catalogs.py')
    spec = importlib.util.spec_from_file_location('_tracnotify_catalogs',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.compile_all(os.path.join(_ROOT, 'tracnotify', 'locale'))


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    _compile_catalogs()
    return _setuptools.build_wheel(wheel_directory, config_settings,
                                   metadata_directory)


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    _compile_catalogs()
    return _setuptools.build_editable(wheel_directory, config_settings,
                                      metadata_directory)
