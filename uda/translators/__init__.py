"""uda.translators (being built)."""
