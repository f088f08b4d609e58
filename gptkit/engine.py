"""Generation: batches of prompts, one prefill each, a KV cache, k samples per prompt in
lock-step, counter-based sampling noise, stop conditions.

The engine knows nothing about tokenization: prompts are token ids and so are the results. Text-
level concerns (stop strings, streaming to a terminal) belong to the caller, which can end a row
early through `should_stop` and watch tokens arrive through `on_token`.

`generate_many` decodes many prompts together. Prompts that begin alike go in one batch (the
prompts of one template share its instructions and examples); the batch's common beginning is
prefilled once and kept once (`KVCache.prefix`), each prompt's remainder is left-padded to a
common length and prefilled at batch P, and each prompt's rows are repeated for its k samples.
Decoding is then one batched forward per step for every row. Finished rows stop costing: once a
good share of the batch has ended, the cache is compacted to the rows still running. On a CPU a
decode step at many rows costs mostly the reading of each row's cache, which is why sharing the
common beginning matters more than the batch size (bench/eval_speed.py measures it).

Sampling noise depends on nothing but (prompt seed, sample index, decode step, token id)
(`gptkit.sampling`): a sample is the same whichever batch it decodes in, and sample j of k = 20
is sample j of k = 5. So batching, grouping and compaction never change what is sampled.

On CUDA the host never waits for the GPU per token: sampling stays on the device, sampled ids
are read back every `sync_every` steps (rows that end inside a chunk are simply ignored for its
remaining steps), and each decode step is one replay of a CUDA graph captured for the batch's
fixed rows and cache (`StaticDecode`; no shared prefix and no compaction there). Attention is
pinned to the flash/efficient/math kernels, whose dispatch does not pay a per-new-length setup cost.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from gptkit.sampling import SamplingParams, each_row, pick_seed, row_keys, sample_next, step_keys

CUDA_SYNC_EVERY = 8  # decode steps between host reads of the sampled ids on CUDA
MAX_ROWS = 256  # rows decoding at once, at most; fewer where their keys/values would pass KV_CACHE_BYTES
KV_CACHE_BYTES = 1 << 30
COMPACT_SHARE = 0.25  # drop finished rows from the batch once they are this share of it
PREFILL_TOKENS = 4096  # prompt slots (padding included) per prefill forward: bounds its activations
SHARED_MIN = 16  # a shorter common beginning is cheaper copied into every row than read through
                 # the shared-prefix attention (plain matmuls, where a row's own slots get SDPA)


@dataclass
class Completion:
    tokens: list[int] = field(default_factory=list)  # generated ids, stop token excluded
    finish_reason: str = "length"  # "stop" (a stop id or should_stop) | "length"
    prompt_truncated: int = 0  # prompt tokens dropped from the front to fit the context


# ---- one batch --------------------------------------------------------------------------------

@torch.inference_mode()
def prefill(model, prompt: torch.Tensor, cache, pos: int = 0) -> torch.Tensor:
    """prompt (B, T) -> logits of its last slot (B, V); fills cache slots pos..pos+T-1."""
    return model.lm_head(model.hidden_states(prompt, cache, pos)[:, -1])  # the head reads one slot per row


@torch.inference_mode()
def decode_step(model, tokens: torch.Tensor, cache, pos: int) -> torch.Tensor:
    """tokens (B,) at slot `pos` -> logits for the next slot (B, V)."""
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


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def shareable(common: int, shortest: int) -> int:
    """How much of a batch's common beginning (`common` tokens) its cache keeps once for all rows:
    a token short of its shortest prompt, so that each prompt's last token is prefilled in its
    own row and gives that row's first logits; nothing if that is under SHARED_MIN tokens."""
    shared = min(common, shortest - 1)
    return shared if shared >= SHARED_MIN else 0


def prefill_chunks(lengths: list[int]) -> list[tuple[int, int]]:
    """Runs of rows i..j-1 prefilled by one forward: about PREFILL_TOKENS slots each, counting
    each row as long as the longest of its run (rows come shortest first from `plan_batches`)."""
    runs, i = [], 0
    while i < len(lengths):
        j, longest = i + 1, lengths[i]
        while j < len(lengths) and max(longest, lengths[j]) * (j + 1 - i) <= PREFILL_TOKENS:
            longest, j = max(longest, lengths[j]), j + 1
        runs.append((i, j))
        i = j
    return runs


