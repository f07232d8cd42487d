"""Digests: what a recipient is owed, when, and the message it becomes."""
