"""Web pages: the admin panels, the preferences panel, Watch and
unsubscribe."""
