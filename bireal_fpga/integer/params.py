"""The integer inference form of a Bi-Real net, as data.

Everything the accelerator computes is fixed by these arrays:

- integer convs (stem, downsample 1x1) with int weights; stem pads with 0 (pixel value 0);
- binary 3x3 convs with +-1 weights on +-1 inputs (``x >= 0 -> +1``), padded with -1, or with
  0 (``binary_pad``: the border taps add nothing);
- per-channel threshold units ``out = out_min + #{k : acc >= T[c, k]}`` (monotone; channels
  whose BN slope was negative have their weights negated so every unit is increasing);
- the residual add ``clamp(main + shortcut, lo, hi)``;
- the head: ``scores = W @ sum_hw(r) + b`` (int64).

Saved as one ``.npz`` (no pickles): arrays under ``<layer>.<field>`` keys and a JSON ``meta``
entry with shapes, strides, paddings and the spec. The golden numpy model reads this file
without importing anything else from this package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga import names
from bireal_fpga.errors import ExportError

FORMAT = "bireal-fpga-integer"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ThresholdUnit:
    """``out[c] = out_min + count(acc[c] >= thresholds[c, :])``; thresholds sorted per row."""

    thresholds: np.ndarray  # int64 [C, L]
    out_min: int


@dataclass(frozen=True)
class ConvLayer:
    """A conv whose accumulator feeds a threshold unit.

    ``binary``: weights are +-1 (int8) and inputs the signs of the int residual stream,
    padding value ``binary_pad`` (-1, or 0: a border pixel's dot product runs over its valid
    taps only). Otherwise int weights on int inputs, padding value 0.
    ``pool``: a 2x2 sum pool (after zero-padding odd sizes to even) before the conv.
    """

    weight: np.ndarray  # int8 [Co, Ci, k, k]
    stride: int
    pad: int
    binary: bool
    pool: bool
    act: ThresholdUnit
    binary_pad: int = -1  # the +-1 input's padding value (binary convs): -1 or 0


@dataclass(frozen=True)
class Block:
    conv: ConvLayer
    down: ConvLayer | None


@dataclass(frozen=True)
class IntegerNet:
    spec: dict[str, Any]
    input_shape: tuple[int, int, int]  # C, H, W (uint8 pixels)
    residual_min: int
    residual_max: int
    stem: ConvLayer
    maxpool: bool  # 3x3 stride-2 pad-1 max pool after the stem
    blocks: tuple[Block, ...]
    head_weight: np.ndarray  # int8 [classes, C]
    head_bias: np.ndarray  # int64 [classes]

    def layer_names(self) -> list[str]:
        """The keys of its layer outputs (a trace), in network order."""
        return names.layer_keys(len(self.blocks))

    # ------------------------------------------------------------------ npz
    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "spec": self.spec,
            "input_shape": list(self.input_shape),
            "residual_min": self.residual_min,
            "residual_max": self.residual_max,
            "maxpool": self.maxpool,
            "layers": {},
        }

        def put(name: str, layer: ConvLayer) -> None:
            arrays[f"{name}.weight"] = layer.weight.astype(np.int8)
            arrays[f"{name}.thresholds"] = layer.act.thresholds.astype(np.int64)
            meta["layers"][name] = {
                "stride": layer.stride,
                "pad": layer.pad,
                "binary": layer.binary,
                "pool": layer.pool,
                "out_min": layer.act.out_min,
            }
            if layer.binary and layer.binary_pad != -1:  # absent: -1 (files before it existed)
                meta["layers"][name]["binary_pad"] = layer.binary_pad

        put("stem", self.stem)
        for i, block in enumerate(self.blocks):
            put(f"blocks.{i}.conv", block.conv)
            if block.down is not None:
                put(f"blocks.{i}.down", block.down)
        meta["num_blocks"] = len(self.blocks)
        arrays["head.weight"] = self.head_weight.astype(np.int8)
        arrays["head.bias"] = self.head_bias.astype(np.int64)
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        path = Path(path)
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> IntegerNet:
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise ExportError(f"'{path}' is not an integer-form .npz file ({exc})") from None
        if "meta" not in data:
            raise ExportError(f"'{path}' has no 'meta' entry: not an integer-form file")
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise ExportError(f"'{path}' is format {meta.get('format')} v{meta.get('version')}")

        def get(name: str) -> ConvLayer:
            m = meta["layers"][name]
            return ConvLayer(
                weight=data[f"{name}.weight"],
                stride=m["stride"],
                pad=m["pad"],
                binary=m["binary"],
                pool=m["pool"],
                act=ThresholdUnit(data[f"{name}.thresholds"], m["out_min"]),
                binary_pad=int(m.get("binary_pad", -1)),
            )

        blocks = tuple(
            Block(
                conv=get(f"blocks.{i}.conv"),
                down=get(f"blocks.{i}.down") if f"blocks.{i}.down" in meta["layers"] else None,
            )
            for i in range(meta["num_blocks"])
        )
        return cls(
            spec=meta["spec"],
            input_shape=tuple(meta["input_shape"]),  # type: ignore[arg-type]
            residual_min=meta["residual_min"],
            residual_max=meta["residual_max"],
            stem=get("stem"),
            maxpool=meta["maxpool"],
            blocks=blocks,
            head_weight=data["head.weight"],
            head_bias=data["head.bias"],
        )
