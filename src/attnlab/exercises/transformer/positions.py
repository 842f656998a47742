"""Exercises 3.3 ``sinusoidal_encoding`` and ``rotary``: position encodings, checked against float64 forms of the
papers' formulas (rotary through complex numbers) and against their properties (rotations, relative offsets)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Trial
from attnlab.nn import positional as library


def sinusoidal_encoding(length, dim):
    """The library's table (computed in float64, returned in float32)."""
    return library.sinusoidal_positions(length, dim, dtype=torch.float32)


def rotary(x, offset=0):
    """The library's rotary embedding (pairs (2i, 2i+1), base 10000)."""
    return library.apply_rotary(x, offset)


# --- oracles: float64, written differently from the library -------------------------------------------------


def _pe64(length: int, dim: int, start: int = 0) -> Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)), one pair of columns at a time."""
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pos = torch.arange(start, start + length, dtype=torch.float64)
    for i in range(0, dim, 2):
        angle = pos / 10000 ** (i / dim)
        pe[:, i] = torch.sin(angle)
        if i + 1 < dim:
            pe[:, i + 1] = torch.cos(angle)
    return pe


def _rope64(x: Tensor, offset: int = 0) -> Tensor:
    """Each pair (x_2i, x_2i+1) as the complex number x_2i + i x_2i+1, times e^(i p theta_i)."""
    T, hs = x.shape[-2:]
    theta = 10000.0 ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)  # (hs/2,)
    angles = torch.arange(offset, offset + T, dtype=torch.float64).unsqueeze(1) * theta  # (T, hs/2)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], hs // 2, 2).contiguous())  # (..., T, hs/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten(-2)  # (..., T, hs)


# --- sinusoidal checks -----------------------------------------------------------------------------------------


def _pe(t: Trial, length: int, dim: int) -> Tensor:
    return t.tensor(t.call(length, dim), (length, dim), torch.float32, f"sinusoidal_encoding({length}, {dim})")


def _pe_formula(t: Trial) -> None:
    L, d = t.integer(5, 40), 2 * t.integer(2, 16)
    t.close(_pe(t, L, d), _pe64(L, d).float(), f"sinusoidal_encoding({L}, {d}) against the paper's formula")


def _pe_first_rows(t: Trial) -> None:
    pe = _pe(t, 3, 8)
    t.close(pe[0], torch.tensor([0.0, 1.0] * 4), "position 0: sin(0) = 0 at even dims, cos(0) = 1 at odd dims")
    t.close(pe[1, :2], torch.tensor([math.sin(1.0), math.cos(1.0)]), "position 1, dims 0 and 1: sin(1), cos(1)")


def _pe_shapes(t: Trial) -> None:
    for L, d in ((1, 2), (7, 6), (64, 128)):
        t.close(_pe(t, L, d), _pe64(L, d).float(), f"sinusoidal_encoding({L}, {d})")


def _pe_long(t: Trial) -> None:
    pe = _pe(t, 2048, 16)
    t.close(pe, _pe64(2048, 16).float(), "2048 positions (angles up to 2047 rad)", rtol=0.0, atol=5e-4)


def _pe_relative(t: Trial) -> None:
    pe = _pe(t, 30, 16).double()
    k = t.integer(1, 10)
    theta = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16) * k  # (8,)
    c, s = torch.cos(theta), torch.sin(theta)
    sin_p, cos_p = pe[: 30 - k, 0::2], pe[: 30 - k, 1::2]
    shifted = torch.stack([sin_p * c + cos_p * s, cos_p * c - sin_p * s], -1).flatten(-2)  # rotate each pair by k theta
    t.close(pe[k:], shifted, f"PE(p + {k}) as a fixed rotation of PE(p)", rtol=0.0, atol=1e-5)


def _pe_contract(t: Trial) -> None:
    _pe(t, 10, 8)


def _pe_variant(*, layout="interleaved", exponent=2.0, sign=-1.0, start=0):
    def sinusoidal_encoding(length, dim):
        pos = torch.arange(start, start + length, dtype=torch.float64).unsqueeze(1)  # (L, 1)
        freq = 10000.0 ** (sign * exponent * torch.arange(dim // 2, dtype=torch.float64) / dim)  # (d/2,)
        sin, cos = torch.sin(pos * freq), torch.cos(pos * freq)
        if layout == "halves":
            return torch.cat([sin, cos], 1).float()
        pair = (cos, sin) if layout == "swapped" else (sin, cos)
        return torch.stack(pair, -1).flatten(1).float()  # (L, d/2, 2) -> (L, d): interleaved

    return sinusoidal_encoding


PE_MISTAKES = (
    Mistake(
        "pe.halves",
        "sin and cos in two halves instead of interleaved",
        "the paper interleaves: PE(p, 2i) = sin, PE(p, 2i+1) = cos (pe[:, 0::2] = sin, pe[:, 1::2] = cos); "
        "torch.cat([sin, cos]) is tensor2tensor's layout, not the paper's",
        _pe_variant(layout="halves"),
    ),
    Mistake(
        "pe.swapped",
        "cos at the even dimensions",
        "even dimensions get sin, odd ones cos: PE(p, 2i) = sin(p / 10000^(2i/d))",
        _pe_variant(layout="swapped"),
    ),
    Mistake(
        "pe.exponent",
        "frequencies 10000^(i/d) instead of 10000^(2i/d)",
        "the exponent is 2i/d, with i the pair index (torch.arange(0, d, 2) / d): the wavelengths then run from "
        "2 pi to 10000 * 2 pi",
        _pe_variant(exponent=1.0),
    ),
    Mistake(
        "pe.positive_exponent",
        "positions multiplied by 10000^(2i/d) instead of divided",
        "the angle is p / 10000^(2i/d): the frequency 10000^(-2i/d) falls along the dimensions",
        _pe_variant(sign=1.0),
    ),
    Mistake(
        "pe.from_one",
        "positions counted from 1",
        "the first position is p = 0: sin 0 = 0, cos 0 = 1",
        _pe_variant(start=1),
    ),
)

SINUSOIDAL = Exercise(
    name="sinusoidal_encoding",
    section="3.3",
    title="Sinusoidal position encoding (Vaswani et al. 2017)",
    task=(
        "Return the table of sinusoidal position encodings for positions 0..length-1 and an even dim: dimension "
        "2i holds sin(p / 10000^(2i/dim)) and dimension 2i+1 holds cos of the same angle. float32."
    ),
    equation="PE(p, 2i) = sin(p / 10000^(2i/d)),  PE(p, 2i+1) = cos(p / 10000^(2i/d))",
    shapes="length, dim: ints (dim even); returns (length, dim) float32",
    returns="the (length, dim) table",
    reference=sinusoidal_encoding,
    solution=(library.sinusoidal_positions,),
    checks=(
        Check("shape and dtype", "sinusoidal_encoding(10, 8) is (10, 8) float32", "", _pe_contract),
        Check("the paper's formula", "random length and dim against a float64 table", "", _pe_formula),
        Check("positions 0 and 1", "sin 0 = 0, cos 0 = 1; sin 1, cos 1", "", _pe_first_rows),
        Check("odd sizes", "length 1, dim 2; (7, 6); (64, 128)", "", _pe_shapes),
        Check("long sequences", "2048 positions within 5e-4", "compute the angles in float64", _pe_long),
        Check("relative positions", "PE(p + k) is a fixed rotation of PE(p) per pair", "", _pe_relative),
    ),
    mistakes=PE_MISTAKES,
    forbidden=(),
)


# --- rotary checks ---------------------------------------------------------------------------------------------


def _rot(t: Trial, x: Tensor, offset: int | None = None) -> Tensor:
    out = t.call(x) if offset is None else t.call(x, offset=offset)
    return t.tensor(out, x.shape, x.dtype, "rotary(x)")


def _rope_contract(t: Trial) -> None:
    _rot(t, t.randn(2, 3, 5, 8))


def _rope_formula(t: Trial) -> None:
    x = t.randn(2, 3, 7, 16)
    t.close(_rot(t, x), _rope64(x).float(), "rotary(x) against rotations of the pairs (x_2i, x_2i+1)")


def _rope_offset(t: Trial) -> None:
    x = t.randn(2, 4, 16)
    o = t.integer(1, 20)
    t.close(_rot(t, x, o), _rope64(x, o).float(), f"rotary(x, offset={o}): positions {o}..{o + 3}")


def _rope_norms(t: Trial) -> None:
    x = t.randn(3, 9, 32)
    out = _rot(t, x)
    t.close(out.norm(dim=-1), x.norm(dim=-1), "the norm of every vector (a rotation keeps it)")


def _rope_relative(t: Trial) -> None:
    q, k = t.randn(1, 12, 16), t.randn(1, 12, 16)
    shift = t.integer(1, 30)
    a = _rot(t, q) @ _rot(t, k).transpose(-2, -1)  # (1, 12, 12): q_m . k_n at positions m, n
    b = _rot(t, q, shift) @ _rot(t, k, shift).transpose(-2, -1)  # both moved by the same offset
    t.close(b, a, f"q_m . k_n with both positions moved by {shift} (it depends on m - n only)", rtol=1e-4, atol=1e-4)


def _rope_shapes(t: Trial) -> None:
    for shape in ((1, 2), (3, 1, 64), (2, 2, 5, 2)):
        x = t.randn(*shape, dtype=torch.float64)
        t.close(_rot(t, x), _rope64(x), f"rotary(x) for x of shape {shape}, float64")


def _rope_variant(*, pairs="interleaved", sign=1.0, use_offset=True, exponent=2.0):
    def rotary(x, offset=0):
        T, hs = x.shape[-2:]
        start = offset if use_offset else 0
        freq = 10000.0 ** (-exponent * torch.arange(hs // 2, dtype=torch.float64) / hs)  # (hs/2,)
        angles = sign * torch.arange(start, start + T, dtype=torch.float64).unsqueeze(1) * freq  # (T, hs/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        if pairs == "halves":  # GPT-NeoX's rotate_half: pairs (i, i + hs/2)
            x1, x2 = x[..., : hs // 2], x[..., hs // 2 :]
            return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)

    return rotary


ROPE_MISTAKES = (
    Mistake(
        "rope.half_pairs",
        "RoPE rotating the wrong pairs",
        "this contract rotates the adjacent pairs (x_2i, x_2i+1) (x[..., 0::2], x[..., 1::2]), as the paper does; "
        "rotate_half pairs i with i + hs/2 (GPT-NeoX's layout)",
        _rope_variant(pairs="halves"),
    ),
    Mistake(
        "rope.sign",
        "rotated by minus the angle",
        "(x_2i, x_2i+1) -> (x_2i cos - x_2i+1 sin, x_2i sin + x_2i+1 cos): a counter-clockwise rotation by p theta_i",
        _rope_variant(sign=-1.0),
    ),
    Mistake(
        "rope.offset_ignored",
        "the offset ignored",
        "with a KV cache the new tokens start at position `offset`: angles (offset + t) theta_i",
        _rope_variant(use_offset=False),
    ),
    Mistake(
        "rope.exponent",
        "frequencies base^(-i/hs) instead of base^(-2i/hs)",
        "theta_i = 10000^(-2i/hs) for the pair i (torch.arange(0, hs, 2) / hs)",
        _rope_variant(exponent=1.0),
    ),
)

ROTARY = Exercise(
    name="rotary",
    section="3.3",
    title="Rotary position embedding (RoPE, Su et al. 2021)",
    task=(
        "Rotate each pair of features (x_2i, x_2i+1) of the vector at position p by the angle p * theta_i, "
        "theta_i = 10000^(-2i/hs). Positions start at `offset` (the number of cached tokens). Applied to queries "
        "and keys, q_m . k_n then depends on m - n only. Keep the input's shape and dtype."
    ),
    equation=(
        "(x_2i, x_2i+1) -> (x_2i cos(p theta_i) - x_2i+1 sin(p theta_i), x_2i sin(p theta_i) + x_2i+1 cos(p theta_i))"
    ),
    shapes="x (..., T, hs), hs even; offset: int; returns (..., T, hs)",
    returns="the rotated x",
    reference=rotary,
    solution=(library.apply_rotary,),
    checks=(
        Check("shape and dtype", "(2, 3, 5, 8) in, (2, 3, 5, 8) out", "", _rope_contract),
        Check("the rotation", "against a float64 rotation of each pair (complex numbers)", "", _rope_formula),
        Check("offset", "positions start at offset", "", _rope_offset),
        Check("norms kept", "a rotation keeps every vector's norm", "", _rope_norms),
        Check("relative positions", "q_m . k_n unchanged when m and n move together", "", _rope_relative),
        Check("odd shapes, float64", "hs = 2, T = 1, 2-D to 4-D inputs, float64", "", _rope_shapes),
    ),
    mistakes=ROPE_MISTAKES,
)

EXERCISES = (SINUSOIDAL, ROTARY)
