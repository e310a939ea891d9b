"""tracnotify: reliable ticket e-mail notifications for Trac 1.6.

The path of one ticket change through the package:

    listener -> (outbox event) -> delivery: recipients -> format -> message
             -> outbox message -> transports

Importing this package registers its Trac components.
"""

from tracnotify import (  # noqa: F401  (Trac component registration)
    admin,
    attachments,
    commands,
    config,
    distributor,
    listener,
    prefs,
    schema,
    unsubscribe_web,
    watch,
    worker,
)
