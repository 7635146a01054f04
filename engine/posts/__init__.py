"""Posts: the texts an incident sends, from template to delivery.

The sandboxed Jinja2 environment (sandbox), bounded rendering and the identifier
scan (render, and render_pool for the same limits from any thread), channel
limits and length counting (channels, xtext for X's weighted length), confidential
values found as a reader sees them (leaks), a draft's versions and approvals
(versions: render, edit, approve, reject), and release: publish approved text to
the outbox (release) and deliver it to real services through apprise (delivery).
"""
