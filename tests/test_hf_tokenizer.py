"""An exported folder through transformers alone: AutoTokenizer encodes and renders chats as gptkit
does, and the model generates the same greedy tokens. gptkit only produces the reference ids."""

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

transformers = pytest.importorskip("transformers")

from gptkit.checkpoint import load_checkpoint  # noqa: E402
from gptkit.cli import cli  # noqa: E402
from gptkit.engine import SamplingParams  # noqa: E402
from gptkit.hf import export_hf  # noqa: E402
from gptkit.hf_tokenizer import BREAK, KEEP, MARK, tokenizer_from_tokenizer_json  # noqa: E402
from gptkit.textgen import generate  # noqa: E402
from gptkit.tokenizer import SPECIAL_TOKENS, render_chat  # noqa: E402

LOOKALIKES = [*SPECIAL_TOKENS, "<|end", "|>", "<|", "<|tool|>", MARK, KEEP, BREAK]  # and the chat template's markers
PIECES = ["Hello", " world", "What is the capital of France?", "日本の首都は東京です。", "🚀", "👨‍👩‍👧", "it's",
          " \t ", "\n", "\n\n", "\r\n", "\u3000", "\u00a0", "\x1c", " ", "  "]
plain_text = st.lists(st.one_of(
    st.text(max_size=10),  # any Unicode scalar, control characters included
    st.sampled_from(PIECES),
    st.from_regex(r"[0-9]{1,9}", fullmatch=True),  # digit runs: gptkit splits every digit
    st.from_regex(r"[ \t\n\r]{1,8}", fullmatch=True),  # whitespace runs and newlines
), max_size=8).map("".join)
any_text = st.lists(st.one_of(plain_text, st.sampled_from(LOOKALIKES)), max_size=4).map("".join)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PROMPTS = ["What is the capital of Japan?", "The cow", "日本の首都は", "Q: 12 + 7 =", " Tokyo\n"]


@pytest.fixture(scope="module")
def folders(trained_checkpoints, tiny_checkpoints, tmp_path_factory):
    """Exported folders: the trained base and assistant (prefix-space tokenizer), and the tiny
    assistant (a tokenizer without prefix space)."""
    root = tmp_path_factory.mktemp("exported")
    steps = {**trained_checkpoints, "plain": tiny_checkpoints["assistant"]}
    return {name: (export_hf(step, root / name), load_checkpoint(step)) for name, step in steps.items()}


@pytest.fixture(scope="module")
def tokenizers(folders):
    """name -> (transformers tokenizer, gptkit tokenizer)."""
    return {name: (transformers.AutoTokenizer.from_pretrained(folder), ckpt.tokenizer)
            for name, (folder, ckpt) in folders.items()}


# ---------------------------------------------------------------------------------------------
# encoding


@pytest.mark.parametrize("name", ["base", "plain"])
@PROPERTY
@given(text=any_text)
def test_autotokenizer_encodes_like_gptkit(tokenizers, name, text):
    assume(MARK + KEEP not in text and MARK + BREAK not in text)  # the one documented exception (hf_tokenizer)
    hf, ours = tokenizers[name]
    # a prompt is a document: <|endoftext|>, then the text (after gptkit's prefix space, if any)
    assert hf.encode(text, split_special_tokens=True) == ours.encode_document(text)
    assert hf.encode(text, add_special_tokens=False, split_special_tokens=True) == ours.encode_start(text)
    if not any(t in text for t in SPECIAL_TOKENS):
        assert hf.encode(text) == ours.encode_document(text)
        assert hf.decode(ours.encode(text)) == ours.decode(ours.encode(text))


def test_typed_special_tokens_are_text_in_chats_and_with_split_special_tokens(tokenizers):
    hf, ours = tokenizers["base"]
    assert hf.encode("<|end|>", add_special_tokens=False) == [ours.end_id]  # transformers' default, as for any model
    assert hf.encode("<|end|>", add_special_tokens=False, split_special_tokens=True) == ours.encode(" <|end|>")
    chat = [{"role": "user", "content": f"<|end|><|assistant|>{MARK}{KEEP}{MARK}{BREAK}|>"}]
    assert hf.apply_chat_template(chat, return_dict=False) == render_chat(ours, chat)[0]
    loaded = transformers.AutoTokenizer.from_pretrained(hf.name_or_path, split_special_tokens=True)
    assert loaded.encode("x<|end|>") == ours.encode_document("x<|end|>")


def test_tokenizer_json_reads_back_exactly(folders):
    for folder, ckpt in folders.values():
        back = tokenizer_from_tokenizer_json(folder / "tokenizer.json", name=ckpt.tokenizer.name)
        assert back.encoding._mergeable_ranks == ckpt.tokenizer.encoding._mergeable_ranks
        assert back.encoding._special_tokens == ckpt.tokenizer.encoding._special_tokens
        assert back.encoding._pat_str == ckpt.tokenizer.encoding._pat_str
        assert back.prefix_space == ckpt.tokenizer.prefix_space


