"""Amends' platform-neutral domain: cases, the checklist, roles, budgets and the ledger.

Nothing here knows Slack or Teams; handlers translate payloads into these calls.
"""
