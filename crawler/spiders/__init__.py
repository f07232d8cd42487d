"""Spiders of the newswatch crawler."""
