"""Mail templates are parsed once per process, and an administrator's
override is still picked up (added, changed, removed) while Trac runs."""

import os

from genshi.template import MarkupTemplate, NewTextTemplate

from tracnotify.mail.templates import load_template

NAME = 'mail/ticket_body.txt'


def write(path: str, text: str, mtime: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    os.utime(path, (mtime, mtime))


def test_template_parsed_once(tmp_path):
    env_templates = str(tmp_path / 'templates')
    first = load_template(env_templates, NAME, NewTextTemplate)
    assert load_template(env_templates, NAME, NewTextTemplate) is first
    html = load_template(env_templates, 'mail/ticket_body.html',
                         MarkupTemplate)
    assert load_template(env_templates, 'mail/ticket_body.html',
                         MarkupTemplate) is html


def test_override_added_changed_removed(tmp_path):
    env_templates = str(tmp_path / 'templates')
    own = load_template(env_templates, NAME, NewTextTemplate)
    assert own.filepath.startswith(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    override = os.path.join(env_templates, NAME)
    write(override, 'Custom one\n', 1000000000)
    custom = load_template(env_templates, NAME, NewTextTemplate)
    assert custom.generate().render(encoding=None) == 'Custom one\n'
    write(override, 'Custom two\n', 1000000100)
    assert load_template(env_templates, NAME, NewTextTemplate).generate(
        ).render(encoding=None) == 'Custom two\n'
    os.remove(override)
    again = load_template(env_templates, NAME, NewTextTemplate)
    assert again.filepath == own.filepath
    assert load_template(env_templates, NAME, NewTextTemplate) is again


def test_formatters_share_the_parsed_template(make_env):
    """Each change used to parse ticket_body.txt again (a new loader per
    render): two formatters now get the same template object."""
    from trac.ticket.model import Ticket

    from tracnotify.mail.format import TicketMailFormatter
    env = make_env()
    one = TicketMailFormatter(env, Ticket(env))._load_template()
    two = TicketMailFormatter(env, Ticket(env))._load_template()
    assert one is two
