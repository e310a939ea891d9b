"""The Notification admin panels in a real headless browser.

One tracd (tests/support/live_trac.py), one Chromium session driven by
selenium with Debian's chromedriver, one aiosmtpd sink: log in as admin, see
a dead server's error, change the SMTP port on the settings page, send a
test mail that arrives, retry a dead message from the queue page.  Saves a
screenshot of each panel: under docs/ with ``TRACNOTIFY_SCREENSHOTS=1``
(how docs/admin-*.png are made), in a temporary folder otherwise.
"""

import os
import time

import pytest

from tests.support.browser import (
    NEEDS_CHROMIUM,
    login,
    screenshot,
    start_browser,
    submit,
    text_of,
)
from tests.support.live_trac import LiveTrac, trac_admin
from tests.support.smtp_sink import SmtpSink, free_port

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'docs')

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    sink = SmtpSink().start()
    dead_port = free_port()            # nothing listens there
    trac = LiveTrac(str(tmp_path_factory.mktemp('admin')), {
        'smtp_enabled': 'true',
        'smtp_server': '127.0.0.1',
        'smtp_port': str(dead_port),
        'smtp_from': 'trac@example.org',
        'smtp_default_domain': 'example.org',
        'always_notify_reporter': 'true',
        'delivery': 'worker',
        'outbox_max_attempts': '1',    # one failure and a message is dead
        'smtp_timeout': '5',
    }).create().start()
    yield trac, sink, dead_port
    trac.stop()
    sink.stop()


@pytest.fixture(scope='module')
def shots(tmp_path_factory):
    """Where screenshots go: docs/ with TRACNOTIFY_SCREENSHOTS=1, else a
    temporary folder of this run's own."""
    if os.environ.get('TRACNOTIFY_SCREENSHOTS') == '1':
        return DOCS
    return str(tmp_path_factory.mktemp('screenshots'))


@pytest.fixture(scope='module')
def browser(tmp_path_factory, shots):
    driver = start_browser(str(tmp_path_factory.mktemp('chromium')), shots)
    yield driver
    driver.quit()


def test_admin_panels_in_a_browser(site, browser):
    trac, sink, dead_port = site
    started = time.monotonic()
    # a ticket whose mail cannot be delivered: one dead message
    trac.client('admin').create_ticket(summary='Printer on fire',
                                       description='Smoke everywhere.')
    failed = trac_admin(trac.env_path, 'notify', 'send', check=False)
    assert failed.returncode == 2
    assert 'connection refused' in failed.stderr

    login(browser, trac)
    panel = trac.url + '/admin/notification/'

    # status: the dead message, the last error, the chart
    browser.get(panel + 'status')
    assert text_of(browser, '#count-dead') == '1'
    assert 'connection refused' in text_of(browser, '#last-error')
    assert browser.find_elements(By.CSS_SELECTOR, '#tracnotify-chart '
                                                  'rect.failed')
    screenshot(browser, 'admin-status.png')

    # test mail to a dead server: the exact error, on the page
    browser.get(panel + 'test')
    address = browser.find_element(By.ID, 'test-address')
    address.clear()
    address.send_keys('tester@example.net')
    submit(browser, browser.find_element(By.ID, 'test-send'))
    assert 'connection refused by 127.0.0.1:%d' % dead_port in \
        text_of(browser, '#test-error')

    # settings: an invalid port is refused next to the field...
    browser.get(panel + 'settings')
    port = browser.find_element(By.ID, 'opt-smtp_port')
    port.clear()
    port.send_keys('70000')
    submit(browser, browser.find_element(By.NAME, 'save'))
    assert 'out of range' in text_of(browser, '#error-smtp_port')
    # ...the sink's port is saved to trac.ini
    port = browser.find_element(By.ID, 'opt-smtp_port')
    port.clear()
    port.send_keys(str(sink.port))
    submit(browser, browser.find_element(By.NAME, 'save'))
    assert 'Your changes have been saved' in text_of(browser, '#notice')
    assert browser.find_element(By.ID, 'opt-smtp_port').get_attribute(
        'value') == str(sink.port)
    with open(os.path.join(trac.env_path, 'conf', 'trac.ini')) as f:
        assert 'smtp_port = %d' % sink.port in f.read()
    screenshot(browser, 'admin-settings.png', 1800)

    # test mail again: it arrives
    browser.get(panel + 'test')
    assert browser.find_element(By.ID, 'test-address').get_attribute(
        'value') == 'admin@example.org'       # the admin's own address
    address = browser.find_element(By.ID, 'test-address')
    address.clear()
    address.send_keys('tester@example.net')
    submit(browser, browser.find_element(By.ID, 'test-send'))
    assert 'Sent' in text_of(browser, '#test-outcome')
    mail, = sink.wait_for(1)
    assert mail.rcpt_tos == ['tester@example.net']
    assert 'test mail' in mail.message['Subject']
    screenshot(browser, 'admin-test.png')

    # queue: retry the dead message, then it is delivered
    browser.get(panel + 'queue')
    row = browser.find_element(By.CSS_SELECTOR, '#queuelist tbody tr')
    assert 'dead' in row.text and 'connection refused' in row.text
    screenshot(browser, 'admin-queue.png')
    submit(browser, row.find_element(By.NAME, 'retry_one'))
    assert 'will be sent again' in text_of(browser, '#notice')
    assert 'pending' in text_of(browser, '#queuelist tbody tr')
    trac_admin(trac.env_path, 'notify', 'send')
    mails = sink.wait_for(2)
    assert mails[1].rcpt_tos == ['admin@example.org']
    assert 'Printer on fire' in mails[1].message['Subject']
    browser.get(panel + 'queue')
    assert browser.find_elements(By.ID, 'queue-empty')
    assert time.monotonic() - started < 60


