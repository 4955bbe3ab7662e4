"""uda.configs (being built)."""
