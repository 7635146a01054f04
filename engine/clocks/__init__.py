"""The clocks of an incident: what is due, when, and what happens when it is missed.

Every clock of an incident and how each one ended (deadlines), a missed clock
recorded once and escalated as the playbook says (breaches), escalation ladders that
climb and repeat until someone acknowledges (ladder), the on-call roster they reach
people outside the incident through (roster), and drills: an incident on a simulated
clock, with timed injects and a debrief (drills). The one reader of the system time is
:mod:`engine.clock`.
"""
