"""SMTP PIPELINING (RFC 2920): a server that offers it gets each message in
one round trip, and the same bytes and per-recipient outcomes as one that
does not (the plain ``smtplib.sendmail`` path)."""

import pytest

from tests.support.smtp_sink import SinkHandler
from tests.support.tickets import create_ticket, deliver

CC = ', '.join(['carol@example.com', 'dave@example.com', 'erin@example.com',
                'frank@example.com', 'gone@example.org',
                'full@example.org'])
DESCRIPTION = 'A description.'
#: lines that start with a dot are doubled on the wire and undone by the
#: server: a mistake there changes the text people get
DOTTED = ('From: a@example.org\r\nSubject: dots\r\n\r\n.hidden\r\n'
          'A line\r\n..two dots\r\n.\r\nno end of line')


def outbox(env):
    """{recipient: (state, last_error, the bytes stored for the copy)}"""
    from tracnotify import outbox as queue
    rows = env.db_query('SELECT id, recipient, state, last_error, body_id, '
                        'message FROM tracnotify_message')
    shared = queue.bodies.load_bodies(env, [r[4] for r in rows])
    return {recipient: (state, error,
                        (message + (shared[body].data if body in shared
                                    else '')).encode('utf-8'))
            for _id, recipient, state, error, body, message in rows}


def run(make_env, smtp_sink, pipelining: bool, **replies):
    handler = SinkHandler(pipelining=pipelining, **replies)
    sink = smtp_sink(handler=handler)
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    create_ticket(env, cc=CC, description=DESCRIPTION)
    report = deliver(env)
    return env, sink, report


@pytest.mark.parametrize('pipelining', [True, False])
def test_each_copy_arrives_as_stored(make_env, smtp_sink, pipelining):
    env, sink, report = run(make_env, smtp_sink, pipelining)
    assert report.sent == 7 and not report.errors
    stored = outbox(env)
    got = {item.rcpt_tos[0]: item.data for item in sink.received}
    assert set(got) == set(stored)
    for recipient, data in got.items():
        assert data == stored[recipient][2]


@pytest.mark.parametrize('pipelining', [True, False])
def test_lines_starting_with_a_dot(make_env, smtp_sink, pipelining):
    from tracnotify.config import load_config
    from tracnotify.delivery.transports.smtp import SmtpTransport
    from tracnotify.outbox import OutgoingMessage
    sink = smtp_sink(handler=SinkHandler(pipelining=pipelining))
    env = make_env(smtp_server='127.0.0.1', smtp_port=str(sink.port))
    transport = SmtpTransport(load_config(env))
    shared = '.' + DOTTED[21:]          # one object for two copies
    parts = [(DOTTED[:20], DOTTED[20:]), ('', DOTTED), ('.' + DOTTED, ''),
             (DOTTED[:21], DOTTED[21:]), ('X: y\r\n', shared),
             ('X: z\r\n', shared), ('', '\r\n.\r\n')]
    messages = [OutgoingMessage(n, 1, 1, 'ticket_changed', '<m@x>',
                                'trac@example.org', 'r%d@example.org' % n,
                                'cc', 'dots', head, 0, shared=shared)
                for n, (head, shared) in enumerate(parts)]
    try:
        results = transport.send(messages)
    finally:
        transport.close()
    assert [r.ok for r in results] == [True] * len(parts)
    assert [item.data for item in sink.received] == \
        [m.data if m.data.endswith(b'\r\n') else m.data + b'\r\n'
         for m in messages]     # smtplib ends the last line


def test_outcomes_match_the_plain_path(make_env, smtp_sink):
    """Refused recipients (5xx dead, 4xx retried), a refused message text,
    the others sent: per copy, the same states and errors both ways."""
    def replies():
        return {'rcpt_replies': {'gone@example.org': '550 5.1.1 no such user',
                                 'full@example.org': '452 4.2.2 mailbox full'},
                'data_replies': ['451 4.3.0 try later',
                                 '554 5.6.0 content refused']}
    outcomes = []
    for pipelining in (True, False):
        env, sink, report = run(make_env, smtp_sink, pipelining, **replies())
        assert (report.sent, report.retrying, report.dead) == (3, 2, 2)
        assert len(sink.received) == 3
        outcomes.append({r: (state, error) for r, (state, error, _d)
                         in outbox(env).items()})
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]['gone@example.org'] == (
        'dead', 'recipient refused: 550 5.1.1 no such user')
    assert outcomes[0]['full@example.org'] == (
        'pending', 'recipient refused: 452 4.2.2 mailbox full')


def test_server_closing_mid_batch(make_env, smtp_sink):
    """A 421 in the middle of a pipelined batch: that copy is retried, the
    rest go on a new connection."""
    env, sink, report = run(make_env, smtp_sink, True,
                            rcpt_replies={'dave@example.com':
                                          '421 4.3.2 shutting down'})
    assert (report.sent, report.retrying, report.dead) == (6, 1, 0)
    state, error, _data = outbox(env)['dave@example.com']
    assert state == 'pending' and '421 4.3.2' in error
