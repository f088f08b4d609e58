"""The GPT and the id-only engine: KV cache parity, lock-step sampling, seeds, filtering."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.engine import SamplingParams, complete, generate
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


@given(rows=st.integers(1, 6), heads=st.integers(1, 3), prefix=st.integers(1, 20), own=st.integers(1, 8),
       queries=st.integers(1, 4), masked=st.booleans(), seed=st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def test_shared_prefix_attention_equals_attention_over_copies(rows, heads, prefix, own, queries, masked, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(rows, heads, queries, 8, generator=g)
    pk, pv = torch.randn(1, heads, prefix, 8, generator=g), torch.randn(1, heads, prefix, 8, generator=g)
    k, v = torch.randn(rows, heads, own, 8, generator=g), torch.randn(rows, heads, own, 8, generator=g)
    mask = torch.rand(rows, 1, queries, own, generator=g) < 0.6 if masked else None  # which own slots each query sees
    copies_k = torch.cat([pk.expand(rows, -1, -1, -1), k], dim=2)
    copies_v = torch.cat([pv.expand(rows, -1, -1, -1), v], dim=2)
    full_mask = None if mask is None else torch.cat([torch.ones(rows, 1, queries, prefix, dtype=torch.bool), mask], -1)
    want = torch.nn.functional.scaled_dot_product_attention(q, copies_k, copies_v, attn_mask=full_mask)
    torch.testing.assert_close(shared_prefix_attention(q, pk, pv, k, v, mask), want, atol=1e-5, rtol=1e-4)


def test_k_samples_read_one_copy_of_the_prompt():
    """Lock-step rows keep the prompt's keys/values once; sampled rows match decoding from k copies."""
    model = tiny_model(11)
    with torch.no_grad():
        cache = model.new_cache(1, 20)
        model(torch.tensor([[1, 2, 3, 4, 5]]), cache=cache, pos=0)
        shared = model.new_cache(4, 20, prefix=(cache.k[:, :, :, :5], cache.v[:, :, :, :5]))
        copies = cache.select_rows(torch.zeros(4, dtype=torch.long))
        assert shared.prefix[0].shape[1] == 1 and shared.k.shape[3] == 15 and shared.prefix_len == 5
        tokens = torch.tensor([7, 8, 9, 10])
        for pos in range(5, 9):
            torch.testing.assert_close(model.decode(tokens, shared, pos), model.decode(tokens, copies, pos),
                                       atol=1e-5, rtol=1e-4)


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


# ---- batches of different prompts ------------------------------------------------------------


def alone(model, prompt, n):
    """Greedy logits of `prompt` then its own greedy continuation, computed without a cache: (n, V)."""
    ids, out = list(prompt), []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids]))[0, -1]
            out.append(logits)
            ids.append(int(logits[:VOCAB].argmax()))
    return torch.stack(out), ids[len(prompt):]


@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4), shared=st.integers(0, 6),
       static=st.booleans(), seed=st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_padded_rows_decode_as_each_prompt_alone(lengths, shared, static, seed):
    """Left-padded rows after a shared prefix (the engine's batch layout) compute, in forward and
    in decode, what each prompt computes alone: padding is never attended, positions skip it."""
    model = tiny_model(14)
    g = torch.Generator().manual_seed(seed)
    shared = 0 if static else min(shared, min(lengths) - 1)  # fixed shapes take no prefix
    head = torch.randint(0, VOCAB, (shared,), generator=g).tolist()
    rests = [torch.randint(0, VOCAB, (n - shared if n > shared else 1,), generator=g).tolist() for n in lengths]
    prompts = [head + r for r in rests]
    width = max(len(r) for r in rests)
    pad = torch.tensor([width - len(r) for r in rests])
    new = 3
    want = [alone(model, p, new) for p in prompts]
    with torch.no_grad():
        prefix = None
        if shared:
            prefix_cache = model.new_cache(1, shared)
            model(torch.tensor([head]), cache=prefix_cache, pos=0)
            prefix = (prefix_cache.k, prefix_cache.v)
        cache = model.new_cache(len(prompts), shared + width + new, prefix=prefix, pad=pad)
        ids = torch.tensor([[7] * int(n) + r for n, r in zip(pad, rests)])
        logits = [model(ids, cache=cache, pos=shared)[:, -1]]
        tokens = torch.tensor([w[1][0] for w in want])
        for step in range(1, new):
            pos = shared + width + step - 1
            logits.append(model.decode(tokens, cache, torch.tensor(pos) if static else pos))
            tokens = torch.tensor([w[1][step] for w in want])
    for row, (want_logits, _) in enumerate(want):
        got = torch.stack([step[row] for step in logits])
        torch.testing.assert_close(got, want_logits, atol=1e-5, rtol=1e-4)


