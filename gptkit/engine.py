"""Generation: prefill once, KV cache, k samples in lock-step, sampling, stop conditions.

The engine knows nothing about tokenization: it takes a prompt as token ids and yields token
ids. Text-level concerns (stop strings, streaming to a terminal) belong to the caller, which can
end a row early through `should_stop`.

k samples from one prompt share one prefill: the prompt's keys/values are computed once at
batch 1 and every row attends to that one copy (`KVCache.share_prefix`; the fixed-shape CUDA
path copies it into k rows instead), then all rows decode together, one batched forward per step.
Once a model's weights outgrow the CPU's caches a decode step costs about the same for k = 1 and
k = 8, which is what makes self-consistency voting cheap (bench/self_consistency.py).

On CUDA the host never waits for the GPU per token: sampling stays on the device, sampled ids
are read back every `sync_every` steps (rows that end inside a chunk are simply ignored for its
remaining steps), and each decode step is one replay of a CUDA graph captured for the call's
fixed batch and cache (`StaticDecode`). Attention is pinned to the flash/efficient/math
kernels, whose dispatch does not pay a per-new-length setup cost.
"""

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

CUDA_SYNC_EVERY = 8  # decode steps between host reads of the sampled ids on CUDA


@dataclass
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None
    top_p: float | None = None
    max_new_tokens: int = 128
    seed: int | None = None
    min_new_tokens: int = 0  # stop ids cannot end a row before this many tokens

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Completion:
    tokens: list[int] = field(default_factory=list)  # generated ids, stop token excluded
    finish_reason: str = "length"  # "stop" (a stop id or should_stop) | "length"


