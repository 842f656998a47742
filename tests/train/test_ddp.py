"""DDP through the project's Trainer: one step of 2 CPU processes (gloo) over b examples each equals one step of a
single process over the same 2b examples; rank 0's checkpoint holds both ranks' data-generator states.

The two ranks are subprocesses with the environment torchrun would give them (WORLD_SIZE, RANK, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); the Trainer initialises the process group from it (env://) and wraps the model in
DistributedDataParallel.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from attnlab.models import GPT, GPTConfig
from attnlab.train import TrainConfig, Trainer, read_checkpoint

CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
TRAIN = TrainConfig(lr=1e-2, warmup_iters=0, grad_clip=1.0, device="cpu", max_iters=10)
B_PER_RANK = 3

# One rank: argv = rank, out folder, b, GPTConfig JSON, TrainConfig JSON.
WORKER = """
import json, sys
import torch
from safetensors.torch import save_file
from attnlab.models import GPT, GPTConfig
from attnlab.train import Trainer, TrainConfig

torch.set_num_threads(1)
rank, out, b = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)  # the same initial weights on both ranks
model = GPT(GPTConfig(**json.loads(sys.argv[4])))
trainer = Trainer(model, TrainConfig(**json.loads(sys.argv[5])), lambda split, gen: None, out, progress=False)
assert trainer.world == 2 and trainer.rank == rank, (trainer.world, trainer.rank)
assert isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
g = torch.Generator().manual_seed(42)
x = torch.randint(model.config.vocab_size, (2 * b, 8), generator=g)  # the whole batch of 2b...
y = torch.randint(model.config.vocab_size, (2 * b, 8), generator=g)
mine = slice(rank * b, (rank + 1) * b)  # ...of which this rank takes its b
loss = trainer.step(x[mine], y[mine])
params = {name: p.detach().clone() for name, p in trainer._raw_model().named_parameters()}
save_file({**params, "loss": torch.tensor(loss, dtype=torch.float64)}, f"{out}/rank{rank}.safetensors")
trainer.save()  # a collective: every rank takes part, rank 0 writes
torch.distributed.barrier()  # neither rank tears gloo down while the other is still inside a collective
torch.distributed.destroy_process_group()
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    """Both ranks' parameters after one step, and rank 0's checkpoint, in one folder."""
    out = tmp_path_factory.mktemp("ddp")
    port = str(free_port())
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "OMP_NUM_THREADS": "1",
        }
        configs = [json.dumps(CONFIG.to_json()), json.dumps(dataclasses.asdict(TRAIN))]
        cmd = [sys.executable, "-c", WORKER, str(rank), str(out), str(B_PER_RANK), *configs]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        for rank, proc in enumerate(procs):
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"rank {rank}: {err}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return out


def single_process_step(monkeypatch, tmp_path) -> tuple[dict[str, torch.Tensor], float, dict[str, torch.Tensor]]:
    """One step of the same Trainer, one process, over all 2b examples; also the initial parameters."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    torch.manual_seed(0)
    model = GPT(CONFIG)
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = Trainer(model, TRAIN, lambda split, gen: None, tmp_path, progress=False)
    assert trainer.world == 1 and trainer.model is model
    g = torch.Generator().manual_seed(42)
    x = torch.randint(CONFIG.vocab_size, (2 * B_PER_RANK, 8), generator=g)
    y = torch.randint(CONFIG.vocab_size, (2 * B_PER_RANK, 8), generator=g)
    loss = trainer.step(x, y)
    return {name: p.detach().clone() for name, p in model.named_parameters()}, loss, initial


def test_one_ddp_step_equals_one_process_on_the_whole_batch(ddp_run, monkeypatch, tmp_path):
    expected, loss, initial = single_process_step(monkeypatch, tmp_path)
    ranks = [load_file(str(ddp_run / f"rank{r}.safetensors")) for r in range(2)]
    losses = [float(r.pop("loss")) for r in ranks]
    assert sorted(ranks[0]) == sorted(ranks[1]) == sorted(expected)
    for name in expected:
        torch.testing.assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0)  # the ranks agree exactly
        torch.testing.assert_close(ranks[0][name], expected[name], rtol=0, atol=1e-6, msg=name)
    # the step moved the weights by much more than the tolerance: the comparison is not trivially true
    assert max((expected[n] - initial[n]).abs().max().item() for n in expected) > 1e-3
    # each rank's loss is its half's mean; their average is the whole batch's mean loss
    assert losses[0] != losses[1]
    assert sum(losses) / 2 == pytest.approx(loss, abs=1e-6)


def test_rank_zero_checkpoint_holds_both_generator_states(ddp_run, monkeypatch, tmp_path):
    meta, tensors = read_checkpoint(ddp_run / "ckpt.safetensors")
    assert meta["state"]["world"] == 2 and meta["state"]["iter"] == 0
    expected = [torch.Generator().manual_seed(TRAIN.seed + r).get_state() for r in range(2)]  # per-rank streams
    assert torch.equal(tensors["rng.gen0"], expected[0]) and torch.equal(tensors["rng.gen1"], expected[1])
    ranks = load_file(str(ddp_run / "rank0.safetensors"))
    for name, value in tensors.items():
        if name.startswith("model.") and name[len("model.") :] in ranks:
            assert torch.equal(value, ranks[name[len("model.") :]]), name
    # a single process cannot resume a 2-process run: the data streams would differ
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    torch.manual_seed(0)
    (tmp_path / "ckpt.safetensors").write_bytes((ddp_run / "ckpt.safetensors").read_bytes())
    trainer = Trainer(GPT(CONFIG), TRAIN, lambda split, gen: None, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"world size: the run was made with 2 processes, now 1"):
        trainer.resume()
