"""What `trac-admin help`, plain `notify` and the option docs tell a reader."""

import io
import re

import pytest
from trac.admin.api import AdminCommandManager
from trac.admin.console import TracAdmin
from trac.loader import load_components

from tests.support.tickets import create_ticket
from tracnotify import outbox
from tracnotify.config import TracnotifyOptions, load_config
from tracnotify.outbox import maintenance as queue_admin


def console(env, line: str, capsys):
    """``trac-admin ENV <line>``: (exit status, stdout, stderr)."""
    admin = TracAdmin()
    admin.env_set(env.path, env)
    rv = admin.onecmd(line)
    captured = capsys.readouterr()
    return rv, captured.out, captured.err


@pytest.fixture
def env(make_env):
    return make_env(smtp_server='127.0.0.1', smtp_port='1')


def test_plain_notify_lists_the_subcommands(env, capsys):
    rv, out, err = console(env, 'notify', capsys)
    assert rv in (0, None) and err == ''
    names = re.findall(r'^notify (\w+)', out, re.M)
    assert names == sorted(['announce', 'fetch', 'pending', 'purge',
                            'receive', 'retry',
                            'send', 'status', 'test', 'worker'])


def test_notify_subcommands_still_run_through_the_listing(env, capsys):
    rv, out, _ = console(env, 'notify status', capsys)
    assert rv in (0, None) and 'Pending: 0' in out
    rv, _, err = console(env, 'notify nonsense', capsys)
    assert rv == 2 and 'Command not found' in err
    rv, _, err = console(env, 'notify test', capsys)
    assert rv == 2 and 'Invalid arguments' in err


def test_notify_completion_offers_the_subcommands(env):
    found = AdminCommandManager(env).complete_command(['notify', ''])
    assert {'pending', 'send', 'worker'} <= set(found)


def test_every_short_help_line_fits_a_terminal(env):
    # every installed plugin's commands, whatever other tests imported
    # before: `trac-admin help` pads to the longest of them all
    load_components(env)
    stream = io.StringIO()
    docs = [c for c in AdminCommandManager(env).get_command_help()
            if c[0].startswith('notify')]
    max_len = max(len(c[0]) for c in AdminCommandManager(env)
                  .get_command_help())
    TracAdmin.print_doc(docs, stream, short=True)
    lines = stream.getvalue().splitlines()
    assert any(line.startswith('notify worker') for line in lines)
    # `trac-admin help` pads names to the longest command of all
    assert all(len(line) - len(line.split('  ', 1)[0]) + max_len <= 80
               for line in lines), lines


def test_pending_help_says_it_lists_every_unsent_kind(env):
    doc, = [c[2] for c in AdminCommandManager(env).get_command_help()
            if c[0] == 'notify pending']
    first = TracAdmin.split_help_text(doc)[0]
    assert 'retrying' in first and 'dead' in first


def _listed_ids(out: str) -> list:
    return [int(line.split()[0]) for line in out.splitlines()
            if re.match(r'^\d+ ', line)]


def test_pending_lists_only_the_kind_asked_for(env, capsys):
    create_ticket(env, cc='carol@example.net')
    from tracnotify.delivery.deliverer import Deliverer
    Deliverer(env, load_config(env)).run_once()     # all fail: retrying
    ids = [m.id for m in queue_admin.list_queue(env)]
    assert len(ids) >= 2
    env.db_transaction('UPDATE tracnotify_message SET state=%s WHERE id=%s',
                       (outbox.DEAD, ids[0]))
    assert _listed_ids(console(env, 'notify pending', capsys)[1]) == ids
    assert _listed_ids(console(env, 'notify pending dead', capsys)[1]) == \
        ids[:1]
    assert _listed_ids(console(env, 'notify pending retrying',
                               capsys)[1]) == ids[1:]
    assert 'No unsent messages.' in \
        console(env, 'notify pending pending', capsys)[1]


def test_default_delivery_doc_names_the_real_default():
    option = TracnotifyOptions.default_delivery
    assert option.default == 'now'
    doc = ' '.join(option.__doc__.split())
    assert re.search(r'`now` \(the default\)', doc)
    assert 'this is the default' not in doc