@torch.inference_mode()
def prefill_batch(model, prompts: list[list[int]], max_new: int, *, shared: int, fixed_rows: int):
    """The cache for a batch of prompts after prefill, and the logits of each prompt's last token (P, V).

    The first `shared` tokens (the same in every prompt) are prefilled once into the cache's
    prefix; the rest of each prompt is left-padded to the longest and prefilled in chunks of rows.
    With `fixed_rows` k > 0 the cache has no prefix and holds every prompt's row k times, for a
    fixed-shape decode step (the rows then never change).
    """
    device = model.lm_head.weight.device
    prefix = None
    if shared:
        prefix_cache = model.new_cache(1, shared)
        model.hidden_states(torch.tensor([prompts[0][:shared]], device=device), prefix_cache, 0)
        prefix = (prefix_cache.k, prefix_cache.v)
    rest = [p[shared:] for p in prompts]
    width = max(len(r) for r in rest)
    pad = [width - len(r) for r in rest]
    ids = torch.tensor([[0] * n + r for n, r in zip(pad, rest)], device=device)  # (P, width); 0: any id will do
    cache = model.new_cache(len(prompts), shared + width + max_new, prefix=prefix,
                            pad=torch.tensor(pad, device=device) if any(pad) else None)
    logits = []
    for i, j in prefill_chunks([len(r) for r in rest]):
        w = max(len(r) for r in rest[i:j])  # the columns before are padding in all these rows
        logits.append(prefill(model, ids[i:j, width - w :], cache.rows(i, j), shared + width - w))
    logits = torch.cat(logits)
    if fixed_rows > 1:
        cache = cache.select_rows(each_row(len(prompts), fixed_rows, device))
    return cache, logits


@torch.inference_mode()
def decode_batch(
    model,
    prompts: list[list[int]],
    budgets: list[int],
    params: SamplingParams,
    *,
    n_vocab: int,
    num_samples: int,
    seeds: list[int],
    stop_ids: tuple[int, ...],
    should_stop: Callable[[int, int, list[int]], bool] | None,
    sync_every: int | None,
    static: bool | None,
    out: list[list[Completion]],
) -> Iterator[list[tuple[int, int, int]]]:
    """Decode one batch: prompt p (fitted to the context) gets `num_samples` rows of at most
    `budgets[p]` new tokens each. Fills `out[p][j]` and yields, per step, (p, j, token) for every
    row that got a token (a stop id included: it ends the row).

    Rows are prompt-major (p*k + j). Fixed shapes (`static`, default on CUDA) decode through
    `StaticDecode` and never compact; otherwise ended rows are dropped once they are
    COMPACT_SHARE of the batch. `sync_every` defaults to 1 on CPU, CUDA_SYNC_EVERY on CUDA.
    """
    device = model.lm_head.weight.device
    k, max_new = num_samples, max(budgets)
    on_cuda = device.type == "cuda"
    fixed_shapes = (on_cuda if static is None else static) and max_new > 1
    sync_every = sync_every or (CUDA_SYNC_EVERY if on_cuda else 1)
    # Every row but the one-prompt, one-sample case reads the common beginning from one copy.
    many = len(prompts) > 1 or k > 1
    shared = 0 if fixed_shapes or not many else shareable(min(common_prefix_len(prompts[0], p) for p in prompts),
                                                         min(len(p) for p in prompts))
    with attention_backends(device):
        cache, logits = prefill_batch(model, prompts, max_new, shared=shared, fixed_rows=k if fixed_shapes else 0)
    rows = [(p, j) for p in range(len(prompts)) for j in range(k)]  # (prompt, sample) of each cache row
    logits = logits[:, :n_vocab]
    if k > 1:
        logits = logits[each_row(len(prompts), k, device)]
        if not fixed_shapes:
            cache = cache.select_rows(each_row(len(prompts), k, device))
    keys = row_keys(seeds, k, device) if params.temperature > 0 else None
    step_fn = StaticDecode(model, cache, len(rows), device) if fixed_shapes else None
    stops = set(stop_ids)
    banned = torch.tensor(stop_ids, device=device) if stop_ids else None
    done = [False] * len(rows)
    pending: list[torch.Tensor] = []  # sampled ids not yet read by the host
    pos = cache.max_len - max_new  # the slot the first sampled token goes to
    for step in range(max_new):
        if banned is not None and step < params.min_new_tokens:
            logits = logits.index_fill(-1, banned, float("-inf"))
        tokens = sample_next(logits, params, None if keys is None else step_keys(keys, step))
        pending.append(tokens)
        last = step == max_new - 1
        if len(pending) == sync_every or last:
            for step_tokens in torch.stack(pending).tolist():  # the only host sync
                got = []
                for r, t in enumerate(step_tokens):
                    if done[r]:
                        continue
                    p, j = rows[r]
                    got.append((p, j, t))
                    c = out[p][j]
                    if t in stops:
                        c.finish_reason, done[r] = "stop", True
                        continue
                    c.tokens.append(t)
                    if should_stop is not None and should_stop(p, j, c.tokens):
                        c.finish_reason, done[r] = "stop", True
                    elif len(c.tokens) == budgets[p]:
                        done[r] = True
                yield got
                if all(done):
                    return
            pending = []
            if not fixed_shapes and sum(done) >= COMPACT_SHARE * len(rows):
                keep = [r for r, ended in enumerate(done) if not ended]
                index = torch.tensor(keep, device=device)
                cache, tokens = cache.select_rows(index), tokens.index_select(0, index)
                keys = None if keys is None else keys.index_select(0, index)
                rows, done = [rows[r] for r in keep], [False] * len(keep)
        if last:
            return
        with attention_backends(device):
            logits = (step_fn(tokens, pos) if fixed_shapes else decode_step(model, tokens, cache, pos))[:, :n_vocab]
        pos += 1


