"""Two new methods written with uda's public API only, one per lineage (docs/write-your-own.md).

- ``pixel_confidence`` (kind ``term``): ClassMix self-training whose pseudo-labels are weighted per pixel by the
  teacher's maximum probability, instead of DACS's one confidence scalar per image.
- ``max_square`` (kind ``aligner``): adversarial output alignment whose discriminator sees the squared softmax
  (an AdvEnt variant: p² instead of the entropy map).

Use them from the command line with ``--import examples/my_terms.py``.
"""

import torch.nn.functional as F

import uda
from uda.alignment import OutputAligner
from uda.selftraining import SelfTrainingTerm


@uda.register("term", "pixel_confidence")
class PixelConfidenceSelfTraining(SelfTrainingTerm):
    """ClassMix self-training; each target pixel is weighted by the teacher's confidence in it."""

    def pseudo_labels(self, step: uda.SegStep) -> uda.PseudoLabels:
        if step.pseudo is None:  # the first term to need them this step computes them; later ones reuse them
            logits = self.teacher(step.target_image).logits.detach()
            prob = F.interpolate(logits, size=step.target_image.shape[-2:], mode="bilinear").softmax(1)
            weight, label = prob.max(1)
            step.pseudo = uda.PseudoLabels(label, weight, self.name)
        return step.pseudo


@uda.register("aligner", "max_square")
class MaxSquareAligner(OutputAligner):
    """Output-space alignment of the squared class probabilities (one discriminator per level)."""

    def d_input(self, out, level, size):
        return self.scores(out, level, size) ** 2
