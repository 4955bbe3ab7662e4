"""uda.engine (being built)."""
