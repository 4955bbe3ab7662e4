import torch.nn.functional as F
from torch import nn

from uda.types import LevelInfo, SegOutput

NUM_CLASSES = 4


class TinySeg(nn.Module):
    """A tiny segmentation net: layer2 (stride 2), layer3/layer4 (stride 4), aux head on layer3, main on layer4."""

    def __init__(self, c: int = NUM_CLASSES) -> None:
        super().__init__()
        self.l2 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.l3 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.l4 = nn.Conv2d(8, 12, 3, padding=1)
        self.aux = nn.Conv2d(8, c, 1)
        self.head = nn.Conv2d(12, c, 1)
        self.feature_info = {
            "layer2": LevelInfo(4, 2),
            "layer3": LevelInfo(8, 4),
            "layer4": LevelInfo(12, 4),
            "logits": LevelInfo(c, 4),
        }

    def forward(self, x):
        f2 = F.relu(self.l2(x))
        f3 = F.relu(self.l3(f2))
        f4 = F.relu(self.l4(f3))
        return SegOutput(self.head(f4), self.aux(f3), {"layer2": f2, "layer3": f3, "layer4": f4})
