"""Each copy's personal headers are spliced from prepared bytes: they are
byte for byte what the ``email`` package writes for the same recipient
(every kind of address, reason and link, plain or not)."""

import re
import string
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracnotify.config import NotifyConfig
from tracnotify.mail.chrome import clean_header_text
from tracnotify.mail.message import (
    BODY_POLICY,
    AddressError,
    MailHeaders,
    Recipient,
    _spliced_headers,
    choose_cte,
    email_personal_headers,
    encode_shared_part,
    make_address,
    personal_headers,
)

URL = 'http://trac.example.org/tracnotify/unsubscribe/'
ADDRESSES = [
    'a@example.org', 'First.Last+tag@sub.example.co.uk', 'x_y-z@a-b.example',
    'UPPER@EXAMPLE.ORG', 'o\'brien@example.org', 'a#b@example.org',
    'user@localhost', 'user', 'ü@example.org', 'user@bücher.example',
    'very.long.local.part.%s@example.org' % ('x' * 60),
    'a@%s.example.org' % ('d' * 55), 'a..b@example.org', 'a@example.org.',
    '=?utf-8?q?x?=@example.org',
]
REASONS = ['cc', 'owner', 'always_bcc', 'reporter', 'subscribed.rule-1',
           'a reason with spaces', 'grün', '=?utf-8?q?x?=', 'x' * 60]
LINKS = [None, '', URL + 'AbC_dEf-123456789012345678901234',
         URL + '%7Efoo', 'https://h.example/p/' + 'T' * 870,
         'https://h.example/p/' + 'T' * 890, URL + 'spa ce',
         URL + 'ü', 'mailto:x@example.org', URL + '=?x?=']


def both(recipient: Recipient, public: bool = False):
    config = NotifyConfig(use_public_cc=public)
    visible = [recipient, Recipient('other@example.org', 'cc', 'cc')]
    try:
        expected = email_personal_headers(recipient, visible, config)
    except AddressError:
        with pytest.raises(AddressError):
            personal_headers(recipient, visible, config)
        return None, None
    return personal_headers(recipient, visible, config), expected


@pytest.mark.parametrize('address', ADDRESSES)
@pytest.mark.parametrize('visibility', ['to', 'cc', 'bcc'])
def test_addresses(address, visibility):
    spliced, expected = both(Recipient(address, 'cc', visibility,
                                       unsubscribe_url=LINKS[2]))
    assert spliced == expected


def test_common_copies_are_spliced():
    """The common copy takes the prepared bytes, not the ``email`` path."""
    config = NotifyConfig()
    for visibility in ('to', 'cc', 'bcc'):
        assert _spliced_headers(Recipient('a@example.org', 'cc', visibility,
                                          unsubscribe_url=LINKS[2]),
                                config) is not None


@pytest.mark.parametrize('reason', REASONS)
@pytest.mark.parametrize('link', LINKS)
def test_reasons_and_links(reason, link):
    spliced, expected = both(Recipient('a@example.org', reason,
                                       unsubscribe_url=link))
    assert spliced == expected


@pytest.mark.parametrize('visibility', ['to', 'cc', 'bcc'])
def test_public_cc(visibility):
    spliced, expected = both(Recipient('a@example.org', 'cc', visibility),
                             public=True)
    assert spliced == expected


TEXT = string.ascii_letters + string.digits + '._+-@=?#%~/ :ü'


@settings(max_examples=300, deadline=None)
@given(st.text(TEXT, min_size=1, max_size=90),
       st.text(TEXT, min_size=1, max_size=45),
       st.one_of(st.none(), st.text(TEXT, max_size=60).map(
           lambda t: URL + t)))
def test_any_recipient(address, reason, link):
    spliced, expected = both(Recipient(address, reason,
                                       unsubscribe_url=link))
    assert spliced == expected


# The shared part ---------------------------------------------------------------

def email_shared_part(headers: MailHeaders, body: str, config: NotifyConfig,
                      html=None, fmt='text') -> bytes:
    """The shared part as one EmailMessage writes it (the implementation
    before the header lines were prepared one by one)."""
    msg = EmailMessage(policy=SMTP)
    msg['From'] = Address(clean_header_text(headers.from_name, 200),
                          *split(headers.from_addr))
    if headers.reply_to:
        msg['Reply-To'] = make_address(headers.reply_to)
    msg['Subject'] = clean_header_text(headers.subject)
    msg['Date'] = formatdate(headers.date, localtime=False)
    msg['Message-ID'] = headers.msgid
    if headers.root_msgid:
        msg['In-Reply-To'] = headers.root_msgid
        msg['References'] = headers.root_msgid
    for name, value in headers.extra:
        msg[name] = clean_header_text(str(value), 900)
    msg['Auto-Submitted'] = 'auto-generated'
    msg['Precedence'] = 'bulk'
    msg.policy = BODY_POLICY
    if html is not None and fmt == 'html':
        msg.set_content(html, subtype='html', charset='utf-8',
                        cte=choose_cte(html, config.mime_encoding))
    else:
        msg.set_content(body, subtype='plain', charset='utf-8',
                        cte=choose_cte(body, config.mime_encoding))
        if html is not None and fmt == 'both':
            msg.add_alternative(html, subtype='html', charset='utf-8',
                                cte=choose_cte(html, config.mime_encoding))
    return msg.as_bytes(policy=SMTP)


