"""uda.data (being built)."""
