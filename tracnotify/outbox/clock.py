"""The database's clock: the one time every worker agrees on.

Leases and retry times are compared and written by SQL with the database
server's current time, never with a worker's ``time.time()``: two machines
whose clocks differ cannot see each other's live leases as expired.
:func:`now_sql` is that time as an SQL expression (microseconds since the
epoch, an integer) for the database of an environment; :func:`db_now_us`
reads it.
"""

from trac.db.api import DatabaseManager

#: scheme of Trac's ``[trac] database`` URI -> the server's "now" in
#: microseconds since the epoch.  No literal ``%`` (Trac's SQLite cursor
#: turns ``%s`` into ``?``).
NOW_SQL = {
    # julianday() has millisecond precision; 2440587.5 is the Unix epoch
    'sqlite': "CAST((julianday('now') - 2440587.5) * 86400000000.0"
              " AS INTEGER)",
    # the real time, not the start of the transaction (now())
    'postgres': 'CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000'
                ' AS BIGINT)',
    'mysql': 'CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)',
}


def scheme(env) -> str:
    """``sqlite``, ``postgres`` or ``mysql``: the environment's database."""
    uri = DatabaseManager(env).connection_uri
    name = uri.split(':', 1)[0].lower()
    return 'postgres' if name.startswith('postgres') else name


def now_sql(env) -> str:
    """The database server's current time in microseconds, as SQL."""
    return NOW_SQL.get(scheme(env), NOW_SQL['sqlite'])


def db_now_us(env) -> int:
    """The database server's current time in microseconds."""
    for value, in env.db_query('SELECT %s' % now_sql(env)):
        return int(value)
    raise RuntimeError('the database did not tell its time')
