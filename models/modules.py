"""Torch modules of the "improved YOLO11" variants (registered for Ultralytics by ``register()``).

- SCConv (Li et al., CVPR 2023, "SCConv: Spatial and Channel Reconstruction Convolution for
  Feature Redundancy"): a spatial reconstruction unit (SRU: GroupNorm-gamma gating that
  separates informative from redundant features and cross-reconstructs them) followed by a
  channel reconstruction unit (CRU: split, squeeze, group-wise + point-wise convolutions on one
  part, point-wise reuse of the other, fused by softmax channel attention). Used in place of
  the second 3x3 convolution of every bottleneck inside C3k2 (:class:`C3k2_SCConv`).
- DyHead (Dai et al., CVPR 2021, "Dynamic Head"): scale-aware attention (hard-sigmoid weight of
  a level from its pooled features), spatial-aware attention (modulated deformable 3x3
  convolution) and task-aware attention (dynamic ReLU), applied to each pyramid level before
  the standard YOLO11 Detect head (:class:`DyDetect`). YOLO11's levels have different widths,
  so each level is weighed from its own features instead of across one common-width pyramid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from ultralytics.nn.modules.block import C3, C2f, C3k2
from ultralytics.nn.modules.conv import Conv
from ultralytics.nn.modules.head import Detect


def _groups(channels: int, wanted: int) -> int:
    """Largest group count <= ``wanted`` that divides ``channels`` (GroupNorm needs one)."""
    return max(g for g in range(1, min(wanted, channels) + 1) if channels % g == 0)


class SRU(nn.Module):
    """Spatial reconstruction unit: gate features by GroupNorm gammas, cross-reconstruct."""

    def __init__(self, c: int, groups: int = 16, gate: float = 0.5):
        super().__init__()
        self.gn = nn.GroupNorm(_groups(c, groups), c)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gn_x = self.gn(x)
        w_gamma = (self.gn.weight / self.gn.weight.sum()).view(1, -1, 1, 1)
        weights = torch.sigmoid(gn_x * w_gamma)
        # The paper's gate multiplies by the sigmoid re-weights (informative parts pass at
        # weight 1, the rest keeps its re-weight in both branches as the reference code
        # does), so the GroupNorm's gamma and beta get a gradient; a hard 0/1 mask gave none.
        informative = weights > self.gate
        w1 = torch.where(informative, torch.ones_like(weights), weights)
        w2 = torch.where(informative, torch.zeros_like(weights), weights)
        x1, x2 = w1 * x, w2 * x
        c, half = x.shape[1], x.shape[1] // 2
        # Cross-reconstruct: informative first half + redundant second half and vice versa
        # (splits chosen so the widths also pair up for odd ``c``).
        x11, x12 = x1[:, :half], x1[:, half:]
        x21, x22 = x2[:, : c - half], x2[:, c - half :]
        return torch.cat([x11 + x22, x12 + x21], 1)


class CRU(nn.Module):
    """Channel reconstruction unit mapping ``c1`` to ``c2`` channels (paper: ``c1 == c2``)."""

    def __init__(self, c1: int, c2: int, alpha: float = 0.5, squeeze: int = 2, k: int = 3):
        super().__init__()
        self.up = max(1, int(alpha * c1))
        self.low = c1 - self.up
        up_s, low_s = max(1, self.up // squeeze), max(1, self.low // squeeze)
        if low_s >= c2:
            raise ValueError(f"CRU: output width {c2} too small for input width {c1}.")
        self.squeeze1 = nn.Conv2d(self.up, up_s, 1, bias=False)
        self.squeeze2 = nn.Conv2d(self.low, low_s, 1, bias=False)
        g = 2 if up_s % 2 == 0 and c2 % 2 == 0 else 1
        self.gwc = nn.Conv2d(up_s, c2, k, padding=k // 2, groups=g)
        self.pwc1 = nn.Conv2d(up_s, c2, 1, bias=False)
        self.pwc2 = nn.Conv2d(low_s, c2 - low_s, 1, bias=False)
        self.c2 = c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up, low = torch.split(x, [self.up, self.low], dim=1)
        up, low = self.squeeze1(up), self.squeeze2(low)
        y = torch.cat([self.gwc(up) + self.pwc1(up), self.pwc2(low), low], 1)
        y = F.softmax(F.adaptive_avg_pool2d(y, 1), dim=1) * y
        return y[:, : self.c2] + y[:, self.c2 :]


class SCConv(nn.Module):
    """SRU then CRU, then BatchNorm and SiLU like Ultralytics' ``Conv`` (drop-in for a 3x3)."""

    def __init__(self, c1: int, c2: int):
        super().__init__()
        self.sru = SRU(c1)
        self.cru = CRU(c1, c2)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.cru(self.sru(x))))