def batch_prompts(seed, n, common=tuple(range(1, 21)), all_alike=False):
    """n prompts of different lengths; about half (or all) begin alike (a template's examples:
    long enough to be kept once, see engine.SHARED_MIN), the others do not."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 20, (n,), generator=g).tolist()
    return [(list(common) if i % 2 or all_alike else []) + torch.randint(0, VOCAB, (m,), generator=g).tolist()
            for i, m in enumerate(lengths)]


@given(seed=st.integers(0, 10_000), n=st.integers(1, 7), k=st.integers(1, 3), max_rows=st.integers(1, 8),
       new=st.integers(1, 14), use_stop=st.booleans(), temperature=st.sampled_from([0.0, 1.0]),
       all_alike=st.booleans())
@settings(max_examples=30, deadline=None)
def test_many_prompts_in_batches_equal_one_prompt_at_a_time(seed, n, k, max_rows, new, use_stop, temperature,
                                                            all_alike):
    """Prompts of different lengths, k samples each, stop ids ending rows at different steps,
    batches smaller than the prompt count: token for token what each prompt gets alone."""
    from gptkit.engine import generate_many

    model = tiny_model(15)
    prompts = batch_prompts(seed, n, all_alike=all_alike)  # all alike: the batches keep a shared prefix
    params = SamplingParams(temperature=temperature, max_new_tokens=new, seed=seed)
    stop_ids = (3, 11, 42, 57, 80) if use_stop else ()
    seeds = [seed + i for i in range(n)]
    streamed = {}
    many = generate_many(model, prompts, params, n_vocab=VOCAB, num_samples=k, seeds=seeds, stop_ids=stop_ids,
                         max_rows=max_rows, on_token=lambda i, j, t: streamed.setdefault((i, j), []).append(t))
    for i, prompt in enumerate(prompts):
        one = complete(model, prompt, SamplingParams(temperature=temperature, max_new_tokens=new, seed=seeds[i]),
                       n_vocab=VOCAB, num_samples=k, stop_ids=stop_ids)
        assert [(c.tokens, c.finish_reason) for c in many[i]] == [(c.tokens, c.finish_reason) for c in one]
        for j, c in enumerate(many[i]):  # on_token saw each token once, the stop id that ended a row included
            assert streamed[(i, j)] == c.tokens + ([streamed[(i, j)][-1]] if c.finish_reason == "stop" else [])


def test_rows_ending_early_are_dropped_and_the_rest_run_on():
    """should_stop ends most rows after one token; the batch compacts and the others still get all their tokens."""
    from gptkit.engine import generate_many

    model = tiny_model(16)
    prompts = batch_prompts(3, 8)
    params = SamplingParams(temperature=1.0, max_new_tokens=10, seed=5)
    out = generate_many(model, prompts, params, n_vocab=VOCAB, num_samples=2,
                        should_stop=lambda i, j, tokens: i % 4 != 0 and len(tokens) == 1)
    for i, samples in enumerate(out):
        assert all(len(c.tokens) == (10 if i % 4 == 0 else 1) for c in samples)
        assert all(c.finish_reason == ("length" if i % 4 == 0 else "stop") for c in samples)
        alone_rows = complete(model, prompts[i], params, n_vocab=VOCAB, num_samples=2)
        assert [c.tokens for c in samples] == [c.tokens[: len(s.tokens)] for c, s in zip(alone_rows, samples)]


def test_samples_are_nested_and_independent_of_the_batch():
    """Sample j of k=20 is sample j of k=5, and a prompt's samples do not depend on the other prompts."""
    from gptkit.engine import generate_many

    model = tiny_model(17)
    params = SamplingParams(temperature=1.2, max_new_tokens=8, seed=11)
    prompt = [4, 8, 15, 16] * 5  # long enough to be shared by the samples (engine.SHARED_MIN)
    twenty = complete(model, prompt, params, n_vocab=VOCAB, num_samples=20)
    five = complete(model, prompt, params, n_vocab=VOCAB, num_samples=5)
    assert [c.tokens for c in twenty[:5]] == [c.tokens for c in five]
    assert len({tuple(c.tokens) for c in twenty}) > 10
    crowd = generate_many(model, [[23, 42], prompt, prompt[:-1] + [1]], params, n_vocab=VOCAB, num_samples=5)
    assert [c.tokens for c in crowd[1]] == [c.tokens for c in five]


