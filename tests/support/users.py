"""The people of the tests, defined once: ``(username, full name,
e-mail)``, as ``env.insert_users`` takes them; and their preferences."""

from typing import Tuple

from trac.web.session import DetachedSession

Person = Tuple[str, str, str]

PEOPLE = {p[0]: p for p in (
    ('alice', 'Alice A', 'alice@example.net'),        # the usual reporter
    ('bob', 'Bob Updater', 'bob@example.net'),        # the usual updater
    ('carol', 'Carol C', 'carol@example.net'),
    ('dave', 'Dave D', 'dave@example.net'),
    ('dora', 'Dora D', 'dora@example.net'),
    ('erin', 'Erin E', 'erin@example.net'),
    ('frank', 'Frank F', 'frank@example.net'),
    ('hans', 'Hans H', 'hans@example.net'),           # reads German
    ('hidden', 'Hidden H', 'hidden@example.net'),     # may not view some
    ('ivan', 'Ivan I', 'ivan@пример.example'),        # an IDN domain
    ('jane', 'Jane J', 'jane.@example.org'),          # no valid From
    ('joe', 'Joe Owner', 'joe@example.net'),          # the usual owner
    ('kim', 'Kim New', 'kim@example.net'),
    ('marie', 'Marie M', 'marie@example.net'),        # reads French
    ('zoe', 'Zoe NoMail', ''),                        # no address
)}


def users(*names: str) -> Tuple[Person, ...]:
    """The people called *names*, in that order."""
    return tuple(PEOPLE[name] for name in names)


def full_name(name: str) -> str:
    """The full name of *name*, as Trac shows it."""
    return PEOPLE[name][1]


def set_session(env, sid: str, **attrs) -> None:
    """Store session attributes (preferences) of user *sid*."""
    session = DetachedSession(env, sid)
    for name, value in attrs.items():
        session[name] = value
    session.save()
