"""Events out to the owner's CRM: the outbox and its one delivery worker.

A part that changes something the CRM cares about writes the event into the
outbox (appliance.store.missed.Outbox.add) in the same transaction as the
change, so a crash never keeps one without the other.  `Deliverer` is one
thread that POSTs each event as JSON to every configured URL, signed with
HMAC-SHA256 (`sign`), in order per URL, retrying with back-off; a row is
deleted only after its URL answered 2xx.  See docs/missed.md, "The outbox".
"""
