"""The model's matrix multiplies: F.linear, except fp32 on a CPU, where oneDNN does them.

torch computes CPU fp32 `x @ W.T` with MKL, and MKL takes its AVX2 code path on AMD CPUs: on
this project's AMD EPYC development machine it reaches ~195 GFLOP/s on two cores where oneDNN
(also inside every x86 torch build) reaches ~450, at the same fp32 precision (relative error
6e-7 vs MKL's 4e-7 against float64). Training is ~70% matrix multiplies, and a decode step is
mostly one-row multiplies that wait on memory, where oneDNN's are as fast or up to 1.7x faster.

`mkldnn._linear_pointwise` is the op torch.compile's CPU backend emits for linear layers. It has
no backward, so training goes through `OneDNNLinear`, which does the two gradient multiplies in
oneDNN too. Without oneDNN (non-x86 builds), under torch.compile and under CPU autocast, it is
F.linear.
"""

import weakref
from collections.abc import Callable

import torch
import torch.nn as nn
from torch.nn import functional as F

_op = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
_reorder = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None) if _op is not None else None


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x (M, K) @ weight (N, K).T + bias: strided views are fine, no copies needed."""
    return _op(x, weight, bias, "none", [], "")


class OneDNNLinear(torch.autograd.Function):
    """y = x @ W.T + b for 2-D x, with the forward and both gradient multiplies in oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn(grad, weight.t())  # (M, N) @ (N, K)
        if ctx.needs_input_grad[1]:
            # (N, M) @ (M, K). oneDNN is quickest with the wider side as its output features.
            if weight.shape[0] >= weight.shape[1]:
                grad_w = _onednn(x.t(), grad.t()).t().contiguous()
            else:
                grad_w = _onednn(grad.t(), x.t())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)
        return grad_x, grad_w, grad_b


def packed(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """`weight` in oneDNN's blocked layout for multiplies with `rows` rows (for `linear`), or the
    weight itself where that gains nothing. Given a plain weight, oneDNN reorders it on every
    call, which for a few rows costs as much as the multiply itself (a small model's 17 decode
    multiplies at 8 rows: 1.08 ms plain, 0.63 ms packed). The copy is valid until the weight
    changes."""
    return _reorder(weight.detach(), rows) if packs(weight, rows) else weight


def packs(weight: torch.Tensor, rows: int) -> bool:
    """Whether `packed(weight, rows)` makes a packed copy."""
    return _reorder is not None and rows > 1 and weight.device.type == "cpu" and weight.dtype == torch.float32


class PackCache:
    """Each owner's (a model's) matrices `packed` for one row count, rebuilt when the row count
    changes or any matrix does (its storage moves or its version counter ticks: training,
    `load_state_dict`, `.to()`). Kept outside the owner, so copy.deepcopy and pickling of a model
    never meet oneDNN's opaque tensors; an owner that is collected takes its copies with it."""

    def __init__(self):
        self._packed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, owner, matrices: list[torch.Tensor], rows: int, build: Callable[[], object]):
        """`build()` (which packs `matrices` for `rows` rows), made once per state of `matrices`."""
        version = (rows, tuple((w.data_ptr(), w._version) for w in matrices))
        key, value = self._packed.get(owner, (None, None))
        if key != version:
            value = build()
            self._packed[owner] = (version, value)
        return value

    def drop(self, owner) -> None:
        self._packed.pop(owner, None)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear's contract (x (..., K) -> (..., N)); CPU fp32 via oneDNN. `weight` may be `packed`."""
    if (_op is None or x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() == 0
            or torch.compiler.is_compiling()  # torch.compile picks its own kernels
            or torch.is_autocast_enabled("cpu")):  # and CPU autocast its own precision
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1])
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    y = OneDNNLinear.apply(rows, weight, bias) if needs_grad else _onednn(rows, weight, bias)
    return y if x.dim() == 2 else y.view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear (same parameters, same state_dict) computed by `linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
