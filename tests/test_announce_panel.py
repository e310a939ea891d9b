"""Administration > Notification > Announce (Trac's MockRequest) and
``trac-admin ENV notify announce``: permissions, the form token, the
preview as the mail will be sent, Send once and only what was previewed."""

import re

import pytest
import trac.admin.web_ui  # noqa: F401  (admin.html and AdminModule)
import trac.wiki.web_ui  # noqa: F401  (WIKI_VIEW)
from trac.admin.api import AdminCommandError, AdminCommandManager
from trac.admin.web_ui import AdminModule
from trac.perm import PermissionError, PermissionSystem
from trac.test import MockRequest
from trac.web.api import HTTPBadRequest, RequestDone
from trac.web.chrome import Chrome

from tests.support.tickets import mails_by_recipient as delivered
from tests.support.users import set_session, users
from tracnotify.web.announce import AnnouncePanel

TOKEN = 'form-token-123'
PEOPLE = users('alice', 'bob', 'carol', 'hans')
TEXT = "Release '''2.0''' is out.\n\n<script>alert(1)</script>\n"


@pytest.fixture
def env(sink_env):
    env = sink_env(PEOPLE + (('admin', 'Ada Admin', 'admin@example.net'),))
    perms = PermissionSystem(env)
    perms.grant_permission('admin', 'TRAC_ADMIN')
    for subject, group in (('alice', 'dev'), ('bob', 'dev'),
                           ('dev', 'staff'), ('hans', 'staff')):
        perms.grant_permission(subject, group)
    return env


def request(env, method='GET', authname='admin', token=True, **args):
    if method == 'POST' and token:
        args['__FORM_TOKEN'] = TOKEN
    return MockRequest(env, authname=authname, method=method, args=args,
                       form_token=TOKEN,
                       path_info='/admin/notification/announce')


def call(env, **kwargs):
    req = request(env, **kwargs)
    template, data, meta = AnnouncePanel(env).render_admin_panel(
        req, 'notification', 'announce', None)
    return req, template, data


def page(env, **kwargs) -> str:
    """The page as Trac renders it, through AdminModule."""
    req = request(env, **kwargs)
    req.args.update({'cat_id': 'notification', 'panel_id': 'announce'})
    template, data, meta = AdminModule(env).process_request(req)
    meta['iterable'] = False
    return Chrome(env).render_template(req, template, data, meta
                                       ).decode('utf-8')


def form(audience='group:staff', subject='Release 2.0', text=TEXT, **more):
    fields = {'audience': audience, 'subject': subject, 'text': text}
    fields.update(more)
    return fields


def preview(env, **fields):
    req, _t, data = call(env, method='POST', preview='Preview',
                         **form(**fields))
    return req, data


def events(env):
    return env.db_query('SELECT kind FROM tracnotify_event')


def test_only_admins_see_and_open_the_panel(env):
    panel = AnnouncePanel(env)
    assert [p[2] for p in panel.get_admin_panels(request(env))] == \
        ['announce']
    assert list(panel.get_admin_panels(request(env, authname='alice'))) == []
    with pytest.raises(PermissionError):
        call(env, authname='alice')
    # at the panel's address, before Trac's "no administration panels"
    req = request(env, authname='alice')
    with pytest.raises(PermissionError):
        panel.pre_process_request(req, AdminModule(env))
    assert panel.pre_process_request(request(env), None) is None


def test_a_post_without_the_form_token_is_refused(env):
    with pytest.raises(HTTPBadRequest):
        call(env, method='POST', token=False, send='Send', **form())
    assert not events(env)


def test_the_preview_shows_the_mail_as_it_will_be_sent(env):
    _req, data = preview(env)
    shown = data['preview']
    assert shown['count'] == 3
    assert shown['addresses'] == ['alice@example.net', 'bob@example.net',
                                  'hans@example.net']
    headers = dict(shown['headers'])
    assert headers['Subject'] == '[Test Project] Release 2.0'
    assert headers['X-Trac-Notification-Type'] == 'announcement'
    assert headers['To'] == 'admin@example.net'
    assert shown['text'].replace('\r\n', '\n').startswith(TEXT)
    assert 'Sent by admin to the members of staff.' in shown['text']
    assert '<strong>2.0</strong>' in shown['html']
    assert '<script' not in shown['html']
    assert not events(env)                       # a preview sends nothing
    assert re.match(r'^[0-9a-f]{24}$', data['form']['key'])


def test_the_preview_in_another_language(env):
    _req, data = preview(env, language='de')
    assert 'Gesendet von admin an die Mitglieder von staff.' in \
        data['preview']['text']


def test_the_page_shows_the_html_in_a_sandbox(env):
    html = page(env, method='POST', preview='Preview', **form())
    frame = re.search(r'<iframe id="announce-preview-html"[^>]*>', html)
    assert frame and 'sandbox=""' in frame.group(0)
    assert 'srcdoc="&lt;!DOCTYPE html&gt;' in frame.group(0)
    assert '<script>alert' not in html
    assert 'id="announce-send"' in html
    assert 'name="__FORM_TOKEN" value="%s"' % TOKEN in html
    assert '<option value="group:staff" selected="selected">staff</option>' \
        in html
    assert '<option value="milestone:milestone1">milestone1</option>' in html


