"""The GPT and the id-only engine: KV cache parity, lock-step sampling, seeds, filtering."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.engine import SamplingParams, complete, generate, sample_next
from gptkit.model import GPT, GPTConfig, config_for, pad_vocab, shared_prefix_attention

VOCAB = 100


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = GPTConfig(block_size=64, vocab_size=pad_vocab(VOCAB), n_layer=2, n_head=2, n_embd=32, **overrides)
    return GPT(cfg).eval()


def greedy_without_cache(model, prompt, n):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids]))[0, -1, :VOCAB]
            ids.append(int(logits.argmax()))
    return ids[len(prompt):]


def test_presets_pad_vocab_and_tie_embeddings():
    cfg = config_for("tiny", 4101)
    assert cfg.vocab_size == 4160 and cfg.vocab_size % 64 == 0
    model = GPT(cfg)
    assert model.lm_head.weight is model.transformer.wte.weight


def test_greedy_with_kv_cache_equals_without():
    model = tiny_model()
    prompt = [5, 17, 3, 99, 42]
    (c,) = complete(model, prompt, SamplingParams(temperature=0, max_new_tokens=20), n_vocab=VOCAB)
    assert c.tokens == greedy_without_cache(model, prompt, 20)


def test_chunked_prefill_matches_full_forward():
    model = tiny_model(1)
    ids = torch.randint(0, VOCAB, (1, 20))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(1, 32)
        first = model(ids[:, :12], cache=cache, pos=0)
        rest = model(ids[:, 12:], cache=cache, pos=12)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-5)


@given(bias=st.booleans(), batch=st.integers(1, 3), prompt_len=st.integers(1, 20), static=st.booleans())
@settings(max_examples=20, deadline=None)
def test_decode_fast_path_equals_forward(bias, batch, prompt_len, static):
    """`decode` (plain ops, int or fixed-shape tensor position) computes what `forward` does for one token."""
    model = tiny_model(5, bias=bias)
    ids = torch.randint(0, VOCAB, (batch, prompt_len + 3))
    with torch.no_grad():
        ref_cache, cache = model.new_cache(batch, 32), model.new_cache(batch, 32)
        model(ids[:, :prompt_len], cache=ref_cache, pos=0)
        model(ids[:, :prompt_len], cache=cache, pos=0)
        for pos in range(prompt_len, prompt_len + 3):
            want = model(ids[:, pos : pos + 1], cache=ref_cache, pos=pos)[:, -1]
            got = model.decode(ids[:, pos], cache, torch.tensor(pos) if static else pos)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        if not static:  # the int path writes the cache forward writes, where forward writes it
            torch.testing.assert_close(cache.k[:, :, :, : prompt_len + 3], ref_cache.k[:, :, :, : prompt_len + 3],
                                       atol=1e-6, rtol=1e-5)


def test_k_rows_from_one_prefill_equal_single_greedy():
    model = tiny_model(2)
    prompt = [1, 2, 3, 4]
    params = SamplingParams(temperature=0, max_new_tokens=16)
    (single,) = complete(model, prompt, params, n_vocab=VOCAB)
    rows = complete(model, prompt, params, n_vocab=VOCAB, num_samples=5)
    assert all(r.tokens == single.tokens for r in rows)


def test_fixed_seed_reproduces_and_rows_differ():
    model = tiny_model(3)
    params = SamplingParams(temperature=1.5, max_new_tokens=12, seed=7)
    a = complete(model, [1, 2], params, n_vocab=VOCAB, num_samples=4)
    b = complete(model, [1, 2], params, n_vocab=VOCAB, num_samples=4)
    assert [r.tokens for r in a] == [r.tokens for r in b]
    assert len({tuple(r.tokens) for r in a}) > 1  # the rows really are independent samples


def test_stop_ids_end_rows_and_are_stripped():
    model = tiny_model(4)
    (greedy,) = complete(model, [9, 8, 7], SamplingParams(temperature=0, max_new_tokens=10), n_vocab=VOCAB)
    stop = greedy.tokens[3]
    (c,) = complete(model, [9, 8, 7], SamplingParams(temperature=0, max_new_tokens=10), n_vocab=VOCAB, stop_ids=(stop,))
    assert c.finish_reason == "stop"
    assert c.tokens == greedy.tokens[: greedy.tokens.index(stop)]


def test_should_stop_ends_one_row_only():
    model = tiny_model(5)
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=1)
    rows = complete(model, [1], params, n_vocab=VOCAB, num_samples=3, should_stop=lambda r, toks: r == 0 and len(toks) == 2)
    assert len(rows[0].tokens) == 2 and rows[0].finish_reason == "stop"
    assert len(rows[1].tokens) == 8 and rows[1].finish_reason == "length"


@given(seed=st.integers(0, 2**16), sync_every=st.integers(2, 7), samples=st.integers(1, 3),
       stop_at=st.integers(1, 12), use_stop_id=st.booleans())
@settings(max_examples=25, deadline=None)
def test_reading_ids_back_in_chunks_changes_nothing(seed, sync_every, samples, stop_at, use_stop_id):
    """Steps decoded ahead of the host (as on CUDA) yield exactly what step-by-step decoding does,
    including rows ended inside a chunk by a stop id or by `should_stop`."""
    model = tiny_model(7)
    params = SamplingParams(temperature=1.0, max_new_tokens=12, seed=seed)
    stop_ids = (int(torch.randint(0, VOCAB, (1,), generator=torch.Generator().manual_seed(seed))),) if use_stop_id else ()

    def steps(n):
        return list(generate(model, [3, 1, 4], params, n_vocab=VOCAB, num_samples=samples, stop_ids=stop_ids,
                             should_stop=lambda r, toks: r == 0 and len(toks) == stop_at, sync_every=n))

    assert steps(sync_every) == steps(1)


def test_fixed_shape_decoding_generates_what_the_default_does():
    """The fixed-shape step a CUDA graph replays (here run directly), warm-up write included."""
    model = tiny_model(8)
    greedy = SamplingParams(temperature=0, max_new_tokens=30)
    for samples in (1, 3):
        static = complete(model, [2, 7, 1, 8], greedy, n_vocab=VOCAB, num_samples=samples, static=True)
        default = complete(model, [2, 7, 1, 8], greedy, n_vocab=VOCAB, num_samples=samples)
        assert [c.tokens for c in static] == [c.tokens for c in default]


def test_padding_logits_never_sampled():
    model = tiny_model(6)
    with torch.no_grad():
        model.lm_head.weight[VOCAB:] = 10.0  # make padding rows attractive; they must still be ignored
    rows = complete(model, [1, 2], SamplingParams(temperature=1.0, max_new_tokens=10, seed=0), n_vocab=VOCAB, num_samples=4)
    assert all(t < VOCAB for r in rows for t in r.tokens)


def test_long_prompt_is_cropped_to_context():
    model = tiny_model(7)
    rows = complete(model, list(range(1, 90)), SamplingParams(temperature=0, max_new_tokens=10), n_vocab=VOCAB)
    assert len(rows[0].tokens) == 10


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.floats(0.05, 1.0), st.integers(0, 2**31 - 1))
def test_top_k_and_top_p_keep_only_allowed_tokens(k, p, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 30, generator=g) * 3
    allowed_k = torch.topk(logits, k, dim=-1).indices
    ids = sample_next(logits, SamplingParams(temperature=1.0, top_k=k), torch.Generator().manual_seed(seed))
    assert all(int(ids[i]) in allowed_k[i].tolist() for i in range(3))
    probs = logits.softmax(-1)
    ids = sample_next(logits, SamplingParams(temperature=1.0, top_p=p), torch.Generator().manual_seed(seed))
    for i in range(3):
        sorted_p, order = probs[i].sort(descending=True)
        before = sorted_p.cumsum(0) - sorted_p
        nucleus = order[before < p].tolist()
        assert int(ids[i]) in nucleus


def test_loss_mask_restricts_loss():
    model = tiny_model(8)
    x = torch.randint(0, VOCAB, (2, 10))
    y = torch.randint(0, VOCAB, (2, 10))
    mask = torch.zeros(2, 10)
    mask[:, 5:] = 1
    masked = model(x, y, loss_mask=mask)
    logits = model(x)
    manual = torch.nn.functional.cross_entropy(logits[:, 5:].reshape(-1, logits.size(-1)), y[:, 5:].reshape(-1))
    torch.testing.assert_close(masked, manual)


def test_min_new_tokens_keeps_stop_ids_away_from_the_first_steps():
    model = tiny_model(9)
    (greedy,) = complete(model, [4, 5], SamplingParams(temperature=0, max_new_tokens=6), n_vocab=VOCAB)
    first = greedy.tokens[0]
    (stopped,) = complete(model, [4, 5], SamplingParams(temperature=0, max_new_tokens=6), n_vocab=VOCAB, stop_ids=(first,))
    assert stopped.tokens == [] and stopped.finish_reason == "stop"
    (c,) = complete(model, [4, 5], SamplingParams(temperature=0, max_new_tokens=6, min_new_tokens=1), n_vocab=VOCAB,
                    stop_ids=(first,))
    assert c.tokens and c.tokens[0] != first


def test_decode_follows_replaced_parameters():
    """`decode` gathers its tensors once; weights loaded with assign=True (new Parameter objects) are seen."""
    model, other = tiny_model(9), tiny_model(10)
    ids = torch.tensor([4, 2])
    with torch.no_grad():
        model.decode(ids, model.new_cache(2, 8), 0)  # gathers model's own parameters
        model.load_state_dict(other.state_dict(), assign=True)
        torch.testing.assert_close(model.decode(ids, model.new_cache(2, 8), 0), other.decode(ids, other.new_cache(2, 8), 0))


@given(rows=st.integers(1, 6), heads=st.integers(1, 3), prefix=st.integers(1, 20), own=st.integers(1, 8))
@settings(max_examples=30, deadline=None)
def test_shared_prefix_attention_equals_attention_over_copies(rows, heads, prefix, own):
    g = torch.Generator().manual_seed(rows * 1000 + heads * 100 + prefix * 10 + own)
    q = torch.randn(rows, heads, 1, 8, generator=g)
    pk, pv = torch.randn(1, heads, prefix, 8, generator=g), torch.randn(1, heads, prefix, 8, generator=g)
    k, v = torch.randn(rows, heads, own, 8, generator=g), torch.randn(rows, heads, own, 8, generator=g)
    copies_k = torch.cat([pk.expand(rows, -1, -1, -1), k], dim=2)
    copies_v = torch.cat([pv.expand(rows, -1, -1, -1), v], dim=2)
    want = torch.nn.functional.scaled_dot_product_attention(q, copies_k, copies_v)
    torch.testing.assert_close(shared_prefix_attention(q, pk, pv, k, v), want, atol=1e-5, rtol=1e-4)


def test_k_samples_read_one_copy_of_the_prompt():
    """Lock-step rows keep the prompt's keys/values once; sampled rows match decoding from k copies."""
    model = tiny_model(11)
    with torch.no_grad():
        cache = model.new_cache(1, 20)
        model(torch.tensor([[1, 2, 3, 4, 5]]), cache=cache, pos=0)
        shared, copies = cache.share_prefix(4, 5), cache.expand(4)
        assert shared.prefix[0].shape[1] == 1 and shared.k.shape[3] == 15 and shared.prefix_len == 5
        tokens = torch.tensor([7, 8, 9, 10])
        for pos in range(5, 9):
            torch.testing.assert_close(model.decode(tokens, shared, pos), model.decode(tokens, copies, pos),
                                       atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampler_draws_from_the_softmax(temperature):
    """20,000 draws of one distribution land within 1.5 points of softmax(logits / T) everywhere."""
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, float("-inf")])
    ids = sample_next(logits.expand(20_000, -1), SamplingParams(temperature=temperature), torch.Generator().manual_seed(0))
    frequencies = torch.bincount(ids, minlength=5).float() / 20_000
    expected = (logits / temperature).softmax(-1)
    assert frequencies[4] == 0
    torch.testing.assert_close(frequencies, expected, atol=0.015, rtol=0)


