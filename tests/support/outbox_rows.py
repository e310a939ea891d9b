"""What the outbox holds, read back whole (a copy's headers + its body)."""

from typing import Dict, Tuple


def stored_messages(env) -> Dict[Tuple[str, str], str]:
    """``{(recipient, msgid): whole message}`` of every queued row."""
    return {(recipient, msgid): head + (shared or '')
            for recipient, msgid, head, shared in env.db_query("""
                SELECT m.recipient, COALESCE(m.msgid, b.msgid), m.message,
                       b.data
                FROM tracnotify_message m
                LEFT JOIN tracnotify_body b ON b.id=m.body_id""")}
