"""A real tracd whose admin enabled Trac's EmailDistributor again after
``trac-admin upgrade`` (issue 12, item 11): pages answer, the status page
warns, each recipient gets one mail of a web change, and the admin one
alert about the configuration (issue 16)."""

import collections
import os
import time

from trac.config import Configuration

from tracnotify.config import TRAC_DISTRIBUTOR_RULE


def test_site_stays_up_and_mails_once(start_site):
    trac, sink = start_site(always_notify_reporter='true')
    trac.stop()
    ini = Configuration(os.path.join(trac.env_path, 'conf', 'trac.ini'))
    ini.set('components', TRAC_DISTRIBUTOR_RULE, 'enabled')
    ini.save()
    trac.start()                      # answers 200, or start() raises
    assert 'needs to be upgraded' not in trac.client().get('/')
    status = trac.client('admin').get('/admin/notification/status')
    assert TRAC_DISTRIBUTOR_RULE in status

    before = len(sink.received)
    trac.client('alice').create_ticket(summary='Mailed once',
                                       cc='carol@example.com')
    sink.wait_for(before + 2, 20)
    time.sleep(2)                      # Trac's copies would be here by now
    ticket_mail = collections.Counter(
        r for m in sink.received[before:] for r in m.rcpt_tos
        if m.message['X-Trac-Notification-Type'] != 'alert')
    assert ticket_mail == {'alice@example.org': 1, 'carol@example.com': 1}
    # the start-up configuration alert may have come before `before`
    alerts = [m for m in sink.received
              if m.message['X-Trac-Notification-Type'] == 'alert']
    assert [m.rcpt_tos for m in alerts] == [['admin@example.org']]
    assert TRAC_DISTRIBUTOR_RULE in alerts[0].message.get_content()
    assert TRAC_DISTRIBUTOR_RULE in trac.trac_log()
