"""``python -m uda`` is the same as ``uda``."""

from .cli import main

if __name__ == "__main__":
    main()
