"""attnlab.models.markers: the two-marker reader returns logits and, on request, each head's weights from the query;
its loss is the cross-entropy of the logits."""

import torch
import torch.nn.functional as F

from attnlab.experiments.self_attention.heads.measure import two_marker_batch
from attnlab.models.markers import TwoMarkerModel


def test_model_returns_logits_and_per_head_weights():
    model = TwoMarkerModel(value_dim=5, embed_dim=8, num_heads=2, mlp_hidden=16)
    b = two_marker_batch(3, 6, 5, torch.Generator().manual_seed(1))
    out = model(b.contents, b.kinds, need_weights=True)
    assert out.logits.shape == (3, 5) and out.weights.shape == (3, 2, 6)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(3, 2))
    assert model(b.contents, b.kinds).weights is None


def test_loss_is_the_cross_entropy_of_the_logits():
    torch.manual_seed(0)
    model = TwoMarkerModel(value_dim=5, embed_dim=8, num_heads=2, mlp_hidden=16)
    b = two_marker_batch(4, 6, 5, torch.Generator().manual_seed(2))
    out = model(b.contents, b.kinds, b.targets)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, b.targets))
    assert model(b.contents, b.kinds).loss is None
