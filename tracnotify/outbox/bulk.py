"""Many rows in few statements: ``INSERT ... VALUES (...), (...), ...``.

psycopg2's ``executemany`` sends one statement per row, a round trip
each: storing the 5,000 copies (and their unsubscribe tokens) of 200
small changes took 1.9 s of a 3.8 s drain on PostgreSQL.  One statement
per chunk of rows takes one round trip per chunk.  SQLite runs in the
process, where ``executemany`` is as fast, so it keeps it.
"""

from typing import Sequence

from tracnotify.outbox import clock

#: host parameters in one statement, at most (PostgreSQL's limit is 65,535)
MAX_PARAMS = 30000
#: rows in one statement, at most
MAX_ROWS = 1000


def insert_rows(env, db, insert: str, values: str,
                rows: Sequence[tuple]) -> None:
    """``insert`` (``INSERT INTO t (a, b)``) each of *rows* with *db*, a
    transaction's connection; *values* is one row's ``(%s, %s)``."""
    if not rows:
        return
    sql = '%s VALUES %s' % (insert, values)
    if clock.scheme(env) == 'sqlite':
        db.executemany(sql, rows)
        return
    per_row = max(len(rows[0]), 1)
    chunk = max(1, min(MAX_ROWS, MAX_PARAMS // per_row))
    cursor = db.cursor()
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        cursor.execute('%s VALUES %s' % (insert, ', '.join([values] *
                                                           len(part))),
                       [value for row in part for value in row])
