"""The Notification admin panels in a real headless browser.

One tracd (tests/support/live_trac.py), one Chromium session driven by
selenium with Debian's chromedriver, one aiosmtpd sink: log in as admin, see
a dead server's error, change the SMTP port on the settings page, send a
test mail that arrives, retry a dead message from the queue page.  Saves a
screenshot of each panel: under docs/ with ``TRACNOTIFY_SCREENSHOTS=1``
(how docs/admin-*.png are made), in a temporary folder otherwise.
"""

import base64
import os
import shutil
import time

import pytest

from tests.support.live_trac import USERS, LiveTrac, trac_admin
from tests.support.smtp_sink import SmtpSink, free_port

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'docs')

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason='needs Debian chromium and chromedriver')


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
    profile = str(tmp_path_factory.mktemp('chromium'))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--no-first-run', '--user-data-dir=' + profile,
                 '--window-size=1200,900'):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.shots = shots
    yield driver
    driver.quit()


def login(driver, trac, user='admin'):
    """Basic auth through a header, then Trac's /login sets its cookie."""
    token = base64.b64encode(('%s:%s' % (user, USERS[user])).encode())
    driver.execute_cdp_cmd('Network.enable', {})
    driver.execute_cdp_cmd('Network.setExtraHTTPHeaders', {
        'headers': {'Authorization': 'Basic ' + token.decode()}})
    driver.get(trac.url + '/login')
    driver.execute_cdp_cmd('Network.setExtraHTTPHeaders', {'headers': {}})


def screenshot(driver, name, max_height=1400):
    """The page (up to *max_height* pixels) as <shots>/<name>."""
    folder = driver.shots
    width = driver.execute_script('return document.documentElement.clientWidth')
    height = min(driver.execute_script(
        'return document.documentElement.scrollHeight'), max_height)
    driver.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
        'width': width, 'height': height, 'deviceScaleFactor': 1,
        'mobile': False})
    try:
        shot = driver.execute_cdp_cmd('Page.captureScreenshot',
                                      {'format': 'png'})
    finally:
        driver.execute_cdp_cmd('Emulation.clearDeviceMetricsOverride', {})
    with open(os.path.join(folder, name), 'wb') as f:
        f.write(base64.b64decode(shot['data']))


def text_of(driver, css):
    """The text of *css*, once the page that has it is loaded."""
    return WebDriverWait(driver, 20).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, css))).text


def submit(driver, element):
    """Click a submit button and wait for the next page."""
    html = driver.find_element(By.TAG_NAME, 'html')
    element.click()
    WebDriverWait(driver, 20).until(EC.staleness_of(html))


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
