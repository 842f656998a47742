r"""FlashAttention-2 in Triton: the forward and backward kernels of Dao (2023), one query or key block per program.

Notation: one head at a time; Q ``(T, d)``, K ``(S, d)``, V ``(S, dv)``; scores ``S = s Q K^T`` (masked entries
``-inf``), ``P = softmax(S)`` by rows, ``O = P V``. The paper's Algorithm 1 (forward) and 2 (backward) map onto
the kernels below (``docs/flash-attention.md`` walks through it line by line):

- forward, one program per block of ``BLOCK_M`` queries, a loop over blocks of ``BLOCK_N`` keys, with the
  online softmax (running row max ``m``, running sum ``l``, unnormalised output ``acc``):
  ``m' = max(m, rowmax S_b)``, ``l' = e^{m - m'} l + rowsum e^{S_b - m'}``, ``acc' = e^{m - m'} acc +
  e^{S_b - m'} V_b``; at the end ``O = acc / l`` and the log-sum-exp ``L = m + log l`` is saved (Alg. 1 l. 8-15).
- backward: ``D = rowsum(dO * O)`` (Alg. 2 l. 4) by :func:`_bwd_preprocess`; then each tile's ``P = e^{S - L}`` is
  recomputed from ``L`` (l. 11), and ``dV = P^T dO``, ``dP = dO V^T``, ``dS = P * (dP - D)``, ``dQ = s dS K``,
  ``dK = s dS^T Q`` (l. 12-16). Two kernels instead of the paper's one: :func:`_bwd_dkdv_kernel` owns a key block
  and loops over queries (dK, dV: Alg. 2's outer loop), :func:`_bwd_dq_kernel` owns a query block and loops over
  keys (dQ). The paper's single kernel adds each tile's ``dS K`` into dQ with atomic float32 additions; here every
  output is written by exactly one program, so the gradients are deterministic (bit for bit, run to run), there
  is no float32 dQ scratch buffer. The price: the dQ kernel recomputes ``S`` and ``dP``, 7 tile products per tile
  pair instead of 5. ``DQ_ATOMIC = True`` runs the paper's way instead (atomic additions from the dK/dV kernel).

Exponentials are base 2 (``exp2`` is the GPU's native instruction): the kernels scale scores by
``s log2(e)`` so that ``e^{s x - m} = 2^{s log2(e) x - m'}``, and save the log-sum-exp in base 2 (``L2 = L log2 e``).

Masks: causal (query ``i`` sees key ``j`` iff ``j <= i + offset``; ``offset = 0`` is torch's top-left alignment,
``S - T`` the bottom-right one); key blocks wholly above the diagonal are never loaded, blocks wholly below it run
without any mask, and only the blocks the diagonal crosses (and the last, partial block) are masked. A key-padding
mask ``(..., S)`` (True = real key) is loaded per key block. A query with no allowed key has ``l = 0``: its output
is 0 and its ``L = +inf``, so every recomputed ``P`` of that row is 0 and it passes no gradient.

Precision: float16/bfloat16 tiles multiply on tensor cores with float32 accumulation; ``m``, ``l``, ``acc``, dK,
dV, dQ are float32 and ``P``/``dS`` are rounded to the input dtype before their products (as FlashAttention does).
float32 inputs multiply in full IEEE float32 (``input_precision="ieee"``), not TF32: float32 here means float32
(the tests hold it to torch's float32 tolerances), at the cost of speed; use bfloat16 for speed.

Triton's interpreter runs the same kernels on CPU tensors with numpy, slowly (it has no bfloat16 matrix product).
Triton selects it when ``TRITON_INTERPRET=1`` is in the environment before triton is first imported (its own
library functions and ``@triton.jit`` read it then): set it before starting Python.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from attnlab.functional.masks import AttentionMask

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # attnlab works without Triton; only impl="triton" needs it
    raise ModuleNotFoundError(
        "impl='triton' needs the package triton, which is not installed: pip install 'attnlab[gpu]' "
        "(or pip install triton; CUDA builds of torch ship with it)",
        name="triton",
    ) from exc

LOG2E = 1.4426950408889634  # log2(e): e^x = 2^(x log2 e)
MAX_HEAD = 256  # K, V and Q tiles of 256 columns already fill most of a GPU's shared memory
DTYPES = (torch.float16, torch.bfloat16, torch.float32)

# Tile sizes per kernel and padded head size: (BLOCK_M queries, BLOCK_N keys, num_warps, num_stages).
# - forward and dQ own BLOCK_M = 128 queries where it fits (FlashAttention-2's choice: each K/V tile loaded from
#   memory then serves 128 rows, while the fp32 accumulator (128, d) still fits in registers) and walk 32-128 keys
#   per step; 256-wide heads take 64 queries.
# - dK/dV owns BLOCK_N = 128 keys (64 for 256-wide heads) and walks 16-64 queries per step: its two fp32
#   accumulators dK, dV are (BLOCK_N, d) each, so 128-wide heads need 8 warps (4 cannot hold them: registers spill).
# - num_stages: how many K/V (or Q/dO) tiles are prefetched ahead of the one being multiplied (software pipelining
#   through shared memory); every configuration fits an H100's 227 KB per block (up to 192 KB).
# Each was compiled for sm_90 with Triton 3.6 and its register spills read with ptxas -v (tests/functional/
# compile_flash_for_gpu.py): none at 64/128/256 in bfloat16 but dK/dV's (32, 128, 4, 3) at 64 (4 bytes) and
# (32, 64, 8, 2) at 256 (76); candidates that spilled hundreds of bytes were dropped.
# The first configuration of each list is the default; with AUTOTUNE on a GPU, triton.autotune times both once per
# (head sizes, masks, dtype, power-of-two sizes of T and S) and keeps the faster. Two per list: each costs a
# compilation (seconds) and a timing run the first time a new shape class is met.
GPU_CONFIGS = {
    "fwd": {
        64: [(128, 64, 4, 3), (128, 128, 8, 3)],
        128: [(128, 64, 8, 3), (128, 128, 8, 2)],
        256: [(64, 64, 8, 2), (128, 32, 8, 2)],
    },
    "dkdv": {
        64: [(32, 128, 4, 3), (64, 128, 8, 3)],
        128: [(32, 128, 8, 3), (64, 64, 8, 2)],
        256: [(16, 64, 8, 2), (32, 64, 8, 2)],
    },
    "dq": {
        64: [(128, 64, 8, 3), (128, 32, 4, 3)],
        128: [(128, 64, 8, 2), (128, 32, 8, 3)],
        256: [(64, 32, 8, 2), (32, 32, 4, 2)],
    },
}
# float32 inputs multiply in IEEE float32 on the CUDA cores (no tensor cores): a tile product then needs many more
# registers, and the tiles twice the shared memory, so they get small tiles and one configuration (the exact path,
# not the fast one; bfloat16 is the fast one).
GPU_CONFIGS_FP32 = {
    "fwd": {64: [(32, 32, 4, 2)], 128: [(32, 32, 8, 2)], 256: [(32, 32, 8, 2)]},
    "dkdv": {64: [(16, 32, 4, 2)], 128: [(16, 32, 8, 2)], 256: [(16, 32, 8, 2)]},
    "dq": {64: [(32, 32, 4, 2)], 128: [(32, 32, 8, 2)], 256: [(32, 32, 8, 2)]},
}
# The interpreter: numpy runs each program's tile operations in turn; 32 x 32 tiles give the tests several tiles
# (skipped, unmasked, diagonal, partial) at a few dozen positions.
INTERPRETER_CONFIGS = [(32, 32, 1, 1)]
AUTOTUNE = True  # False: each kernel runs its first configuration
CONFIG_CHOICE: int | None = None  # i: each kernel runs configuration i of its GPU list, interpreted too (the tests)
TUNE_BENCH = None  # the autotuner's timer, fn(kernel_call, quantiles); None: Triton's (CUDA events)
# dQ by the dK/dV kernel with float32 atomic additions (Algorithm 2 as written: 5 tile products per tile pair, not
# 7, but the order of the additions, hence dQ's last bits, changes from run to run) instead of its own kernel.
DQ_ATOMIC = False
# Triton compiles a variant for integer arguments equal to 1 or divisible by 16; these vary call to call and
# gain nothing from it (the autotuner's size classes, and the causal offset S - T).
NOT_SPECIALIZED = ["causal_offset", "T_BUCKET", "S_BUCKET"]


# --------------------------------------------------------------------------------------------------- kernels


@triton.jit
def _load_tile(ptrs, rows_ok, cols_ok, CHECK_ROWS: tl.constexpr, CHECK_COLS: tl.constexpr):
    """A (rows, cols) tile, zero where out of range; masked only where the shape needs it (unmasked loads vectorize)."""
    if CHECK_ROWS and CHECK_COLS:
        tile = tl.load(ptrs, mask=rows_ok[:, None] & cols_ok[None, :], other=0.0)
    elif CHECK_ROWS:
        tile = tl.load(ptrs, mask=rows_ok[:, None], other=0.0)
    elif CHECK_COLS:
        tile = tl.load(ptrs, mask=cols_ok[None, :], other=0.0)
    else:
        tile = tl.load(ptrs)
    return tile


@triton.jit
def _key_range(start_m, T, S, causal_offset, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """For the queries [start_m, start_m + BLOCK_M): keys [0, full) need no mask, keys [full, end) do, keys >= end
    are not seen by any of them (wholly above the causal diagonal) and are skipped."""
    if CAUSAL:
        # the last query, start_m + BLOCK_M - 1, sees keys j <= start_m + BLOCK_M - 1 + offset
        end = tl.minimum(tl.maximum(start_m + BLOCK_M + causal_offset, 0), S)
        # a key block is fully visible to the first query (hence to all) iff its last key <= start_m + offset
        full = tl.maximum(start_m + causal_offset + 1, 0) // BLOCK_N * BLOCK_N
        full = tl.minimum(full, S // BLOCK_N * BLOCK_N)  # and it must be a whole block (no row bound to check)
    else:
        end = S
        full = S // BLOCK_N * BLOCK_N
    return full, end


@triton.jit
def _fwd_tiles(
    acc, l_i, m_i, q, k_ptrs, v_ptrs, km_ptrs, rows, offs_n, dqk_ok, dv_ok, lo, hi,
    stride_ks, stride_vs, stride_ms, S, causal_offset, scale_log2,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, MASKED: tl.constexpr,
    PAD_QK: tl.constexpr, PAD_V: tl.constexpr, DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Alg. 1 lines 6-11 for the key blocks [lo, hi): fold each block into the running (acc, l, m)."""
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,) key positions
        k = _load_tile(k_ptrs + start_n * stride_ks, cols < S, dqk_ok, MASKED, PAD_QK)  # (BLOCK_N, BLOCK_QK)
        # scores in log2 units: s log2(e) q.k  (BLOCK_M, BLOCK_QK) @ (BLOCK_QK, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * scale_log2
        if MASKED:  # the last (partial) block, or a block the causal diagonal crosses
            allowed = cols[None, :] < S
            if CAUSAL:
                allowed = allowed & (cols[None, :] <= rows[:, None] + causal_offset)
            scores = tl.where(allowed, scores, float("-inf"))
        if HAS_KEY_MASK:
            real = tl.load(km_ptrs + start_n * stride_ms, mask=cols < S, other=0)  # (BLOCK_N,) 1 = real key
            scores = tl.where(real[None, :] != 0, scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))  # m' = max(m, rowmax S_b)   (Alg. 1 l. 9)
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with no allowed key yet: e^(-inf - 0) = 0
        p = tl.exp2(scores - m_use[:, None])  # P~ = e^(S_b - m')   (BLOCK_M, BLOCK_N)
        alpha = tl.exp2(m_i - m_use)  # e^(m - m'): rescales what was summed under the old max
        l_i = l_i * alpha + tl.sum(p, 1)  # l' = e^(m - m') l + rowsum P~
        v = _load_tile(v_ptrs + start_n * stride_vs, cols < S, dv_ok, MASKED, PAD_V)  # (BLOCK_N, BLOCK_V)
        acc = acc * alpha[:, None]  # O' = e^(m - m') O + P~ V_b   (Alg. 1 l. 10)
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=DOT_PRECISION)  # (BLOCK_M, BLOCK_N) @ (BLOCK_N, BLOCK_V)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def _fwd_kernel(
    Q, K, V, KM, O, LSE,
    stride_qz, stride_qh, stride_qt, stride_qd,
    stride_kz, stride_kh, stride_ks, stride_kd,
    stride_vz, stride_vh, stride_vs, stride_vd,
    stride_mz, stride_mh, stride_ms,
    stride_oz, stride_oh, stride_ot, stride_od,
    H, T, S, causal_offset, scale_log2, T_BUCKET, S_BUCKET,
    HEAD_QK: tl.constexpr, HEAD_V: tl.constexpr, BLOCK_QK: tl.constexpr, BLOCK_V: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Algorithm 1 for one block of BLOCK_M queries of one (batch, head): grid (cdiv(T, BLOCK_M), Z, H).
    T_BUCKET and S_BUCKET (powers of two) only key the autotuner's cache."""
    start_m = tl.program_id(0) * BLOCK_M
    z, h = tl.program_id(1).to(tl.int64), tl.program_id(2).to(tl.int64)  # batch entry, head
    zh = z * H + h
    rows = start_m + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query positions
    offs_n = tl.arange(0, BLOCK_N)
    offs_dqk, offs_dv = tl.arange(0, BLOCK_QK), tl.arange(0, BLOCK_V)  # head dims, padded to a power of two
    dqk_ok, dv_ok = offs_dqk < HEAD_QK, offs_dv < HEAD_V
    q_ptrs = Q + z * stride_qz + h * stride_qh + rows[:, None] * stride_qt + offs_dqk[None, :] * stride_qd
    k_ptrs = K + z * stride_kz + h * stride_kh + offs_n[:, None] * stride_ks + offs_dqk[None, :] * stride_kd
    v_ptrs = V + z * stride_vz + h * stride_vh + offs_n[:, None] * stride_vs + offs_dv[None, :] * stride_vd
    km_ptrs = KM + z * stride_mz + h * stride_mh + offs_n * stride_ms

    q = _load_tile(q_ptrs, rows < T, dqk_ok, True, HEAD_QK < BLOCK_QK)  # (BLOCK_M, BLOCK_QK), stays on chip
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)  # running row max (Alg. 1 l. 5)
    l_i = tl.zeros([BLOCK_M], tl.float32)  # running row sum of e^(S - m)
    acc = tl.zeros([BLOCK_M, BLOCK_V], tl.float32)  # unnormalised output
    full, end = _key_range(start_m, T, S, causal_offset, CAUSAL, BLOCK_M, BLOCK_N)
    acc, l_i, m_i = _fwd_tiles(
        acc, l_i, m_i, q, k_ptrs, v_ptrs, km_ptrs, rows, offs_n, dqk_ok, dv_ok, 0, full,
        stride_ks, stride_vs, stride_ms, S, causal_offset, scale_log2,
        CAUSAL, HAS_KEY_MASK, False, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, BLOCK_N,
    )  # fmt: skip
    acc, l_i, m_i = _fwd_tiles(
        acc, l_i, m_i, q, k_ptrs, v_ptrs, km_ptrs, rows, offs_n, dqk_ok, dv_ok, full, end,
        stride_ks, stride_vs, stride_ms, S, causal_offset, scale_log2,
        CAUSAL, HAS_KEY_MASK, True, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, BLOCK_N,
    )  # fmt: skip
    empty = l_i == 0.0  # no allowed key: output 0, L = +inf (so the backward's P = e^(S - L) is 0)
    out = acc / tl.where(empty, 1.0, l_i)[:, None]  # O = diag(l)^-1 O~   (Alg. 1 l. 12)
    lse = tl.where(empty, float("inf"), m_i + tl.log2(tl.where(empty, 1.0, l_i)))  # L2 = m + log2 l   (l. 13)
    o_ptrs = O + z * stride_oz + h * stride_oh + rows[:, None] * stride_ot + offs_dv[None, :] * stride_od
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=(rows < T)[:, None] & dv_ok[None, :])
    tl.store(LSE + zh * T + rows, lse, mask=rows < T)


