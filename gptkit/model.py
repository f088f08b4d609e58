"""The GPT: GPT-2's architecture, small enough to read in one sitting.

Learned position embeddings, pre-LayerNorm blocks, GELU MLP, tied input/output embeddings and
optional biases, so real GPT-2 weights fit unchanged (see hf.py for the Hugging Face mapping).
Attention goes through `scaled_dot_product_attention`, matrix multiplies through `gptkit.linear`
(F.linear, or oneDNN for CPU fp32: see there).

Two ways in:
- `forward(idx, targets)` for training: full causal attention over the whole sequence; with
  `bos_id`, each packed document attends only to itself and its positions restart at 0, as
  they do when the model later reads one prompt (see `document_layout`).
- `forward(idx, cache=cache, pos=p)` for generation: writes this chunk's keys/values into a
  preallocated `KVCache` at slots p..p+T and attends to everything cached so far.
- `decode(tokens, cache, pos)`: the same for one new token per row, as lean tensor ops (the
  decode loop's fast path, and the step a CUDA graph captures).
Both generation paths read batches of different prompts from the cache's layout: a prefix that
every row shares, stored once, and per row some padding that is never attended and does not
count as a position (see `KVCache`).

The model knows nothing about tokenizers or text; `vocab_size` is padded (see `GPTConfig`) and
callers that sample must ignore logits past the tokenizer's real vocabulary.
"""

from __future__ import annotations  # the model's signatures name KVCache, defined after it

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
from torch.nn import functional as F

from gptkit.errors import CheckpointError
from gptkit.files import excerpt
from gptkit.linear import Linear, PackCache, linear, packed, packs


@dataclass
class GPTConfig:
    block_size: int = 1024  # longest sequence the position table covers
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64 for efficiency
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # GPT-2 has biases in Linear and LayerNorm; False is a bit faster

    def __post_init__(self):
        # Checked before any tensor exists: a config read from a file (a checkpoint's meta.json, an
        # HF config.json) can ask for anything, and n_layer: 100000 must fail now, not at 6 GB.
        for name, (low, high) in CONFIG_LIMITS.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise CheckpointError(f"model config field '{name}': expected an integer from {low} to {high}, "
                                      f"got {excerpt(value)}")
        if self.n_embd % self.n_head:
            raise CheckpointError(f"model config field 'n_head': {self.n_head} does not divide n_embd {self.n_embd}")
        if type(self.dropout) not in (int, float) or not 0 <= self.dropout < 1:
            raise CheckpointError(f"model config field 'dropout': expected a number in [0, 1), got {excerpt(self.dropout)}")
        if type(self.bias) is not bool:
            raise CheckpointError(f"model config field 'bias': expected true or false, got {excerpt(self.bias)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "GPTConfig":
        """A config from its `to_dict` form as read from a file; CheckpointError for anything else."""
        if not isinstance(d, dict):
            raise CheckpointError(f"model config: expected a mapping of fields, got {excerpt(d)}")
        unknown = sorted(str(k) for k in set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise CheckpointError(f"model config: unknown field(s) {excerpt(unknown)}")
        return cls(**d)


# Inclusive bounds of each integer field: far past GPT-2 XL (48 layers, 1600 wide, 1024 positions),
# far below sizes whose first allocation alone would take the machine down.
CONFIG_LIMITS = {"block_size": (1, 1 << 20), "vocab_size": (1, 1 << 24), "n_layer": (1, 1024), "n_head": (1, 1024),
                 "n_embd": (1, 1 << 16)}


# Named sizes. `tiny` is for tests; `small` is the quickstart's default (~3.5M parameters with a
# 4k vocabulary: learns the toy world in minutes on a laptop CPU); the gpt2* rows are GPT-2's.
PRESETS = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, block_size=256),
    "small": dict(n_layer=4, n_head=4, n_embd=256, block_size=256),
    "medium": dict(n_layer=6, n_head=6, n_embd=384, block_size=512),
    "large": dict(n_layer=8, n_head=8, n_embd=512, block_size=1024),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, block_size=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600, block_size=1024),
}


