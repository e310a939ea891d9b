"""Every string tracnotify shows is translated in each catalog it ships
(de, fr): extracted from the sources as ``setup.py extract_messages`` does,
compared with the compiled catalogs (main file and parts/*.po)."""

import gettext
import os

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from tracnotify.i18n import catalogs

KEYWORDS = {'_': None, 'N_': None, 'tag_': None, 'gettext': None,
            'ngettext': (1, 2), 'tagn_': (1, 2), 'dgettext': (2,),
            'dngettext': (2, 3)}
PACKAGE = os.path.dirname(catalogs.LOCALE_DIR)


def _extracted():
    with open(os.path.join(catalogs.LOCALE_DIR, 'babel.cfg')) as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = {}
    for filename, _line, message, _comments, _ctx in extract_from_dir(
            PACKAGE, method_map, options_map, keywords=KEYWORDS):
        key = message if isinstance(message, tuple) else (message,)
        if key[0]:
            found.setdefault(key, filename)
    return found


@pytest.fixture(scope='module')
def extracted():
    return _extracted()


@pytest.mark.parametrize('lang', ['de', 'fr'])
def test_every_string_is_translated(extracted, lang, tmp_path):
    catalogs.compile_all(catalogs.LOCALE_DIR, str(tmp_path))
    with open(tmp_path / lang / 'LC_MESSAGES' / 'tracnotify.mo', 'rb') as f:
        translations = gettext.GNUTranslations(f)
    missing = []
    for key, where in sorted(extracted.items()):
        if len(key) == 2 and key[1]:
            done = translations._catalog.get((key[0], 0))
        else:
            done = translations._catalog.get(key[0])
        if not done:
            missing.append('%s: %r' % (where, key[0][:80]))
    assert extracted and not missing, '\n'.join(missing)
