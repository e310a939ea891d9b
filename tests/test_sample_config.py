"""contrib/trac.ini.sample is a valid configuration: every value in it is
accepted by tracnotify without a single configuration error."""

import os

from trac.config import Configuration

from tracnotify.config import load_config
from tracnotify.delivery.transports.options import load_transport_options

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                      'contrib', 'trac.ini.sample')


def test_sample_values_are_all_valid(make_env):
    env = make_env()
    sample = Configuration(SAMPLE)
    for section in ('trac', 'notification', 'notification-subscriber'):
        for name, value in sample.options(section):
            env.config.set(section, name, value)
    config = load_config(env)
    assert config.errors == []
    assert config.smtp_enabled and config.use_tls
    assert config.smtp_always_bcc == ['archive@example.org']
    options = load_transport_options(env)
    assert options.errors == []
