"""``python -m uda`` is the same as ``uda`` (and ``torchrun --nproc-per-node N -m uda train ...``)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="uda")
