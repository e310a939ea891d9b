"""The daily digest (tracnotify.digest), on a real Trac environment (SQLite
and PostgreSQL) and a real SMTP server.  Time is not waited for: the
digest pass takes the current time as an argument."""

import os
import threading
from datetime import datetime, timedelta

import pytest
from trac.env import Environment
from zoneinfo import ZoneInfo

from tests.support.digests import BERLIN, at, delivered, digests, tomorrow
from tests.support.disk_env import drop_disk_env, make_disk_env
from tests.support.mails import text_of as text
from tests.support.tickets import (
    add_users,
    change_ticket,
    create_ticket,
)
from tests.support.users import set_session, users
from tracnotify.config import load_config
from tracnotify.mail import digest

USERS = users('alice', 'bob', 'dora')


@pytest.fixture
def env(sink_env):
    env = sink_env(USERS, always_notify_reporter='true', digest_hour='7')
    env.config.set('trac', 'default_timezone', 'Europe/Berlin')
    return env


def test_digest_across_a_day_boundary(env, sink):
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest'})
    first = create_ticket(env, summary='First', cc='carol@example.com')
    change_ticket(env, first.id, author='bob', comment='One.')
    second = create_ticket(env, summary='Second')
    change_ticket(env, second.id, author='bob', priority='minor')
    mails = delivered(env, sink)
    assert 'alice@example.net' not in mails      # she chose the digest
    assert len(mails['bob@example.net']) == 2
    assert len(mails['carol@example.com']) == 2  # bare address: at once

    day = tomorrow()
    assert digests(env, at(day, 6, 59)) == 0     # before digest_hour
    assert digests(env, at(day, 7, 0)) == 1
    assert digests(env, at(day, 7, 1)) == 0      # once a day
    mails = delivered(env, sink)
    assert set(mails) == {'alice@example.net'}
    mail, = mails['alice@example.net']
    assert mail['Subject'] == \
        '[Test Project] Daily digest: 4 changes on 2 tickets'
    assert mail['X-Trac-Notification-Type'] == 'digest'
    assert mail['List-Unsubscribe'].startswith(
        '<http://trac.example.org/tracnotify/unsubscribe/')
    body = text(mail)
    assert body.startswith('Daily digest: 4 changes on 2 tickets\n')
    one = body.index('Ticket #1: First\n================\n')
    two = body.index('Ticket #2: Second\n')
    assert one < two
    # the per-change blocks of the normal mail, in order, under each ticket
    assert body.index('Comment (by Bob Updater):\n\n One.') < two
    assert body.index(' * priority:  major => minor') > two
    assert body.count('#1: First\n---') == 2 and \
        body.count('#2: Second\n---') == 2
    assert 'Ticket URL: <http://trac.example.org/ticket/1#comment:1>' \
        in body
    assert body.rstrip().endswith('To stop these e-mails: '
                         '<http://trac.example.org/tracnotify/unsubscribe>')

    # a change late in the evening waits for the next day's digest
    change_ticket(env, first.id, author='bob', comment='Late.')
    assert 'alice@example.net' not in delivered(env, sink)
    assert digests(env, at(day, 23, 59)) == 0
    assert digests(env, at(day + timedelta(days=1), 0, 30)) == 0
    assert digests(env, at(day + timedelta(days=1), 7, 30)) == 1
    mail, = delivered(env, sink)['alice@example.net']
    assert mail['Subject'] == \
        '[Test Project] Daily digest: 1 change on 1 ticket'
    assert 'Late.' in text(mail) and 'One.' not in text(mail)
    assert digests(env, at(day + timedelta(days=2), 9)) == 0  # nothing new


def test_digest_hour_in_the_users_time_zone(env, sink):
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest',
                                 'tz': 'America/New_York'})
    create_ticket(env, summary='Far away')
    delivered(env, sink)
    day = tomorrow(ZoneInfo('America/New_York'))
    new_york = ZoneInfo('America/New_York')
    assert digests(env, at(day, 6, 59, new_york)) == 0   # 12:59 in Berlin
    assert digests(env, at(day, 7, 0, new_york)) == 1
    assert list(delivered(env, sink)) == ['alice@example.net']


def test_no_permission_no_item(env, sink):
    from tests.support.policies import HIDDEN_USER, enable_hide_ticket_policy
    enable_hide_ticket_policy(env)
    add_users(env, (HIDDEN_USER, 'Hidden', 'hidden@example.net'))
    set_session(env, HIDDEN_USER, **{'tracnotify.delivery': 'digest'})
    create_ticket(env, summary='Secret', cc=HIDDEN_USER)
    create_ticket(env, summary='Public', cc=HIDDEN_USER)
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 8)) == 1
    mail, = delivered(env, sink)['hidden@example.net']
    assert mail['Subject'].endswith('1 change on 1 ticket')
    assert 'Secret' not in text(mail) and 'Public' in text(mail)


