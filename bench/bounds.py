"""Time and peak memory of building the mail of outsized ticket changes.

    python -m bench.bounds [--only NAME ...]

Each scenario is one ticket change (an in-memory event, as the worker gets
it from the outbox) built into finished messages by
``tracnotify.pipeline.build_messages`` on a SQLite test environment.
Prints, per scenario: seconds, peak Python memory (tracemalloc), the number
of messages, the largest message, and whether the omission notice is in it.
``tests/test_bounds.py`` checks the content and limits of the same
scenarios; this script only measures.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tracnotify.event import CHANGED, COMMENT, CREATED, TicketEvent  # noqa: E402

MB = 1000 * 1000
CC_ENTRIES = 10000
CUSTOM_FIELDS = 5000
SUBJECT_CHARS = 10000
NOTICE = 'characters omitted; see the ticket]'


def base_values(**values):
    result = {'summary': 'Outsized', 'reporter': 'alice', 'owner': 'joe',
              'description': 'A description.', 'status': 'new',
              'priority': 'major', 'type': 'defect', 'component': '',
              'milestone': '', 'version': '', 'keywords': '', 'cc': '',
              'resolution': ''}
    result.update(values)
    return result


def event(kind=CREATED, values=None, old=None, comment=''):
    return TicketEvent(kind=kind, ticket_id=1, time=int(time.time() * 1e6),
                       author='bob', values=base_values(**(values or {})),
                       old_values=old or {}, comment=comment,
                       cnum=None if kind == CREATED else 1)


def cc_list(count: int) -> str:
    return ', '.join('user%05d@example.org' % i for i in range(count))


def add_custom_fields(env, count: int = CUSTOM_FIELDS) -> None:
    """*count* text custom fields ``f0000``..., as ``[ticket-custom]``."""
    from trac.ticket.api import TicketSystem
    section = env.config['ticket-custom']
    for i in range(count):
        section.set('f%04d' % i, 'text')
    ticket_system = TicketSystem(env)
    del ticket_system.custom_fields
    ticket_system.reset_ticket_fields()


SCENARIOS = {
    '1MB description': lambda env: event(
        values={'description': 'lorem ipsum dolor ' * (MB // 18)}),
    '1MB one-word description': lambda env: event(
        values={'description': 'x' * MB}),
    '1MB comment': lambda env: event(
        COMMENT, comment='lorem ipsum dolor\n' * (MB // 18)),
    '1MB description change': lambda env: event(
        CHANGED, values={'description': 'new text ' * (MB // 9)},
        old={'description': 'old text ' * (MB // 9)}),
    '10,000-char subject': lambda env: event(
        values={'summary': 'word ' * (SUBJECT_CHARS // 5)}),
    '10,000 cc on creation': lambda env: event(
        values={'cc': cc_list(CC_ENTRIES)}),
    '10,000 cc added (public cc)': lambda env: event(
        CHANGED, values={'cc': cc_list(CC_ENTRIES)}, old={'cc': ''}),
    '5,000 custom field changes': lambda env: (
        add_custom_fields(env),
        event(CHANGED,
              values={'f%04d' % i: 'new value %d' % i
                      for i in range(CUSTOM_FIELDS)},
              old={'f%04d' % i: 'old value %d' % i
                   for i in range(CUSTOM_FIELDS)}))[1],
}
OPTIONS = {'10,000 cc added (public cc)': {'use_public_cc': 'true'}}


def make_env(options=None):
    from tests.support.envs import make_stub_env
    env = make_stub_env(tempfile.mkdtemp(prefix='tracnotify-bounds-'), None,
                        options or {})
    env.insert_users([('alice', 'Alice', 'alice@example.net'),
                      ('joe', 'Joe', 'joe@example.net'),
                      ('bob', 'Bob', 'bob@example.net')])
    return env


def measure(name: str) -> dict:
    from tracnotify.config import load_config
    from tracnotify.mail.pipeline import build_messages
    env = make_env(OPTIONS.get(name))
    try:
        ev = SCENARIOS[name](env)
        config = load_config(env)
        tracemalloc.start()
        start = time.perf_counter()
        messages = build_messages(env, config, ev)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        largest = max(messages, key=lambda m: len(m.text))
        return {'name': name, 'seconds': seconds, 'peak_mb': peak / 1e6,
                'messages': len(messages),
                'largest_kb': len(largest.text.encode()) / 1000,
                'total_mb': sum(len(m.text) for m in messages) / 1e6,
                'notice': NOTICE in _decoded(largest.text)}
    finally:
        env.reset_db()
        env.shutdown()


def _decoded(data: str) -> str:
    import email
    import email.policy
    msg = email.message_from_string(data, policy=email.policy.default)
    return msg.get_body(('plain',)).get_content()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', nargs='*', choices=list(SCENARIOS))
    args = parser.parse_args()
    print('%-30s %8s %9s %8s %11s %9s %7s' % (
        'scenario', 'seconds', 'peak MB', 'msgs', 'largest kB', 'total MB',
        'notice'))
    for name in args.only or SCENARIOS:
        r = measure(name)
        print('%-30s %8.2f %9.1f %8d %11.1f %9.1f %7s' % (
            r['name'], r['seconds'], r['peak_mb'], r['messages'],
            r['largest_kb'], r['total_mb'], 'yes' if r['notice'] else 'no'),
            flush=True)


if __name__ == '__main__':
    main()
