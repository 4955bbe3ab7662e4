"""uda.discriminators (being built)."""
