"""Small playbooks the tests write out: one for answering messages on one channel."""

from __future__ import annotations

SORRY = "We are sorry to hear this. Please contact us privately so that we can help."


def replying(playbook_id: str, channel: str, answer: str = SORRY, **more: str) -> str:
    """A playbook whose one open stage answers messages of `channel` with the template
    ``answer`` (and each template of `more`, name -> its text), approved by a spokesperson."""
    templates = {"answer": answer, **more}
    blocks = "".join(f"  {name}:\n    approval: {{all_of: [spokesperson]}}\n    channels:\n      {channel}:\n"
                     f"        en: \"{text}\"\n" for name, text in templates.items())
    return f"""\
id: {playbook_id}
name: Replying on {channel}
version: "1"
roles:
  lead: {{title: Lead, required: true}}
  spokesperson: {{title: Spokesperson, required: true}}
inbound:
  respond_within: {{default: 60m}}
stages:
  open:
    title: Answer
    templates: [{", ".join(templates)}]
  closed: {{title: Closed, terminal: true}}
transitions:
  close: {{from: open, to: closed, roles: [lead]}}
templates:
{blocks}"""
