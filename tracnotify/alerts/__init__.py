"""Alerts to admins: mail when delivery keeps failing, and when it works
again (see docs/alerts.md).

detect.py      is delivery failing? (reads of the outbox)
state.py       what alerts remember (rows of Trac's ``system`` table)
mail.py        the alert mail, in the house style and each admin's language
recipients.py  ``alert_to``, or the users with TRAC_ADMIN
send.py        the way out: the transport directly, a fallback, the log
monitor.py     the check each delivery pass makes (:func:`check_delivery`)
events.py      the optional ``alert_events`` (new users, permissions)
options.py     the options, declared and read here
"""