# ---- many prompts -----------------------------------------------------------------------------

def fit_prompt(prompt: list[int], max_new_tokens: int, block_size: int) -> tuple[list[int], int, int]:
    """(the prompt's most recent tokens, max_new_tokens clipped, tokens dropped) so both fit the
    context; the answer keeps at least half the context when the prompt is long."""
    assert len(prompt) > 0, "empty prompt: start it with the tokenizer's bos id"
    keep = max(1, min(len(prompt), block_size - min(max_new_tokens, block_size // 2)))
    return prompt[-keep:], min(max_new_tokens, block_size - keep), len(prompt) - keep


def plan_batches(prompts: list[list[int]], rows_per_prompt: int, max_rows: int, split_gain: int) -> list[list[int]]:
    """Prompt indices in batches of at most `max_rows` rows (`rows_per_prompt` each; a prompt's
    rows stay together), prompts that begin alike in one batch, by length within it."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])  # alike beginnings become neighbours
    link = [common_prefix_len(prompts[a], prompts[b]) for a, b in zip(order, order[1:])]
    batches = []
    per_batch = max(1, max_rows // rows_per_prompt)
    for lo, hi in families(link, [len(prompts[i]) for i in order], rows_per_prompt, split_gain) if order else []:
        by_length = sorted(order[lo:hi], key=lambda i: len(prompts[i]))
        size = math.ceil(len(by_length) / math.ceil(len(by_length) / per_batch))  # balanced parts
        batches += [by_length[i : i + size] for i in range(0, len(by_length), size)]
    return batches


def families(link: list[int], lengths: list[int], rows_per_prompt: int, split_gain: int) -> list[tuple[int, int]]:
    """Runs lo..hi-1 of sorted prompts (of `lengths`; link[i]: how many tokens prompts i and i+1
    begin with alike) that are cheapest decoded as batches of their own.

    A batch whose n prompts share s tokens reads its cache's shared slots once per step instead
    of rows_per_prompt * n times; each batch costs one more read of the weights, `split_gain`
    slots' worth. Runs split at their weakest links into a tree (the children share more than
    their parent); a run stays whole unless its children cost less.
    """
    nodes, todo = [], [(0, len(lengths), -1)]  # (lo, hi, children); parents come before children
    while todo:
        lo, hi, parent = todo.pop()
        nodes.append((lo, hi, []))
        if parent >= 0:
            nodes[parent][2].append(len(nodes) - 1)
        if hi - lo > 1:
            weakest = min(link[lo : hi - 1])
            cuts = [lo] + [i + 1 for i in range(lo, hi - 1) if link[i] == weakest] + [hi]
            todo += [(a, b, len(nodes) - 1) for a, b in zip(cuts, cuts[1:])]
    best: list[tuple[int, list[tuple[int, int]]]] = [(0, [])] * len(nodes)  # (cost, runs) per node
    for me in reversed(range(len(nodes))):
        lo, hi, children = nodes[me]
        shared = shareable(min(link[lo : hi - 1], default=lengths[lo]), min(lengths[lo:hi]))
        whole = split_gain - (rows_per_prompt * (hi - lo) - 1) * shared
        apart = sum(best[c][0] for c in children) if children else whole
        best[me] = (apart, [run for c in children for run in best[c][1]]) if apart < whole else (whole, [(lo, hi)])
    return best[0][1]


def batch_limits(model, max_len: int) -> tuple[int, int]:
    """(rows whose keys/values of `max_len` slots fit KV_CACHE_BYTES, at most MAX_ROWS; the cache
    slots a decode step must save reading to be worth one more read of the weights)."""
    cfg, weight = model.config, model.lm_head.weight
    slot_bytes = 2 * cfg.n_layer * cfg.n_embd * weight.element_size()  # keys and values, every layer
    weight_bytes = sum(p.numel() for p in model.parameters()) * weight.element_size()
    return max(1, min(MAX_ROWS, KV_CACHE_BYTES // (slot_bytes * max_len))), weight_bytes // slot_bytes


@torch.inference_mode()
def generate_many(
    model,
    prompts: list[list[int]],
    params: SamplingParams,
    *,
    n_vocab: int,
    num_samples: int = 1,
    seeds: list[int | None] | None = None,
    stop_ids: tuple[int, ...] = (),
    should_stop: Callable[[int, int, list[int]], bool] | None = None,
    on_token: Callable[[int, int, int], None] | None = None,
    max_rows: int | None = None,
    sync_every: int | None = None,
    static: bool | None = None,
) -> list[list[Completion]]:
    """`num_samples` continuations of each prompt: out[p][j] is prompt p's sample j.

    `seeds[p]` is prompt p's seed (default `params.seed` for all; None draws one on the host).
    A row ends at one of `stop_ids` (stripped, finish_reason "stop"), when `should_stop(p, j,
    tokens_so_far)` returns True, or after max_new_tokens. `on_token(p, j, token)` sees every
    token as it is read, stop ids included. Logits past `n_vocab` (padding) are ignored. Prompts
    longer than the context lose their oldest tokens, counted in `prompt_truncated`.
    `max_rows` caps the rows decoding at once (default: by KV-cache memory, see `batch_limits`).
    `sync_every` (default 1 on CPU, CUDA_SYNC_EVERY on CUDA) is how many steps run on the device
    between host reads. `static` (default: on CUDA) decodes with fixed shapes through
    `StaticDecode`, replayed from a CUDA graph on CUDA.
    """
    seeds = [pick_seed(s) for s in (seeds if seeds is not None else [params.seed] * len(prompts))]
    assert len(seeds) == len(prompts), f"{len(seeds)} seeds for {len(prompts)} prompts"
    fitted = [fit_prompt(p, params.max_new_tokens, model.config.block_size) for p in prompts]
    out = [[Completion(prompt_truncated=cut) for _ in range(num_samples)] for _, _, cut in fitted]
    if params.max_new_tokens <= 0 or not prompts:
        return out
    ids = [p for p, _, _ in fitted]
    rows_fit, split_gain = batch_limits(model, max(len(p) + n for p, n, _ in fitted))
    for batch in plan_batches(ids, num_samples, max_rows or rows_fit, split_gain):
        local_stop = None if should_stop is None else (lambda p, j, tokens, batch=batch: should_stop(batch[p], j, tokens))
        for got in decode_batch(model, [ids[i] for i in batch], [fitted[i][1] for i in batch], params,
                                n_vocab=n_vocab, num_samples=num_samples, seeds=[seeds[i] for i in batch],
                                stop_ids=stop_ids, should_stop=local_stop, sync_every=sync_every, static=static,
                                out=[out[i] for i in batch]):
            if on_token is not None:
                for p, j, t in got:
                    on_token(batch[p], j, t)
    return out


# ---- one prompt -------------------------------------------------------------------------------

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
    """Yield, per decode step, the new token of each of the `num_samples` rows of one prompt
    (None once a row ended): `generate_many`'s batch of one, step by step.

    A row ends when it samples one of `stop_ids` (that id is yielded, then None) or when
    `should_stop(row, tokens_so_far)` returns True. Steps arrive in bursts of `sync_every`.
    """
    ids, max_new, _ = fit_prompt(prompt, params.max_new_tokens, model.config.block_size)
    if max_new <= 0:
        return
    out = [[Completion() for _ in range(num_samples)]]
    for got in decode_batch(model, [ids], [max_new], params, n_vocab=n_vocab, num_samples=num_samples,
                            seeds=[pick_seed(params.seed)], stop_ids=stop_ids,
                            should_stop=None if should_stop is None else (lambda _, j, tokens: should_stop(j, tokens)),
                            sync_every=sync_every, static=static, out=out):
        step: list[int | None] = [None] * num_samples
        for _, j, t in got:
            step[j] = t
        yield step


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
    """One prompt's `num_samples` Completions, stop ids stripped (`options`: generate_many's
    sync_every, static)."""
    return generate_many(model, [prompt], params, n_vocab=n_vocab, num_samples=num_samples, stop_ids=stop_ids,
                         should_stop=None if should_stop is None else (lambda _, j, tokens: should_stop(j, tokens)),
                         **options)[0]
