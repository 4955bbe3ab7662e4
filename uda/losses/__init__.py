"""uda.losses (being built)."""