class BottleneckSCConv(nn.Module):
    """YOLO bottleneck whose second 3x3 convolution is an :class:`SCConv`."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, k: int = 3, e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k, 1)
        self.cv2 = SCConv(c_, c2)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3kSCConv(C3):
    """C3k with SCConv bottlenecks."""

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        shortcut: bool = True,
        g: int = 1,
        e: float = 0.5,
        k: int = 3,
    ):
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(BottleneckSCConv(c_, c_, shortcut, k, e=1.0) for _ in range(n)))


class C3k2_SCConv(C3k2):
    """C3k2 whose bottlenecks (plain or inside C3k) use SCConv; same arguments as C3k2."""

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        c3k: bool = False,
        e: float = 0.5,
        attn: bool = False,
        g: int = 1,
        shortcut: bool = True,
    ):
        if attn:
            raise ValueError("C3k2_SCConv does not support attn=True (C3k2 PSA blocks).")
        C2f.__init__(self, c1, c2, n, shortcut, g, e)  # C2f: cv1/cv2 split-concat frame
        self.m = nn.ModuleList(
            C3kSCConv(self.c, self.c, 2, shortcut, g)
            if c3k
            else BottleneckSCConv(self.c, self.c, shortcut)
            for _ in range(n)
        )

    @classmethod
    def like(cls, m: C3k2) -> C3k2_SCConv:
        """The SCConv version of a built C3k2 (same widths, depth, C3k choice, shortcut)."""
        first: Any = m.m[0]
        c3k = isinstance(first, C3)
        shortcut = bool(first.m[0].add if c3k else first.add)
        c2 = m.cv2.conv.out_channels
        return cls(
            m.cv1.conv.in_channels, c2, len(m.m), c3k, m.c / c2, False, m.cv1.conv.groups, shortcut
        )


class DyReLU(nn.Module):
    """Dynamic ReLU (channel-wise, two pieces): max(a1*x + b1, a2*x + b2) from pooled features."""

    def __init__(self, c: int, reduction: int = 4, lambda_a: float = 1.0, lambda_b: float = 0.5):
        super().__init__()
        hidden = max(c // reduction, 4)
        self.fc = nn.Sequential(
            nn.Linear(c, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 4 * c), nn.Hardsigmoid()
        )
        self.lambdas = (lambda_a, lambda_b)
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        theta = 2 * self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)) - 1  # in [-1, 1]
        theta = theta.view(b, 4, self.c, 1, 1)
        la, lb = self.lambdas
        a1, b1 = 1.0 + la * theta[:, 0], lb * theta[:, 1]
        a2, b2 = la * theta[:, 2], lb * theta[:, 3]
        return torch.maximum(x * a1 + b1, x * a2 + b2)


class DyHeadBlock(nn.Module):
    """Scale-, spatial- and task-aware attention on one pyramid level (residual)."""

    def __init__(self, c: int):
        super().__init__()
        from torchvision.ops import DeformConv2d

        self.offset = nn.Conv2d(c, 27, 3, padding=1)  # 2*9 offsets + 9 modulation masks
        nn.init.zeros_(self.offset.weight)  # start as a plain 3x3 conv with mask 0.5
        nn.init.zeros_(self.offset.bias)  # type: ignore[arg-type]
        self.dcn = DeformConv2d(c, c, 3, padding=1, bias=False)
        self.max_offset = 32.0  # feature-map pixels
        self.norm = nn.GroupNorm(_groups(c, 16), c)
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, 1, 1), nn.ReLU(), nn.Hardsigmoid()
        )
        self.task = DyReLU(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        om = self.offset(x)
        # Bounded offsets: the deformable kernel indexes memory with them, and a non-finite
        # input (e.g. an uninitialised profiling tensor) must not make it read out of bounds.
        offset = torch.nan_to_num(om[:, :18]).clamp(-self.max_offset, self.max_offset)
        f = self.norm(self.dcn(x, offset, torch.sigmoid(om[:, 18:])))
        f = f * self.scale(f)
        return x + self.task(f)


class DyDetect(Detect):
    """YOLO11 Detect head preceded by one :class:`DyHeadBlock` per level; same arguments."""

    def __init__(
        self,
        nc: int = 80,
        reg_max: int = 16,
        end2end: bool = False,
        ch: list[int] | tuple[int, ...] = (),
    ):
        super().__init__(nc, reg_max, end2end, ch)
        self.dyhead = nn.ModuleList(DyHeadBlock(c) for c in ch)

    def forward(self, x: list[torch.Tensor]):
        return super().forward([blk(xi) for blk, xi in zip(self.dyhead, x)])

    @classmethod
    def like(cls, m: Detect) -> DyDetect:
        """The DyHead version of a built Detect head (same classes, widths, end2end)."""
        ch = [seq[0].conv.in_channels for seq in m.cv2]  # type: ignore[index]
        return cls(m.nc, m.reg_max, getattr(m, "one2one_cv2", None) is not None, ch)


# YAML name -> (Ultralytics module it stands in for while parsing, builder from the built one)
SWAPS = {
    "C3k2_SCConv": ("C3k2", C3k2_SCConv.like),
    "DyDetect": ("Detect", DyDetect.like),
}

__all__ = (
    "CRU",
    "SRU",
    "SWAPS",
    "BottleneckSCConv",
    "C3k2_SCConv",
    "C3kSCConv",
    "DyDetect",
    "DyHeadBlock",
    "DyReLU",
    "SCConv",
)
