"""`python -m build` makes the sdist and the wheel a release would upload,
and the wheel (built from the sdist, as `build` does) carries everything a
Trac site needs: every sub-package, templates, htdocs, compiled catalogs."""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = ('.git', '.venv', 'build', 'dist', 'demo', '__pycache__',
        '.pytest_cache', '.ruff_cache')


def _source_files(under: str, suffixes) -> set:
    """Paths (relative to ROOT) of the source tree's files ending so."""
    found = set()
    for folder, dirs, files in os.walk(os.path.join(ROOT, under)):
        dirs[:] = [d for d in dirs if d not in SKIP]
        for name in files:
            if name.endswith(suffixes):
                found.add(os.path.relpath(os.path.join(folder, name), ROOT))
    return found


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """(sdist, wheel) built by ``python -m build`` from a copy of the tree."""
    work = tmp_path_factory.mktemp('build')
    tree = work / 'src'
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        *SKIP, '*.egg-info', '*.mo', '*.pyc'))
    out = work / 'dist'
    # --no-isolation: the test virtualenv has setuptools, wheel and Babel
    subprocess.run([sys.executable, '-m', 'build', '--no-isolation',
                    '--outdir', str(out), str(tree)], check=True,
                   capture_output=True, text=True, timeout=300)
    sdist, = out.glob('tracnotify-*.tar.gz')
    wheel, = out.glob('tracnotify-*.whl')
    return sdist, wheel


def test_wheel_carries_every_module_and_data_file(built):
    _, wheel = built
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = _source_files('tracnotify', ('.py',))
    assert any(m.startswith('tracnotify/mail/') for m in modules)
    assert modules - names == set(), 'modules missing from the wheel'
    data = _source_files('tracnotify', ('.html', '.txt', '.css', '.js',
                                        '.png', '.po'))
    assert any(d.startswith('tracnotify/htdocs/') for d in data)
    assert data - names == set(), 'data files missing from the wheel'
    catalogs = {p[:-3] + '.mo' for p in data
                if p.endswith('.po') and '/parts/' not in p}
    assert {'tracnotify/locale/de/LC_MESSAGES/tracnotify.mo',
            'tracnotify/locale/fr/LC_MESSAGES/tracnotify.mo'} <= catalogs
    assert catalogs - names == set(), 'compiled catalogs missing'


def test_wheel_declares_the_trac_plugin(built):
    _, wheel = built
    with zipfile.ZipFile(wheel) as z:
        entry, = [n for n in z.namelist() if n.endswith('entry_points.txt')]
        text = z.read(entry).decode()
        meta, = [n for n in z.namelist() if n.endswith('/METADATA')]
        metadata = z.read(meta).decode()
    assert '[trac.plugins]' in text and 'tracnotify = tracnotify' in text
    assert 'Requires-Dist: Trac' in metadata


def test_sdist_rebuilds_the_catalogs(built):
    sdist, _ = built
    names = tarfile.open(sdist).getnames()
    assert any(n.endswith('build_backend/tracnotify_build.py') for n in names)
    assert any(n.endswith('de/LC_MESSAGES/tracnotify.po') for n in names)
    assert not any(n.endswith('.mo') for n in names)
