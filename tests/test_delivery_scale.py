"""Parallel SMTP connections and burst control, against a real SMTP server."""

import collections
import threading
import time

from trac.env import Environment

from tests.support.disk_env import make_disk_env
from tests.support.tickets import create_ticket, deliver
from tracnotify.delivery.throttle import Throttle


def cc_list(count):
    return ', '.join('w%03d@example.org' % i for i in range(count))


def test_parallel_connections_send_each_message_once(sink, tmp_path):
    sink.handler.delay = 0.01           # let the connections overlap
    path = make_disk_env(str(tmp_path), {   # threads need a database file
        'smtp_enabled': 'true', 'smtp_server': '127.0.0.1',
        'smtp_port': str(sink.port), 'smtp_from': 'trac@example.org',
        'delivery': 'worker', 'smtp_connections': '4',
        'outbox_batch_size': '10', 'batch_window': '0'})
    env = Environment(path)
    create_ticket(env, reporter='reporter@example.org', cc=cc_list(119))
    report = deliver(env)
    env.shutdown()
    counts = collections.Counter(r for m in sink.received for r in m.rcpt_tos)
    assert report.sent == len(counts) == 120
    assert max(counts.values()) == 1
    assert len({m.peer for m in sink.received}) == 4


def test_burst_then_pause(sink, sink_env):
    env = sink_env(smtp_burst='10', smtp_burst_pause='0.4',
                   outbox_batch_size='25')
    create_ticket(env, cc=cc_list(34))      # + the reporter: 35
    report = deliver(env)
    assert report.sent == 35
    times = sorted(m.at for m in sink.received)
    gaps = [b - a for a, b in zip(times, times[1:])]
    pauses = [i for i, gap in enumerate(gaps) if gap >= 0.3]
    # 35 messages in bursts of 10: a pause after the 10th, 20th and 30th
    assert pauses == [9, 19, 29]


def test_throttle_grants_at_most_a_burst():
    throttle = Throttle(burst=5, pause=0.01)
    assert throttle.take(3) == 3
    assert throttle.take(3) == 2        # the rest of the burst
    assert throttle.take(3) == 3        # after a pause
    assert throttle.pauses == 1
    assert Throttle(burst=0, pause=5).take(1000) == 1000


def test_throttle_pause_ends_when_asked_to_stop():
    stop = threading.Event()
    throttle = Throttle(burst=1, pause=30, stop=stop)
    assert throttle.take(1) == 1
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()
    assert throttle.take(1) == 0
    assert time.monotonic() - start < 5
