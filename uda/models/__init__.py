"""uda.models (being built)."""
