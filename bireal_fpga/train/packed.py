"""Packed inference checkpoints: the binary convs' weights as one bit each.

A binary conv's inference weights are ``alpha * sign(W)`` (``alpha = mean|W|`` per output
channel, ``sign(0) = +1``): its float32 latent weights carry 32 bits where inference needs one
and a per-channel scale. A packed checkpoint keeps exactly that, so it is several times smaller
than a full one and builds the same integer form and the same float outputs. It is a
``torch.save`` dict::

    {"format": "bireal-fpga-packed", "version": 1, "spec": {...}, "mode": "binary",
     "binary": {"<state-dict key>": {"bits": uint8 [ceil(n / 8)], "shape": [Co, Ci, k, k],
                                     "alpha": float32 [Co]}},
     "model": every other state_dict entry, unchanged,
     "card": {...}}  # the model card (JSON object; {} when none)

``bits``: the weight tensor flattened in C (row-major) order, bit 1 where ``W >= 0`` (+1),
bit 0 where ``W < 0`` (-1), packed 8 to a byte most significant bit first (``numpy.packbits``
with ``bitorder="big"``: element ``i`` is bit ``7 - i % 8`` of byte ``i // 8``); the last
byte's unused low bits are 0. ``alpha``: :func:`~bireal_fpga.quant.functions.channel_alpha` of
the float32 weights, as the model computes it.

Reading one (:func:`unpack_model_state`, through
:func:`~bireal_fpga.train.checkpoint.load_checkpoint`) gives latent weights
``W = m * sign`` per channel whose ``channel_alpha`` is the stored ``alpha`` bit for bit on
the CPU: ``m`` starts at ``alpha`` and is moved by single float32 ulps
(:func:`torch.nextafter`) where a float32 mean of equal values rounds away from them. A
packed checkpoint holds no training state: it is for inference and builds, never resumed.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from bireal_fpga.errors import CheckpointError
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.quant.functions import channel_alpha
from bireal_fpga.quant.layers import BinaryConv2d
from bireal_fpga.spec import BiRealSpec

FORMAT = "bireal-fpga-packed"
VERSION = 1
BIT_ORDER: Literal["big"] = "big"
"""``numpy.packbits`` bit order of ``bits``: the first weight in the most significant bit."""
MAX_NUDGES = 4
"""Ulp steps tried per channel (:func:`rebuild_weight`): of its equal magnitudes, then of the
sum of its exact-sum magnitudes, each way."""


def binary_weight_keys(model: BiRealNet) -> list[str]:
    """The state-dict keys of the binary convs' latent weights, in network order."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, BinaryConv2d)]


def pack_signs(weight: Tensor) -> Tensor:
    """The sign bits of ``weight`` (1 where ``W >= 0``), flattened in C order and packed
    most significant bit first: uint8 ``[ceil(numel / 8)]``."""
    bits = np.asarray((weight.detach().cpu() >= 0).numpy(), dtype=np.bool_).reshape(-1)
    return torch.from_numpy(np.packbits(bits, bitorder=BIT_ORDER))


