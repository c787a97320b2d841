"""Size and cost of a Bi-Real spec for one image: parameters, binary/int MACs, layer table.

Counted from the spec (no model is built):

- ``params``: every trainable parameter -- conv/FC weights, BN gamma and beta, the FC bias
  (BN running statistics are buffers, not parameters). Equals
  ``sum(p.numel() for p in BiRealNet(spec).parameters())``.
- ``binary_params``: weights of the binary 3x3 convs (1 bit each in hardware).
- ``binary_macs``: XNOR-popcount MACs of the binary convs.
- ``int_macs``: integer MACs of the stem conv, downsample 1x1 convs and the classifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bireal_fpga.spec import BiRealSpec


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str  # int_conv | binary_conv | maxpool | avgpool | fc
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    params: int
    macs: int


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def layer_table(spec: BiRealSpec) -> list[LayerInfo]:
    layers: list[LayerInfo] = []
    c, h = spec.input_channels, spec.input_size
    k, s, p = spec.stem_geometry()
    co, ho = spec.stem_width, _out(h, k, s, p)
    w = c * k * k * co
    layers.append(
        LayerInfo("stem.conv", "int_conv", (c, h, h), (co, ho, ho), w + 2 * co, w * ho * ho)
    )
    c, h = co, ho
    if spec.stem == "imagenet":
        ho = _out(h, 3, 2, 1)
        layers.append(LayerInfo("stem.maxpool", "maxpool", (c, h, h), (c, ho, ho), 0, 0))
        h = ho
    idx = 0
    for width, n, stride in zip(spec.widths, spec.blocks, spec.strides, strict=True):
        for i in range(n):
            st = stride if i == 0 else 1
            ho = _out(h, 3, st, 1)
            w = c * 9 * width
            layers.append(
                LayerInfo(
                    f"blocks.{idx}.conv",
                    "binary_conv",
                    (c, h, h),
                    (width, ho, ho),
                    w + 2 * width,
                    w * ho * ho,
                )
            )
            if st != 1 or c != width:
                hp = h
                if st == 2:
                    hp = (h + 1) // 2
                    layers.append(
                        LayerInfo(
                            f"blocks.{idx}.downsample.pool", "avgpool", (c, h, h), (c, hp, hp), 0, 0
                        )
                    )
                w = c * width
                layers.append(
                    LayerInfo(
                        f"blocks.{idx}.downsample.conv",
                        "int_conv",
                        (c, hp, hp),
                        (width, hp, hp),
                        w + 2 * width,
                        w * hp * hp,
                    )
                )
            c, h = width, ho
            idx += 1
    layers.append(LayerInfo("head.pool", "avgpool", (c, h, h), (c, 1, 1), 0, 0))
    n_cls = spec.num_classes
    layers.append(
        LayerInfo("head.fc", "fc", (c, 1, 1), (n_cls, 1, 1), c * n_cls + n_cls, c * n_cls)
    )
    return layers


def summarize(spec: BiRealSpec) -> dict:
    """``{"params", "binary_params", "binary_macs", "int_macs", "layers"}`` for one image."""
    layers = layer_table(spec)
    binary = [ly for ly in layers if ly.kind == "binary_conv"]
    integer = [ly for ly in layers if ly.kind in ("int_conv", "fc")]
    return {
        "name": spec.name,
        "params": sum(ly.params for ly in layers),
        "binary_params": sum(ly.in_shape[0] * 9 * ly.out_shape[0] for ly in binary),
        "binary_macs": sum(ly.macs for ly in binary),
        "int_macs": sum(ly.macs for ly in integer),
        "layers": [
            {**asdict(ly), "in_shape": list(ly.in_shape), "out_shape": list(ly.out_shape)}
            for ly in layers
        ],
    }