def style(driver, element, *names):
    """Computed CSS values of *element*."""
    return tuple(driver.execute_script(
        'return getComputedStyle(arguments[0])[arguments[1]]', element, name)
        for name in names)


def test_pages_a_newcomer_sees(site, browser):
    """Run after test_admin_panels_in_a_browser (same site): one message
    was sent, by the queue's retry."""
    trac, sink, _ = site
    client = trac.client('admin')
    for summary in ('Paper jam', 'Toner low'):
        client.create_ticket(summary=summary, description='...')
    trac_admin(trac.env_path, 'notify', 'send', check=False)
    login(browser, trac)
    panel = trac.url + '/admin/notification/'

    # Mail Settings: folded groups, short page; a group opens on a click
    browser.get(panel + 'settings')
    legends = browser.find_elements(By.CSS_SELECTOR,
                                    '#tracnotify-settings legend.foldable a')
    assert len(legends) >= 5
    assert browser.find_element(By.ID, 'opt-smtp_port').is_displayed()
    sender = browser.find_element(By.ID, 'opt-smtp_from')
    assert not sender.is_displayed()
    height = browser.execute_script(
        'return document.documentElement.scrollHeight')
    assert height < 1600, height
    screenshot(browser, 'admin-settings.png')
    legends[1].click()
    WebDriverWait(browser, 10).until(lambda d: sender.is_displayed())
    # opened groups stay open after Apply
    submit(browser, browser.find_element(
        By.CSS_SELECTOR, '#group-2 input[name=save]'))
    assert browser.find_element(By.ID, 'opt-smtp_from').is_displayed()

    # Mail Status: the chart's axis names its time zone
    browser.get(panel + 'status')
    assert text_of(browser, '#chart-axis-tz') == 'UTC'
    assert 'UTC' in text_of(browser, '#chart-tz')
    screenshot(browser, 'admin-status.png')

    # Mail Queue -> Sent: who got what, when, with which Message-ID
    browser.get(panel + 'queue')
    browser.find_element(By.ID, 'filter-sent').click()
    rows = WebDriverWait(browser, 20).until(
        EC.presence_of_all_elements_located((By.CSS_SELECTOR,
                                             '#sentlist tbody tr')))
    assert len(rows) == len(sink.received) - 1      # not the test mail
    search = browser.find_element(By.ID, 'sent-q')
    search.send_keys('Paper jam')
    submit(browser, browser.find_element(By.ID, 'sent-search'))
    rows = browser.find_elements(By.CSS_SELECTOR, '#sentlist tbody tr')
    assert rows and all('Paper jam' in r.text for r in rows)
    msgid = rows[0].find_element(By.CSS_SELECTOR, '.tracnotify-msgid').text
    assert msgid.startswith('<') and msgid.endswith('>')
    assert any(m.message['Message-ID'] == msgid for m in sink.received)
    screenshot(browser, 'admin-sent.png')

    # the ticket's Watch item looks like the context-nav links beside it
    browser.get(trac.url + '/ticket/2')
    button = browser.find_element(By.ID, 'tracnotify-watch')   # the button
    link = browser.find_element(By.CSS_SELECTOR, '#ctxtnav a')
    props = ('color', 'backgroundColor', 'borderBottomStyle', 'fontSize',
             'borderTopStyle', 'paddingLeft')
    assert style(browser, button, *props) == style(browser, link, *props)
    assert button.location['y'] == pytest.approx(link.location['y'], abs=3)
    submit(browser, button)
    assert 'You are watching this ticket' in text_of(browser, '#notice')
    assert browser.find_element(By.ID, 'tracnotify-unwatch').text == \
        'Unwatch'

    # Preferences -> Notifications: the page says which format applies
    browser.get(trac.url + '/prefs/notification')
    assert browser.find_element(By.ID, 'format-email').is_displayed()
    hint = text_of(browser, '#tracnotify-format-hint')
    assert 'Ticket mail is sent in this format' in hint
    label = text_of(browser, 'label[for=tracnotify-format]')
    assert label == 'Ticket mail format:'
    screenshot(browser, 'prefs-notifications.png', 1600)
