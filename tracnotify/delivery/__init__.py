"""Delivery: passes over the outbox (deliverer), the in-process thread
(service), the standalone worker, burst control and the transports."""
