"""E-mail addresses beyond ASCII.

* Internationalised domain names (``info@münchen.example``) go out in
  their ASCII form (punycode, ``xn--mnchen-3ya.example``), converted by the
  ``idna`` package: IDNA 2008 with the UTS 46 mapping, as mail software
  does today (Python's built-in ``idna`` codec is IDNA 2003).
* Internationalised local parts (``jörg@example.org``) cannot be written
  in ASCII at all: they need SMTPUTF8 (RFC 6531) from the server and
  UTF-8 headers (RFC 6532).

ASCII addresses are left exactly as they are.
"""

import re
import unicodedata
from typing import Optional, Tuple

import idna

#: RFC 5322 atext, plus (RFC 6531) any non-ASCII character that is not a
#: control, a separator or a format character
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_ascii_local_re = re.compile(r'^[%s]+(\.[%s]+)*$' % (_ATEXT, _ATEXT))
_UTF8 = '\u0080-\U0010ffff'
_utf8_local_re = re.compile(r'^[%s%s]+(\.[%s%s]+)*$'
                            % (_UTF8, _ATEXT, _UTF8, _ATEXT))
#: the forms an address is typed in: ``addr``, ``<addr>``, ``Name <addr>``
_bracketed_re = re.compile(r'^(?:.*\s)?<\s*([^<>\s]+)\s*>$|^([^<>\s]+)$',
                           re.S)


class IDNError(ValueError):
    """A domain that IDNA 2008 / UTS 46 cannot convert."""


def ascii_domain(domain: str) -> str:
    """*domain* as it goes on the wire: unchanged when it is ASCII, its
    IDNA 2008 (UTS 46) ASCII form otherwise."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode('ascii')
    except (idna.IDNAError, UnicodeError) as e:
        raise IDNError('%s: %s' % (domain, e))


def needs_smtputf8(address: str) -> bool:
    """Whether *address* can only be sent with SMTPUTF8 (RFC 6531)."""
    return not (address or '').isascii()


def valid_local_part(local: str, utf8: bool = False) -> bool:
    """Whether *local* is a dot-atom (RFC 5322; with *utf8*, RFC 6531's,
    which admits non-ASCII characters other than controls and spaces)."""
    if local.isascii():
        return bool(_ascii_local_re.match(local))
    if not utf8 or not _utf8_local_re.match(local):
        return False
    return not any(unicodedata.category(c)[0] in 'CZ'
                   for c in local if not c.isascii())


def normalize_address(address: str) -> str:
    """*address* with its domain in ASCII (punycode); ASCII addresses and
    short ones (no ``@``) unchanged.  Raises :class:`IDNError`."""
    local, at, domain = (address or '').rpartition('@')
    if not at or domain.isascii():
        return address
    return '%s@%s' % (local, ascii_domain(domain))


def international_address(candidate: str,
                          ignore_domains=()) -> Optional[str]:
    """The address in *candidate* (``addr``, ``<addr>`` or ``Name <addr>``)
    when it is one that only non-ASCII rules accept: an IDN domain or an
    internationalised local part.  None for anything else (ASCII
    addresses are Trac's to match), for broken ones, and for domains in
    *ignore_domains* (in either form)."""
    match = _bracketed_re.match((candidate or '').strip())
    if not match:
        return None
    address = match.group(1) or match.group(2)
    if address.isascii() or address.count('@') != 1:
        return None
    local, _at, domain = address.partition('@')
    if not local or not domain or not valid_local_part(local, utf8=True):
        return None
    try:
        wire = ascii_domain(domain.rstrip('.'))
    except IDNError:
        return None
    if '.' not in wire:
        return None
    ignored = {d.lower() for d in ignore_domains}
    if domain.lower() in ignored or wire.lower() in ignored:
        return None
    return address


def split_address(address: str) -> Tuple[str, str]:
    """``(local, domain)`` of an address (domain '' for a short one)."""
    local, at, domain = address.rpartition('@')
    return (local, domain) if at else (address, '')