def split(addr: str):
    address = make_address(addr)
    return address.username, address.domain


HEADER_TEXT = st.text(st.characters(blacklist_categories=('Cs',)),
                      max_size=120)


@settings(max_examples=150, deadline=None)
@given(name=HEADER_TEXT, subject=HEADER_TEXT, extra=HEADER_TEXT,
       body=st.text(max_size=300), root=st.booleans(),
       reply=st.sampled_from(['', 'reply@example.org', 'Rép <r@b.org>']),
       sender=st.sampled_from(['trac@example.org', 'trac@bücher.example',
                               'no-at', 'bad@@x']),
       encoding=st.sampled_from(['none', 'base64', 'qp']),
       fmt=st.sampled_from(['text', 'html']))
def test_shared_part_is_what_one_email_message_writes(
        name, subject, extra, body, root, reply, sender, encoding, fmt):
    headers = MailHeaders(name, sender, reply, subject, '<m.1@example.org>',
                          '<r.0@example.org>' if root else None,
                          1700000000.5,
                          (('X-Trac-Project', extra), ('X-Trac-Ticket-ID', 7),
                           ('List-Id', '"%s" <p.example.org>' % extra)))
    config = NotifyConfig(mime_encoding=encoding)
    html = '<p>%s</p>' % body if fmt == 'html' else None
    try:
        expected = email_shared_part(headers, body, config, html, fmt)
    except (AddressError, ValueError) as e:
        with pytest.raises(type(e)):
            encode_shared_part(headers, body, config, html, fmt)
        return
    assert encode_shared_part(headers, body, config, html, fmt) == expected


def test_shared_part_multipart_alternative():
    headers = MailHeaders('Trac', 'trac@example.org', '', 'S', '<m@x>',
                          None, 1700000000.0)
    config = NotifyConfig()
    ours = encode_shared_part(headers, 'text ü', config, '<p>html</p>',
                              'both')
    theirs = email_shared_part(headers, 'text ü', config, '<p>html</p>',
                               'both')
    boundary = re.compile(rb'=+[0-9]+=+')
    assert boundary.sub(b'B', ours) == boundary.sub(b'B', theirs)


#: ASCII with every kind of line end, control character and spacing
ASCII_TEXT = st.text(st.sampled_from(string.printable + '\x00\x7f'),
                     max_size=160)
SUBJECTS = st.one_of(ASCII_TEXT, st.from_regex(
    r'\[[A-Za-z ]{1,20}\] (Re: )?#[0-9]{1,5}: [ -~]{0,90}', fullmatch=True))
MSGIDS = st.one_of(
    st.from_regex(r'<[0-9]{3}\.[0-9a-f]{32}@[a-z.-]{1,30}>', fullmatch=True),
    st.from_regex(r'<[ -~]{1,70}>', fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(subject=SUBJECTS, body=ASCII_TEXT, msgid=MSGIDS,
       date=st.floats(0, 4e9), extra=ASCII_TEXT,
       fmt=st.sampled_from(['text', 'html']))
def test_plain_headers_and_7bit_bodies_are_what_email_writes(
        subject, body, msgid, date, extra, fmt):
    """The lines written without the header registry (plain values) and
    the 7bit bodies written without ``set_content``."""
    headers = MailHeaders('Trac', 'trac@example.org', '', subject, msgid,
                          msgid, date, (('X-Trac-Ticket-URL', extra),
                                        ('X-Trac-Notification-Type', extra)))
    config = NotifyConfig(mime_encoding='none')
    html = '<p>%s</p>' % body if fmt == 'html' else None
    try:
        expected = email_shared_part(headers, body, config, html, fmt)
    except Exception as e:      # '<(>': the email package's IndexError
        with pytest.raises(type(e)):
            encode_shared_part(headers, body, config, html, fmt)
        return
    assert encode_shared_part(headers, body, config, html, fmt) == expected
