"""uda.alignment (being built)."""
