"""The storage of a constant broadcast over a stream (bireal_fpga.arch.constants): the period
and border forms, the choice between them, the exactness check; that the cost model prices
the words the ElementwiseAdd generator stores; and that the border form synthesizes (Yosys).
(Simulation of the border form against FINN: test_rtl_stream.py::test_add_border_constant.)"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_rtl_stream import border_constant, one_node

from bireal_fpga.arch import constants
from bireal_fpga.arch.constants import (
    BORDER,
    PERIOD,
    ConstLayoutError,
    const_layout,
    const_period,
    const_profile,
    const_storage,
)
from bireal_fpga.rtl.layers import generate_layer
from bireal_fpga.synth.cost_model import add_const_storage, derived_attrs, node_attrs, node_cost

# the class maps of a 3 x 3 conv, stride 1, pad 1, on 7 x 5 (all four borders) and stride 2
# on 8 x 12 -> 4 x 6 (only a top / left border)
ALL_BORDERS = ((0, 1, 1, 1, 1, 1, 2), (0, 1, 1, 1, 2))
TOP_LEFT = ((0, 1, 1, 1), (0, 1, 1, 1, 1, 1))


def test_per_channel_bias_is_a_period_on_a_tie():
    """A bias broadcast over the pixels: C / PE words in either form; the period form wins."""
    bias = np.broadcast_to(np.array([3, -1, 4, 1, -5, 9]), (1, 4, 4, 6))
    for pe, words in ((1, 6), (2, 3), (3, 2), (6, 1)):
        lay = const_layout(bias, pe)
        assert lay.form == PERIOD and lay.words == words, (pe, lay.storage)
        assert lay.row_class == () and lay.col_class == ()
        assert np.array_equal(lay.table, np.array([3, -1, 4, 1, -5, 9]).reshape(-1, pe))
    # the FC bias of a [1, C] output has no pixels: the period form only
    lay = const_layout(np.arange(10).reshape(1, 10), 2)
    assert lay.form == PERIOD and lay.words == 5
    assert not const_profile(np.arange(10).reshape(1, 10)).pixels


@pytest.mark.parametrize("classes", [ALL_BORDERS, TOP_LEFT], ids=["all_borders", "top_left"])
@pytest.mark.parametrize("pe", [1, 2, 4])
def test_border_form(classes, pe):
    row_class, col_class = classes
    rng = np.random.default_rng(pe)
    value = border_constant(rng, row_class, col_class, 4, -8, 7)
    lay = const_layout(value, pe)
    nr, nc = max(row_class) + 1, max(col_class) + 1
    assert lay.form == BORDER
    assert lay.row_class == row_class and lay.col_class == col_class
    s = lay.storage
    assert (s.rows, s.cols, s.wpp, s.row_classes, s.col_classes) == (
        len(row_class),
        len(col_class),
        4 // pe,
        nr,
        nc,
    )
    assert lay.words == nr * nc * 4 // pe == len(lay.table)
    assert s.bits(4) == lay.words * pe * 4
    # value(h, w, word) = table[(row_class[h] * NC + col_class[w]) * (C / PE) + word]
    words = value.reshape(len(row_class), len(col_class), 4 // pe, pe)
    for h, rc in enumerate(row_class):
        for w, cc in enumerate(col_class):
            for k in range(4 // pe):
                assert np.array_equal(lay.table[(rc * nc + cc) * (4 // pe) + k], words[h, w, k])
    assert np.array_equal(lay.frame(), value.reshape(-1, pe))


def test_classes_are_numbered_by_first_appearance():
    """Equal rows share a class wherever they are (here the bottom row equals the top one)."""
    value = border_constant(np.random.default_rng(0), (2, 0, 0, 1, 2), (1, 1, 0, 1), 2, -3, 3)
    lay = const_layout(value, 1)
    assert lay.form == BORDER
    assert lay.row_class == (0, 1, 1, 2, 0) and lay.col_class == (0, 0, 1, 0)
    assert np.array_equal(lay.frame(), value.reshape(-1, 1))


def test_period_form_when_it_stores_fewer_words():
    """A pattern repeating every 3 pixels along 4-wide rows of a 3 x 4 frame
    (the rows and columns fall into 3 classes each: border form 9 pixels), the period is 3
    pixels."""
    pix = np.array([[1, -1], [2, 0], [-3, 5]])
    value = pix[np.arange(3 * 4) % 3].reshape(1, 3, 4, 2)
    prof = const_profile(value)
    assert (prof.row_classes, prof.col_classes, prof.period) == (3, 3, 6)
    lay = const_layout(value, 2)
    assert lay.form == PERIOD and lay.words == 3
    assert np.array_equal(lay.frame(), value.reshape(-1, 2))


def test_word_period_from_the_element_period():
    """The storage decision's word period lcm(p, PE) / PE is const_period of the words, for
    random periodic constants and every PE dividing the channels."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        h, w, c = (int(x) for x in rng.integers(1, 6, size=3))
        c *= 2
        n = h * w * c
        p = int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))
        value = np.tile(rng.integers(-2, 3, size=p), n // p).reshape(1, h, w, c)
        prof = const_profile(value)
        for pe in (d for d in range(1, c + 1) if c % d == 0):
            expect = const_period(value.reshape(-1, pe))
            assert math.lcm(prof.period, pe) // pe == expect, (h, w, c, p, pe)
            lay = const_layout(value, pe)
            assert lay.words == min(expect, prof.row_classes * prof.col_classes * c // pe)
            assert lay.storage == const_storage(prof, pe)
            assert np.array_equal(lay.frame(), value.reshape(-1, pe))


def test_exactness_is_checked(monkeypatch):
    """A table that does not reproduce the constant is an error, not a silent ROM."""
    value = border_constant(np.random.default_rng(1), *ALL_BORDERS, 2, -4, 4)
    real = constants._classes

    def merged(slices):  # every slice one class
        cls, first = real(slices)
        return tuple(0 for _ in cls), first[:1]

    monkeypatch.setattr(constants, "_classes", merged)
    with pytest.raises(ConstLayoutError, match="border form does not reproduce"):
        const_layout(value, 1)


def test_errors():
    with pytest.raises(ConstLayoutError, match="not integers"):
        const_layout(np.full((1, 2, 2, 2), 0.5), 1)
    with pytest.raises(ConstLayoutError, match="do not divide"):
        const_layout(np.zeros((1, 2, 2, 6)), 4)


# ---- the cost model prices what the generator stores ----------------------------------------


def const_add(name, value, pe, side="rhs", ram_style="auto"):
    """An ElementwiseAdd of a UINT8 stream and an INT4 constant ``value`` -> INT10."""
    shape = list(value.shape)
    const, stream = ("c", shape, "INT4"), ("x", shape, "UINT8")
    ins = [const, stream] if side == "lhs" else [stream, const]
    return one_node(
        "ElementwiseAdd",
        name,
        dict(
            lhs_dtype=ins[0][2], rhs_dtype=ins[1][2], out_dtype="INT10", lhs_shape=shape,
            rhs_shape=shape, out_shape=shape, PE=pe, ram_style=ram_style,
            lhs_style="const" if side == "lhs" else "input",
            rhs_style="const" if side == "rhs" else "input",
        ),
        ins,
        [("y", shape, "INT10")],
        inits={"c": value},
    )  # fmt: skip


@pytest.mark.parametrize("side", ["lhs", "rhs"])
def test_cost_model_prices_the_generated_rom(side):
    rng = np.random.default_rng(3)
    border = border_constant(rng, *ALL_BORDERS, 8, -8, 7)
    bias = np.broadcast_to(rng.integers(-8, 8, size=8), border.shape).copy()
    for value, form in ((border, BORDER), (bias, PERIOD)):
        for pe in (1, 2, 4, 8):
            model, node = const_add(f"add_{form}_{pe}", value, pe, side)
            layer = generate_layer(model, node)
            attrs = {**node_attrs(node), **derived_attrs(model, node)}
            storage = add_const_storage(attrs)
            assert storage is not None and storage.form == form, (pe, storage)
            assert storage.bits(4) == dict(layer.resources)["const_bits"], (form, pe)
            assert layer.files[1][1].count("\n") == storage.words
    # a 32 x 32 frame of 8 channels: 8192 words (block RAM) priced without the graph, 9
    # pixels (a LUT ROM) with it
    big = border_constant(rng, (0, *[1] * 30, 2), (0, *[1] * 30, 2), 8, -8, 7)
    model, node = const_add("add_big", big, 1, side)
    with_graph, without = node_cost(node, "xc7", model), node_cost(node, "xc7")
    assert without.BRAM36 >= 1 and with_graph.BRAM36 == 0, (with_graph, without)
    assert dict(generate_layer(model, node).resources)["const_bits"] == 9 * 8 * 4


# ---- synthesis ------------------------------------------------------------------------------


@pytest.mark.parametrize("ram_style", ["auto", "block"])
def test_border_add_synthesizes(tmp_path: Path, ram_style):
    """The border form through the project's Yosys flow: a LUT ROM (auto, 27 words) or one
    RAMB18 (block), and the cost model close to what Yosys builds."""
    from bireal_fpga.synth import yosys_estimate as ye

    value = border_constant(np.random.default_rng(5), *ALL_BORDERS, 6, -8, 7)
    model, node = const_add("add_border_syn", value, 2, ram_style=ram_style)
    layer = generate_layer(model, node)
    layer.write(tmp_path)
    r = ye.synthesize_layer(tmp_path, ye.layer_sources(layer, tmp_path), "xc7").resources
    m = node_cost(node, "xc7", model)
    assert r.DSP == 0 and r.URAM == 0
    assert r.BRAM36 == m.BRAM36 == (0.5 if ram_style == "block" else 0.0), (r, m)
    assert abs(r.LUT - m.LUT) <= 0.25 * r.LUT and abs(r.FF - m.FF) <= 0.25 * r.FF, (r, m)
