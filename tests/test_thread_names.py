"""Helper threads of a delivery pass never look like delivery threads."""

import sys
import threading
import time

import pytest

from tracnotify.outbox.keeper import LeaseKeeper
from tracnotify.threadname import set_native_name

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'),
                                reason='native thread names: Linux only')


def native_names() -> list:
    import os
    names = []
    for tid in os.listdir('/proc/self/task'):
        try:
            with open('/proc/self/task/%s/comm' % tid) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def test_lease_keeper_started_by_the_delivery_thread_has_its_own_name(
        make_env):
    env = make_env()
    seen = {}

    def delivery_thread():
        set_native_name('tracnotify-dlv')
        with LeaseKeeper(env):
            for _ in range(100):     # the keeper names itself as it starts
                seen['names'] = native_names()
                if seen['names'].count('tracnotify-dlv') == 1:
                    break
                time.sleep(0.01)

    thread = threading.Thread(target=delivery_thread)
    thread.start()
    thread.join()
    assert seen['names'].count('tracnotify-dlv') == 1, seen['names']
