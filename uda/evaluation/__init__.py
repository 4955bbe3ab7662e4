"""uda.evaluation (being built)."""
