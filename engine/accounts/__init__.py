"""Accounts: who may sign in to a team server, and how they prove it."""