def pad_vocab(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def config_for(preset: str, n_vocab: int, **overrides) -> GPTConfig:
    """The config of a named preset for a tokenizer with `n_vocab` tokens (padded to 64)."""
    assert preset in PRESETS, f"unknown preset {preset!r}"
    return GPTConfig(vocab_size=pad_vocab(n_vocab), **{**PRESETS[preset], **overrides})


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, layer_cache=None, pos: int = 0, mask=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if layer_cache is None:  # training: causal, or the per-document mask of `document_layout`
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=mask is None, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            # views into the KVCache: own slots (B, nh, S, hd), the shared prefix (1, nh, P, hd) or None
            cache_k, cache_v, prefix_k, prefix_v = layer_cache
            own = pos - (0 if prefix_k is None else prefix_k.shape[2])
            cache_k[:, :, own : own + T] = k
            cache_v[:, :, own : own + T] = v
            k, v = cache_k[:, :, : own + T], cache_v[:, :, : own + T]
            if prefix_k is None:  # mask None: one new token sees everything cached
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            else:
                y = shared_prefix_attention(q, prefix_k, prefix_v, k, v, mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's tanh approximation, for exact HF parity
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, layer_cache=None, pos: int = 0, mask=None):
        x = x + self.attn(self.ln_1(x), layer_cache, pos, mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied embeddings, as in GPT-2
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2's scaled init of residual projections
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def hidden_states(self, idx, cache: KVCache | None = None, pos: int = 0, bos_id: int | None = None):
        """Final-LayerNorm activations (B, T, n_embd): what both the LM head and a reward head read."""
        B, T = idx.shape
        positions = torch.arange(pos, pos + T, dtype=torch.long, device=idx.device)
        mask = None
        if bos_id is not None:
            assert cache is None, "documents are kept apart in training only"
            positions, mask = document_layout(idx, bos_id)
        if cache is None or cache.pad is None:
            assert pos + T <= self.config.block_size, f"sequence of {pos + T} exceeds block_size {self.config.block_size}"
        else:
            positions = (positions - cache.pad[:, None]).clamp_(min=0)  # (B, T); padding reads position 0
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(positions))
        if cache is not None and (T > 1 or cache.pad is not None):
            own = pos - cache.prefix_len
            mask = own_slot_mask(cache.pad, own, T, own + T, idx.device)
        for i, block in enumerate(self.transformer.h):
            layer_cache = None
            if cache is not None:
                prefix = (None, None) if cache.prefix is None else (cache.prefix[0][i], cache.prefix[1][i])
                layer_cache = (cache.k[i], cache.v[i], *prefix)
            x = block(x, layer_cache, pos, mask)
        return self.transformer.ln_f(x)

    def forward(self, idx, targets=None, *, cache: KVCache | None = None, pos: int = 0, loss_mask=None,
                bos_id: int | None = None):
        """idx (B, T) -> logits (B, T, vocab), or the mean loss when `targets` (B, T) is given.

        `loss_mask` (B, T) of 0/1 restricts the loss to chosen target positions (SFT trains only
        on the assistant's tokens). `bos_id` keeps packed documents apart (`document_layout`).
        """
        x = self.hidden_states(idx, cache, pos, bos_id)
        logits = self.lm_head(x)
        if targets is None:
            return logits
        losses = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
        if loss_mask is None:
            return losses.mean()
        mask = loss_mask.reshape(-1).to(losses.dtype)
        return (losses * mask).sum() / mask.sum().clamp(min=1)

    def decode(self, tokens: torch.Tensor, cache: KVCache, pos) -> torch.Tensor:
        """tokens (B,) at position `pos` -> next-token logits (B, vocab): generation's fast path.

        The arithmetic of `forward(tokens[:, None], cache=cache, pos=pos)` in eval mode, written as
        plain tensor ops on (B, C) rows. A decode step is about a hundred tiny kernels; at batch 1
        on a CPU the module calls, attribute lookups, views and transposes around them cost as
        much as the matrix multiplies, and this path drops them (bench/decode_speed.py measures it).

        `pos` is an int, or a 0-d long tensor on the model's device: then every shape is fixed
        (the new key/value is written with `index_copy_` and attention reads the whole cache
        through a mask), so one step can be captured once in a CUDA graph and replayed. A cache
        with a shared prefix takes int positions.
        """
        B, C, nh = tokens.shape[0], self.config.n_embd, self.config.n_head
        wte, wpe, layers, (lnf_w, lnf_b), head = self._decode_params(B)
        shape = (C,)
        static = torch.is_tensor(pos)
        prefix, pad = cache.prefix, cache.pad
        assert not (static and prefix is not None), "a shared-prefix cache takes int positions"
        own = pos if prefix is None else pos - cache.prefix_len  # the new token's slot among each row's own
        if pad is not None:
            # A row's position skips its padding. A row that has ended may be stepped past the
            # table's end until the engine drops it; what it computes then is never read.
            x = F.embedding(tokens, wte) + F.embedding((pos - pad).clamp(max=self.config.block_size - 1), wpe)
        elif static:
            x = F.embedding(tokens, wte) + F.embedding(pos.view(1), wpe)
        else:
            assert pos < self.config.block_size, f"position {pos} exceeds block_size {self.config.block_size}"
            x = F.embedding(tokens, wte) + wpe[pos]
        mask = None  # one new token sees every slot up to its own, unless some are padding or not yet written
        if static or pad is not None:
            mask = own_slot_mask(pad, own, 1, cache.k.shape[3] if static else own + 1, tokens.device)
        for i, (ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b) in enumerate(layers):
            h = torch.layer_norm(x, shape, ln1_w, ln1_b)
            q, k, v = linear(h, attn_w, attn_b).view(B, 3, nh, 1, C // nh).unbind(1)
            cache_k, cache_v = cache.k[i], cache.v[i]
            if static:
                cache_k.index_copy_(2, own.view(1), k)
                cache_v.index_copy_(2, own.view(1), v)
                y = F.scaled_dot_product_attention(q, cache_k, cache_v, attn_mask=mask)
            else:
                cache_k[:, :, own : own + 1] = k
                cache_v[:, :, own : own + 1] = v
                keys, values = cache_k[:, :, : own + 1], cache_v[:, :, : own + 1]
                if prefix is None:
                    y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
                else:
                    y = shared_prefix_attention(q, prefix[0][i], prefix[1][i], keys, values, mask)
            x = linear(y.reshape(B, C), proj_w, proj_b).add_(x)
            h = torch.layer_norm(x, shape, ln2_w, ln2_b)
            x = linear(F.gelu(linear(h, fc_w, fc_b), approximate="tanh"), out_w, out_b).add_(x)
        return linear(torch.layer_norm(x, shape, lnf_w, lnf_b), head)

    def _decode_params(self, rows: int = 1):
        """The tensors `decode` reads, gathered once (an nn.Module attribute lookup costs about a
        microsecond, a sixth of a small model's decode step): (wte, wpe, per-layer tuples, ln_f,
        the LM head's matrix). They are the Parameter objects themselves, so training and `.to()`
        (which update them in place) need nothing; the list is rebuilt if the parameters are
        replaced (`load_state_dict(..., assign=True)`).

        For `rows` > 1 the matrices come `packed` for that many rows, a copy kept (for one row
        count at a time) until a matrix changes: its version counter or storage moves.
        """
        t = self.transformer
        first, last = t.wte.weight, t.h[-1].mlp.c_proj.weight  # replaced params show up here
        key, params = self.__dict__.get("_decode_cache", (None, None))
        if key is None or key[0] is not first or key[1] is not last:
            layers = [(b.ln_1.weight, b.ln_1.bias, b.attn.c_attn.weight, b.attn.c_attn.bias, b.attn.c_proj.weight,
                       b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias, b.mlp.c_fc.weight, b.mlp.c_fc.bias,
                       b.mlp.c_proj.weight, b.mlp.c_proj.bias) for b in t.h]
            params = (t.wte.weight, t.wpe.weight, layers, (t.ln_f.weight, t.ln_f.bias), t.wte.weight)
            self.__dict__["_decode_cache"] = ((first, last), params)
            _PACKS.drop(self)
        if not packs(params[0], rows) or torch.is_grad_enabled():  # packed copies carry no gradient
            return params

        def pack():
            layers = [(l1w, l1b, packed(aw, rows), ab, packed(pw, rows), pb, l2w, l2b, packed(fw, rows), fb,
                       packed(ow, rows), ob) for (l1w, l1b, aw, ab, pw, pb, l2w, l2b, fw, fb, ow, ob) in params[2]]
            return (*params[:2], layers, params[3], packed(params[0], rows))

        matrices = [params[0]] + [w for layer in params[2] for w in (layer[2], layer[4], layer[8], layer[10])]
        return _PACKS.get(self, matrices, rows, pack)

    def new_cache(self, batch_size: int, max_len: int | None = None, dtype=None, *, prefix=None, pad=None) -> KVCache:
        """An empty cache on the model's device (see `KVCache` for `prefix` and `pad`)."""
        p = self.lm_head.weight
        return KVCache(self.config, batch_size, max_len or self.config.block_size, p.device, dtype or p.dtype,
                       prefix=prefix, pad=pad)

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token: 6N + 12*L*H*Q*T (PaLM appendix B, as nanoGPT uses for MFU)."""
        cfg = self.config
        return 6 * self.num_params() + 12 * cfg.n_layer * cfg.n_head * (cfg.n_embd // cfg.n_head) * seq_len


# ----------------------------------------------------------------------------------------------
# reward model: the same trunk with a scalar head (trained by train/reward.py)


class RewardModel(GPT):
    """GPT plus `reward_head`: its state dict is GPT's plus `reward_head.*`, so checkpoints save
    and load it like any other model (kind "reward"). The head starts at zero: every reward is 0
    until training moves it. The reward of a sequence is read from the final hidden state at its
    last real token, where the whole prompt and answer are in view."""

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        self.reward_head = nn.Linear(config.n_embd, 1)
        nn.init.zeros_(self.reward_head.weight)
        nn.init.zeros_(self.reward_head.bias)

    def reward(self, idx: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
        """idx (B, T), last_index (B,) -> reward (B,) read at each row's last real token."""
        h = self.hidden_states(idx)  # (B, T, n_embd)
        rows = torch.arange(idx.size(0), device=idx.device)
        return self.reward_head(h[rows, last_index]).squeeze(-1).float()


# ----------------------------------------------------------------------------------------------
# the machinery the two ways in use: packed documents, the KV cache and its masks


def document_layout(idx: torch.Tensor, bos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (B, T) counted from each token's own document start, and the attention mask
    (B, 1, T, T) that lets a token see only earlier tokens of its own document.

    Training windows pack many documents (each opening with `bos_id`); without this a
    one-sentence fact at window position 200 is read at position 200, with 199 tokens of other
    documents to look past, and the model learns the facts several times slower. A window that
    opens mid-document counts that fragment from 0.
    """
    B, T = idx.shape
    t = torch.arange(T, device=idx.device)
    starts = idx == bos_id
    first = torch.where(starts, t, 0).cummax(dim=1).values  # index of the current document's bos
    doc = starts.cumsum(dim=1)
    causal = t[:, None] >= t[None, :]
    mask = (doc[:, :, None] == doc[:, None, :]) & causal
    return t - first, mask[:, None]


_PACKS = PackCache()  # per model, its matrices packed for k-row decoding (GPT._decode_params)


class KVCache:
    """Preallocated keys/values for every layer: (n_layer, B, n_head, slots, head_dim).

    Fixed shapes keep decode steps cheap (no reallocation per token) and graph-capturable.
    A batch of different prompts is described by two optional parts:
    - `prefix`: the keys/values of a beginning that every row shares, stored once (batch 1) and
      read once per step for all rows (`shared_prefix_attention`); `k`/`v` then hold only each
      row's own slots, those after the prefix.
    - `pad` (B,): how many of each row's own slots, the first ones, are padding. Prompts of
      different lengths are left-padded so that every row decodes into the same slot; padding is
      attended by no other slot and does not count as a position.
    Slots count from the first prefix slot: `pos` p is own slot p - prefix_len.
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device, dtype, *,
                 prefix: tuple[torch.Tensor, torch.Tensor] | None = None, pad: torch.Tensor | None = None):
        head_dim = config.n_embd // config.n_head
        prefix_len = 0 if prefix is None else prefix[0].shape[3]
        shape = (config.n_layer, batch_size, config.n_head, max_len - prefix_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.prefix = prefix  # (k, v), each (n_layer, 1, n_head, prefix_len, head_dim)
        self.pad = pad

    @property
    def prefix_len(self) -> int:
        return 0 if self.prefix is None else self.prefix[0].shape[3]

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def _with_rows(self, k: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None) -> "KVCache":
        new = KVCache.__new__(KVCache)
        new.k, new.v, new.pad, new.max_len, new.prefix = k, v, pad, self.max_len, self.prefix
        return new

    def select_rows(self, index: torch.Tensor) -> "KVCache":
        """A copy holding the rows `index` (R,) picks, in its order: a prompt's row repeated for its
        k samples, or the rows still decoding. The shared prefix stays shared, not copied."""
        return self._with_rows(self.k.index_select(1, index), self.v.index_select(1, index),
                               None if self.pad is None else self.pad.index_select(0, index))

    def rows(self, first: int, stop: int) -> "KVCache":
        """Rows first..stop-1 as a view: what a forward writes into it lands in this cache."""
        return self._with_rows(self.k[:, first:stop], self.v[:, first:stop],
                               None if self.pad is None else self.pad[first:stop])


def own_slot_mask(pad: torch.Tensor | None, first, T: int, n_slots: int, device) -> torch.Tensor:
    """Which of each row's own slots 0..n_slots-1 the queries at own slots first..first+T-1 see:
    (B or 1, 1, T, n_slots) bool. Causal; a row's padding (its first `pad` own slots) is seen by
    no query but itself, so that a padding query's softmax is never empty. `first` may be a 0-d
    tensor (the fixed-shape decode step)."""
    slots = torch.arange(n_slots, device=device)
    queries = (first + torch.arange(T, device=device))[:, None]  # (T, 1)
    visible = slots <= queries  # (T, n_slots)
    if pad is not None:
        padding = slots < pad[:, None, None]  # (B, 1, n_slots)
        visible = visible & (~padding | (slots == queries))  # (B, T, n_slots)
    return visible.view(-1, 1, T, n_slots)


def shared_prefix_attention(q, prefix_k, prefix_v, k, v, mask=None) -> torch.Tensor:
    """Attention of q (B, nh, T, hd) over a prefix every row shares, (1, nh, P, hd), followed by
    each row's own keys/values (B, nh, S, hd), of which `mask` (B or 1, 1, T, S) says which are
    seen (all, when None): one softmax over all P + S slots. The B*T queries meet the prefix as
    one (1, nh, B*T, hd) batch, so its keys/values are read once."""
    B, nh, T, hd = q.shape
    P = prefix_k.shape[2]
    every_query = q.transpose(0, 1).reshape(1, nh, B * T, hd)
    prefix_scores = (every_query @ prefix_k.transpose(-1, -2)).view(nh, B, T, P).transpose(0, 1)  # (B, nh, T, P)
    own_scores = q @ k.transpose(-1, -2)  # (B, nh, T, S)
    if mask is not None:
        own_scores = own_scores.masked_fill(~mask, float("-inf"))
    p = (torch.cat([prefix_scores, own_scores], dim=-1) * hd**-0.5).softmax(dim=-1)  # (B, nh, T, P + S)
    from_prefix = p[..., :P].transpose(0, 1).reshape(1, nh, B * T, P) @ prefix_v  # (1, nh, B*T, hd)
    return from_prefix.view(nh, B, T, hd).transpose(0, 1) + p[..., P:] @ v
