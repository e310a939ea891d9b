"""`trac-admin ENV notify receive` in its own process, as an MTA pipe runs
it: exit status 0 / 67 / 75 and a locked database."""

import os
import sqlite3
import subprocess
import sys

import pytest
from trac.env import Environment
from trac.web.session import DetachedSession

from tests.support.disk_env import make_disk_env
from tests.support.inbound import (
    REPLY_ADDRESS,
    comments,
    issue_token,
    reply_mail,
    reply_to,
)
from tests.support.tickets import create_ticket


def receive(path: str, raw: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'trac.admin.console', path,
                           'notify', 'receive'] + list(args), input=raw,
                          capture_output=True, timeout=120)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    path = make_disk_env(str(tmp_path_factory.mktemp('inbound')), {
        'reply_address': REPLY_ADDRESS, 'smtp_enabled': 'true',
        'smtp_from': 'trac@example.org', 'delivery': 'worker'})
    env = Environment(path)
    session = DetachedSession(env, 'bob')
    session['email'] = 'bob@example.net'
    session.save()
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    yield path, env, ticket.id, token
    env.shutdown()


def test_taken_and_unknown(site):
    path, env, ticket, token = site
    done = receive(path, reply_mail(reply_to(token), 'bob@example.net',
                                    'From the pipe.'))
    assert done.returncode == 0, done.stderr
    assert comments(env, ticket)[-1] == ('bob', 'From the pipe.')
    done = receive(path, reply_mail('nobody@example.org', 'bob@example.net',
                                    'x'), '--recipient',
                   reply_to('q' * 26))
    assert done.returncode == 67
    assert b'unknown or altered reply address' in done.stderr


def test_a_locked_database_is_tempfail_and_saves_nothing(site):
    path, env, ticket, token = site
    before = comments(env, ticket)
    ini = os.path.join(path, 'conf', 'trac.ini')
    with open(ini) as f:
        saved = f.read()
    with open(ini, 'w') as f:          # wait 1 s for the lock, not 10
        f.write(saved.replace('sqlite:db/trac.db',
                              'sqlite:db/trac.db?timeout=1'))
    lock = sqlite3.connect(os.path.join(path, 'db', 'trac.db'))
    try:
        lock.execute('BEGIN IMMEDIATE')       # readers go on, writers wait
        done = receive(path, reply_mail(reply_to(token), 'bob@example.net',
                                        'Locked out.'))
    finally:
        lock.rollback()
        lock.close()
        with open(ini, 'w') as f:
            f.write(saved)
    assert done.returncode == 75, (done.stdout, done.stderr)
    assert b'temporary failure' in done.stderr
    assert comments(env, ticket) == before
