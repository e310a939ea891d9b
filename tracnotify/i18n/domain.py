"""The plugin's own Babel domain (``tracnotify``)."""

import os

from trac.util.translation import domain_functions

from tracnotify.i18n.catalogs import catalog_dir

_, N_, tag_, ngettext, gettext, add_domain = domain_functions(
    'tracnotify', '_', 'N_', 'tag_', 'ngettext', 'gettext', 'add_domain')

LOCALE_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'locale')


def register_domain(env) -> None:
    """Make the plugin's message catalogs known for *env* (compiled by the
    build, or on first use into a cache folder: see ``catalogs.py``)."""
    try:
        add_domain(env.path, catalog_dir(LOCALE_DIR))
    except Exception as e:  # no catalogs: English, never a broken page
        env.log.warning('tracnotify: translations unavailable: %s', e)
        add_domain(env.path, LOCALE_DIR)
