"""Night mode: each night switch's day/night state, how it was set, and who set it.

- `state`: the state machine, pure (the time passed in): automatic, a
  temporary override until the schedule's next boundary, a permanent one;
  toggle (short press, *28), hold (long press), settle (a boundary passed).
- `service`: the appliance's side: reads the switches from the saved
  routing, keeps the state in the store, appends and publishes an event for
  every change, ends temporary overrides at their boundary, and answers the
  control commands `night.status`, `night.set` and `night.press`.
- `commands`: `pbx night status|on|off|auto`.
- `saved`: the `night` table's row and routing's copy, plain data (the store
  uses it without loading routing).

The store keeps each switch's state in the `night` table and, in the same
transaction, what routing reads (`routing_state` key "night", read by
`routing.facts.saved_switches`), so the next call follows a change at once.
"""
