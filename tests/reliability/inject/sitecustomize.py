"""Fault injection for child processes (``torchrun ... -m uda``): imported at interpreter start when this folder
is on ``PYTHONPATH``. Inert unless ``UDA_FAULT_ITER`` is set; then the process whose ``RANK`` equals
``UDA_FAULT_RANK`` raises once, at the start of iteration ``UDA_FAULT_ITER``, and leaves ``UDA_FAULT_MARKER``
behind so that the restarted process does not fail again."""

import os

if os.environ.get("UDA_FAULT_ITER") and "RANK" in os.environ:
    from pathlib import Path

    from uda.engine import trainer as _trainer

    _orig = _trainer.Trainer.train_step
    _at, _rank = int(os.environ["UDA_FAULT_ITER"]), int(os.environ.get("UDA_FAULT_RANK", "1"))
    _marker = Path(os.environ["UDA_FAULT_MARKER"])

    def _train_step(self, stage):
        if self.dist.rank == _rank and self.global_iter + 1 == _at and not _marker.exists():
            _marker.write_text(f"rank {_rank} failed at iteration {_at}\n")
            raise RuntimeError(f"injected fault on rank {_rank} at iteration {_at}")
        return _orig(self, stage)

    _trainer.Trainer.train_step = _train_step
