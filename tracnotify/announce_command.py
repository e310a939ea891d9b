"""``trac-admin ENV notify announce``: an announcement from a file.

What Administration > Notification > Announce sends, from the command line
(cron, a release script): ``--to all|group:NAME|milestone:NAME``,
``--subject TEXT`` and a file of wiki text (``-`` reads standard input).
A problem (an unknown group, nobody to send to, mail turned off) is one
``Error: ...`` line and exit status 2, and nothing is stored.
"""

import sys
from typing import Dict, List, Tuple

from trac.admin.api import AdminCommandError, IAdminCommandProvider
from trac.core import Component, implements

from tracnotify import announcements
from tracnotify.announce_event import AnnouncementError
from tracnotify.i18n.domain import _

USAGE = '--to all|group:NAME|milestone:NAME --subject TEXT FILE'
OPTIONS = ('--to', '--subject')


def parse_args(args) -> Tuple[Dict[str, str], str]:
    """``({'--to': ..., '--subject': ...}, file)`` from *args* (options
    in any order, before or after the file); :class:`AdminCommandError`
    for anything else."""
    options: Dict[str, str] = {}
    files: List[str] = []
    args = list(args)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition('=')
        if name in OPTIONS:
            if not eq:
                if not args:
                    raise AdminCommandError(_('%(option)s needs a value',
                                              option=name), show_usage=True)
                value = args.pop(0)
            options[name] = value
        else:
            files.append(arg)
    missing = [o for o in OPTIONS if o not in options]
    if missing or len(files) != 1:
        raise AdminCommandError(_('Usage: notify announce %(usage)s',
                                  usage=USAGE), show_usage=True)
    return options, files[0]


def read_text(path: str) -> str:
    """The wiki text in *path* (UTF-8; ``-``: standard input)."""
    try:
        if path == '-':
            return sys.stdin.read()
        with open(path, encoding='utf-8') as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise AdminCommandError(_('Cannot read %(file)s: %(error)s',
                                  file=path, error=e))


class AnnounceCommand(Component):
    """``notify announce``: mail an announcement from a file."""

    implements(IAdminCommandProvider)

    def get_admin_commands(self):
        yield ('notify announce', USAGE,
               """Mail an announcement (wiki text in FILE, - for stdin)

               To everyone with an address (--to all), the members of a
               permission group, nested groups resolved (group:NAME), or
               the watchers of a milestone (milestone:NAME). Who opted
               out of announcements and addresses on the never-mail list
               get none. The mail goes through the outbox.""",
               self._complete, self._do_announce)

    def _complete(self, args):
        if len(args) >= 2 and args[-2] == '--to':
            return ['all', 'group:', 'milestone:']
        return list(OPTIONS)

    def _do_announce(self, *args):
        options, path = parse_args(args)
        text = read_text(path)
        try:
            event = announcements.draft(self.env, 'trac-admin',
                                        options['--to'],
                                        options['--subject'], text)
            count = announcements.send(self.env, event)
        except AnnouncementError as e:
            raise AdminCommandError(str(e))
        print(_('Announcement "%(subject)s" queued for %(count)d '
                'recipient(s) (%(audience)s)', subject=event.subject,
                count=count, audience=event.audience))
