"""The diff in wiki mail is Trac's own unified diff (the hunks of
``trac.versioncontrol.diff.unified_diff``, under Trac's changeset header),
``patch`` turns the old text into the new one with it, and it is bounded
like the texts of ticket mail."""

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trac.versioncontrol.diff import unified_diff

from tracnotify.mail.format import MAX_TEXT_CHARS
from tracnotify.mail.wiki_diff import diff_lines, page_diff

LINES = st.lists(st.sampled_from(['alpha', 'beta', 'gamma', '', ' x ',
                                  'Größe', '== Title ==', '* item']),
                 max_size=25)


def apply_patch(tmp_path, old: str, diff: str) -> str:
    """The old text patched with *diff* by GNU patch."""
    target = tmp_path / 'page.txt'
    target.write_text(old, encoding='utf-8')
    subprocess.run(['patch', '--quiet', '--force', str(target)],
                   input=diff.encode('utf-8'), check=True,
                   capture_output=True, timeout=30)
    return target.read_text(encoding='utf-8')


def text(lines) -> str:
    return ''.join(line + '\n' for line in lines)


@pytest.mark.skipif(not os.path.exists('/usr/bin/patch'),
                    reason='GNU patch is not installed')
@settings(max_examples=60, deadline=None)
@given(LINES, LINES)
def test_hunks_are_tracs_and_patch_applies_them(tmp_path_factory, old, new):
    diff = page_diff('Some/Page', text(old), text(new), 3, 4)
    if old == new:
        assert diff == ''
        return
    # Trac's own output, line for line, under its header
    assert diff.split('\n')[:4] == [
        'Index: Some/Page', '=' * 67, '--- Some/Page\t(version 3)',
        '+++ Some/Page\t(version 4)']
    assert diff.split('\n')[4:-1] == list(unified_diff(old, new, 3))
    folder = tmp_path_factory.mktemp('patch')
    assert apply_patch(folder, text(old), diff) == text(new)


def test_a_known_change_character_for_character():
    old = 'one\ntwo\nthree\nfour\nfive\nmid\nsix\nseven\neight\n'
    new = 'one\n2\nthree\nfour\nfive\nmid\nsix\nseven\neight\nnine\n'
    assert page_diff('P', old, new, 1, 2) == (
        'Index: P\n' + '=' * 67 + '\n'
        '--- P\t(version 1)\n'
        '+++ P\t(version 2)\n'
        '@@ -1,5 +1,5 @@\n'
        ' one\n'
        '-two\n'
        '+2\n'
        ' three\n'
        ' four\n'
        ' five\n'
        '@@ -7,3 +7,4 @@\n'
        ' six\n'
        ' seven\n'
        ' eight\n'
        '+nine\n')


def test_line_ends_of_the_web_form_do_not_count():
    assert diff_lines('P', 'a\r\nb\r\n', 'a\nb\n', 1, 2) == []


def test_a_huge_diff_is_cut_on_a_line_with_a_notice():
    old = ''.join('line %d\n' % i for i in range(20000))
    new = ''.join('LINE %d\n' % i for i in range(20000))
    diff = page_diff('P', old, new, 1, 2)
    assert len(diff) < MAX_TEXT_CHARS + 100
    body, notice = diff.rsplit('\n', 1)
    assert notice.startswith('[... ') and 'see the page]' in notice
    last = body.split('\n')[-1]     # a whole line of the diff
    assert last in {'-line %d' % i for i in range(20000)} | \
        {'+LINE %d' % i for i in range(20000)}

