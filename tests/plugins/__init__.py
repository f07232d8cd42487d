"""Pytest plugins shared by the newswatch test suite."""
