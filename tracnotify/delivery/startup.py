"""A worker started while the database is down waits for it.

``trac-admin ENV notify worker`` checks whether the environment needs an
upgrade before it runs any command, and that check needs the database: with
the database down (a restart, a server that boots after the workers) it
would exit at once with status 2.  Trac builds every setup participant
before it asks the first one, so :class:`WorkerStartup` (a participant that
never asks for an upgrade) waits in its constructor until the database
answers - in a ``notify worker`` process only, never in tracd or another
command.
"""

import sys
import time
from typing import Sequence

from trac.api import IEnvironmentSetupParticipant
from trac.core import Component, implements
from trac.util.text import exception_to_unicode

#: seconds between attempts to reach the database
PAUSES = (1, 2, 5, 10, 30)


def is_worker_command(argv: Sequence[str]) -> bool:
    """Whether *argv* is ``trac-admin ENV notify worker ...``."""
    return len(argv) >= 4 and [a.lower() for a in argv[2:4]] == \
        ['notify', 'worker']


def wait_for_database(env, stop=None, pauses: Sequence[float] = PAUSES
                      ) -> int:
    """Return once the database of *env* answers (or *stop()* is true);
    returns how many attempts failed.  Each failure is logged and printed
    once, then every ``pauses[-1]`` seconds."""
    failed = 0
    while stop is None or not stop():
        try:
            env.db_query('SELECT 1')
        except Exception as e:
            failed += 1
            message = 'tracnotify worker: the database is unreachable ' \
                      '(%s); waiting' % exception_to_unicode(e)
            env.log.warning(message)
            if failed == 1:
                print(message, file=sys.stderr, flush=True)
            time.sleep(pauses[min(failed, len(pauses)) - 1])
            continue
        if failed:
            env.log.info('tracnotify worker: the database answers after %d '
                         'failed attempts', failed)
        return failed
    return failed


class WorkerStartup(Component):
    """Makes ``notify worker`` wait for its database (see module doc)."""

    implements(IEnvironmentSetupParticipant)

    def __init__(self) -> None:
        # (SIGTERM keeps its default meaning while it waits: nothing is
        # claimed yet, so nothing is left behind)
        if is_worker_command(sys.argv):
            wait_for_database(self.env)

    def environment_created(self):
        pass

    def environment_needs_upgrade(self):
        return False

    def upgrade_environment(self):
        pass
