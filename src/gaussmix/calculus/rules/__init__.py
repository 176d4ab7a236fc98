"""The rule tables: differentials, the canonical trace form, simplification."""
