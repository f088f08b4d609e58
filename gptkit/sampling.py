"""How a token is drawn: SamplingParams, and noise that depends on nothing but where it is used.

`sample_next` turns a row's logits into a token: greedy at temperature 0, else top-k/top-p
filtering and the exponential race over uniform noise. The uniform for (prompt seed, sample
index j, decode step s, token id v) is a hash of those four alone (splitmix64 in int64 torch
ops, on the logits' device: no host sync), never a draw from a stateful generator. So what a row
samples does not depend on the rows beside it: batching many prompts, dropping finished rows,
or asking for k = 20 samples instead of 5 (sample j is the same) changes nothing.
"""

import math
import secrets
from dataclasses import dataclass

import torch

from gptkit.errors import UsageError
from gptkit.limits import MAX_NEW_TOKENS, MAX_SEED, MAX_TOP_K


@dataclass
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None
    top_p: float | None = None
    max_new_tokens: int = 128
    seed: int | None = None  # None: a random seed, drawn on the host
    min_new_tokens: int = 0  # stop ids cannot end a row before this many tokens

    def __post_init__(self):
        # Every way in (options, templates, chat /set, the API) lands here: a value that cannot
        # sample (nan, a negative temperature, 1e20 tokens) is refused before anything runs.
        checks = (
            ("temperature", isinstance(self.temperature, (int, float)) and 0 <= self.temperature < math.inf,
             "a number >= 0"),
            ("top_k", self.top_k is None or (type(self.top_k) is int and 1 <= self.top_k <= MAX_TOP_K),
             f"an integer from 1 to {MAX_TOP_K}"),
            ("top_p", self.top_p is None or (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1),
             "a number in (0, 1]"),
            ("max_new_tokens", type(self.max_new_tokens) is int and 1 <= self.max_new_tokens <= MAX_NEW_TOKENS,
             f"an integer from 1 to {MAX_NEW_TOKENS}"),
            ("seed", self.seed is None or (type(self.seed) is int and 0 <= self.seed <= MAX_SEED),
             f"an integer from 0 to {MAX_SEED}"),
            ("min_new_tokens", type(self.min_new_tokens) is int and self.min_new_tokens >= 0, "an integer >= 0"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise UsageError(f"sampling setting {name}: expected {expected}, got {getattr(self, name)!r:.60}")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _int64(n: int) -> int:
    """n as the int64 with the same low 64 bits (what torch's int64 arithmetic wraps to)."""
    return (n + (1 << 63)) % (1 << 64) - (1 << 63)


# splitmix64 (Steele, Lea & Flood, 2014): keys step by an odd "golden" constant and a finalizer
# spreads every input bit over every output bit. Torch multiplies int64 with wrap-around, but its
# >> on int64 is arithmetic: each shift is masked back to the bits a logical shift keeps.
GOLDEN = _int64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = _int64(0xBF58476D1CE4E5B9), _int64(0x94D049BB133111EB)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer on an int64 tensor, elementwise."""
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _MIX1
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _MIX2
    return x ^ ((x >> 31) & ((1 << 33) - 1))


def row_keys(seeds: list[int], num_samples: int, device) -> torch.Tensor:
    """(P*k,) int64: the key of each prompt-major row (p*k + j), a hash of prompt p's seed and the
    sample index j alone."""
    if len(set(seeds)) == 1:  # built on the device: a host-to-device copy would be a sync on CUDA
        seed = torch.full((len(seeds) * num_samples,), _int64(seeds[0]), dtype=torch.long, device=device)
    else:
        seed = torch.tensor([_int64(s) for s in seeds], device=device)[each_row(len(seeds), num_samples, device)]
    sample = torch.arange(num_samples, dtype=torch.long, device=device).repeat(len(seeds))
    return mix64(mix64(seed + GOLDEN) + (sample + 1) * GOLDEN)


def each_row(n_prompts: int, num_samples: int, device) -> torch.Tensor:
    """(P*k,): the prompt of each prompt-major row, 0,0,..,1,1,.. (no sync, unlike repeat_interleave)."""
    return torch.arange(n_prompts * num_samples, device=device) // num_samples


def step_keys(keys: torch.Tensor, step: int) -> torch.Tensor:
    """(R,) row keys -> the keys of decode step `step` (no host sync: the step is a host int)."""
    return mix64(keys + _int64((step + 1) * GOLDEN))


def uniform_noise(keys: torch.Tensor, n: int) -> torch.Tensor:
    """(R,) step keys -> (R, n) float32 uniforms in (0, 1); entry v is a hash of (key, v) alone."""
    tokens = torch.arange(1, n + 1, dtype=torch.long, device=keys.device) * GOLDEN
    bits = mix64(keys[:, None] + tokens)  # (R, n)
    return (((bits >> 40) & 0xFFFFFF).float() + 0.5) * 2.0**-24  # the top 24 bits: float32's precision


def sample_next(logits: torch.Tensor, params: SamplingParams, keys: torch.Tensor | None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). Greedy at temperature 0; top-k, then top-p filtering; else
    drawn with the noise of `keys` (B,), this step's `step_keys`."""
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
    log_noise = uniform_noise(keys, logits.size(-1)).log_().neg_().log_()
    return (logits - log_noise).argmax(dim=-1)


def pick_seed(seed: int | None) -> int:
    """`seed`, or for None a fresh random one (drawn on the host, so it can be reported)."""
    return secrets.randbelow(2**31) if seed is None else seed
