"""Real Trac environments for the tests (``trac.test.EnvironmentStub``)."""

import os
from typing import Dict, Optional

from trac.db.api import DatabaseManager
from trac.test import EnvironmentStub

from tracnotify.schema import SCHEMA, TRAC_DISTRIBUTOR_RULE, TracnotifySetup

DEFAULT_NOTIFICATION = {
    'smtp_enabled': 'true',
    'smtp_from': 'trac@example.org',
    'smtp_replyto': 'trac@example.org',
    'smtp_default_domain': 'example.org',
    'delivery': 'worker',          # tests drive delivery explicitly
    'outbox_retry_delay': '1',
    # one mail per change, at once: tests of batches set their own window
    # (tests/test_coalesce.py)
    'batch_window': '0',
}
SUBSCRIBERS = {
    'always_notify_cc': 'CarbonCopySubscriber',
    'always_notify_updater': 'TicketUpdaterSubscriber',
    'always_notify_reporter': 'TicketReporterSubscriber',
    'always_notify_owner': 'TicketOwnerSubscriber',
}


def make_stub_env(path: str, dburi: Optional[str] = None,
                  options: Optional[Dict[str, str]] = None) -> EnvironmentStub:
    """An EnvironmentStub with tracnotify's tables and a [notification]
    section from DEFAULT_NOTIFICATION updated with *options*."""
    os.makedirs(path, exist_ok=True)
    saved = os.environ.get('TRAC_TEST_DB_URI')
    if dburi:
        os.environ['TRAC_TEST_DB_URI'] = dburi
    else:
        os.environ.pop('TRAC_TEST_DB_URI', None)
    try:
        # as after `trac-admin upgrade`: Trac's own EmailDistributor is off
        env = EnvironmentStub(default_data=True, path=path,
                              enable=['trac.*', 'tracnotify.*'],
                              disable=[TRAC_DISTRIBUTOR_RULE])
    finally:
        if saved is None:
            os.environ.pop('TRAC_TEST_DB_URI', None)
        else:
            os.environ['TRAC_TEST_DB_URI'] = saved
    env.config.set('trac', 'base_url', 'http://trac.example.org/')
    env.config.set('project', 'name', 'Test Project')
    for name, value in SUBSCRIBERS.items():
        env.config.set('notification-subscriber', name, value)
    settings = dict(DEFAULT_NOTIFICATION)
    settings.update(options or {})
    for name, value in settings.items():
        env.config.set('notification', name, value)
    dbm = DatabaseManager(env)
    dbm.drop_tables([t.name for t in SCHEMA])
    with env.db_transaction as db:
        db("DELETE FROM system WHERE name='tracnotify_version'")
    TracnotifySetup(env).upgrade_environment()
    return env