def test_user_switching_back_to_immediate(env, sink):
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest'})
    ticket = create_ticket(env, summary='Switch')
    change_ticket(env, ticket.id, author='bob', comment='Queued.')
    assert 'alice@example.net' not in delivered(env, sink)

    set_session(env, 'alice', **{'tracnotify.delivery': 'now'})
    change_ticket(env, ticket.id, author='bob', comment='At once.')
    mails = delivered(env, sink)
    mail, = mails['alice@example.net']            # the new change: now
    assert 'At once.' in text(mail)
    # what was collected goes out on the next pass, whatever the hour
    assert digests(env, at(tomorrow(), 3)) == 1
    mail, = delivered(env, sink)['alice@example.net']
    assert mail['Subject'].endswith('Daily digest: 2 changes on 1 ticket')
    assert 'Queued.' in text(mail) and 'At once.' not in text(mail)
    assert digests(env, at(tomorrow(), 9)) == 0
    assert not env.db_query('SELECT * FROM tracnotify_digest_item '
                            'WHERE digest_day IS NULL')


def test_always_cc_is_never_digested(sink_env, sink):
    env = sink_env(USERS, default_delivery='digest',
                   smtp_always_cc='audit@example.org')
    create_ticket(env, cc='carol@example.com')
    mails = delivered(env, sink)
    assert set(mails) == {'audit@example.org'}
    # alice (reporter, chose nothing) and carol follow the site default
    rows = env.db_query('SELECT DISTINCT address FROM '
                        'tracnotify_digest_item ORDER BY address')
    assert [r[0] for r in rows] == ['alice@example.net', 'carol@example.com']


PG_URI = os.environ.get('TRACNOTIFY_PG_URI', '')


@pytest.mark.parametrize('backend_', ['sqlite'] + (['postgres'] if PG_URI
                                                   else []))
def test_two_workers_at_once_make_one_digest_per_address(tmp_path,
                                                         backend_):
    path = make_disk_env(str(tmp_path), {
        'smtp_enabled': 'true', 'smtp_from': 'trac@example.org',
        'delivery': 'worker', 'default_delivery': 'digest',
        'digest_hour': '0'}, PG_URI if backend_ == 'postgres' else None)
    try:
        env = Environment(path)
        addresses = ['user%02d@example.org' % i for i in range(20)]
        digest.queue_items(env, [
            digest.DigestItem(a, None, n % 3 + 1, 'Ticket', 1000000 * n,
                              'en', 'Block %d of %s' % (n, a))
            for a in addresses for n in range(3)])
        env.shutdown()
        now = datetime.now(BERLIN)
        barrier = threading.Barrier(2, timeout=60)
        made, errors = [], []

        def worker():
            own = Environment(path)     # a worker of its own
            try:
                barrier.wait()
                for _ in range(3):
                    made.append(digest.run_digests(own, load_config(own),
                                                   now).digests)
            except Exception as e:
                errors.append(e)
            finally:
                # Trac's connection pool is one per process: shutting one
                # environment down closes the other thread's connections,
                # so neither shuts down before both are done
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass
                own.shutdown()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        env = Environment(path)
        rows = env.db_query("""SELECT recipient, message FROM
                               tracnotify_message WHERE kind='digest'""")
        claims = env.db_query('SELECT address, items FROM tracnotify_digest')
        env.shutdown()
        assert errors == []
        assert len(made) == 6
        assert sum(made) == 20
        assert sorted(r[0] for r in rows) == addresses     # once each
        assert sorted(claims) == [(a, 3) for a in addresses]
        for address, message in rows:
            assert all('Block %d of %s' % (n, address) in message
                       for n in range(3))
    finally:
        drop_disk_env(path)


def test_digest_in_the_users_language(env, sink):
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest',
                                 'tracnotify.language': 'de'})
    ticket = create_ticket(env, summary='Deutsch')
    change_ticket(env, ticket.id, author='bob', comment='Hallo.')
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 7)) == 1
    mail, = delivered(env, sink)['alice@example.net']
    assert mail['Subject'] == '[Test Project] Tägliche Zusammenfassung: ' \
        '2 Änderungen an 1 Ticket'
    assert 'Ticket-URL: <http://trac.example.org/ticket/1>' in text(mail)


def test_purge_forgets_old_digests_not_waiting_items(env, sink):
    set_session(env, 'alice', **{'tracnotify.delivery': 'digest'})
    ticket = create_ticket(env, summary='Old')
    delivered(env, sink)
    assert digests(env, at(tomorrow(), 8)) == 1
    change_ticket(env, ticket.id, author='bob', comment='Waiting.')
    delivered(env, sink)
    assert digest.purge(env, 2 ** 62) == 1
    assert env.db_query('SELECT COUNT(*) FROM tracnotify_digest')[0][0] == 0
    assert [r[0] for r in env.db_query(
        'SELECT digest_day FROM tracnotify_digest_item')] == [None]
