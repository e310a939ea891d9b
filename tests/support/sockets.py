"""Which TCP connections a process holds (Linux /proc), so that a test can
drop the database connections of ITS worker and not those of other test
runs sharing the same PostgreSQL server."""

import os
from typing import Set


def _socket_inodes(pid: int) -> Set[str]:
    inodes = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    return inodes


def local_tcp_ports(pid: int) -> Set[int]:
    """The local ports of the TCP sockets process *pid* has open."""
    inodes = _socket_inodes(pid)
    ports = set()
    for table in ('/proc/%d/net/tcp' % pid, '/proc/%d/net/tcp6' % pid):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(':', 1)[1], 16))
        except OSError:
            continue
    return ports
