"""Hypothesis fuzzing of receive(): whatever bytes arrive (random, mail
built from nasty pieces, real replies with bytes flipped, cut or
inserted), no exception escapes, the exit status is one of 0 / 67 / 75
without an internal error, every message is recorded once, and a reply is
saved whole (its comment and attachments with its record) or not at
all."""

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.envs import make_stub_env
from tests.support.inbound import REPLY_ADDRESS, issue_token, reply_to
from tests.support.users import users
from tests.test_inbound_replies import FIXTURES
from tracnotify.inbound.receive import receive

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.reuse, Phase.generate]
                if os.environ.get("FUZZ_NO_SHRINK") else list(Phase),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    env = make_stub_env(str(tmp_path_factory.mktemp('fuzz')), None, {
        'reply_address': REPLY_ADDRESS, 'reply_rate_limit': '100000',
        'smtp_enabled': 'true'})
    env.insert_users(list(users('alice', 'bob')))
    from tests.support.tickets import create_ticket
    ticket = create_ticket(env)
    token = issue_token(env, ticket.id, 'bob', 'bob@example.net')
    yield env, ticket.id, reply_to(token)
    env.reset_db()
    env.shutdown()


def state(env, ticket: int):
    """What a reply can change: comments, attachments (rows and files),
    inbound records."""
    folder = os.path.join(env.path, 'files', 'attachments')
    files = sum(len(names) for _d, _s, names in os.walk(folder))
    return (env.db_query("SELECT COUNT(*) FROM ticket_change WHERE ticket=%s"
                         " AND field='comment'", (ticket,))[0][0],
            env.db_query("SELECT COUNT(*) FROM attachment")[0][0], files,
            env.db_query("SELECT COUNT(*) FROM tracnotify_inbound")[0][0])


def check(site, raw: bytes, recipient=None) -> None:
    env, ticket, _address = site
    comments, rows, files, records = state(env, ticket)
    outcome = receive(env, raw, recipient)
    assert outcome.exit_code in (0, 67, 75)
    assert outcome.outcome != 'failed', outcome
    after = state(env, ticket)
    assert after[3] == records + 1                  # recorded once
    assert after[1] == after[2]                     # no file without its row
    if outcome.outcome == 'taken':
        assert after[0] - comments + after[1] - rows >= 1
        assert after[0] - comments <= 1
    else:                                           # nothing at all
        assert after[:3] == (comments, rows, files), outcome


PIECES = [
    b'From: bob@example.net\r\n', b'From: =?utf-8?b?/w==?= <bob@example.net>\r\n',
    b'From: <>\r\n', b'From: "unterminated <bob@example.net\r\n',
    b'Subject: =?koi8-r?b?8NLJ18XU?=\r\n', b'Subject: =?x-bogus?q?a?=\r\n',
    b'MIME-Version: 1.0\r\n',
    b'Content-Type: multipart/mixed; boundary="B"\r\n',
    b'Content-Type: multipart/alternative; boundary=B\r\n',
    b'Content-Type: multipart/mixed\r\n',
    b'Content-Type: text/plain; charset=utf-8\r\n',
    b'Content-Type: text/plain; charset="x-unknown"\r\n',
    b'Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n',
    b'Content-Type: text/html; charset=iso-8859-1\r\n',
    b'Content-Type: message/rfc822\r\n', b'Content-Type: ;;;\r\n',
    b'Content-Transfer-Encoding: base64\r\n',
    b'Content-Transfer-Encoding: quoted-printable\r\n',
    b'Content-Transfer-Encoding: x-uuencode\r\n',
    b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n',
    b'Content-Disposition: attachment; filename*=utf-8\'\'%FF%FE\r\n',
    b'Auto-Submitted: no\r\n', b'Precedence: first-class\r\n',
    b'\r\n', b'--B\r\n', b'--B--\r\n', b'hello\r\n', b'> quoted\r\n',
    b'On Wed, Dec 2, 2026 at 1:05 PM Trac <trac@example.org> wrote:\r\n',
    b'=FF=FE=\r\n', b'////AAAA====\r\n', b'\xff\xfe\x00\r\n',
    b'<p>hi<blockquote>old</blockquote>\r\n', b'<script>x</script>\r\n',
    b'-- \r\n', b'\r\n\r\n', b' folded continuation\r\n', b'NoColonLine\r\n',
    b'\x00' * 10, b'x' * 1000 + b'\r\n',
]


@FUZZ
@given(raw=st.binary(max_size=3000))
def test_random_bytes(site, raw):
    check(site, raw, site[2])


@FUZZ
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=40))
def test_mail_from_nasty_pieces(site, pieces):
    check(site, b'To: %s\r\n' % site[2].encode() + b''.join(pieces))


def _fixtures():
    out = []
    for name in sorted(os.listdir(FIXTURES)):
        with open(os.path.join(FIXTURES, name), 'rb') as f:
            out.append(f.read())
    return out


@FUZZ
@given(which=st.integers(0, 3), edits=st.lists(st.tuples(
    st.sampled_from(['flip', 'cut', 'insert']), st.floats(0, 1),
    st.binary(min_size=1, max_size=8)), max_size=6))
def test_real_replies_damaged(site, which, edits):
    raw = _fixtures()[which].replace(b'{reply_to}', site[2].encode()) \
        .replace(b'{message_id}', b'x@example.org').replace(b'{ticket}', b'1')
    for how, where, data in edits:
        at = int(where * len(raw))
        if how == 'flip':
            raw = raw[:at] + bytes([(raw[at:at + 1] or b'\0')[0] ^ 0x5a]) + \
                raw[at + 1:]
        elif how == 'cut':
            raw = raw[:at]
        else:
            raw = raw[:at] + data + raw[at:]
    check(site, raw)
