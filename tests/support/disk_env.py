"""Trac environments on disk, shared by several processes (workers)."""

import os
import uuid
from typing import Dict, Optional

from tests.support.live_trac import trac_admin


def make_disk_env(root: str, notification: Dict[str, str],
                  pg_uri: Optional[str] = None) -> str:
    """``trac-admin initenv`` (SQLite, or PostgreSQL in a schema of its
    own), tracnotify enabled and upgraded; returns the environment path."""
    path = os.path.join(root, 'env')
    if pg_uri:
        base = pg_uri.split('?', 1)[0]
        dburi = '%s?schema=t%s' % (base, uuid.uuid4().hex[:12])
    else:
        dburi = 'sqlite:db/trac.db'
    trac_admin(path, 'initenv', 'Worker Project', dburi)
    from trac.config import Configuration
    ini = Configuration(os.path.join(path, 'conf', 'trac.ini'))
    ini.set('components', 'tracnotify.*', 'enabled')
    ini.set('trac', 'base_url', 'http://trac.example.org/')
    ini.set('logging', 'log_type', 'file')
    for name, value in notification.items():
        ini.set('notification', name, value)
    ini.save()
    trac_admin(path, 'upgrade')
    return path


def drop_disk_env(path: str) -> None:
    """Drop the PostgreSQL schema of an environment made above, if any."""
    from trac.db.api import DatabaseManager
    from trac.env import Environment
    env = Environment(path)
    uri = DatabaseManager(env).connection_uri
    if uri.startswith('postgres') and 'schema=' in uri:
        schema = uri.split('schema=', 1)[1].split('&', 1)[0]
        with env.db_transaction as db:
            db('DROP SCHEMA IF EXISTS "%s" CASCADE' % schema)
    env.shutdown()
