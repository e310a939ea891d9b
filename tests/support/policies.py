"""A fine-grained permission policy for the tests (a real Trac component)."""

from trac.core import Component, implements
from trac.perm import IPermissionPolicy

HIDDEN_USER = 'hidden'
HIDDEN_TICKET = 1
POLICIES = 'HideTicketPolicy, DefaultPermissionPolicy, LegacyAttachmentPolicy'


class HideTicketPolicy(Component):
    """Denies TICKET_VIEW on ticket #1 to the user 'hidden'."""

    implements(IPermissionPolicy)

    def check_permission(self, action, username, resource, perm):
        if action == 'TICKET_VIEW' and username == HIDDEN_USER and \
                resource is not None and resource.realm == 'ticket' and \
                resource.id is not None and \
                int(resource.id) == HIDDEN_TICKET:
            return False
        return None


def enable_hide_ticket_policy(env) -> None:
    """Enable :class:`HideTicketPolicy` in front of Trac's default ones."""
    env.enable_component(HideTicketPolicy)
    env.config.set('trac', 'permission_policies', POLICIES)
