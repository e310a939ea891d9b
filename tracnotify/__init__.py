"""tracnotify: reliable ticket e-mail notifications for Trac 1.6.

The rooms of the house, in the order a ticket change passes through them
(see docs/architecture.md):

    listener, attachments   Trac's change listeners: a snapshot (event);
    wiki_listener           the same for wiki pages (wiki_event)
    milestone_listener      the same for milestones (milestone_event)
    outbox/                 the durable queue of events and messages
    mail/                   event -> messages: recipients, body, headers
    delivery/               passes over the outbox, worker, transports/
    inbound/                mail coming in: replies, bounces
    web/                    admin panels, preferences, Watch, unsubscribe
    i18n/                   the plugin's languages

Importing this package registers its Trac components.
"""

from tracnotify import (  # noqa: F401  (Trac component registration)
    announce_command,
    attachments,
    commands,
    config,
    distributor,
    listener,
    milestone_listener,
    milestone_subscribers,
    schema,
    wiki_listener,
    wiki_subscribers,
)
from tracnotify.alerts import events as alert_events  # noqa: F401
from tracnotify.alerts import options as alert_options  # noqa: F401
from tracnotify.delivery import service, startup, worker  # noqa: F401
from tracnotify.inbound import fetch  # noqa: F401  (notify fetch)
from tracnotify.inbound import options as inbound_options  # noqa: F401
from tracnotify.web import (  # noqa: F401
    admin,
    announce,
    bounces,
    preferences,
    realm_watch,
    replies,
    unsubscribe,
    watch,
)