def test_seed_none_draws_on_the_host():
    model = tiny_model(18)
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    state = torch.get_rng_state()
    runs = {tuple(complete(model, [1, 2, 3], params, n_vocab=VOCAB)[0].tokens) for _ in range(4)}
    assert len(runs) > 1 and torch.equal(torch.get_rng_state(), state)  # torch's global generator untouched


def test_truncated_prompts_are_reported():
    from gptkit.engine import generate_many

    model = tiny_model(19)
    long, short = list(range(1, 90)), [5, 6]
    (cut, kept) = generate_many(model, [long, short], SamplingParams(temperature=0, max_new_tokens=10), n_vocab=VOCAB)
    assert cut[0].prompt_truncated == 89 - (64 - 10) and kept[0].prompt_truncated == 0
    assert len(cut[0].tokens) == 10
    assert cut[0].tokens == complete(model, long[-54:], SamplingParams(temperature=0, max_new_tokens=10),
                                     n_vocab=VOCAB)[0].tokens


@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=30), families=st.integers(1, 4),
       k=st.integers(1, 4), max_rows=st.integers(1, 40))
@settings(max_examples=40, deadline=None)
def test_batches_hold_every_prompt_once_and_keep_to_max_rows(lengths, families, k, max_rows):
    from gptkit.engine import plan_batches

    prompts = [[100 + i % families] * 30 + [i] * n for i, n in enumerate(lengths)]  # `families` templates
    sizes = [sum(1 for i in range(len(lengths)) if i % families == f) for f in range(families)]
    for gain, by_template in ((29, True), (10**9, False)):
        batches = plan_batches(prompts, k, max_rows, split_gain=gain)
        assert sorted(i for b in batches for i in b) == list(range(len(prompts)))
        assert all(len(b) * k <= max(max_rows, k) for b in batches)
        if by_template and all(k * n >= 2 for n in sizes if n):
            # a template's own batch saves reading its 30 slots for all rows but one: above the gain
            assert all(len({prompts[i][0] for i in b}) == 1 for b in batches)
        if not by_template:  # never worth a batch more: cut by length alone
            assert all(max(lengths[i] for i in a) <= min(lengths[i] for i in b) for a, b in zip(batches, batches[1:]))


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), head=st.integers(0, 4), seed=st.integers(0, 3))
def test_packed_documents_are_read_as_each_document_alone(lengths, head, seed):
    """With `bos_id`, a window packing several documents gives each document's tokens the logits
    that document gets on its own (from position 0), and the loss is the plain mean over them."""
    bos = VOCAB - 1
    model = tiny_model(seed)
    g = torch.Generator().manual_seed(seed)
    fragment = torch.randint(0, bos, (head,), generator=g).tolist()  # a window may open mid-document
    docs = [[bos] + torch.randint(0, bos, (n,), generator=g).tolist() for n in lengths]
    window = fragment + [t for d in docs for t in d]
    with torch.no_grad():
        packed = model(torch.tensor([window]), torch.tensor([window[1:] + [0]]), bos_id=bos)  # loss path
        logits = model.lm_head(model.hidden_states(torch.tensor([window]), bos_id=bos))[0]
        alone = [model(torch.tensor([d]))[0] for d in ([fragment] if fragment else []) + docs]
    torch.testing.assert_close(logits, torch.cat(alone), atol=1e-5, rtol=1e-5)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(window[1:] + [0]))
    torch.testing.assert_close(packed, expected, atol=1e-5, rtol=1e-5)
