"""A headless Chromium for the end-to-end tests, driven by selenium with
Debian's chromedriver: start it, log in to a LiveTrac, click and read.

Test modules import selenium through :func:`pytest.importorskip` first
(the tests are skipped where it is missing) and mark themselves with
:data:`NEEDS_CHROMIUM`.
"""

import base64
import os
import shutil

import pytest

from tests.support.live_trac import USERS

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason='needs Debian chromium and chromedriver')


def start_browser(profile: str, shots: str = ''):
    """A headless Chromium with its profile in the folder *profile*;
    screenshots (:func:`screenshot`) go to *shots*.  Call ``quit()``."""
    from selenium import webdriver
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
    return driver


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
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, 20).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, css))).text


def submit(driver, element):
    """Click a submit button and wait for the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    html = driver.find_element(By.TAG_NAME, 'html')
    element.click()
    WebDriverWait(driver, 20).until(EC.staleness_of(html))
