"""What the admin pages tell a newcomer: the sent-mail history on Mail
Queue, the chart's time zone, Mail Settings in foldable groups."""

import re

import pytest
from trac.admin.web_ui import AdminModule
from trac.test import MockRequest
from trac.util.datefmt import get_timezone
from trac.web.chrome import Chrome

from tests.support.admin_pages import add_messages, call, html, mark_sent, with_admin
from tracnotify import commands, outbox
from tracnotify.outbox import maintenance as queue_admin
from tracnotify.web.admin import PER_PAGE


@pytest.fixture
def env(make_env, tmp_path):
    """An environment whose trac.ini is a real file, with an admin."""
    return with_admin(make_env(), str(tmp_path / 'trac.ini'))


def sent(env, n, ago_days=0.0):
    """*n* messages sent *ago_days* ago; returns their ids."""
    before = {row[0] for row in env.db_query(
        'SELECT id FROM tracnotify_message')}
    ids = [i for i in add_messages(env, n) if i not in before]
    mark_sent(env, ids)
    env.db_transaction.executemany(
        'UPDATE tracnotify_message SET sent_at=%s WHERE id=%s',
        [(outbox.now_us() - int(ago_days * queue_admin.DAY_US) + i, i)
         for i in ids])
    return ids


def test_history_is_newest_first_and_spans_the_purge_days(env):
    old = sent(env, 2, ago_days=queue_admin.DEFAULT_PURGE_DAYS + 1)
    recent = sent(env, 3, ago_days=1)
    today = sent(env, 2)
    add_messages(env, 1, outbox.DEAD, 3, 'boom')        # not sent
    _r, _t, data, _m = call(env, 'queue', status='sent')
    shown = [row['m'].id for row in data['sent']]
    assert set(shown) == set(recent + today)
    assert not set(shown) & set(old)
    assert shown[:2] == sorted(today, reverse=True)     # newest first
    assert data['total'] == 5
    counts = {key: n for key, _label, n in data['filters']}
    assert counts['sent'] == 5 and counts['dead'] == 1


def test_history_shows_who_got_what_when_and_the_message_id(env):
    ids = sent(env, 1)
    page = html(env, 'queue', status='sent')
    row = re.search(r'<tr id="sent-%d">(.*?)</tr>' % ids[0], page, re.S)
    assert row, page
    cells = row.group(1)
    assert 'user0@example.net' in cells
    assert 'Ticket #1 message 0' in cells and 'href="/trac.cgi/ticket/1"' \
        in cells
    assert '&lt;m0@x&gt;' in cells
    assert re.search(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', cells)
    assert 'id="sent-q"' in page                         # the search box


@pytest.mark.parametrize('query, expected', [
    ('user3@', [3]), ('USER3@EXAMPLE', [3]), ('<m7@x>', [7]),
    ('message 8', [8]), ('#1', list(range(9))), ('nobody', []),
    ('user1 message', [1]), ('100%', []), ('_', []),
])
def test_history_search(env, query, expected):
    ids = sent(env, 9)
    _r, _t, data, _m = call(env, 'queue', status='sent', q=query)
    assert sorted(row['m'].id for row in data['sent']) == \
        sorted(ids[i] for i in expected)
    assert data['total'] == len(expected)


def test_history_is_paginated_and_pages_keep_the_search(env):
    sent(env, PER_PAGE + 5)
    req, _t, data, _m = call(env, 'queue', status='sent', q='example.net')
    assert len(data['sent']) == PER_PAGE
    assert data['paginator'].num_items == PER_PAGE + 5
    next_href = req.chrome['links']['next'][0]['href']
    assert 'q=example.net' in next_href and 'status=sent' in next_href
    _r, _t, data, _m = call(env, 'queue', status='sent', q='example.net',
                            page='2')
    assert len(data['sent']) == 5


def test_history_looks_as_far_back_as_notify_purge_keeps():
    assert commands.DEFAULT_PURGE_DAYS == queue_admin.DEFAULT_PURGE_DAYS


def test_chart_axis_names_its_time_zone(env):
    for tz, name, axis in ((get_timezone('UTC'), 'UTC', 'UTC'),
                           (get_timezone('GMT +9:00'),
                            'GMT +9:00 (UTC+09:00)', 'UTC+09:00')):
        req = MockRequest(env, authname='admin', tz=tz,
                          path_info='/admin/notification/status',
                          args={'cat_id': 'notification',
                                'panel_id': 'status'})
        template, data, meta = AdminModule(env).process_request(req)
        meta['iterable'] = False
        page = Chrome(env).render_template(req, template, data, meta
                                           ).decode('utf-8')
        assert re.search(r'id="chart-tz">[^<]*%s' % re.escape(name), page)
        assert re.search(r'id="chart-axis-tz">%s</text>' % re.escape(axis),
                         page)


def test_settings_groups_fold_and_each_has_its_apply_button(env):
    page = html(env, 'settings')
    groups = re.findall(r'<fieldset[^>]*class="tracnotify-group[^"]*"', page)
    assert len(groups) >= 5
    assert page.count('<legend class="foldable"') == len(groups)
    assert page.count('name="save"') == len(groups)
    assert 'tracnotify/settings.js' in page and 'folding.js' in page


def test_settings_group_with_an_error_stays_open(env):
    page = html(env, 'settings', method='POST', smtp_port='70000',
                save='1')
    assert 'id="error-smtp_port"' in page
    open_groups = re.findall(r'<fieldset class="tracnotify-group '
                             r'tracnotify-open" id="group-(\d+)"', page)
    assert open_groups == ['1']                # SMTP server, only