def test_packed_decode_weights_follow_training_updates():
    """Rows > 1 decode from packed copies of the matrices; an optimizer step must invalidate them."""
    model = tiny_model(12)
    ids = torch.tensor([4, 2, 9])
    with torch.no_grad():
        before = model.decode(ids, model.new_cache(3, 8), 0)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    model(torch.tensor([[1, 2, 3, 4]]), torch.tensor([[2, 3, 4, 5]])).backward()
    opt.step()
    with torch.no_grad():
        after = model.decode(ids, model.new_cache(3, 8), 0)
        want = model(ids[:, None], cache=model.new_cache(3, 8), pos=0)[:, -1]
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, want, atol=1e-5, rtol=1e-4)


def test_a_model_that_decoded_k_rows_still_deep_copies():
    import copy

    model = tiny_model(13)
    complete(model, [1, 2, 3], SamplingParams(temperature=1.0, max_new_tokens=4, seed=0), n_vocab=VOCAB, num_samples=4)
    twin = copy.deepcopy(model)
    params = SamplingParams(temperature=0, max_new_tokens=6)
    assert [c.tokens for c in complete(twin, [5, 6], params, n_vocab=VOCAB, num_samples=2)] == \
        [c.tokens for c in complete(model, [5, 6], params, n_vocab=VOCAB, num_samples=2)]
