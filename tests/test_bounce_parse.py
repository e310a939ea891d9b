"""The bounce parser: RFC 3464 DSNs and the usual non-standard bounces
(through flufl.bounce), hard or soft from the status code, the returned
copy's Message-ID, where the VERP address is; never an exception."""

import email
import email.policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bounce_mail import bounce_bytes, bounce_message
from tracnotify.inbound.bounce_parse import parse_bounce, verp_candidates

VERP = 'trac+bounce-12-0123456789abcdef0123@example.org'
WHO = 'Alice.Old@Example.NET'


@pytest.mark.parametrize('name, kind, hard, status, words', [
    ('dsn_hard', 'dsn', True, '5.1.1', 'User unknown'),
    ('dsn_soft', 'dsn', False, '4.2.2', 'Mailbox full'),
    ('postfix_legacy', 'heuristic', True, '5.7.1', 'Mailbox disabled'),
    ('exim', 'heuristic', True, '5.1.1', 'No such user'),
])
def test_each_kind_names_the_address_and_its_status(name, kind, hard,
                                                    status, words):
    report = parse_bounce(bounce_message(name, verp=VERP, recipient=WHO,
                                         message_id='<7.x@example.org>'))
    assert report is not None and report.kind == kind
    failure = report.failure_for(WHO)
    assert failure is not None
    assert [f.address for f in report.failures] == [WHO.lower()]
    assert (failure.hard, failure.status) == (hard, status)
    assert report.hard is hard
    assert words in failure.detail
    assert '\n' not in failure.detail and len(failure.detail) <= 300
    assert report.original_message_id == '<7.x@example.org>'


def test_delayed_is_soft_whatever_the_code():
    raw = bounce_bytes('dsn_hard', verp=VERP, recipient=WHO).replace(
        b'Action: failed', b'Action: delayed')
    report = parse_bounce(email.message_from_bytes(raw))
    assert report is not None and not report.hard


def test_an_auto_reply_and_a_person_are_not_bounces():
    assert parse_bounce(bounce_message('vacation', verp=VERP)) is None
    msg = email.message_from_string('From: bob@example.org\nTo: %s\n'
                                    'Subject: hi\n\nHello\n' % VERP)
    assert parse_bounce(msg) is None


def test_the_verp_address_is_found_where_mtas_write_it():
    msg = bounce_message('dsn_hard', verp=VERP)
    assert VERP in verp_candidates(msg)
    assert verp_candidates(msg, 'given@example.org')[0] == \
        'given@example.org'
    assert VERP in verp_candidates(bounce_message('exim', verp=VERP))


def test_parsed_with_the_modern_policy_too():
    msg = email.message_from_bytes(bounce_bytes('dsn_hard', verp=VERP,
                                                recipient=WHO),
                                   policy=email.policy.default)
    report = parse_bounce(msg)
    assert report is not None and report.failure_for(WHO).status == '5.1.1'


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.sampled_from(
    ['dsn_hard', 'dsn_soft', 'postfix_legacy', 'exim', 'vacation']),
    st.integers(min_value=0, max_value=3000))
def test_no_exception_escapes(junk, name, cut):
    raw = bounce_bytes(name)
    for data in (junk, raw[:cut] + junk, raw[:cut] + junk + raw[cut:]):
        msg = email.message_from_bytes(data)
        report = parse_bounce(msg)
        assert report is None or report.failures
        verp_candidates(msg)
