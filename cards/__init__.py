"""Card builders: pure functions from domain values to Block Kit (and, later, Adaptive Cards).

No store, no clock, no network: what to show is decided by the values passed in.
"""
