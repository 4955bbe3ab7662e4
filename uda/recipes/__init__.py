"""uda.recipes (being built)."""
