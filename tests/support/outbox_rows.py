"""What the outbox holds, read back whole (a copy's headers + its body)."""

import itertools
from typing import Callable, Dict, Tuple


def stored_messages(env) -> Dict[Tuple[str, str], str]:
    """``{(recipient, msgid): whole message}`` of every queued row."""
    return {(recipient, msgid): head + (shared or '')
            for recipient, msgid, head, shared in env.db_query("""
                SELECT m.recipient, COALESCE(m.msgid, b.msgid), m.message,
                       b.data
                FROM tracnotify_message m
                LEFT JOIN tracnotify_body b ON b.id=m.body_id""")}


def counted_tokens(monkeypatch) -> Callable[[], None]:
    """Unsubscribe tokens from a counter; the returned ``restart()`` starts
    it again, so that two builds of the same changes get the same
    tokens."""
    import tracnotify.mail.suppression as suppression
    state = {}

    def restart() -> None:
        counter = itertools.count()
        state['next'] = lambda: 'tok%029d' % next(counter)
    restart()
    monkeypatch.setattr(suppression, 'new_token', lambda: state['next']())
    return restart


def delivered_copies(env, sink) -> Dict[Tuple[str, str], bytes]:
    """One delivery pass: ``{(recipient, Message-ID): bytes received}``."""
    from tests.support.tickets import deliver_to_sink
    return {(item.rcpt_tos[0], item.message['Message-ID']): item.data
            for item in deliver_to_sink(env, sink, check_errors=True)}
