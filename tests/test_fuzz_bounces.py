"""Hypothesis fuzzing of bounces through receive(): bounce fixtures cut,
flipped and padded with junk, to good, forged and damaged VERP
addresses; no exception escapes, no internal error, every message is
recorded once, a bounce counts only for a real copy and at most once,
and nothing but a bounce of a good token ever counts."""

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.bounce_mail import NAMES, bounce_bytes
from tests.support.envs import make_stub_env
from tracnotify.inbound.receive import receive
from tracnotify.mail import verp

BOUNCE = 'trac+bounce-{token}@example.org'
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.reuse, Phase.generate]
                if os.environ.get("FUZZ_NO_SHRINK") else list(Phase),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    env = make_stub_env(str(tmp_path_factory.mktemp('fuzz-bounces')), None,
                        {'bounce_address': BOUNCE, 'smtp_enabled': 'true',
                         'bounce_threshold': '0'})
    from tests.support.admin_pages import add_messages
    ids = add_messages(env, 3)
    secret = verp.read_secret(env)
    good = [verp.envelope_sender(BOUNCE, secret, i) for i in ids]
    yield env, ids, good
    env.reset_db()
    env.shutdown()


def counts(env):
    return (env.db_query('SELECT COUNT(*) FROM tracnotify_bounce')[0][0],
            env.db_query('SELECT COUNT(*) FROM tracnotify_inbound')[0][0])


def damage(raw: bytes, cut: int, junk: bytes, flip: int) -> bytes:
    raw = raw[:cut] + junk + raw[cut:]
    if raw and flip < len(raw):
        raw = raw[:flip] + bytes([raw[flip] ^ 0x5a]) + raw[flip + 1:]
    return raw


@FUZZ
@given(name=st.sampled_from(NAMES), which=st.integers(0, 5),
       cut=st.integers(0, 4000), junk=st.binary(max_size=200),
       flip=st.integers(0, 4000), envelope=st.booleans())
def test_damaged_bounces_never_escape_and_count_only_real_copies(
        site, name, which, cut, junk, flip, envelope):
    env, ids, good = site
    addresses = good + [BOUNCE.replace('{token}', '%d-%s' % (ids[0], '0' * 20)),
                        BOUNCE.replace('{token}', 'x' * 10),
                        'somebody@example.org']
    address = addresses[which]
    raw = damage(bounce_bytes(name, verp=address), cut, junk, flip)
    bounces, records = counts(env)
    outcome = receive(env, raw, address if envelope else None)
    assert outcome.exit_code in (0, 67, 75)
    assert outcome.outcome != 'failed', outcome
    after_bounces, after_records = counts(env)
    assert after_records == records + 1
    assert after_bounces - bounces in (0, 1)
    if after_bounces > bounces:
        assert outcome.kind == 'bounce' and outcome.outcome == 'taken'
    rows = env.db_query('SELECT message_id FROM tracnotify_bounce')
    assert {r[0] for r in rows} <= set(ids)
    assert len(rows) == len({r[0] for r in rows})    # each copy once


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from([0, 1, 2]))
def test_random_bytes_to_the_bounce_address(site, junk, which):
    env, ids, good = site
    bounces, records = counts(env)
    outcome = receive(env, b'To: ' + good[which].encode() + b'\r\n' + junk,
                      good[which] if which == 2 else None)
    assert outcome.exit_code in (0, 67, 75) and outcome.outcome != 'failed'
    assert counts(env)[1] == records + 1
