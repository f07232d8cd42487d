"""Polling feeds: when each is due, what to ask and fetch, and its state after a poll."""
