"""The auditor's side: what proves the log, and what is read from it afterwards.

Hash-chain verification and signed checkpoints (integrity), every logged action
replayed through the rules the commands apply (rules), the report and exports
(report) and the offline audit bundle (bundle).
"""
