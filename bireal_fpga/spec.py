"""The one typed description of a Bi-Real-shaped network, and the paper's presets.

A :class:`BiRealSpec` fixes everything the model, the integer form and (later) the hardware
depend on: stem kind, stages (blocks, width, stride), input size and channels, classes, and the
bit widths of the residual stream and of the real-valued (8-bit integer) layers.

Specs load from and save to JSON or YAML (:func:`load_spec`, :meth:`BiRealSpec.save`) and can be
given on the command line as a preset name, a file path, or inline JSON (``'{"widths": [8]}'``),
optionally followed by ``key=value`` overrides.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from bireal_fpga.errors import SpecError

StemKind = Literal["cifar", "imagenet"]
STEM_KINDS: tuple[str, ...] = ("cifar", "imagenet")
BinaryPadding = Literal["minus-one", "zero"]
BINARY_PADDINGS: tuple[str, ...] = ("minus-one", "zero")


@dataclass(frozen=True)
class BiRealSpec:
    """A Bi-Real network: ``stem -> stages of single-conv Bi-Real blocks -> pool -> FC``.

    Every block is ``out = Q(Q(BN(BinConv3x3(Sign(x)))) + shortcut(x))`` where ``Q`` is the
    fixed-point residual quantizer (``residual_bits`` bits, ``residual_frac_bits`` fraction
    bits, one scale shared by every add). The first block of a stage whose stride is 2 or whose
    width differs from its input uses the downsample shortcut
    ``Q(BN(Conv1x1_int(AvgPool2x2(x))))`` (AvgPool only when the stride is 2).

    Attributes:
        name: free-form name, carried into checkpoints and reports.
        stem: ``"cifar"`` = 3x3 stride-1 conv, no maxpool; ``"imagenet"`` = 7x7 stride-2 conv
            followed by 3x3 stride-2 maxpool (Bi-Real / ResNet stem).
        stem_width: output channels of the stem conv.
        widths: output channels of each stage.
        blocks: number of Bi-Real blocks (one binary 3x3 conv each) per stage.
        strides: stride of the first block of each stage (1 or 2).
        input_size: height = width of the input image in pixels (odd sizes allowed).
        input_channels: image channels (3 for RGB, 1 for grey).
        num_classes: classifier outputs.
        residual_bits: bits of the signed fixed-point residual stream.
        residual_frac_bits: fraction bits of the residual stream (scale ``2**-frac``).
        int_bits: bits of the integer weights of stem, downsample 1x1 convs and classifier.
        binary_padding: what a binary 3x3 conv pads its +-1 input with: ``"minus-one"`` (a
            -1 = bit 0 border, what FINN's padding means) or ``"zero"`` (the border taps add
            nothing, as in the official Bi-Real code and larq-zoo; the hardware adds a
            per-border-position correction to the popcount). Zero padding needs an even
            number of input channels at every binary conv.
    """

    name: str = "custom"
    stem: StemKind = "cifar"
    stem_width: int = 64
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (4, 4, 4, 4)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    input_size: int = 32
    input_channels: int = 3
    num_classes: int = 10
    residual_bits: int = 8
    residual_frac_bits: int = 4
    int_bits: int = 8
    binary_padding: BinaryPadding = "minus-one"

    def __post_init__(self) -> None:
        for name in ("widths", "blocks", "strides"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`SpecError` naming the first invalid field."""

        def need_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"spec field '{name}' must be an integer, got {value!r}")
            if value < lo or (hi is not None and value > hi):
                rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                raise SpecError(f"spec field '{name}' must be {rng}, got {value}")

        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"spec field 'name' must be a non-empty string, got {self.name!r}")
        if self.stem not in STEM_KINDS:
            raise SpecError(
                f"spec field 'stem' must be one of {list(STEM_KINDS)}, got {self.stem!r}"
            )
        need_int("stem_width", self.stem_width, 1)
        for name in ("widths", "blocks", "strides"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) == 0:
                raise SpecError(f"spec field '{name}' must be a non-empty list, got {value!r}")
        if not len(self.widths) == len(self.blocks) == len(self.strides):
            raise SpecError(
                "spec fields 'widths', 'blocks', 'strides' must have the same length, got "
                f"{len(self.widths)}, {len(self.blocks)}, {len(self.strides)}"
            )
        for i, w in enumerate(self.widths):
            need_int(f"widths[{i}]", w, 1)
        for i, b in enumerate(self.blocks):
            need_int(f"blocks[{i}]", b, 1)
        for i, s in enumerate(self.strides):
            if isinstance(s, bool) or s not in (1, 2):
                raise SpecError(f"spec field 'strides[{i}]' must be 1 or 2, got {s!r}")
        need_int("input_size", self.input_size, 1, 4096)
        need_int("input_channels", self.input_channels, 1, 64)
        need_int("num_classes", self.num_classes, 2)
        need_int("residual_bits", self.residual_bits, 2, 16)
        need_int("residual_frac_bits", self.residual_frac_bits, 0, self.residual_bits - 1)
        need_int("int_bits", self.int_bits, 2, 8)
        if self.binary_padding not in BINARY_PADDINGS:
            raise SpecError(
                f"spec field 'binary_padding' must be one of {list(BINARY_PADDINGS)}, "
                f"got {self.binary_padding!r}"
            )
        if self.binary_padding == "zero":
            for i, c in enumerate(self.binary_conv_inputs()):
                if c % 2:
                    raise SpecError(
                        f"spec field 'binary_padding' = 'zero' needs an even number of input "
                        f"channels at every binary conv; block {i} has {c} (the popcount "
                        "correction of a border pixel is half the sum of its padded weights)"
                    )
        size = self.feature_sizes()[-1]
        if size < 1:
            raise SpecError(
                f"spec field 'input_size' = {self.input_size} is too small for "
                f"{self.num_downsamples()} downsamplings"
            )

    # ------------------------------------------------------------------ shapes
    def binary_conv_inputs(self) -> list[int]:
        """Input channels of each block's binary conv, in network order."""
        out, c = [], self.stem_width
        for width, blocks in zip(self.widths, self.blocks, strict=True):
            for _ in range(blocks):
                out.append(c)
                c = width
        return out

    def num_downsamples(self) -> int:
        n = sum(1 for s in self.strides if s == 2)
        return n + (2 if self.stem == "imagenet" else 0)

    def stem_geometry(self) -> tuple[int, int, int]:
        """(kernel, stride, padding) of the stem conv."""
        return (7, 2, 3) if self.stem == "imagenet" else (3, 1, 1)

    def feature_sizes(self) -> list[int]:
        """Spatial size after the stem (and maxpool) and after each stage."""
        k, s, p = self.stem_geometry()
        size = (self.input_size + 2 * p - k) // s + 1
        if self.stem == "imagenet":
            size = (size + 2 - 3) // 2 + 1
        sizes = [size]
        for stride in self.strides:
            size = (size - 1) // stride + 1  # 3x3, pad 1
            sizes.append(size)
        return sizes

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("widths", "blocks", "strides"):
            d[name] = list(d[name])
        # fields added later are left out at their default, so every spec written before
        # they existed (files, checkpoints, hashes of builds) stays byte for byte the same
        for name, default in _LATER_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "spec") -> BiRealSpec:
        if not isinstance(data, dict):
            raise SpecError(
                f"{source}: a spec must be a mapping of fields, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise SpecError(
                    f"{source}: unknown spec field '{key}' (known: {', '.join(sorted(known))})"
                )
        values = dict(data)
        for name in ("widths", "blocks", "strides"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        """Write the spec as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        elif path.suffix == ".json":
            text = self.to_json() + "\n"
        else:
            raise SpecError(f"{path}: spec files must end in .json, .yaml or .yml")
        path.write_text(text)

    def replace(self, **changes: Any) -> BiRealSpec:
        return BiRealSpec.from_dict({**self.to_dict(), **changes})


_LATER_FIELDS: dict[str, Any] = {"binary_padding": "minus-one"}


# ---------------------------------------------------------------------- presets
def _imagenet(name: str, blocks: tuple[int, ...]) -> BiRealSpec:
    return BiRealSpec(
        name=name,
        stem="imagenet",
        stem_width=64,
        widths=(64, 128, 256, 512),
        blocks=blocks,
        strides=(1, 2, 2, 2),
        input_size=224,
        input_channels=3,
        num_classes=1000,
    )


def _cifar(name: str, blocks: tuple[int, ...]) -> BiRealSpec:
    return BiRealSpec(
        name=name,
        stem="cifar",
        stem_width=64,
        widths=(64, 128, 256, 512),
        blocks=blocks,
        strides=(1, 2, 2, 2),
        input_size=32,
        input_channels=3,
        num_classes=10,
    )


PRESETS: dict[str, tuple[BiRealSpec, str]] = {
    "bireal18": (_imagenet("bireal18", (4, 4, 4, 4)), "Bi-Real-18, ImageNet 224x224 (paper)"),
    "bireal34": (_imagenet("bireal34", (6, 8, 12, 6)), "Bi-Real-34, ImageNet 224x224 (paper)"),
    "bireal18-cifar": (_cifar("bireal18-cifar", (4, 4, 4, 4)), "Bi-Real-18, CIFAR 32x32 stem"),
    "bireal34-cifar": (_cifar("bireal34-cifar", (6, 8, 12, 6)), "Bi-Real-34, CIFAR 32x32 stem"),
    "bireal-small-cifar": (
        BiRealSpec(
            name="bireal-small-cifar",
            stem_width=32,
            widths=(32, 64, 128),
            blocks=(2, 2, 2),
            strides=(1, 2, 2),
        ),
        "small Bi-Real for CIFAR-sized boards (PYNQ-Z1/Z2)",
    ),
    "tiny": (
        BiRealSpec(
            name="tiny",
            stem_width=8,
            widths=(8, 16),
            blocks=(1, 1),
            strides=(1, 2),
            input_size=16,
        ),
        "tiny net for tests (16x16 RGB, 2 stages, 1 block each)",
    ),
    "tiny-mnist": (
        BiRealSpec(
            name="tiny-mnist",
            stem_width=16,
            widths=(16, 32),
            blocks=(1, 1),
            strides=(2, 2),
            input_size=28,
            input_channels=1,
        ),
        "tiny net for 28x28 grey images (MNIST / Fashion-MNIST)",
    ),
}


def preset(name: str) -> BiRealSpec:
    if name not in PRESETS:
        raise SpecError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})")
    return PRESETS[name][0]


def _parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise SpecError(f"override '{text}' must look like field=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SpecError(f"override '{text}': value is not valid YAML/JSON ({exc})") from None
    return key.strip(), value


def load_spec(text: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> BiRealSpec:
    """A spec from a preset name, a ``.json``/``.yaml`` file, or an inline JSON object.

    ``overrides`` are ``field=value`` strings (values parsed as YAML, so ``widths=[8,16]``).
    """
    text = str(text)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"inline spec is not valid JSON: {exc}") from None
        base = {"name": "custom"}
        spec_dict = {**base, **data}
        source = "inline spec"
    elif text in PRESETS:
        spec_dict = preset(text).to_dict()
        source = f"preset '{text}'"
    else:
        path = Path(text)
        if path.suffix not in (".json", ".yaml", ".yml"):
            raise SpecError(
                f"'{text}' is neither a preset ({', '.join(PRESETS)}) nor a .json/.yaml spec file"
            )
        if not path.is_file():
            raise SpecError(f"spec file '{text}' does not exist")
        try:
            raw = path.read_text()
            data = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
        except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            msg = str(exc).splitlines()[0]
            raise SpecError(f"spec file '{text}' cannot be parsed: {msg}") from None
        if not isinstance(data, dict):
            raise SpecError(f"spec file '{text}' must hold a mapping of spec fields")
        spec_dict = {"name": path.stem, **data}
        source = f"spec file '{text}'"
    for item in overrides:
        key, value = _parse_override(item)
        spec_dict[key] = value
    try:
        return BiRealSpec.from_dict(spec_dict, source=source)
    except TypeError as exc:  # pragma: no cover - from_dict checks names first
        raise SpecError(f"{source}: {exc}") from None
