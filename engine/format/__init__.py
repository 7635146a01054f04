"""The playbook format: what a team writes, read, checked and compiled before any crisis.

The YAML read with positions (yamlsource) into pydantic models with file:line:col
on every error (loader, playbook), its semantic checks (checks), the public-text
check of template text (publictext, with its phrase lists in lexicon/), the shared
macros and template languages (macrolang), the plain-JSON plan an incident pins
when it starts (plan), the values a person types for a playbook (inputs,
durations) and its human views (describe: Mermaid diagram, summary). Nothing here
reads a store or an incident; channel profiles and the template sandbox come from
:mod:`engine.posts`.
"""
