"""Reads that share one connection, and their recovery on PostgreSQL.

Trac's pool pings every connection it hands out and rolls it back when
it comes back (two round trips on PostgreSQL), so the reads of a claim's
changes share one connection (``Deliverer.expand_events``).  On
PostgreSQL a failed statement (a plugin's subscriber with a wrong query,
say, whose error is caught and logged) aborts the transaction of that
connection: every later statement on it would fail too, until it is
rolled back.  :func:`recover_aborted_read` does that, and only for a read
connection: a write transaction is left to its owner.
"""

from typing import Optional


def _driver_connection(wrapper) -> Optional[object]:
    """The DB-API connection under Trac's wrappers (None if none); the
    wrappers forward attributes, so look at the innermost object."""
    cnx = wrapper
    for _depth in range(8):
        inner = getattr(cnx, 'cnx', None)
        if inner is None:
            break
        cnx = inner
    return cnx if hasattr(cnx, 'get_transaction_status') else None


def recover_aborted_read(env) -> bool:
    """Roll back this thread's read connection if PostgreSQL aborted its
    transaction (outside any write transaction); whether it did.  Never
    raises."""
    try:
        from trac.db.api import DatabaseManager
        local = DatabaseManager(env)._transaction_local
        if getattr(local, 'wdb', None) is not None:
            return False
        cnx = _driver_connection(getattr(local, 'rdb', None))
        if cnx is None:
            return False
        from psycopg2.extensions import TRANSACTION_STATUS_INERROR
        if cnx.get_transaction_status() != TRANSACTION_STATUS_INERROR:
            return False
        cnx.rollback()
        return True
    except Exception as e:          # a broken connection: the next use says
        env.log.debug('tracnotify: rolling back a read failed: %r', e)
        return False
