"""Missed-call cases: a customer call nobody answered stays a case until someone handles it.

`cases` holds the lifecycle as pure functions, `config` the `missed` section
of the configuration, `service` the part of `pbx run` that turns finished
calls into cases (and their events into the outbox), `commands` the `pbx
missed` command.  See docs/missed.md.
"""
