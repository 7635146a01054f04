"""Crisis communication playbook engine (no CLI code here: see cli.py)."""