@triton.jit
def _bwd_preprocess(
    O, DO, DELTA,
    stride_oz, stride_oh, stride_ot, stride_od,
    stride_dz, stride_dh, stride_dt, stride_dd,
    H, T,
    HEAD_V: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_M: tl.constexpr,
):  # fmt: skip
    """D = rowsum(dO * O) in float32 (Alg. 2 l. 4): grid (cdiv(T, BLOCK_M), Z, H)."""
    z, h = tl.program_id(1).to(tl.int64), tl.program_id(2).to(tl.int64)  # batch entry, head
    zh = z * H + h
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_dv = tl.arange(0, BLOCK_V)
    ok = (rows < T)[:, None] & (offs_dv < HEAD_V)[None, :]
    o = tl.load(O + z * stride_oz + h * stride_oh + rows[:, None] * stride_ot + offs_dv[None, :] * stride_od, ok, 0.0)
    do = tl.load(DO + z * stride_dz + h * stride_dh + rows[:, None] * stride_dt + offs_dv[None, :] * stride_dd, ok, 0.0)
    tl.store(DELTA + zh * T + rows, tl.sum(o.to(tl.float32) * do.to(tl.float32), 1), mask=rows < T)


@triton.jit
def _dkdv_tiles(
    dk, dv, k, v, q_ptrs, do_ptrs, dq_ptrs, lse_ptr, delta_ptr, cols, key_ok, offs_m, dqk_ok, dv_ok, lo, hi,
    stride_qt, stride_dt, stride_gqt, T, causal_offset, scale, scale_log2,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, MASKED: tl.constexpr, PAD_QK: tl.constexpr,
    PAD_V: tl.constexpr, DOT_PRECISION: tl.constexpr, DQ_ATOMIC: tl.constexpr, BLOCK_M: tl.constexpr,
):  # fmt: skip
    """Alg. 2 lines 8-17 for the query blocks [lo, hi) against one key block; tiles are held transposed,
    (keys, queries), so that dV = P^T dO and dK = dS^T Q are plain products. With DQ_ATOMIC, also line 15 as the
    paper writes it: this key block's share of dQ is added into a float32 dQ in memory (atomically, since every
    key block adds into the same rows)."""
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + offs_m  # (BLOCK_M,) query positions
        q = _load_tile(q_ptrs + start_m * stride_qt, rows < T, dqk_ok, MASKED, PAD_QK)  # (BLOCK_M, BLOCK_QK)
        do = _load_tile(do_ptrs + start_m * stride_dt, rows < T, dv_ok, MASKED, PAD_V)  # (BLOCK_M, BLOCK_V)
        if MASKED:  # rows past T: L = +inf makes their P 0
            lse = tl.load(lse_ptr + rows, mask=rows < T, other=float("inf"))
            delta = tl.load(delta_ptr + rows, mask=rows < T, other=0.0)
        else:
            lse = tl.load(lse_ptr + rows)
            delta = tl.load(delta_ptr + rows)
        # S^T in log2 units: (BLOCK_N, BLOCK_QK) @ (BLOCK_QK, BLOCK_M) -> (BLOCK_N, BLOCK_M)
        scores_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * scale_log2
        p_t = tl.exp2(scores_t - lse[None, :])  # P^T = e^(S - L), recomputed   (Alg. 2 l. 11)
        if MASKED and CAUSAL:
            p_t = tl.where(cols[:, None] <= rows[None, :] + causal_offset, p_t, 0.0)
        if DQ_ATOMIC and HAS_KEY_MASK:  # padded keys (otherwise zeroed with dK, dV at the end) must not reach dQ
            p_t = tl.where(key_ok[:, None], p_t, 0.0)
        dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=DOT_PRECISION)  # dV += P^T dO   (l. 12)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)  # dP^T = V dO^T   (l. 13)
        ds_t = p_t * (dp_t - delta[None, :])  # dS = P * (dP - D)   (l. 14)
        dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=DOT_PRECISION)  # dK += dS^T Q (scale later)   (l. 16)
        if DQ_ATOMIC:  # dQ_i += s dS K_j   (l. 15)   (BLOCK_M, BLOCK_N) @ (BLOCK_N, BLOCK_QK)
            dq = tl.dot(tl.trans(ds_t).to(k.dtype), k, input_precision=DOT_PRECISION) * scale
            ok = (rows < T)[:, None] & dqk_ok[None, :]
            tl.atomic_add(dq_ptrs + start_m * stride_gqt, dq, mask=ok, sem="relaxed")
    return dk, dv


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def _bwd_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, KM, DK, DV, DQ,
    stride_qz, stride_qh, stride_qt, stride_qd,
    stride_kz, stride_kh, stride_ks, stride_kd,
    stride_vz, stride_vh, stride_vs, stride_vd,
    stride_dz, stride_dh, stride_dt, stride_dd,
    stride_mz, stride_mh, stride_ms,
    stride_gkz, stride_gkh, stride_gks, stride_gkd,
    stride_gvz, stride_gvh, stride_gvs, stride_gvd,
    stride_gqz, stride_gqh, stride_gqt, stride_gqd,
    H, T, S, causal_offset, scale, scale_log2, T_BUCKET, S_BUCKET,
    HEAD_QK: tl.constexpr, HEAD_V: tl.constexpr, BLOCK_QK: tl.constexpr, BLOCK_V: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, DOT_PRECISION: tl.constexpr, DQ_ATOMIC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """dK and dV of one block of BLOCK_N keys (Alg. 2's outer loop, l. 5-7, 18): grid (cdiv(S, BLOCK_N), Z, H).
    With DQ_ATOMIC also its additions to dQ (a float32 buffer DQ), and the dQ kernel is not run."""
    start_n = tl.program_id(0) * BLOCK_N
    z, h = tl.program_id(1).to(tl.int64), tl.program_id(2).to(tl.int64)  # batch entry, head
    zh = z * H + h
    cols = start_n + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key positions
    offs_m = tl.arange(0, BLOCK_M)
    offs_dqk, offs_dv = tl.arange(0, BLOCK_QK), tl.arange(0, BLOCK_V)
    dqk_ok, dv_ok = offs_dqk < HEAD_QK, offs_dv < HEAD_V
    k_ptrs = K + z * stride_kz + h * stride_kh + cols[:, None] * stride_ks + offs_dqk[None, :] * stride_kd
    v_ptrs = V + z * stride_vz + h * stride_vh + cols[:, None] * stride_vs + offs_dv[None, :] * stride_vd
    k = _load_tile(k_ptrs, cols < S, dqk_ok, True, HEAD_QK < BLOCK_QK)  # (BLOCK_N, BLOCK_QK), stays on chip
    v = _load_tile(v_ptrs, cols < S, dv_ok, True, HEAD_V < BLOCK_V)  # (BLOCK_N, BLOCK_V)
    dk = tl.zeros([BLOCK_N, BLOCK_QK], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_V], tl.float32)
    q_ptrs = Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qt + offs_dqk[None, :] * stride_qd
    do_ptrs = DO + z * stride_dz + h * stride_dh + offs_m[:, None] * stride_dt + offs_dv[None, :] * stride_dd
    dq_ptrs = DQ + z * stride_gqz + h * stride_gqh + offs_m[:, None] * stride_gqt + offs_dqk[None, :] * stride_gqd
    lse_ptr, delta_ptr = LSE + zh * T, DELTA + zh * T
    key_ok = cols < S
    if HAS_KEY_MASK:  # padded keys: 0 in the key mask
        key_ok = key_ok & (tl.load(KM + z * stride_mz + h * stride_mh + cols * stride_ms, mask=cols < S, other=0) != 0)
    if CAUSAL:  # queries i see key j iff i >= j - offset: rows before the first are skipped
        lo = tl.minimum(tl.maximum(start_n - causal_offset, 0), T)
        # rows i >= start_n + BLOCK_N - 1 - offset see every key of the block: masked blocks up to there
        diag = tl.maximum(start_n + BLOCK_N - 1 - causal_offset, 0) - lo
        mid = tl.minimum(lo + (diag + BLOCK_M - 1) // BLOCK_M * BLOCK_M, T)
    else:
        lo = 0
        mid = 0
    tail = mid + (T - mid) // BLOCK_M * BLOCK_M  # whole query blocks after the diagonal, then a partial one
    dk, dv = _dkdv_tiles(
        dk, dv, k, v, q_ptrs, do_ptrs, dq_ptrs, lse_ptr, delta_ptr, cols, key_ok, offs_m, dqk_ok, dv_ok, lo, mid,
        stride_qt, stride_dt, stride_gqt, T, causal_offset, scale, scale_log2,
        CAUSAL, HAS_KEY_MASK, True, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, DQ_ATOMIC, BLOCK_M,
    )  # fmt: skip
    dk, dv = _dkdv_tiles(
        dk, dv, k, v, q_ptrs, do_ptrs, dq_ptrs, lse_ptr, delta_ptr, cols, key_ok, offs_m, dqk_ok, dv_ok, mid, tail,
        stride_qt, stride_dt, stride_gqt, T, causal_offset, scale, scale_log2,
        CAUSAL, HAS_KEY_MASK, False, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, DQ_ATOMIC, BLOCK_M,
    )  # fmt: skip
    dk, dv = _dkdv_tiles(
        dk, dv, k, v, q_ptrs, do_ptrs, dq_ptrs, lse_ptr, delta_ptr, cols, key_ok, offs_m, dqk_ok, dv_ok, tail, T,
        stride_qt, stride_dt, stride_gqt, T, causal_offset, scale, scale_log2,
        CAUSAL, HAS_KEY_MASK, True, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, DQ_ATOMIC, BLOCK_M,
    )  # fmt: skip
    dk = dk * scale  # dK = s dS^T Q   (Alg. 2 l. 16)
    if HAS_KEY_MASK:  # a padded key's column of P is 0, so its dK and dV are 0
        dk = tl.where(key_ok[:, None], dk, 0.0)
        dv = tl.where(key_ok[:, None], dv, 0.0)
    ok_rows = (cols < S)[:, None]
    dk_ptrs = DK + z * stride_gkz + h * stride_gkh + cols[:, None] * stride_gks + offs_dqk[None, :] * stride_gkd
    dv_ptrs = DV + z * stride_gvz + h * stride_gvh + cols[:, None] * stride_gvs + offs_dv[None, :] * stride_gvd
    tl.store(dk_ptrs, dk.to(DK.dtype.element_ty), mask=ok_rows & dqk_ok[None, :])
    tl.store(dv_ptrs, dv.to(DV.dtype.element_ty), mask=ok_rows & dv_ok[None, :])


@triton.jit
def _dq_tiles(
    dq, q, do, lse, delta, k_ptrs, v_ptrs, km_ptrs, rows, offs_n, dqk_ok, dv_ok, lo, hi,
    stride_ks, stride_vs, stride_ms, S, causal_offset, scale_log2,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, MASKED: tl.constexpr,
    PAD_QK: tl.constexpr, PAD_V: tl.constexpr, DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Alg. 2 lines 10-15 for the key blocks [lo, hi) against one query block: dQ += dS K."""
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        k = _load_tile(k_ptrs + start_n * stride_ks, cols < S, dqk_ok, MASKED, PAD_QK)  # (BLOCK_N, BLOCK_QK)
        v = _load_tile(v_ptrs + start_n * stride_vs, cols < S, dv_ok, MASKED, PAD_V)  # (BLOCK_N, BLOCK_V)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * scale_log2  # (BLOCK_M, BLOCK_N)
        p = tl.exp2(scores - lse[:, None])  # P = e^(S - L), recomputed
        if MASKED:
            allowed = cols[None, :] < S
            if CAUSAL:
                allowed = allowed & (cols[None, :] <= rows[:, None] + causal_offset)
            p = tl.where(allowed, p, 0.0)
        if HAS_KEY_MASK:
            real = tl.load(km_ptrs + start_n * stride_ms, mask=cols < S, other=0)
            p = tl.where(real[None, :] != 0, p, 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)  # dP = dO V^T  (BLOCK_M, BLOCK_N)
        ds = p * (dp - delta[:, None])  # dS = P * (dP - D)
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=DOT_PRECISION)  # dQ += dS K (scale later)   (Alg. 2 l. 15)
    return dq


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def _bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, KM, DQ,
    stride_qz, stride_qh, stride_qt, stride_qd,
    stride_kz, stride_kh, stride_ks, stride_kd,
    stride_vz, stride_vh, stride_vs, stride_vd,
    stride_dz, stride_dh, stride_dt, stride_dd,
    stride_mz, stride_mh, stride_ms,
    stride_gqz, stride_gqh, stride_gqt, stride_gqd,
    H, T, S, causal_offset, scale, scale_log2, T_BUCKET, S_BUCKET,
    HEAD_QK: tl.constexpr, HEAD_V: tl.constexpr, BLOCK_QK: tl.constexpr, BLOCK_V: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """dQ of one block of BLOCK_M queries: grid (cdiv(T, BLOCK_M), Z, H); the keys are walked as in the forward."""
    start_m = tl.program_id(0) * BLOCK_M
    z, h = tl.program_id(1).to(tl.int64), tl.program_id(2).to(tl.int64)  # batch entry, head
    zh = z * H + h
    rows = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_dqk, offs_dv = tl.arange(0, BLOCK_QK), tl.arange(0, BLOCK_V)
    dqk_ok, dv_ok = offs_dqk < HEAD_QK, offs_dv < HEAD_V
    q_ptrs = Q + z * stride_qz + h * stride_qh + rows[:, None] * stride_qt + offs_dqk[None, :] * stride_qd
    do_ptrs = DO + z * stride_dz + h * stride_dh + rows[:, None] * stride_dt + offs_dv[None, :] * stride_dd
    q = _load_tile(q_ptrs, rows < T, dqk_ok, True, HEAD_QK < BLOCK_QK)  # (BLOCK_M, BLOCK_QK)
    do = _load_tile(do_ptrs, rows < T, dv_ok, True, HEAD_V < BLOCK_V)  # (BLOCK_M, BLOCK_V)
    lse = tl.load(LSE + zh * T + rows, mask=rows < T, other=float("inf"))
    delta = tl.load(DELTA + zh * T + rows, mask=rows < T, other=0.0)
    k_ptrs = K + z * stride_kz + h * stride_kh + offs_n[:, None] * stride_ks + offs_dqk[None, :] * stride_kd
    v_ptrs = V + z * stride_vz + h * stride_vh + offs_n[:, None] * stride_vs + offs_dv[None, :] * stride_vd
    km_ptrs = KM + z * stride_mz + h * stride_mh + offs_n * stride_ms
    dq = tl.zeros([BLOCK_M, BLOCK_QK], tl.float32)
    full, end = _key_range(start_m, T, S, causal_offset, CAUSAL, BLOCK_M, BLOCK_N)
    dq = _dq_tiles(
        dq, q, do, lse, delta, k_ptrs, v_ptrs, km_ptrs, rows, offs_n, dqk_ok, dv_ok, 0, full,
        stride_ks, stride_vs, stride_ms, S, causal_offset, scale_log2,
        CAUSAL, HAS_KEY_MASK, False, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, BLOCK_N,
    )  # fmt: skip
    dq = _dq_tiles(
        dq, q, do, lse, delta, k_ptrs, v_ptrs, km_ptrs, rows, offs_n, dqk_ok, dv_ok, full, end,
        stride_ks, stride_vs, stride_ms, S, causal_offset, scale_log2,
        CAUSAL, HAS_KEY_MASK, True, HEAD_QK < BLOCK_QK, HEAD_V < BLOCK_V, DOT_PRECISION, BLOCK_N,
    )  # fmt: skip
    dq = dq * scale  # dQ = s dS K
    dq_ptrs = DQ + z * stride_gqz + h * stride_gqh + rows[:, None] * stride_gqt + offs_dqk[None, :] * stride_gqd
    tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=(rows < T)[:, None] & dqk_ok[None, :])


# ------------------------------------------------------------------------------------------------ launching

INTERPRETED = not isinstance(_fwd_kernel, triton.runtime.JITFunction)  # TRITON_INTERPRET=1 when triton was imported
_KERNELS = {"fwd": _fwd_kernel, "dkdv": _bwd_dkdv_kernel, "dq": _bwd_dq_kernel}
_TUNE_KEY = ["T_BUCKET", "S_BUCKET", "HEAD_QK", "HEAD_V", "CAUSAL", "HAS_KEY_MASK"]  # and the dtypes, always


def _block(head: int) -> int:
    """A head size padded to a power of two, at least 16 (the smallest tl.dot)."""
    return max(16, triton.next_power_of_2(head))


def _configs(name: str, head: tuple[int, bool]) -> list[tuple[int, int, int, int]]:
    """The configurations of kernel ``name`` for a head class ``(padded head size, float32)``."""
    block_d, fp32 = head
    configs = (GPU_CONFIGS_FP32 if fp32 else GPU_CONFIGS)[name][max(64, block_d)]
    if CONFIG_CHOICE is not None:
        return [configs[min(CONFIG_CHOICE, len(configs) - 1)]]
    return INTERPRETER_CONFIGS if INTERPRETED else configs


_TUNED: dict[tuple[str, tuple[int, bool]], triton.runtime.Autotuner] = {}


def _tuned(name: str, head: tuple[int, bool]) -> triton.runtime.Autotuner:
    """The kernel behind triton.autotune over its configurations for this head class (built once)."""
    if (name, head) not in _TUNED:
        configs = [
            triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s)
            for m, n, w, s in _configs(name, head)
        ]
        # the timing runs of the dK/dV kernel must not leave their atomic dQ additions behind
        dkdv = name == "dkdv"
        key, zero = ([*_TUNE_KEY, "DQ_ATOMIC"], ["DQ"]) if dkdv else (_TUNE_KEY, None)
        tune = triton.autotune(configs=configs, key=key, reset_to_zero=zero, do_bench=TUNE_BENCH)
        _TUNED[name, head] = tune(_KERNELS[name])
    return _TUNED[name, head]


def tuning_report() -> dict[str, dict[str, str]]:
    """What the autotuner chose so far: per kernel and head class, its key -> the fastest configuration."""
    return {
        f"{name} hs<={block_d}{' fp32' if fp32 else ''}": {str(key): str(c) for key, c in tuner.cache.items()}
        for (name, (block_d, fp32)), tuner in _TUNED.items()
    }


def _launch(
    name: str, blocks_of: str, length: int, Z: int, H: int, head: tuple[int, bool], *args, **constexprs
) -> None:
    """Run kernel ``name`` on ``(cdiv(length, BLOCK_<blocks_of>), Z, H)`` programs, autotuned or with config 0."""
    if length == 0 or Z * H == 0:
        return
    configs = _configs(name, head)
    if AUTOTUNE and len(configs) > 1:
        _tuned(name, head)[lambda meta: (triton.cdiv(length, meta[blocks_of]), Z, H)](*args, **constexprs)
        return
    m, n, warps, stages = configs[0]
    grid = (triton.cdiv(length, {"BLOCK_M": m, "BLOCK_N": n}[blocks_of]), Z, H)
    _KERNELS[name][grid](*args, **constexprs, BLOCK_M=m, BLOCK_N=n, num_warps=warps, num_stages=stages)


class _FlashAttention(torch.autograd.Function):
    """q ``(Z, H, T, hs)``, k ``(Z, H, S, hs)``, v ``(Z, H, S, hv)`` (any strides, 0 for broadcast dims); key_mask
    ``(Z, H, S)`` uint8 (1 = real key) or None; ``causal_offset``: query i sees key j iff j <= i + offset, or None."""

    @staticmethod
    def forward(ctx, q, k, v, key_mask, causal_offset, scale):
        Z, H, T = q.shape[:3]
        S, hv = k.shape[-2], v.shape[-1]
        out = q.new_empty(Z, H, T, hv)  # (Z, H, T, hv)
        lse = q.new_empty(Z * H, T, dtype=torch.float32)  # base-2 log-sum-exp of each row's scaled scores
        km = key_mask if key_mask is not None else q.new_ones(1, dtype=torch.uint8)  # never read
        km_strides = key_mask.stride() if key_mask is not None else (0, 0, 0)
        meta = _meta(q, k, v, key_mask, causal_offset)
        _launch(
            "fwd", "BLOCK_M", T, Z, H, _head_class(meta),
            q, k, v, km, out, lse, *q.stride(), *k.stride(), *v.stride(), *km_strides, *out.stride(),
            H, T, S, causal_offset or 0, scale * LOG2E, triton.next_power_of_2(T), triton.next_power_of_2(S),
            **meta,
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, key_mask, out, lse)
        ctx.causal_offset, ctx.scale = causal_offset, scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        q, k, v, key_mask, out, lse = ctx.saved_tensors
        Z, H, T = q.shape[:3]
        S, hv = k.shape[-2], v.shape[-1]
        meta = _meta(q, k, v, key_mask, ctx.causal_offset)
        delta = torch.empty_like(lse)  # (Z * H, T): D = rowsum(dO * O)
        if T and Z * H:
            _bwd_preprocess[(triton.cdiv(T, 64), Z, H)](
                out, d_out, delta, *out.stride(), *d_out.stride(), H, T,
                HEAD_V=hv, BLOCK_V=meta["BLOCK_V"], BLOCK_M=64,
            )  # fmt: skip
        dq, dk, dv = q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)  # contiguous
        # dQ accumulated in float32 by atomic additions, or a placeholder the kernel never touches
        dq_acc = torch.zeros(q.shape, dtype=torch.float32, device=q.device) if DQ_ATOMIC else q.new_zeros(1).float()
        dq_acc_strides = dq_acc.stride() if DQ_ATOMIC else (0, 0, 0, 0)
        km = key_mask if key_mask is not None else q.new_ones(1, dtype=torch.uint8)  # never read
        km_strides = key_mask.stride() if key_mask is not None else (0, 0, 0)
        scale, offset = ctx.scale, ctx.causal_offset or 0
        buckets = (triton.next_power_of_2(T), triton.next_power_of_2(S))
        _launch(
            "dkdv", "BLOCK_N", S, Z, H, _head_class(meta),
            q, k, v, d_out, lse, delta, km, dk, dv, dq_acc,
            *q.stride(), *k.stride(), *v.stride(), *d_out.stride(), *km_strides, *dk.stride(), *dv.stride(),
            *dq_acc_strides, H, T, S, offset, scale, scale * LOG2E, *buckets, **meta, DQ_ATOMIC=DQ_ATOMIC,
        )  # fmt: skip
        if DQ_ATOMIC:
            return dq_acc.to(q.dtype), dk, dv, None, None, None
        _launch(
            "dq", "BLOCK_M", T, Z, H, _head_class(meta),
            q, k, v, d_out, lse, delta, km, dq,
            *q.stride(), *k.stride(), *v.stride(), *d_out.stride(), *km_strides, *dq.stride(),
            H, T, S, offset, scale, scale * LOG2E, *buckets, **meta,
        )  # fmt: skip
        return dq, dk, dv, None, None, None


def _head_class(meta: dict) -> tuple[int, bool]:
    """Which configurations a call uses: the wider of Q/K's and V's padded tiles, and whether it is float32."""
    return max(meta["BLOCK_QK"], meta["BLOCK_V"]), meta["DOT_PRECISION"] == "ieee"


def _meta(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, causal_offset: int | None) -> dict:
    """The compile-time constants of a call (each distinct set compiles its own kernels)."""
    hs, hv = q.shape[-1], v.shape[-1]
    return {
        "HEAD_QK": hs,
        "HEAD_V": hv,
        "BLOCK_QK": _block(hs),
        "BLOCK_V": _block(hv),
        "CAUSAL": causal_offset is not None,
        "HAS_KEY_MASK": key_mask is not None,
        "DOT_PRECISION": "ieee" if q.dtype == torch.float32 else None,  # fp32 stays fp32 (no TF32)
    }


# ------------------------------------------------------------------------------------------------- the entry


def flash_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    scale: float,
    batch: tuple[int, ...],
    causal: str | None = None,
    key_mask: Tensor | None = None,
) -> Tensor:
    """softmax(s Q K^T + M) V by the Triton kernels; returns ``(*batch, T, hv)`` in the inputs' dtype.

    Args:
        query ``(..., T, hs)``, key ``(..., S, hs)``, value ``(..., S, hv)``: leading dims broadcast to ``batch``.
        scale: ``s``. causal: None, ``"upper_left"`` (query i sees keys j <= i, torch's ``is_causal``) or
        ``"lower_right"`` (j <= i + S - T: the last query sees every key, as in decoding with a cache).
        key_mask: bool, broadcastable to ``(*batch, S)``, True at real keys (key padding).
    """
    check_inputs(query, key, value)
    if causal not in (None, "upper_left", "lower_right"):
        raise ValueError(f"causal: expected None, 'upper_left' or 'lower_right', got {causal!r}")
    T, S, hv = query.shape[-2], key.shape[-2], value.shape[-1]
    offset = None if causal is None else (0 if causal == "upper_left" else S - T)
    q, k, v = (_zh(x, batch, 2) for x in (query, key, value))  # (Z, H, T|S, hs|hv), views where possible
    if max(q.shape[:2]) > 65535:  # a CUDA grid's second and third dims
        raise ValueError(f"query: impl='triton' takes at most 65535 batch entries and heads, got {tuple(q.shape[:2])}")
    km = None
    if key_mask is not None:
        if key_mask.dtype != torch.bool or key_mask.device != query.device:
            raise TypeError(
                f"key_mask: expected a bool tensor on {query.device}, got {key_mask.dtype} on {key_mask.device}"
            )
        km = _zh(key_mask.to(torch.uint8), batch, 1)  # (Z, H, S), stride 0 where broadcast
    with torch.cuda.device(query.device) if query.is_cuda else contextlib.nullcontext():
        out = _FlashAttention.apply(q, k, v, km, offset, float(scale))  # (Z, H, T, hv)
    return out.reshape(*batch, T, hv)


def from_sdpa(query, key, value, mask: AttentionMask | None, dropout_p, scale, batch) -> Tensor:
    """``impl="triton"`` of :func:`attnlab.functional.scaled_dot_product_attention` (arguments checked there).

    Served: causal in either alignment, key padding (``AttentionMask.key_padding``, or a bool ``attn_mask``
    broadcastable to ``(..., 1, S)``: the same keys for every query, True = real key), both together.
    Refused: a sliding window, a float mask or a boolean mask that differs between queries, dropout."""
    if dropout_p > 0:
        raise ValueError(f"dropout_p: impl='triton' has no dropout; expected 0, got {dropout_p!r}")
    if mask is None:
        return flash_attention(query, key, value, scale, batch)
    if mask.window is not None:
        raise ValueError(
            f"attn_mask: impl='triton' has no sliding window, got AttentionMask(window={mask.window}); "
            "use impl='chunked'"
        )
    key_mask = mask.key_padding  # (..., S) or None
    dense = mask.dense
    if dense is not None:
        if dense.dtype != torch.bool or (dense.dim() >= 2 and dense.shape[-2] != 1):
            kind = "bool" if dense.dtype == torch.bool else f"float ({dense.dtype})"
            raise ValueError(
                "attn_mask: impl='triton' takes causal masks and key padding: a bool mask broadcastable to "
                f"(..., 1, S) (True = real key), got a {kind} mask of shape {tuple(dense.shape)}; use impl='chunked' "
                "for arbitrary masks"
            )
        padding = dense if dense.dim() < 2 else dense.squeeze(-2)  # (..., S): the same for every query
        key_mask = padding if key_mask is None else key_mask & padding
    return flash_attention(query, key, value, scale, batch, mask.causal, key_mask)


def check_inputs(query: Tensor, key: Tensor, value: Tensor) -> None:
    """What the kernels serve: float16/bfloat16/float32, head sizes up to 256, CUDA (or the CPU when interpreted)."""
    if query.dtype not in DTYPES:
        raise TypeError(f"query: impl='triton' supports float16, bfloat16 and float32, got {query.dtype}")
    for name, x in (("key", key), ("value", value)):
        if x.device != query.device:
            raise ValueError(f"{name}: expected device {query.device} (that of query), got {x.device}")
    for name, size in (("query", query.shape[-1]), ("value", value.shape[-1])):
        if size > MAX_HEAD:
            raise ValueError(f"{name}: impl='triton' supports head sizes up to {MAX_HEAD}, got {size}")
    device = query.device.type
    if device == "cpu" and not INTERPRETED:
        raise ValueError(
            "query: impl='triton' on CPU tensors needs Triton's interpreter: set TRITON_INTERPRET=1 in the "
            "environment before Python imports triton (e.g. when starting Python), or move the tensors to CUDA"
        )
    if device == "cpu" and query.dtype == torch.bfloat16:
        raise TypeError("query: bfloat16 on the CPU: Triton's interpreter has no bfloat16 matrix product; use "
                        "float16 or float32 there, or a CUDA device")  # fmt: skip
    if device not in ("cpu", "cuda"):
        raise ValueError(f"query: impl='triton' runs on CUDA tensors (or the CPU, interpreted), got device {device}")


def _zh(x: Tensor, batch: tuple[int, ...], trailing: int) -> Tensor:
    """``x`` broadcast to ``(*batch, *x.shape[-trailing:])`` as ``(Z, H, ...)``: the kernels' two grid dims."""
    tail = x.shape[-trailing:]
    x = x.expand(*batch, *tail)  # a view: stride 0 along broadcast dims
    if len(batch) <= 2:
        return x.reshape(*(1,) * (2 - len(batch)), *batch, *tail)  # a view
    return x.reshape(-1, batch[-1], *tail)  # merges the outer dims (copies only if their strides do not merge)
