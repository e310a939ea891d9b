#!/usr/bin/env python3
"""Reference relay for tracnotify's `database` transport.

Moves the messages that tracnotify appends to the `tracnotify_mail` table of
an SQLite file to a sendmail-compatible program, one message at a time:

1. claim: one atomic UPDATE turns the oldest due `queued` row into
   `sending`, stamped with a token unique to this claim; only the relay
   that holds the token goes on, so any number of relays can share a file;
2. run the command with the message on stdin;
3. mark: `sent`, or back to `queued` with a growing delay (`failed` after
   --max-attempts), with the program's stderr as `last_error`.

A relay that dies between 2 and 3 leaves its row in `sending`.  The row is
never sent again by itself, since the program may already have accepted it:
mail is sent at most once.  `--requeue-stuck MINUTES` gives such rows back
to the queue when an operator has checked that they were not delivered.

The command is split like a shell would (no shell runs); `{sender}` and
`{recipient}` are replaced by the envelope.  The default gives the recipient
on the command line, which is how Bcc copies reach their recipient; with
`--command "sendmail -ti"` the program reads To/Cc instead, and copies whose
headers do not name their recipient (Bcc copies) fail.

Python 3 standard library only.  Example (cron or a systemd service):

    tracnotify-relay.py /srv/trac/env/db/tracnotify-mail.sqlite --interval 5
"""

import argparse
import logging
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

# Same as tracnotify.transports.database.SCHEMA (a test keeps them equal).
SCHEMA = """\
CREATE TABLE IF NOT EXISTS tracnotify_mail (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queued_at    REAL    NOT NULL,
    sender       TEXT    NOT NULL,
    recipient    TEXT    NOT NULL,
    message      BLOB    NOT NULL,
    digest       TEXT    NOT NULL,
    ticket       INTEGER,
    outbox_id    INTEGER,
    state        TEXT    NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL    NOT NULL DEFAULT 0,
    claimed_by   TEXT,
    claimed_at   REAL,
    sent_at      REAL,
    last_error   TEXT,
    UNIQUE (recipient, digest)
);
CREATE INDEX IF NOT EXISTS tracnotify_mail_due
    ON tracnotify_mail (state, next_attempt, id);
"""

DEFAULT_COMMAND = 'sendmail -i -f {sender} -- {recipient}'
MAX_DELAY = 6 * 3600

log = logging.getLogger('tracnotify-relay')


def connect(path, timeout=30.0):
    """Open the queue file (creating the table if needed), autocommit."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.execute('PRAGMA journal_mode=WAL')
    conn.executescript(SCHEMA)
    return conn


def claim(conn):
    """Claim the oldest due message: (id, sender, recipient, message,
    attempts, token), or None when nothing is due."""
    token = uuid.uuid4().hex
    now = time.time()
    conn.execute("""
        UPDATE tracnotify_mail
        SET state='sending', claimed_by=?, claimed_at=?
        WHERE id = (SELECT id FROM tracnotify_mail
                    WHERE state='queued' AND next_attempt<=?
                    ORDER BY next_attempt, id LIMIT 1)
        AND state='queued'""", (token, now, now))
    row = conn.execute("""
        SELECT id, sender, recipient, message, attempts
        FROM tracnotify_mail WHERE claimed_by=? AND state='sending'""",
                       (token,)).fetchone()
    return row + (token,) if row else None


def mark_sent(conn, row_id, token):
    conn.execute("""
        UPDATE tracnotify_mail
        SET state='sent', sent_at=?, attempts=attempts+1, last_error=NULL
        WHERE id=? AND claimed_by=?""", (time.time(), row_id, token))


def mark_failed(conn, row_id, token, attempts, error, max_attempts,
                retry_delay):
    attempts += 1
    state = 'failed' if attempts >= max_attempts else 'queued'
    delay = min(retry_delay * 2 ** (attempts - 1), MAX_DELAY)
    conn.execute("""
        UPDATE tracnotify_mail
        SET state=?, attempts=?, last_error=?, next_attempt=?
        WHERE id=? AND claimed_by=?""",
                 (state, attempts, error[:2000], time.time() + delay, row_id,
                  token))
    return state


def requeue_stuck(conn, minutes):
    """Give `sending` rows claimed more than *minutes* ago back."""
    cursor = conn.execute("""
        UPDATE tracnotify_mail SET state='queued', claimed_by=NULL
        WHERE state='sending' AND claimed_at<?""",
                          (time.time() - 60 * minutes,))
    return cursor.rowcount


def build_argv(command, sender, recipient):
    return [arg.replace('{sender}', sender).replace('{recipient}', recipient)
            for arg in shlex.split(command)]


def run(argv, data, timeout):
    """Run the program; None on success, else the error text."""
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 start_new_session=True)
    except OSError as e:
        return 'cannot run %s: %s' % (argv[0], e.strerror or e)
    try:
        out, err = child.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            child.kill()
        child.wait()
        return '%s did not finish within %s s and was killed' % (argv[0],
                                                                timeout)
    if child.returncode == 0:
        return None
    text = (err or out).decode('utf-8', 'replace').strip()[-1000:]
    return '%s exited with status %d%s' % (argv[0], child.returncode,
                                           ': ' + text if text else '')


def drain(conn, args):
    """Send every due message once; returns (sent, failed)."""
    sent = failed = 0
    while True:
        row = claim(conn)
        if row is None:
            return sent, failed
        row_id, sender, recipient, message, attempts, token = row
        data = bytes(message).replace(b'\r\n', b'\n')
        error = run(build_argv(args.command, sender, recipient), data,
                    args.timeout)
        if error is None:
            mark_sent(conn, row_id, token)
            sent += 1
            log.info('sent #%d to %s', row_id, recipient)
        else:
            state = mark_failed(conn, row_id, token, attempts, error,
                                args.max_attempts, args.retry_delay)
            failed += 1
            log.warning('#%d to %s %s: %s', row_id, recipient,
                        'failed for good' if state == 'failed'
                        else 'will be retried', error)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Send the mail that tracnotify queued in an SQLite '
                    'file (mail_transport = database).')
    p.add_argument('database', help='the SQLite file ([notification] '
                   'mail_database)')
    p.add_argument('--command', default=DEFAULT_COMMAND,
                   help='program and arguments; {sender} and {recipient} '
                   'are replaced (default: %(default)s)')
    p.add_argument('--once', action='store_true',
                   help='send what is due, then exit (for cron)')
    p.add_argument('--interval', type=float, default=5.0,
                   help='seconds between looks at the queue (default 5)')
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds a command may take (default 60)')
    p.add_argument('--max-attempts', type=int, default=8)
    p.add_argument('--retry-delay', type=float, default=60.0,
                   help='seconds before the first retry; doubles each time')
    p.add_argument('--requeue-stuck', type=float, metavar='MINUTES',
                   help='first give rows left in "sending" for longer than '
                   'MINUTES back to the queue (only when you know they were '
                   'not delivered)')
    p.add_argument('-v', '--verbose', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else
                        logging.WARNING,
                        format='%(asctime)s %(name)s: %(message)s')
    conn = connect(args.database)
    if args.requeue_stuck is not None:
        log.warning('requeued %d stuck message(s)',
                    requeue_stuck(conn, args.requeue_stuck))
    while True:
        try:
            sent, failed = drain(conn, args)
        except sqlite3.OperationalError as e:   # e.g. locked for too long
            if args.once:
                raise
            log.error('queue error: %s', e)
        else:
            if args.once:
                return 1 if failed else 0
        time.sleep(args.interval)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