@pytest.mark.parametrize("prefix_space", [False, True])
def test_japanese_tokenizer_exports_its_own_split_regex(prefix_space, tmp_path):
    """A tokenizer trained with split="ja" goes out with the Japanese regex, and HF `tokenizers`
    reading the exported tokenizer.json gives tiktoken's ids on Japanese, English and digits."""
    from tokenizers import Tokenizer as HFTokenizer

    from gptkit.hf_tokenizer import tokenizer_json
    from gptkit.tokenizer import SPLIT_PATTERN_JA, train_tokenizer
    from ja_corpus import japanese_documents

    docs = japanese_documents(400, seed=3)
    ours = train_tokenizer([d for i, d in enumerate(docs) if i % 20] + ["The capital of France is Paris. 12+34=46"] * 20,
                           700, name="ja", split="ja", prefix_space=prefix_space)
    spec = tokenizer_json(ours)
    assert json.loads(spec)["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == SPLIT_PATTERN_JA
    hf = HFTokenizer.from_str(spec)
    for text in docs[::20] + ["答えは１２３です。", "東京に住んでいます「Tokyo」 it's 2024年、ｶﾀｶﾅ", " 質問：\n\nはい"]:
        assert hf.encode(text).ids == ours.encode_document(text)
    (tmp_path / "tokenizer.json").write_text(spec, encoding="utf-8")
    back = tokenizer_from_tokenizer_json(tmp_path / "tokenizer.json", name="ja")
    assert back.split == "ja" and back.encode(docs[0]) == ours.encode(docs[0])


# ---------------------------------------------------------------------------------------------
# chat template


CHATS = {
    "without system": [{"role": "user", "content": "What is the capital of France?"}],
    "with system": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 12+34?"},
                    {"role": "assistant", "content": "46."}, {"role": "user", "content": " And 日本語? 🚀\n"}],
}


@pytest.mark.parametrize("name", ["base", "plain"])
@pytest.mark.parametrize("chat", CHATS)
def test_chat_template_renders_like_gptkit(tokenizers, name, chat):
    hf, ours = tokenizers[name]
    messages = CHATS[chat]
    for prompt in (True, False):
        ids = hf.apply_chat_template(messages, add_generation_prompt=prompt, return_dict=False)
        assert ids == render_chat(ours, messages, add_generation_prompt=prompt)[0]


@PROPERTY
@given(messages=st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                                "content": any_text}), min_size=1, max_size=4))
def test_chat_template_renders_any_conversation_like_gptkit(tokenizers, messages):
    for name in ("base", "plain"):
        hf, ours = tokenizers[name]
        ids = hf.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
        assert ids == render_chat(ours, messages, add_generation_prompt=True)[0]


def test_chat_template_refuses_unknown_roles(tokenizers):
    with pytest.raises(Exception, match="role must be system, user or assistant, got tool"):
        tokenizers["base"][0].apply_chat_template([{"role": "tool", "content": "{}"}])


def test_tokenizer_config_names_the_turn_end_of_an_assistant(folders):
    config = {name: json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
              for name, (folder, _) in folders.items()}
    assert config["assistant"]["eos_token"] == "<|end|>" and config["base"]["eos_token"] == "<|endoftext|>"
    assert all(c["bos_token"] == c["pad_token"] == "<|endoftext|>" for c in config.values())


# ---------------------------------------------------------------------------------------------
# generation


def hf_greedy(model, encoded, max_new_tokens: int) -> list[int]:
    out = model.generate(**encoded, do_sample=False, max_new_tokens=max_new_tokens)
    return out[0, encoded["input_ids"].shape[1]:].tolist()


@pytest.mark.parametrize("kind", ["base", "assistant"])
def test_greedy_generate_gives_gptkits_tokens(folders, kind):
    folder, ckpt = folders[kind]
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    stopped, seen = 0, set()
    for prompt in PROMPTS:
        if kind == "base":
            encoded = hf(prompt, return_tensors="pt")
        else:
            encoded = hf.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             return_tensors="pt", return_dict=True)
        ((ours,),) = generate(ckpt, [prompt], SamplingParams(temperature=0, max_new_tokens=32))
        theirs = hf_greedy(model, encoded, 32)
        if ours.finish_reason == "stop":  # transformers keeps the stop token, gptkit drops it
            assert theirs[-1] in ckpt.tokenizer.stop_ids
            theirs, stopped = theirs[:-1], stopped + 1
        assert theirs == ours.tokens, prompt
        seen.update(ours.tokens)
    assert len(seen) > 3  # varied paths, not one token repeated
    assert stopped > 0 if kind == "assistant" else True  # the assistant ends answers with <|end|>


def test_gptkit_generate_command_agrees_with_transformers(folders):
    folder, ckpt = folders["base"]
    result = CliRunner().invoke(cli, ["generate", "-m", str(ckpt.path), "-t", "0", "--max-tokens", "20", "--json",
                                      "--no-log", "--device", "cpu", PROMPTS[0]])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    theirs = hf_greedy(model, hf(PROMPTS[0], return_tensors="pt"), 20)
    assert hf.decode(theirs) == row["text"] and len(theirs) == row["tokens"]


def test_pipeline_runs_on_the_folder_alone(folders):
    base, base_ckpt = folders["base"]
    assistant, assistant_ckpt = folders["assistant"]
    params = SamplingParams(temperature=0, max_new_tokens=16)
    ((document,),) = generate(base_ckpt, [PROMPTS[0]], params)
    ((answer,),) = generate(assistant_ckpt, [PROMPTS[0]], params)
    complete = transformers.pipeline("text-generation", model=str(base))
    (out,) = complete(PROMPTS[0], do_sample=False, max_new_tokens=16, return_full_text=False)
    assert out["generated_text"] == document.text
    chat = transformers.pipeline("text-generation", model=str(assistant))
    (out,) = chat([{"role": "user", "content": PROMPTS[0]}], do_sample=False, max_new_tokens=16)
    assert out["generated_text"][-1] == {"role": "assistant", "content": answer.text}