def test_send_what_was_previewed_once(env, sink):
    _req, data = preview(env)
    sent = form(key=data['form']['key'], digest=data['form']['digest'])
    req = request(env, method='POST', send='Send', **sent)
    with pytest.raises(RequestDone):
        AnnouncePanel(env).render_admin_panel(req, 'notification',
                                              'announce', None)
    assert req.headers_sent['Location'].endswith(
        '/admin/notification/announce')
    assert events(env) == [('announcement',)]
    assert sorted(delivered(env, sink, True)) == [
        'alice@example.net', 'bob@example.net', 'hans@example.net']
    # the same form again (reload, double click): refused
    req, _t, data = call(env, method='POST', send='Send', **sent)
    assert any('sent already' in str(w) for w in req.chrome['warnings'])
    assert events(env) == [('announcement',)]
    html = page(env)
    assert re.search(r'<td>Release 2.0</td><td>group:staff</td>\s*'
                     r'<td>admin</td><td>3</td>', html)


def test_send_after_an_edit_needs_a_new_preview(env):
    _req, data = preview(env)
    req, _t, data = call(env, method='POST', send='Send', **form(
        text='Something else', key=data['form']['key'],
        digest=data['form']['digest']))
    assert any('changed since its preview' in str(w)
               for w in req.chrome['warnings'])
    assert data['preview']['text'].startswith('Something else')
    assert not events(env)


def test_send_without_a_preview_is_a_preview(env):
    req, _t, data = call(env, method='POST', send='Send', **form())
    assert data['preview'] and not events(env)


def test_a_bad_group_is_a_clear_warning(env):
    req, _t, data = call(env, method='POST', preview='Preview',
                         **form(audience='group:nosuch'))
    assert any('No permission group nosuch' in str(w)
               for w in req.chrome['warnings'])
    assert data['preview'] is None and not events(env)


# trac-admin ENV notify announce ---------------------------------------------

def run(env, *args):
    return AdminCommandManager(env).execute_command(*args)


def test_command_announces_a_file(env, sink, tmp_path, capsys):
    set_session(env, 'bob', **{'tracnotify.announcements': '0'})
    path = tmp_path / 'news.txt'
    path.write_text('Hello **everyone**.\n', encoding='utf-8')
    run(env, 'notify', 'announce', '--to', 'group:staff', '--subject',
        'News', str(path))
    assert 'queued for 2 recipient(s) (group:staff)' in \
        capsys.readouterr().out
    mails = delivered(env, sink, True)
    assert sorted(mails) == ['alice@example.net', 'hans@example.net']
    mail = mails['hans@example.net'][0]
    assert mail['Subject'] == '[Test Project] News'
    assert mail['X-Trac-Notification-Type'] == 'announcement'


@pytest.mark.parametrize('args, message', [
    (('--to', 'group:nosuch', '--subject', 'S'), 'No permission group'),
    (('--to', 'all'), 'Usage: notify announce'),
    (('--subject', 'S', '--to'), '--to needs a value'),
])
def test_command_errors(env, tmp_path, args, message):
    path = tmp_path / 'news.txt'
    path.write_text('Hello', encoding='utf-8')
    with pytest.raises(AdminCommandError) as info:
        run(env, 'notify', 'announce', *(args[:-1] + (str(path), args[-1]))
            if args[-1] == '--to' else args + (str(path),))
    assert message in str(info.value)
    assert not events(env)


def test_command_a_missing_file(env, tmp_path):
    with pytest.raises(AdminCommandError, match='Cannot read'):
        run(env, 'notify', 'announce', '--to', 'all', '--subject', 'S',
            str(tmp_path / 'nosuch.txt'))


# Translations ----------------------------------------------------------------

FILES = {
    'python': ['announce_event.py', 'announcements.py', 'announce_command.py',
               'mail/announce.py', 'mail/announce_recipients.py',
               'web/announce.py', 'web/preferences.py'],
    'genshi': ['templates/mail/announcement.html',
               'templates/mail/announcement.txt'],
    'jinja2': ['templates/web/tracnotify_admin_announce.html',
               'templates/web/tracnotify_prefs.html'],
}


def _msgids():
    """Every string of the announcement's files, as Babel extracts them
    (the mapping of tracnotify/locale/babel.cfg)."""
    import os

    from babel.messages.extract import extract_from_file

    import tracnotify
    root = os.path.dirname(tracnotify.__file__)
    keywords = {'_': None, 'N_': None, 'tag_': None, 'ngettext': (1, 2)}
    options = {
        'genshi': {}, 'python': {},
        'jinja2': {'extensions': 'jinja2.ext.do',
                   'variable_start_string': '${',
                   'variable_end_string': '}',
                   'line_statement_prefix': '#',
                   'line_comment_prefix': '##', 'trim_blocks': 'yes',
                   'lstrip_blocks': 'yes', 'newstyle_gettext': 'yes'},
    }
    found = set()
    for method, names in FILES.items():
        for name in names:
            opts = dict(options[method])
            if name.endswith('.txt'):
                opts['template_class'] = 'genshi.template:NewTextTemplate'
            for _line, msg, _c, _ctx in extract_from_file(
                    method, os.path.join(root, name), keywords, (), opts):
                found.add(msg if isinstance(msg, str) else msg[0])
    return found


@pytest.mark.parametrize('lang', ['de', 'fr'])
def test_every_string_is_translated(lang):
    import os

    from babel.messages.pofile import read_po

    from tracnotify.i18n import catalogs
    folder = os.path.join(catalogs.LOCALE_DIR, lang, 'LC_MESSAGES')
    translated = set()
    for path in [os.path.join(folder, 'tracnotify.po')] + \
            catalogs.part_files(os.path.join(folder, 'tracnotify.po')):
        with open(path, 'rb') as f:
            translated |= {m.id for m in read_po(f) if m.id and m.string}
    ids = _msgids()
    assert 'Announce' in ids and 'Receive no announcements' in ids
    assert sorted(ids - translated) == []
