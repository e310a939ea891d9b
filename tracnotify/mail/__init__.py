"""Mail: from a recorded event to finished messages (pipeline), who gets
them (recipients, choices, suppression), what they say (format, html,
chrome, message), batches (coalesce) and daily digests (digest)."""
