"""Catalog fragments (``LC_MESSAGES/parts/*.po``) compile into the one .mo."""

import gettext
import os

from tracnotify.i18n import catalogs

PO = '''msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "%s"
msgstr "%s"
'''


def _write(path, msgid, msgstr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(PO % (msgid, msgstr))


def test_fragments_are_compiled_with_the_main_catalog(tmp_path):
    lc = tmp_path / 'de' / 'LC_MESSAGES'
    _write(str(lc / 'tracnotify.po'), 'Ticket', 'Ticket (de)')
    _write(str(lc / 'parts' / 'wiki.po'), 'Wiki page', 'Wiki-Seite')
    _write(str(lc / 'parts' / 'clash.po'), 'Ticket', 'overridden?')
    out = tmp_path / 'out'
    written = catalogs.compile_all(str(tmp_path), str(out))
    assert [os.path.basename(w) for w in written] == ['tracnotify.mo']
    with open(written[0], 'rb') as f:
        t = gettext.GNUTranslations(f)
    assert t.gettext('Wiki page') == 'Wiki-Seite'
    assert t.gettext('Ticket') == 'Ticket (de)'     # the main file wins


def test_a_changed_fragment_makes_a_new_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('TRACNOTIFY_CACHE_DIR', str(tmp_path / 'cache'))
    loc = tmp_path / 'locale'
    lc = loc / 'fr' / 'LC_MESSAGES'
    _write(str(lc / 'tracnotify.po'), 'Ticket', 'Ticket (fr)')
    _write(str(lc / 'parts' / 'a.po'), 'Page', 'Page (1)')
    first = catalogs.catalog_dir(str(loc))
    _write(str(lc / 'parts' / 'a.po'), 'Page', 'Page (2)')
    second = catalogs.catalog_dir(str(loc))
    assert first != second
    with open(os.path.join(second, 'fr', 'LC_MESSAGES', 'tracnotify.mo'),
              'rb') as f:
        assert gettext.GNUTranslations(f).gettext('Page') == 'Page (2)'
