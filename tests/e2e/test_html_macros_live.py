"""Macros in the HTML mail of a real tracd (issue 12, item 6): a comment
with ``[[TicketQuery(id=N)]]`` and ``[[Image(file.png)]]`` of the
ticket's attachment, posted through the web form, is mailed with the
query's result as the anonymous web view shows it and a link to the
attachment that reads ``file.png``; no "Error: Macro ... failed"."""

import time

import pytest

PNG = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01'
       b'\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8'
       b'\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82')


@pytest.fixture(scope='module')
def site(start_site):
    return start_site(**{'default_format.email': 'text/html'})


def mail_of_kind(sink, kind, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in list(sink.received):
            if item.message['X-Trac-Notification-Type'] == kind:
                return item.message
        time.sleep(0.2)
    raise AssertionError('no %s mail' % kind)


def test_macros_render_as_for_anonymous(site):
    trac, sink = site
    alice = trac.client('alice')
    first = alice.create_ticket(summary='The first ticket',
                                description='One.')
    second = alice.create_ticket(summary='The second ticket',
                                 description='Two.', cc='carol@example.com')
    alice.attach_file(second, 'file.png', PNG)
    anonymous_view = trac.client().get('/query?id=%d' % first)
    assert 'The first ticket' in anonymous_view
    sink.received.clear()
    alice.change_ticket(second, comment='See [[TicketQuery(id=%d)]] and '
                        '[[Image(file.png)]].' % first)
    message = mail_of_kind(sink, 'ticket_comment')
    assert message.get_content_type() == 'text/html'
    html = message.get_content()
    assert 'Error' not in html and 'NoneType' not in html
    assert 'href="%s/ticket/%d"' % (trac.url, first) in html
    assert 'The first ticket' in html
    link = '<a href="%s/attachment/ticket/%d/file.png"' % (trac.url, second)
    assert link in html
    assert html.split(link, 1)[1].split('</a>', 1)[0].rsplit('>', 1)[1] == \
        'file.png'
    assert '<img' not in html
    assert 'Macro TicketQuery' not in trac.trac_log()
