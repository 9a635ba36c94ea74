"""Heads against numpy re-derivations."""
