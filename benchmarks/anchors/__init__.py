"""Competitors that are not installable packages, re-implemented here from
their published descriptions (each module's docstring says from where)."""
