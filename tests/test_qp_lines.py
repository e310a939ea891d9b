"""Quoted-printable body lines stay within RFC 2045 6.7's 76 characters,
in every part (text, HTML, both), over many generated bodies, and on the
mail a real SMTP server receives."""

import email
import email.policy
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.tickets import change_ticket, create_ticket, deliver_to_sink
from tracnotify.config import NotifyConfig
from tracnotify.mail.message import MailHeaders, encode_shared_part

HEADERS = MailHeaders(from_name='Trac', from_addr='trac@example.org',
                      reply_to='', subject='[Test] #1: s', msgid='<a@b>',
                      root_msgid=None, date=0.0)
#: text that pushes quoted-printable to its limits: long lines, escapes
#: (=XX) of multi-byte characters right at the soft line break, spaces
#: and tabs before line ends
ALPHABET = st.sampled_from(list('a =\t.<>"é€日\u00a0') + ['\n', 'ab', 'x' * 40])
BODIES = st.lists(ALPHABET, max_size=400).map(''.join)


def qp_lines(data: bytes):
    """Every encoded line of every quoted-printable part of *data*."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    found = []
    for part in message.walk():
        if part.get('Content-Transfer-Encoding') == 'quoted-printable':
            found.extend(part.get_payload().splitlines())
    return found


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=BODIES, html=BODIES, fmt=st.sampled_from(['text', 'html', 'both']),
       encoding=st.sampled_from(['qp', 'none']))
def test_qp_lines_at_most_76(text, html, fmt, encoding):
    config = replace(NotifyConfig(), mime_encoding=encoding)
    data = encode_shared_part(HEADERS, text + 'é', config,
                              '<p>%s é</p>' % html, fmt)
    lines = qp_lines(data)
    assert lines, 'a quoted-printable part'
    assert max(len(line) for line in lines) <= 76
    # and the text is the same after decoding
    message = email.message_from_bytes(data, policy=email.policy.default)
    sent = text + 'é' if fmt == 'text' else '<p>%s é</p>' % html
    expected = b'\n'.join(sent.encode().splitlines()).decode() + '\n'
    last = [p for p in message.walk() if not p.is_multipart()][-1]
    assert last.get_content().replace('\r\n', '\n') == expected

def test_html_mail_on_the_wire(sink_env, sink):
    from trac.web.session import DetachedSession
    env = sink_env((('joe', 'Joe', 'joe@example.net'),))
    session = DetachedSession(env, 'joe')
    session['tracnotify.format'] = 'both'
    session.save()
    ticket = create_ticket(env, owner='joe', summary='Grüße')
    deliver_to_sink(env, sink, check_errors=True)
    comment = ' '.join(['Übergrößenträger aaaaaaaaaaaaaaaaaa'] * 30)
    change_ticket(env, ticket.id, author='joe', comment=comment)
    item, = [i for i in deliver_to_sink(env, sink, check_errors=True)
             if i.rcpt_tos == ['joe@example.net']]
    lines = qp_lines(item.data)
    assert len(lines) > 20
    assert max(len(line) for line in lines) <= 76