def sample_next(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). Greedy at temperature 0; top-k, then top-p filtering."""
    if params.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / params.temperature
    if params.top_k is not None and params.top_k < logits.size(-1):
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p is not None and params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token once the tokens before it already cover top_p (the best token always stays)
        drop_sorted = cumulative - sorted_logits.softmax(dim=-1) >= params.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    # The exponential race: argmax(p_i / E_i) with E_i ~ Exp(1) is a draw from p, and in logs
    # argmax(logit_i - log E_i) needs no softmax at all. E = -log(U) from uniform noise: several
    # times cheaper than torch.multinomial on a CPU, and no host sync on a GPU.
    log_noise = torch.rand(logits.shape, generator=generator, device=logits.device).log_().neg_().log_()
    return (logits - log_noise).argmax(dim=-1)


@torch.inference_mode()
def prefill(model, prompt: torch.Tensor, cache) -> torch.Tensor:
    """prompt (1, T) -> logits of the last position (1, V); fills cache positions 0..T-1."""
    return model(prompt, cache=cache, pos=0)[:, -1, :]


@torch.inference_mode()
def decode_step(model, tokens: torch.Tensor, cache, pos: int) -> torch.Tensor:
    """tokens (B,) at position `pos` -> logits for position pos+1 (B, V)."""
    return model.decode(tokens, cache, pos)


def attention_backends(device: torch.device):
    """On CUDA, SDPA limited to kernels whose dispatch is cheap for every new sequence length."""
    if device.type != "cuda":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


class StaticDecode:
    """`model.decode` with fixed shapes for one batch size and cache; on CUDA, captured once in a
    CUDA graph and replayed.

    A decode step is about a hundred small kernels; launched one by one from Python each costs
    more than it computes. The step reads its input from the static buffers `tokens` and `pos`
    (a tensor, so no shape depends on it), which is what lets a graph capture it: a step is then
    two small copies and one `replay()`. Off CUDA the same fixed-shape step runs directly.
    """

    def __init__(self, model, cache, batch_size: int, device: torch.device):
        self.tokens = torch.zeros(batch_size, dtype=torch.long, device=device)
        # Warm-up and capture run the step for real: at the cache's last slot, which every later
        # step masks out until decoding reaches it and overwrites it.
        self.pos = torch.full((), cache.max_len - 1, dtype=torch.long, device=device)
        self.step = lambda: model.decode(self.tokens, cache, self.pos)
        self.graph = None
        if device.type != "cuda":
            self.step()  # what the warm-up writes must not matter here either
            return
        with attention_backends(device):
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.step()
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.logits = self.step()

    def __call__(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        self.tokens.copy_(tokens)
        self.pos.fill_(pos)
        if self.graph is None:
            return self.step()
        self.graph.replay()
        return self.logits


def make_generator(seed: int | None, device) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def fit_prompt(prompt: list[int], max_new_tokens: int, block_size: int) -> tuple[list[int], int]:
    """Keep the prompt's most recent tokens and clip max_new_tokens so both fit the context."""
    assert len(prompt) > 0, "empty prompt: start it with the tokenizer's bos id"
    keep = max(1, min(len(prompt), block_size - min(max_new_tokens, block_size // 2)))
    prompt = prompt[-keep:]
    return prompt, min(max_new_tokens, block_size - len(prompt))


@torch.inference_mode()
def generate(
    model,
    prompt: list[int],
    params: SamplingParams,
    *,
    n_vocab: int,
    num_samples: int = 1,
    stop_ids: tuple[int, ...] = (),
    should_stop: Callable[[int, list[int]], bool] | None = None,
    sync_every: int | None = None,
    static: bool | None = None,
) -> Iterator[list[int | None]]:
    """Yield, per decode step, the new token of each of the `num_samples` rows (None once a row ended).

    A row ends when it samples one of `stop_ids` (that id is yielded, then None) or when
    `should_stop(row, tokens_so_far)` returns True. Logits past `n_vocab` (padding) are ignored.
    `sync_every` (default 1 on CPU, CUDA_SYNC_EVERY on CUDA) is how many steps run on the device
    between host reads; steps then arrive in bursts of that many. `static` (default: on CUDA)
    decodes with fixed shapes through `StaticDecode`, replayed from a CUDA graph on CUDA.
    """
    device = model.lm_head.weight.device
    on_cuda = device.type == "cuda"
    prompt, max_new = fit_prompt(prompt, params.max_new_tokens, model.config.block_size)
    if max_new <= 0:
        return
    sync_every = sync_every or (CUDA_SYNC_EVERY if on_cuda else 1)
    generator = make_generator(params.seed, device)
    cache = model.new_cache(1, len(prompt) + max_new)
    with attention_backends(device):
        logits = prefill(model, torch.tensor([prompt], device=device), cache)[:, :n_vocab]
    fixed_shapes = (on_cuda if static is None else static) and max_new > 1
    if num_samples > 1:
        cache = cache.expand(num_samples) if fixed_shapes else cache.share_prefix(num_samples, len(prompt))
        logits = logits.expand(num_samples, -1)
    if fixed_shapes:
        step_fn = StaticDecode(model, cache, num_samples, device)
    else:
        def step_fn(tokens, pos):
            with attention_backends(device):
                return decode_step(model, tokens, cache, pos)
    stops = set(stop_ids)
    banned = torch.tensor(stop_ids, device=device) if stop_ids else None
    done = [False] * num_samples
    rows: list[list[int]] = [[] for _ in range(num_samples)]
    pending: list[torch.Tensor] = []  # sampled ids not yet read by the host
    pos = len(prompt)
    for step in range(max_new):
        if banned is not None and step < params.min_new_tokens:
            logits = logits.index_fill(-1, banned, float("-inf"))
        tokens = sample_next(logits, params, generator)
        pending.append(tokens)
        last = step == max_new - 1
        if len(pending) == sync_every or last:
            for step_tokens in torch.stack(pending).tolist():  # the only host sync
                out: list[int | None] = []
                for r, t in enumerate(step_tokens):
                    if done[r]:
                        out.append(None)
                        continue
                    out.append(t)
                    rows[r].append(t)
                    if t in stops or (should_stop is not None and should_stop(r, rows[r])):
                        done[r] = True
                yield out
                if all(done):
                    return
            pending = []
        if last:
            return
        logits = step_fn(tokens, pos)[:, :n_vocab]
        pos += 1


def complete(
    model,
    prompt: list[int],
    params: SamplingParams,
    *,
    n_vocab: int,
    num_samples: int = 1,
    stop_ids: tuple[int, ...] = (),
    should_stop: Callable[[int, list[int]], bool] | None = None,
    **options,
) -> list[Completion]:
    """Run `generate` to the end (`options`: its sync_every, static); one Completion per row,
    stop ids stripped."""
    completions = [Completion() for _ in range(num_samples)]
    for step in generate(model, prompt, params, n_vocab=n_vocab, num_samples=num_samples,
                         stop_ids=stop_ids, should_stop=should_stop, **options):
        for r, t in enumerate(step):
            if t is None:
                continue
            if t in stop_ids:
                completions[r].finish_reason = "stop"
            else:
                completions[r].tokens.append(t)
    if should_stop is not None:
        for r, c in enumerate(completions):
            if c.finish_reason == "length" and c.tokens and should_stop(r, c.tokens):
                c.finish_reason = "stop"
    return completions