def unpack_signs(bits: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The +-1 float32 tensor of ``shape`` whose sign bits :func:`pack_signs` packed."""
    n = math.prod(shape)
    flat = np.unpackbits(np.asarray(bits.numpy(), dtype=np.uint8), count=n, bitorder=BIT_ORDER)
    return torch.from_numpy(flat.astype(np.float32) * 2.0 - 1.0).reshape(shape)


def _channel_view(signs: Tensor) -> tuple[int, ...]:
    return (-1,) + (1,) * (signs.dim() - 1)


def _exact_sum_magnitudes(total: Tensor, n: int) -> Tensor:
    """``[Co, n]`` float32 magnitudes whose sum, in any order, is ``total[c]`` without one
    rounding: multiples of ``q = ulp(total)`` (below ``2**24 q``, so every partial sum is a
    float32), ``floor(k / n) q`` and, for the first ``k mod n``, one ``q`` more
    (``k = total / q``)."""
    t = total.double()
    q = (torch.nextafter(total, torch.tensor(math.inf)) - total).double()
    k = torch.round(t / q).long()  # exact: total is k * q, k < 2**24
    base, extra = k // n, k % n
    more = torch.arange(n).unsqueeze(0) < extra.unsqueeze(1)
    return ((base.unsqueeze(1) + more.long()).double() * q.unsqueeze(1)).float()


def rebuild_weight(signs: Tensor, alpha: Tensor, *, what: str = "binary weight") -> Tensor:
    """Latent weights with the signs ``signs`` whose :func:`channel_alpha` is ``alpha`` bit
    for bit (computed as the model computes it: a float32 sum, then a division by ``n``).

    Per output channel the weights are ``m * signs``: ``m`` starts at ``alpha`` and moves one
    float32 ulp at a time (:func:`torch.nextafter`, at most :data:`MAX_NUDGES` steps) where
    the float32 mean of the ``n`` equal magnitudes rounds away from ``alpha``. That mean
    rounds twice (each partial sum, then the division) and can jump over ``alpha``; such a
    channel gets magnitudes that sum to a chosen float32 ``S`` exactly, in any summation
    order (:func:`_exact_sum_magnitudes`; they differ from ``alpha`` by less than
    ``n * 2**-23`` relative), with ``S`` tried from ``float32(n * alpha)`` outwards, one ulp
    at a time: the sum the original weights rounded to is such an ``S`` within a few ulps, and
    its quotient by ``n`` is ``alpha``.

    Args:
        signs: +-1 float32 ``[Co, ...]``.
        alpha: float32 ``[Co]``, finite and >= 0 (0 only where every sign is +1).
        what: names the weight in the error.

    Raises:
        CheckpointError: (naming ``what`` and the channel) no such weights were found.
    """
    view = _channel_view(signs)
    cout, n = signs.shape[0], signs[0].numel()
    mag = alpha.clone()
    for _ in range(MAX_NUDGES):
        got = channel_alpha(mag.view(view) * signs).reshape(-1)
        off = got != alpha
        if not bool(off.any()):
            return mag.view(view) * signs
        toward = torch.where(got < alpha, math.inf, -math.inf).to(mag.dtype)
        mag = torch.where(off, torch.nextafter(mag, toward), mag)
    mags = mag.unsqueeze(1).expand(cout, n).clone()
    todo = channel_alpha(mag.view(view) * signs).reshape(-1) != alpha
    if n < 2**23:  # else floor(k / n) could be 0 and flip a -1 weight's sign
        start = (alpha.double() * n).float()
        up = down = start
        for i in range(2 * MAX_NUDGES + 1):
            if not bool(todo.any()):
                break
            if i % 2:
                up = torch.nextafter(up, torch.tensor(math.inf))
            elif i:
                down = torch.nextafter(down, torch.tensor(0.0))
            total = start if i == 0 else (up if i % 2 else down)
            candidate = torch.where(todo.unsqueeze(1), _exact_sum_magnitudes(total, n), mags)
            got = channel_alpha(candidate.reshape(signs.shape) * signs).reshape(-1)
            hit = todo & (got == alpha)
            mags = torch.where(hit.unsqueeze(1), candidate, mags)
            todo &= ~hit
    if bool(todo.any()):
        c = int(todo.nonzero()[0, 0])
        raise CheckpointError(
            f"{what}: no float32 weights with these signs were found whose mean magnitude "
            f"over {n} weights is alpha[{c}] = {float(alpha[c])!r}"
        )
    return mags.reshape(signs.shape) * signs


def _check_card(card: Any) -> dict[str, Any]:
    if card is None:
        return {}
    if not isinstance(card, dict) or not all(isinstance(k, str) for k in card):
        raise CheckpointError("the model card must be a JSON object (a dict with str keys)")
    try:
        return json.loads(json.dumps(card))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the model card is not JSON data: {exc}") from None


def packed_payload(model: BiRealNet, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict :func:`save_packed` writes, for a binary-mode ``model``; checked to unpack to
    the same ``alpha`` (bit for bit) and signs before it is returned."""
    if model.mode != "binary":
        raise CheckpointError(
            f"a model in '{model.mode}' mode cannot be packed: only a binary-mode (stage 2) "
            "model has one-bit weights"
        )
    card = _check_card(card)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    binary: dict[str, Any] = {}
    for key in binary_weight_keys(model):
        w = state.pop(key)
        if w.dtype != torch.float32:
            raise CheckpointError(f"binary weight '{key}' is {w.dtype}, packing needs float32")
        alpha = channel_alpha(w).reshape(-1)
        if not bool(torch.isfinite(alpha).all()):
            raise CheckpointError(f"binary weight '{key}' has a non-finite alpha")
        bits = pack_signs(w)
        # what loading will do, done now: a file that would not load is never written
        rebuilt = rebuild_weight(
            unpack_signs(bits, tuple(w.shape)), alpha, what=f"binary weight '{key}'"
        )
        if not torch.equal(rebuilt >= 0, w >= 0):  # pragma: no cover - pack/unpack are inverse
            raise CheckpointError(f"binary weight '{key}': the packed signs do not round-trip")
        binary[key] = {"bits": bits, "shape": list(w.shape), "alpha": alpha.clone()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "spec": model.spec.to_dict(),
        "mode": "binary",
        "binary": binary,
        "model": state,
        "card": card,
    }


def save_packed(path: str | Path, model: BiRealNet, card: dict[str, Any] | None = None) -> None:
    """Write ``model`` (binary mode) as a packed checkpoint with the model card ``card``.

    Atomic (temporary file + rename); everything is checked before anything is written.

    Raises:
        CheckpointError: a real-mode model, a weight that is not float32, a card that is not
            a JSON object.
    """
    path = Path(path)
    payload = packed_payload(model, card)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _reference_state(spec: BiRealSpec) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """The shapes of every state-dict entry of a ``spec`` net, and its binary weight keys."""
    with torch.device("meta"):  # shapes only: no memory, no initialization
        model = BiRealNet(spec)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return shapes, binary_weight_keys(model)


def unpack_model_state(
    payload: dict[str, Any], spec: BiRealSpec, path: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full state dict (latent weights rebuilt) and the model card of a packed payload.

    Raises:
        CheckpointError: naming ``path`` and the entry: a missing or unexpected entry, a
            wrong shape, a bit count that does not fit the shape, an ``alpha`` of the wrong
            length, dtype or value, a magnitude that cannot reproduce ``alpha``.
    """
    where = f"packed checkpoint '{path}'"
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{where} has version {payload.get('version')}, this bireal-fpga reads version "
            f"{VERSION}"
        )  # load_checkpoint checks it first, before the spec
    if payload.get("mode") != "binary":
        raise CheckpointError(f"{where}: mode is {payload.get('mode')!r}, expected 'binary'")
    for name in ("binary", "model", "card"):
        if not isinstance(payload.get(name), dict):
            raise CheckpointError(f"{where}: the entry '{name}' is missing or not a dict")
    binary, rest = payload["binary"], payload["model"]
    shapes, binary_keys = _reference_state(spec)
    for key in binary_keys:
        if key not in binary:
            raise CheckpointError(f"{where}: binary entry '{key}' is missing")
    for key in binary:
        if key not in binary_keys:
            raise CheckpointError(f"{where}: binary entry '{key}' is not a binary conv weight")
    state: dict[str, Any] = {}
    for key, expected in shapes.items():
        if key in binary:
            state[key] = _unpack_entry(binary[key], expected, f"{where}: binary entry '{key}'")
        elif key not in rest:
            raise CheckpointError(f"{where}: model entry '{key}' is missing")
        elif not isinstance(rest[key], Tensor) or tuple(rest[key].shape) != expected:
            got = tuple(rest[key].shape) if isinstance(rest[key], Tensor) else type(rest[key])
            raise CheckpointError(
                f"{where}: model entry '{key}' has shape {got}, the spec's net {expected}"
            )
        else:
            state[key] = rest[key]
    for key in rest:
        if key not in shapes or key in binary:
            raise CheckpointError(f"{where}: model entry '{key}' is not in the spec's net")
    return state, payload["card"]


def _unpack_entry(entry: Any, expected: tuple[int, ...], what: str) -> Tensor:
    """The rebuilt latent weight of one ``binary`` entry (``what`` names it in errors)."""
    if not isinstance(entry, dict) or set(entry) != {"bits", "shape", "alpha"}:
        raise CheckpointError(f"{what} must hold exactly 'bits', 'shape' and 'alpha'")
    bits, shape, alpha = entry["bits"], entry["shape"], entry["alpha"]
    if not isinstance(shape, list | tuple) or tuple(shape) != expected:
        raise CheckpointError(f"{what}: shape {shape!r}, the spec's net has {list(expected)}")
    n = math.prod(expected)
    if not isinstance(bits, Tensor) or bits.dtype != torch.uint8 or bits.dim() != 1:
        raise CheckpointError(f"{what}: 'bits' must be a 1-D uint8 tensor")
    if bits.numel() != (n + 7) // 8:
        raise CheckpointError(
            f"{what}: 'bits' holds {bits.numel()} bytes, shape {list(expected)} needs "
            f"{(n + 7) // 8}"
        )
    if n % 8 and int(bits[-1]) & ((1 << (8 - n % 8)) - 1):
        raise CheckpointError(f"{what}: 'bits' has non-zero padding bits in its last byte")
    cout = expected[0]
    if not isinstance(alpha, Tensor) or alpha.dtype != torch.float32 or alpha.dim() != 1:
        raise CheckpointError(f"{what}: 'alpha' must be a 1-D float32 tensor")
    if alpha.numel() != cout:
        raise CheckpointError(f"{what}: 'alpha' has {alpha.numel()} values, expected {cout}")
    if not bool((torch.isfinite(alpha) & (alpha >= 0)).all()):
        raise CheckpointError(f"{what}: 'alpha' must be finite and >= 0")
    signs = unpack_signs(bits, expected)
    negative = (signs < 0).reshape(cout, -1).any(dim=1)
    if bool((negative & (alpha == 0)).any()):
        raise CheckpointError(f"{what}: a channel with alpha 0 has negative weights")
    weight = rebuild_weight(signs, alpha, what=what)
    if not torch.equal(weight >= 0, signs > 0):  # pragma: no cover - alpha > 0 where negative
        raise CheckpointError(f"{what}: the rebuilt weights do not have the stored signs")
    return weight
