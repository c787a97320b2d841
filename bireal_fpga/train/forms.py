"""Float training form against integer inference form: top-1 of both, and where they differ.

The float form (a :class:`~bireal_fpga.models.bireal.BiRealNet` in eval mode) and the integer
form (:func:`bireal_fpga.integer.derive.integer_form`) compute the same function up to the
rounding of the float form's arithmetic. In float32 that rounding (about 1e-7 of a value) puts
the occasional element that lies within that distance of a quantizer boundary on the other
side of it, and the prediction of that image can change; in float64
(:data:`~bireal_fpga.quant.layers.EXACT_DTYPE`, the default here) the margin is about 1e-16.
What remains are exact ties of two class scores, which the integer form (and the hardware's
LabelSelect) gives to the lower class index and float rounding may not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.quant.layers import EXACT_DTYPE

MAX_LISTED = 20
"""At most this many differing images are listed by index."""


@dataclass(frozen=True)
class FormsAgreement:
    """Top-1 of the float and integer forms on the same images, and where they differ.

    Attributes:
        n: images evaluated.
        correct_float: images the float form classifies right.
        correct_int: images the integer form classifies right.
        disagreements: images whose top-1 class differs between the two forms.
        dtype: the float form's evaluation dtype ("float32" or "float64").
        first_differing: indices (into the split) of the first differing images.
    """

    n: int
    correct_float: int
    correct_int: int
    disagreements: int
    dtype: str
    first_differing: tuple[int, ...] = field(default=())

    @property
    def top1_float(self) -> float:
        return self.correct_float / max(self.n, 1)

    @property
    def top1_int(self) -> float:
        return self.correct_int / max(self.n, 1)

    @property
    def agreement(self) -> float:
        return 1.0 - self.disagreements / max(self.n, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_differing"] = list(self.first_differing)
        d.update(top1_float=self.top1_float, top1_int=self.top1_int, agreement=self.agreement)
        return d


@torch.no_grad()
def compare_forms(
    model: BiRealNet,
    dataset: Any,
    batch_size: int = 500,
    *,
    net: IntegerNet | None = None,
    limit: int = 0,
    dtype: torch.dtype = EXACT_DTYPE,
    progress: bool = False,
) -> FormsAgreement:
    """Run both forms of ``model`` (binary mode) on ``dataset`` (an in-memory split with uint8
    ``.images`` and ``.labels``, or any dataset of ``(uint8 image, label)``) on the CPU.

    ``net``: the integer form, if already derived. ``limit`` > 0: the first ``limit`` images.
    """
    model = model.eval()
    net = net if net is not None else integer_form(model)
    n_total = min(limit, len(dataset)) if limit else len(dataset)
    images = getattr(dataset, "images", None)
    n = correct_f = correct_i = differ = 0
    listed: list[int] = []
    bar = tqdm(total=n_total, desc="float vs integer", unit="img", disable=not progress)
    for start in range(0, n_total, batch_size):
        stop = min(start + batch_size, n_total)
        if images is not None:
            x, y = images[start:stop], dataset.labels[start:stop]
        else:
            items = [dataset[i] for i in range(start, stop)]
            x = torch.stack([im for im, _ in items])
            y = torch.tensor([int(lb) for _, lb in items])
        pred_f = model(preprocess(x, dtype)).argmax(1)
        pred_i = run_integer(net, x).argmax(1)  # first maximum: the lower class on a tie
        correct_f += int((pred_f == y).sum())
        correct_i += int((pred_i == y).sum())
        where = torch.nonzero(pred_f != pred_i).flatten()
        differ += len(where)
        listed.extend(start + int(i) for i in where[: MAX_LISTED - len(listed)])
        n += len(y)
        bar.update(len(y))
    bar.close()
    return FormsAgreement(
        n=n,
        correct_float=correct_f,
        correct_int=correct_i,
        disagreements=differ,
        dtype=str(dtype).removeprefix("torch."),
        first_differing=tuple(listed),
    )
