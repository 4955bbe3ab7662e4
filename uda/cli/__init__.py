"""The ``uda`` command line (being built)."""


def main() -> None:
    raise SystemExit("uda CLI not built yet")
