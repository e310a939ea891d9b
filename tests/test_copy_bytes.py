"""Each copy's personal headers are spliced from prepared bytes: they are
byte for byte what the ``email`` package writes for the same recipient
(every kind of address, reason and link, plain or not)."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracnotify.config import NotifyConfig
from tracnotify.mail.message import (
    AddressError,
    Recipient,
    _spliced_headers,
    email_personal_headers,
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
