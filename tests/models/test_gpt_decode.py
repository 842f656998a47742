"""KV-cached decoding of the GPT: no host synchronisation per token, and the same tokens as recomputing everything.

A host synchronisation is an op that reads a tensor's value back to Python (``aten._local_scalar_dense``,
``aten.item``, ``aten.is_nonzero``): on a GPU it waits for every queued kernel, so one per decoded token makes
the host wait for the device at every step (the cached decoding measured slower than no cache on an H200 for this
reason). They are counted with a ``TorchDispatchMode``, on the CPU: the same ops run there.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from attnlab.models import GPT, GPTConfig
from attnlab.models.gpt import Decoder

SYNCS = {"_local_scalar_dense", "item", "is_nonzero"}

pytestmark = pytest.mark.usefixtures("one_thread")


class CountSyncs(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in SYNCS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def tiny_gpt(block_size=24, device="cpu", **kw) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=block_size, n_layer=2, n_head=4, n_embd=32, **kw)
    return GPT(cfg).to(device).eval()


def syncs(model, idx, n, **kw) -> int:
    with CountSyncs() as c:
        model.generate(idx, n, generator=torch.Generator().manual_seed(0), **kw)
    return c.count


@pytest.mark.parametrize(("temperature", "top_k"), [(0.0, None), (0.8, 5)], ids=["greedy", "sampled-top-k"])
def test_no_host_sync_per_decoded_token(temperature, top_k):
    """The prompt's ids are checked once per call (two reads: min and max); every decoded token adds none, with
    the cache and without it."""
    model = tiny_gpt(block_size=64)
    idx = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(1))
    for use_cache in (True, False):
        kw = {"temperature": temperature, "top_k": top_k, "use_cache": use_cache}
        few, many = syncs(model, idx, 3, **kw), syncs(model, idx, 20, **kw)
        assert many == few <= 2, f"use_cache={use_cache}: {few} syncs for 3 tokens, {many} for 20"


def test_a_training_forward_on_the_cpu_checks_ids_exactly():
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"^idx: token ids must be in \[0, 50\), got \[0, 50\]"):
        model(torch.tensor([[0, 50]]))
    with pytest.raises(ValueError, match=r"^idx: token ids must be in \[0, 50\), got \[-1, 3\]"):
        model.generate(torch.tensor([[-1, 3]]), 2)


@pytest.mark.parametrize("graphs", [False, True], ids=["dynamic-cache", "static-cache"])
def test_cached_decoding_gives_the_uncached_tokens_past_block_size(graphs, device):
    """Greedy decoding of 60 tokens with a context of 24: the cache is refilled after every crop. The static cache
    (fixed buffers, position on the device) is what CUDA graphs replay; on the CPU it runs eagerly."""
    model = tiny_gpt(device=device)
    idx = torch.randint(0, 50, (3, 5), generator=torch.Generator().manual_seed(2)).to(device)
    want = model.generate(idx, 60, temperature=0.0, use_cache=False)
    decoder_init = Decoder.__init__

    def forced(self, model, batch, device, *, graphs=None, _g=graphs):
        decoder_init(self, model, batch, device, graphs=_g)

    Decoder.__init__ = forced
    try:
        got = model.generate(idx, 60, temperature=0.0, use_cache=True)
    finally:
        Decoder.__init__ = decoder_init
    assert torch.equal(got, want)


def test_static_decoder_steps_equal_full_forwards(device):
    """Logits of each step of the static-cache decoder equal the full forward's last-position logits."""
    model = tiny_gpt(device=device)
    tokens = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(3)).to(device)
    decoder = Decoder(model, 2, torch.device(device), graphs=True)
    with torch.no_grad():
        got = [decoder.prefill(tokens[:, :7])]
        got += [decoder.step(tokens[:, t : t + 1]).clone() for t in range(7, 20)]
        want = [model.logits(tokens[:, : t + 1])[:, -1] for t in range(6, 20)]
    for t, (a, b) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(a, b, msg=f"step {t}")


def test_generated_tokens_feed_a_training_step():
    """Decoding runs under inference mode, but what generate returns is an ordinary tensor: a training step on it
    (the embedding saves its ids for the backward) works, as it did when generate ran under no_grad."""
    model = tiny_gpt().train()
    out = model.generate(torch.zeros(1, 2, dtype=torch.long), 10)
    assert not out.is_inference()
    model(out[:, :-1], out[:, 1:]).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
