"""Matching watches in text: spellings from the shipped data, one compiled automaton, rules."""
