"""Incidents: running instances of a playbook, kept as events (event sourcing).

The frozen, hashed event records (events), the registry of every kind of event:
its fields, fold and wording (event_types), the state folded from them and the
questions asked of it (state), the stage machine (machine), who may do what
(policy), how a use case reads, builds and appends events under the write lock
(act; what a read alone needs is in reading, so that a read loads none of the
rest), the incident use cases: start, assign, tasks, notes, inputs, advance, close,
reopen (service), each incident's index row (index), the messages that reached it
and wait for an answer (inbound; where they come from is :mod:`engine.sources`) and
the text and JSON views of incidents and logs (views). Clocks are in :mod:`engine.clocks`, posts in
:mod:`engine.posts`.
"""
