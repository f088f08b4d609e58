"""gptkit.linear: oneDNN's CPU matrix multiplies give F.linear's values and gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from gptkit import linear as L

pytestmark = pytest.mark.skipif(L._op is None, reason="this torch build has no oneDNN")


@given(rows=st.integers(1, 40), k=st.integers(1, 70), n=st.integers(1, 70), bias=st.booleans(),
       lead=st.sampled_from([(), (2,), (2, 3)]))
@settings(max_examples=40, deadline=None)
def test_values_and_gradients_match_f_linear(rows, k, n, bias, lead):
    g = torch.Generator().manual_seed(rows * 10007 + k * 101 + n)
    x = torch.randn(*lead, rows, k, generator=g, requires_grad=True)
    w = torch.randn(n, k, generator=g, requires_grad=True)
    b = torch.randn(n, generator=g, requires_grad=True) if bias else None
    out = torch.randn(*lead, rows, n, generator=g)
    y = L.linear(x, w, b)
    (y * out).sum().backward()
    got = [y.detach(), x.grad, w.grad] + ([b.grad] if bias else [])
    x.grad = w.grad = None
    if bias:
        b.grad = None
    want_y = F.linear(x, w, b)
    (want_y * out).sum().backward()
    want = [want_y.detach(), x.grad, w.grad] + ([b.grad] if bias else [])
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)
    assert w.grad.is_contiguous()


def test_training_uses_onednn_and_inference_needs_no_graph():
    x = torch.randn(4, 8)
    w = torch.randn(16, 8, requires_grad=True)
    assert type(L.linear(x, w).grad_fn).__name__ == "OneDNNLinearBackward"
    with torch.no_grad():
        assert L.linear(x, w).grad_fn is None
    assert L.linear(x[:0], w).shape == (0, 16)


def test_pack_cache_rebuilds_when_a_matrix_or_the_row_count_changes():
    class Owner:
        pass

    owner, w = Owner(), torch.randn(8, 4)
    cache, builds = L.PackCache(), []

    def build():
        builds.append(1)
        return object()

    first = cache.get(owner, [w], 4, build)
    assert cache.get(owner, [w], 4, build) is first and len(builds) == 1
    w.add_(1.0)  # in place: the version counter ticks
    assert cache.get(owner, [w], 4, build) is not first and len(builds) == 2
    cache.get(owner, [w], 8, build)
    assert len(builds) == 3
    cache.drop(owner)
    cache.get(owner, [w], 8, build)
    assert len(builds) == 4
