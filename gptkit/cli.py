"""The `gptkit` command line: a thin Click layer over the library.

Rules of this file: no ML logic (each command parses options, calls one library function and
prints the result; the file is long only because it declares every command's options); every heavy import (torch, rich, the library) happens inside the command
that needs it, so `gptkit --help` stays instant; a `GptkitError` raised anywhere below becomes
one clean line on stderr and a non-zero exit, never a traceback.
"""

import dataclasses
import functools
import json
import math
import sys
from pathlib import Path

import click

from gptkit import limits
from gptkit.data.world import LANGS
from gptkit.errors import GptkitError


class GptkitGroup(click.Group):
    """A group that turns user-facing errors into one line and an exit code."""

    def invoke(self, ctx):
        from gptkit.errors import Interrupted

        try:
            return super().invoke(ctx)
        except Interrupted as e:
            click.echo(str(e), err=True)
            ctx.exit(e.exit_code)
        except GptkitError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as e:  # a path the user named (a file where a folder belongs) or a full disk
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}{e.strerror or e}", err=True)
            ctx.exit(1)


@click.group(cls=GptkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gptkit")
def cli():
    """Build, watch and steer a small ChatGPT-like model in your terminal.

    \b
    Start here:   gptkit quickstart        (toy world: tokenizer -> base model -> assistant)
    Your text:    gptkit train --data notes/ --out checkpoints/mine
    Generate:     gptkit generate -m mine "Once upon a time"
    """


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (a range lets nan through: every comparison
    with nan is false)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


SEED = click.IntRange(0, limits.MAX_SEED)  # what torch, numpy and the logbook's INTEGER columns all take


# ----------------------------------------------------------------------------------------------
# options shared by every training command: declared once, received as one TrainingArgs

@dataclasses.dataclass(frozen=True)
class TrainingArgs:
    """What every training command takes besides its own options (see `training_options`)."""

    data: tuple[str, ...]
    max_steps: int
    batch_size: int
    grad_accum: int
    lr: float
    warmup: int | None
    eval_every: int | None
    save_every: int | None
    out: Path | None
    seed: int
    resume: bool
    stop_after: int | None
    device: str
    compile: bool
    as_json: bool

    def train_config(self):
        from gptkit.train.loop import TrainConfig

        return TrainConfig(
            max_steps=self.max_steps, batch_size=self.batch_size, grad_accum=self.grad_accum, lr=self.lr,
            warmup_steps=self.warmup if self.warmup is not None else max(1, self.max_steps // 20),
            eval_every=self.eval_every if self.eval_every is not None else max(1, self.max_steps // 10),
            save_every=self.save_every or max(1, self.max_steps // 5),
            log_every=max(1, min(10, self.max_steps // 50)), seed=self.seed, compile=self.compile,
            stop_after=self.stop_after,
        )

    def run_dir(self, default_name: str) -> Path:
        return run_folder(self.out, default_name)


def training_options(default_steps: int, default_lr: float, default_batch: int):
    """Declare the shared training options on a command; it receives them as one `TrainingArgs`
    (its first argument) and declares only the options it uses besides."""
    options = [
        click.option("--data", "data", multiple=True, help="Input file/folder (repeatable), or the word toyworld (toyworld-ja: in Japanese)."),
        click.option("--max-steps", type=click.IntRange(1), default=default_steps, show_default=True),
        click.option("--batch-size", type=click.IntRange(1, limits.MAX_BATCH_SIZE), default=default_batch, show_default=True),
        click.option("--grad-accum", type=click.IntRange(1, limits.MAX_GRAD_ACCUM), default=1, show_default=True, help="Gradient accumulation steps."),
        click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=default_lr, show_default=True),
        click.option("--warmup", type=click.IntRange(0), default=None, help="Warmup steps (default: 5% of --max-steps)."),
        click.option("--eval-every", type=click.IntRange(0), default=None, help="Validate every N steps (default: 10 times a run)."),
        click.option("--save-every", type=click.IntRange(1), default=None, help="Checkpoint every N steps (default: 5 times a run)."),
        click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (default: checkpoints/<name>)."),
        click.option("--seed", type=SEED, default=1337, show_default=True),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
        click.option("--stop-after", type=click.IntRange(1), default=None, help="Save and stop at this step (the schedule still spans --max-steps); --resume later."),
        click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | mps"),
        click.option("--compile", "compile", is_flag=True, help="torch.compile the model (CUDA)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a progress bar."),
    ]
    shared = [field.name for field in dataclasses.fields(TrainingArgs)]

    def decorate(f):
        @functools.wraps(f)
        def command(**kwargs):
            return f(TrainingArgs(**{name: kwargs.pop(name) for name in shared}), **kwargs)

        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def refuse_given(names: tuple[str, ...], why: str) -> None:
    """UsageError if the user gave any of these options (by parameter name): `why` it cannot apply."""
    from click.core import ParameterSource

    from gptkit.errors import UsageError

    ctx = click.get_current_context()
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) not in (None, ParameterSource.DEFAULT):
            raise UsageError(f"{max(param.opts, key=len)}: {why}")


def run_folder(out: Path | None, default_name: str) -> Path:
    """--out, or checkpoints/<default_name>; a file in its place is refused before any work."""
    from gptkit import paths
    from gptkit.errors import UsageError

    folder = out if out is not None else paths.checkpoints_dir() / default_name
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder}: is a file; expected a folder")
    return folder


def print_result(as_json: bool, result: dict, text: str) -> None:
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        click.echo(text)


# ----------------------------------------------------------------------------------------------
# tokenizer

@cli.group(cls=GptkitGroup)
def tokenizer():
    """Train and inspect BPE tokenizers."""


HELD_OUT_EVERY = 20  # `tokenizer train` measures characters per token on every 20th document, not trained on


@tokenizer.command("train")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--vocab-size", type=click.IntRange(262, limits.MAX_VOCAB_SIZE), default=4096, show_default=True)
@click.option("--split", type=click.Choice(["default", "ja"]), default=None,
              help="How text is chunked before BPE: default (cl100k's, digits one by one) or ja (Japanese "
                   "chunks; English and digits as default). Default: ja for toyworld-ja, else default.")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Folder to write tokenizer.json + tokenizer.tiktoken to.")
def tokenizer_train(inputs, vocab_size, split, output):
    """Train a byte-level BPE tokenizer on text files/folders/JSONL (or `toyworld`).

    Every 20th document is held out of training (given 20 or more) and the tokenizer's
    characters per token is measured on those."""
    from gptkit.files import make_folder
    from gptkit.tokenizer import chars_per_token, train_tokenizer
    from gptkit.train.pretrain import load_pretrain_documents, tokenizer_split

    make_folder(output, "-o/--output")  # a file in the way fails now, not after the training
    documents, _ = load_pretrain_documents(list(inputs))
    split = split or tokenizer_split(list(inputs))
    held_out = documents[HELD_OUT_EVERY - 1::HELD_OUT_EVERY]
    training = [d for i, d in enumerate(documents) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    tok = train_tokenizer(training, vocab_size, name=output.name, split=split)
    tok.save(output)
    click.echo(f"trained {tok.n_vocab}-token tokenizer on {len(training)} documents -> {output}")
    if held_out:
        click.echo(f"{chars_per_token(tok, held_out):.2f} characters per token on the {len(held_out)} held-out "
                   f"documents (every {HELD_OUT_EVERY}th, not trained on)")
    else:
        click.echo(f"{chars_per_token(tok, training):.2f} characters per token on the training documents "
                   f"(fewer than {HELD_OUT_EVERY}: none held out)")


@tokenizer.command("encode")
@click.option("--tokenizer", "-t", "spec", required=True, help="Tokenizer folder, checkpoint, or tiktoken name.")
@click.argument("text")
def tokenizer_encode(spec, text):
    """Show how TEXT splits into tokens."""
    from gptkit.checkpoint import load_tokenizer_from

    tok = load_tokenizer_from(spec)
    ids = tok.encode(text)
    click.echo(f"{len(ids)} tokens: {ids}")
    click.echo(" | ".join(tok.token_strings(ids)))
    if not text.isascii() and ids:
        click.echo(f"{len(text)} characters, {len(text) / len(ids):.2f} characters per token")


# ----------------------------------------------------------------------------------------------
# training

@cli.command()
@training_options(default_steps=1000, default_lr=2e-3, default_batch=16)
@click.option("--preset", default="small", show_default=True, help="Model size of a new model (tiny, small, medium, large, gpt2, ...).")
@click.option("-m", "--model", "init_from", default=None, help="Continue pretraining from this checkpoint.")
@click.option("--tokenizer", "tokenizer_spec", default=None, help="Tokenizer folder, checkpoint or tiktoken name (default: train one on --data).")
@click.option("--vocab-size", type=click.IntRange(262, limits.MAX_VOCAB_SIZE), default=4096, show_default=True, help="When training a tokenizer.")
def train(args: TrainingArgs, preset, init_from, tokenizer_spec, vocab_size):
    """Pretrain a base model (a document completer) on raw text.

    A resumed run keeps its own model and tokenizer; with -m they are the checkpoint's.
    """
    from gptkit.device import pick_device
    from gptkit.errors import UsageError
    from gptkit.model import PRESETS
    from gptkit.train.pretrain import run_pretrain
    from gptkit.ui.progress import make_reporter

    if not args.data:
        raise UsageError("--data: give a file or folder of text (or `--data toyworld`)")
    if preset not in PRESETS:
        raise UsageError(f"--preset: expected one of {', '.join(PRESETS)}, got '{preset}'")
    if init_from:
        refuse_given(("preset", "tokenizer_spec", "vocab_size"), "the model and its tokenizer come from -m/--model")
    elif tokenizer_spec:
        refuse_given(("vocab_size",), "sizes a tokenizer trained on --data; --tokenizer names one to use instead")
    last = run_pretrain(data=list(args.data), run_dir=args.run_dir("base"), cfg=args.train_config(),
                        dc=pick_device(args.device), preset=preset, tokenizer_spec=tokenizer_spec, vocab_size=vocab_size,
                        init_from=init_from, resume=args.resume, reporter=make_reporter("train", args.as_json))
    print_result(args.as_json, {"event": "saved", "checkpoint": str(last)}, f"saved {last}")


@cli.command()
@training_options(default_steps=600, default_lr=5e-4, default_batch=16)
@click.option("-m", "--model", "init_from", default=None, help="Base checkpoint to fine-tune.")
@click.option("--show-mask", is_flag=True, help="Print the first conversations with trained tokens coloured, then exit.")
def sft(args: TrainingArgs, init_from, show_mask):
    """Fine-tune a base model on conversations: it becomes an assistant.

    --data takes JSONL with {"messages": [...]} or {"prompt", "completion"} lines, or toyworld.
    Messages: a system message first if any, then user and assistant turns alternating, user
    first; assistant turns are not empty (a line breaking this is refused as file:line).
    """
    from gptkit.errors import UsageError

    if len(args.data) != 1:
        raise UsageError("--data: give exactly one JSONL file of conversations (or `--data toyworld`)")
    if show_mask:
        return show_sft_mask(init_from, args.data[0])
    from gptkit.device import pick_device
    from gptkit.train.sft import run_sft
    from gptkit.ui.progress import make_reporter

    last = run_sft(init_from=init_from, data=args.data[0], run_dir=args.run_dir("assistant"), cfg=args.train_config(),
                   dc=pick_device(args.device), resume=args.resume, reporter=make_reporter("sft", args.as_json))
    print_result(args.as_json, {"event": "saved", "checkpoint": str(last)}, f"saved {last}")


def show_sft_mask(init_from, data, count: int = 3):
    from rich.console import Console

    from gptkit.checkpoint import resolve_checkpoint
    from gptkit.data.chat import load_conversations
    from gptkit.errors import UsageError
    from gptkit.tokenizer import load_tokenizer, render_chat
    from gptkit.ui.render import colored_tokens

    if not init_from:
        raise UsageError("--show-mask needs -m/--model (its tokenizer renders the conversations)")
    tok = load_tokenizer(resolve_checkpoint(init_from)).with_chat_tokens()  # as `sft` will
    console = Console()
    console.print("[bold green]green[/] = trained on (assistant tokens and their end-of-turn), [dim]dim[/] = context only")
    for messages in load_conversations(data)[:count]:
        ids, mask = render_chat(tok, messages)
        console.print(colored_tokens(tok, ids, mask))
        console.print(f"[dim]{len(ids)} tokens, {sum(mask)} trained[/]\n")


# ----------------------------------------------------------------------------------------------
# generation

@cli.command()
@click.option("-m", "--model", "model_spec", required=True, help="Checkpoint name or path.")
@click.argument("prompt")
@click.option("-n", "--samples", type=click.IntRange(1, limits.MAX_SAMPLES), default=1, show_default=True, help="Samples decoded in lock-step from one prefill.")
@click.option("--temperature", "-t", type=FiniteFloat(0), default=0.8, show_default=True)
@click.option("--top-k", type=click.IntRange(1, limits.MAX_TOP_K), default=None)
@click.option("--top-p", type=FiniteFloat(0, 1, min_open=True), default=None)
@click.option("--max-tokens", type=click.IntRange(1, limits.MAX_NEW_TOKENS), default=128, show_default=True)
@click.option("--seed", type=SEED, default=None, help="Default: a random one, printed with --json and logged.")
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
@click.option("--raw", is_flag=True, help="Treat the prompt as a document even for an assistant model.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-log", is_flag=True, help="Keep the samples out of the logbook.")
def generate(model_spec, prompt, samples, temperature, top_k, top_p, max_tokens, seed, stop, raw, device, as_json,
             no_log):
    """Continue PROMPT (base model) or answer it (assistant model).

    Each sample goes to the logbook with its checkpoint, settings and seed (gptkit log --kind generate).
    """
    from gptkit.checkpoint import load_checkpoint
    from gptkit.device import pick_device
    from gptkit.engine import SamplingParams, pick_seed
    from gptkit.textgen import generate as generate_texts
    from gptkit.textgen import render_prompt

    dc = pick_device(device)
    ckpt = load_checkpoint(model_spec, device=dc.device, kinds=("base", "assistant", "policy"), dtype=dc.dtype)
    ids = render_prompt(ckpt, prompt, as_document=True if raw else None)
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_tokens,
                            seed=pick_seed(seed))  # drawn here, so that the logbook and --json can say it
    stream = samples == 1 and not as_json
    if stream and ckpt.kind == "base":
        click.echo(click.style(prompt, bold=True), nl=False)
    (results,) = generate_texts(ckpt, [ids], params, k=samples, stop=tuple(stop),
                                on_text=(lambda _, __, delta: click.echo(delta, nl=False)) if stream else None)
    if not no_log:
        log_generations(ckpt, prompt, ids, results, params)
    if stream:
        click.echo()
    elif as_json:
        for i, r in enumerate(results):
            click.echo(json.dumps({"checkpoint": ckpt.name, "sample": i, "prompt": prompt, "text": r.text,
                                   "tokens": len(r.tokens), "finish_reason": r.finish_reason,
                                   "prompt_truncated": r.prompt_truncated, "seconds": round(r.seconds, 4),
                                   "seed": params.seed, "settings": params.to_dict()}, ensure_ascii=False))
    else:
        for i, r in enumerate(results):
            click.echo(click.style(f"--- sample {i + 1}/{samples} ({len(r.tokens)} tokens, {r.finish_reason})", dim=True))
            click.echo(r.text)
    if results[0].prompt_truncated:
        click.echo(f"note: the prompt is {len(ids)} tokens; the model read only its last "
                   f"{len(ids) - results[0].prompt_truncated}", err=True)


def log_generations(ckpt, prompt: str, ids: list[int], results: list, params) -> None:
    """One logbook entry (kind "generate") per sample."""
    from gptkit.store import open_logbook

    with open_logbook() as logbook:
        for i, r in enumerate(results):
            logbook.log_generation(kind="generate", checkpoint=ckpt.name, prompt=prompt,
                                   rendered_prompt=ckpt.tokenizer.decode(ids), output=r.text,
                                   settings=params.to_dict(), seed=params.seed, tokens=len(r.tokens),
                                   seconds=round(r.seconds, 4),
                                   extra={"sample": i, "samples": len(results), "finish_reason": r.finish_reason,
                                          "prompt_tokens": len(ids), "prompt_truncated": r.prompt_truncated})


# ----------------------------------------------------------------------------------------------
# quickstart and the toy world

@cli.command()
@click.option("--size", default="small", show_default=True, help="tiny | small | medium | large (bigger learns more, takes longer).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder for all stages (default: checkpoints/quickstart).")
@click.option("--fresh", is_flag=True, help="Delete earlier quickstart stages and start over.")
@click.option("--feedback", is_flag=True, help="Add the RLHF stage: auto-rank answers by correctness, DPO, compare.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print progress and results as JSON lines.")
@click.option("--lang", type=click.Choice(LANGS), default="en", show_default=True,
              help="ja: the same world, tables and templates in Japanese (default --out: checkpoints/quickstart-ja).")
def quickstart(size, out, fresh, feedback, device, as_json, lang):
    """Tokenizer -> base model -> assistant on the built-in toy world, then compare them.

    Offline, about 10 minutes on a 2-core AVX2 CPU at the default size (5 on two AVX-512 cores);
    after its first training steps it prints an estimate for this machine. Stages already done
    are reused and an interrupted run resumes where it stopped.
    """
    from gptkit.demo.quickstart import run_quickstart

    results = run_quickstart(out_dir=run_folder(out, "quickstart" if lang == "en" else f"quickstart-{lang}"), size=size,
                             fresh=fresh, device=device, feedback=feedback, as_json=as_json, lang=lang)
    if as_json:
        click.echo(json.dumps({"event": "results", **results}, ensure_ascii=False))


@cli.group(cls=GptkitGroup)
def data():
    """Built-in data sets."""


@data.command("toyworld")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the files to.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--lang", type=click.Choice(LANGS), default="en", show_default=True, help="ja: the same world in Japanese.")
def data_toyworld(out, seed, lang):
    """Write the toy world (pretraining text, SFT chats, held-out tasks) as plain files."""
    from gptkit.data.world import world

    for name, path in world(lang).write_toyworld(out, seed=seed).items():
        click.echo(f"{name:<10} {path}")


# ----------------------------------------------------------------------------------------------
# Hugging Face interop

@cli.command("import")
@click.argument("hf_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (default: checkpoints/<folder name>).")
@click.option("--tokenizer", "tokenizer_spec", default=None, help="Tokenizer to pair with the weights (default: the folder's own).")
def import_cmd(hf_dir, out, tokenizer_spec):
    """Import a local Hugging Face GPT-2 folder (config.json + model.safetensors)."""
    from gptkit.hf import import_hf

    step = import_hf(hf_dir, run_folder(out, hf_dir.resolve().name), tokenizer_spec=tokenizer_spec)
    click.echo(f"imported {hf_dir} -> {step}")


@cli.command("export")
@click.argument("checkpoint")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default=None, help="hf (a transformers folder) or gguf (one file for llama.cpp and "
              "ollama); default: gguf when OUT ends in .gguf, else hf.")
@click.option("--dtype", default=None, help="GGUF weights: f32 (default), f16 or q8_0.")
def export_cmd(checkpoint, out, fmt, dtype):
    """Write CHECKPOINT as a Hugging Face GPT-2 folder (tokenizer, chat template and generation
    settings included) or as a GGUF file."""
    from gptkit.errors import UsageError

    fmt = fmt or ("gguf" if out.suffix.lower() == ".gguf" else "hf")
    if fmt not in ("hf", "gguf"):
        raise UsageError(f"--format: expected hf or gguf, got '{fmt}'")
    if fmt == "hf":
        from gptkit.hf import export_hf

        refuse_given(("dtype",), "applies to GGUF files; a transformers folder keeps float32 weights")
        click.echo(f"exported {checkpoint} -> {export_hf(checkpoint, out)}")
        return
    from gptkit.gguf_export import export_gguf

    written, modelfile = export_gguf(checkpoint, out, dtype=dtype or "f32")
    click.echo(f"exported {checkpoint} -> {written}\nollama Modelfile (then: ollama create NAME -f Modelfile):")
    click.echo(modelfile)


# ----------------------------------------------------------------------------------------------
# checkpoints

@cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json):
    """List the checkpoints in the checkpoints folder ($GPTKIT_CHECKPOINTS, else ./checkpoints),
    runs inside folders included (quickstart/base): name, kind, step, weights size, parent."""
    from gptkit import paths
    from gptkit.checkpoint import list_checkpoints

    rows = list_checkpoints()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo(f"no checkpoints in {paths.checkpoints_dir().resolve()} (gptkit quickstart makes some)")
        return
    table = [("name", "kind", "step", "size", "parent")] + [
        (row["name"], row["kind"], str(row["step"]),
         "" if row["weights_bytes"] is None else f"{row['weights_bytes'] / 1e6:.1f} MB", row["parent"] or "")
        for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    for line in table:
        click.echo("  ".join([cell.ljust(width) for cell, width in zip(line, widths)] + [line[4]]).rstrip())
    click.echo(f"in {paths.checkpoints_dir().resolve()}")


# ----------------------------------------------------------------------------------------------
# ranking (human feedback) and the leaderboard

@cli.group(cls=GptkitGroup, invoke_without_command=True)
@click.option("-m", "--model", "model_specs", multiple=True, help="Checkpoint to sample answers from (repeat to compare several).")
@click.option("--prompts", default="toyworld", show_default=True, help="toyworld (toyworld-ja), a .txt/.jsonl/.yaml file, or - to type prompts.")
@click.option("-k", "k", type=click.IntRange(2, 9), default=4, show_default=True, help="Answers per prompt.")
@click.option("--rater", default=None, help="Who is ranking (default: your user name); resuming is per rater and set of checkpoints.")
@click.option("--temperature", "-t", type=FiniteFloat(0), default=0.8, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1, limits.MAX_NEW_TOKENS), default=128, show_default=True)
@click.option("--seed", type=SEED, default=None, help="Fix the answers sampled for each prompt.")
@click.option("--auto", "auto", default=None, help="Rank with a script instead of a person: truth | length | regex:PATTERN.")
@click.option("--device", default="auto", show_default=True)
@click.pass_context
def rank(ctx, model_specs, prompts, k, rater, temperature, max_tokens, seed, auto, device):
    """Rank k anonymous answers per prompt, best first (e.g. 2>1=4>3).

    Every ranking is saved to the logbook before the next prompt appears; run the same
    command again to resume where you stopped.

    \b
    gptkit rank -m assistant                    rank answers to the toy world's prompts
    gptkit rank -m base -m assistant -k 4       compare two checkpoints blind
    gptkit rank export --format trl --out prefs.jsonl
    """
    if ctx.invoked_subcommand is not None:
        return
    from gptkit.ui.rank import run_rank

    run_rank(model_specs=list(model_specs), prompts=prompts, k=k, rater=rater, temperature=temperature,
             max_tokens=max_tokens, seed=seed, auto=auto, device=device)


@rank.command("export")
@click.option("--format", "fmt", type=click.Choice(["ranked", "pairs", "trl"]), default="ranked", show_default=True,
              help="ranked: one ranking per line; pairs: chosen/rejected with checkpoints; trl: prompt/chosen/rejected.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSONL file (default: stdout).")
@click.option("--no-synthetic", is_flag=True, help="Leave out rankings made by --auto.")
def rank_export(fmt, out, no_synthetic):
    """Write the logbook's rankings as JSONL."""
    from gptkit.files import atomic_writer
    from gptkit.store import open_logbook

    with open_logbook() as logbook:
        if out is None:
            logbook.export_rankings(sys.stdout, fmt, include_synthetic=not no_synthetic)
            return
        with atomic_writer(out) as fp:
            count = logbook.export_rankings(fp, fmt, include_synthetic=not no_synthetic)
    click.echo(f"wrote {count} {fmt} lines -> {out}")


@rank.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def rank_import(path):
    """Add TRL-style preferences (JSONL {"prompt", "chosen", "rejected"}) as rankings."""
    from gptkit.data.preferences import read_preference_file
    from gptkit.store import open_logbook

    rows = read_preference_file(path)
    with open_logbook() as logbook:
        count = logbook.import_preferences(rows, path)
    already = f" ({len(rows) - count} already in the logbook)" if count < len(rows) else ""
    click.echo(f"imported {count} preference pairs from {path}{already}")


@cli.command("leaderboard")
@click.option("--samples", type=click.IntRange(0, limits.MAX_BOOTSTRAP_SAMPLES), default=1000, show_default=True, help="Bootstrap resamples for the 95% intervals.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--no-synthetic", is_flag=True, help="Leave out rankings made by --auto.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per checkpoint.")
def leaderboard_cmd(samples, seed, no_synthetic, as_json):
    """Rate checkpoints from the rankings (Bradley-Terry, Elo scale, bootstrap intervals)."""
    from gptkit.leaderboard import build_leaderboard, leaderboard_table, ranking_battles
    from gptkit.store import open_logbook

    with open_logbook() as logbook:
        rankings = logbook.rankings(include_synthetic=not no_synthetic)
    battles = ranking_battles(rankings)
    if not battles:
        held = (f"the logbook holds {len(rankings)} ranking{'s' if len(rankings) > 1 else ''}, each of answers from one "
                "checkpoint, and a battle needs two; " if rankings else "")
        click.echo(f"no battles yet: {held}rank answers from two or more checkpoints, blind, to make them: "
                   "gptkit rank -m A -m B (e.g. -m quickstart/assistant -m policy)")
        return
    rows = build_leaderboard(battles, samples=samples, seed=seed)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_dict()))
        return
    from rich.console import Console

    Console().print(leaderboard_table(rows, n_battles=len(battles)))


# ----------------------------------------------------------------------------------------------
# chat and the logbook

@cli.command()
@click.option("-m", "--model", "model_specs", multiple=True, help="Checkpoint (repeat to compare several side by side; default: the newest).")
@click.option("--mode", type=click.Choice(["base", "assistant", "compare"]), default=None, help="Default: from the checkpoint's kind; compare for two or more.")
@click.option("--template", default=None, help="Prompt template (name or YAML file); its sampling defaults apply.")
@click.option("--system", default=None, help="System message for chat prompts.")
@click.option("--temperature", "-t", type=FiniteFloat(0), default=None, help="Sampling temperature (default 0.8, or the template's).")
@click.option("--max-tokens", type=click.IntRange(1, limits.MAX_NEW_TOKENS), default=None, help="Longest answer (default 256, or the template's).")
@click.option("--seed", type=SEED, default=None, help="Fix every turn's seed (default: a fresh seed per turn, logged).")
@click.option("--device", default="auto", show_default=True)
def chat(model_specs, mode, template, system, temperature, max_tokens, seed, device):
    """Chat with, compare, vote with and rank your checkpoints (/help inside).

    Every turn lands in the logbook (`gptkit log`). With stdin not a terminal, each line is one
    prompt (or /command) and the answers are printed: a chat you can script (error lines go to
    stderr, and the exit status is 1 if any line failed).

    \b
    gptkit chat -m assistant
    gptkit chat -m base -m assistant        compare: each prompt to both, side by side
    echo "What is 2 + 3?" | gptkit chat -m assistant
    """
    from rich.console import Console

    from gptkit.ui.chat_repl import print_banner, run_lines, run_repl
    from gptkit.ui.chat_session import ChatSession, newest_checkpoint

    session = ChatSession(list(model_specs) or [newest_checkpoint()], mode=mode, device=device,
                          template=template, system=system)
    for name, value in (("temperature", temperature), ("max_tokens", max_tokens), ("seed", seed)):
        if value is not None:  # given on the command line: wins over the template's defaults
            session.set_setting(name, str(value))
    if not sys.stdin.isatty():
        if not run_lines(session, sys.stdin, errors=Console(stderr=True)):
            sys.exit(1)  # a script learns that a line failed (the error lines went to stderr)
        return
    print_banner(session)
    run_repl(session)


@cli.group("log", cls=GptkitGroup, invoke_without_command=True)
@click.option("--search", default=None, help="Only entries whose prompt, answer, output or note contains this text.")
@click.option("--kind", default=None, help="Only this kind: chat, vote, generate, rank or experiment.")
@click.option("-n", "--limit", type=click.IntRange(1, limits.MAX_ROWS), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def log_group(ctx, search, kind, limit, as_json):
    """The logbook, newest first: every chat turn (chat), vote (vote), `gptkit generate` sample
    (generate), ranking (rank) and experiment row (experiment).

    \b
    gptkit log --search moon        entries whose prompt, answers or output mention "moon"
    gptkit log --kind rank          your rankings (ids r1, r2, ...); experiment rows are x1, x2, ...
    gptkit log show 42              one entry in full (rendered prompt, settings, seed); also r7, x3
    gptkit log export --kind chat chats.jsonl
    gptkit log check                integrity check (non-zero exit on problems)
    """
    if ctx.invoked_subcommand is not None:
        return
    from gptkit.store import open_logbook

    with open_logbook() as logbook:
        rows = logbook.entries(limit=limit, kind=kind, search=search)
        held = logbook.kinds() if not rows else {}
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        holds = ", ".join(f"{n} {kind_}" for kind_, n in held.items())
        click.echo(f"no matching entries; the logbook holds {holds} (gptkit log --kind KIND)" if held else
                   "the logbook is empty: chat (gptkit chat), rank answers (gptkit rank) or run an experiment "
                   "(gptkit prompt run)")
        return
    from rich.console import Console

    from gptkit.ui.logbook import logbook_table

    console = Console()
    console.print(logbook_table(rows, console.width))


@log_group.command("show")
@click.argument("entry_id")
@click.option("--json", "as_json", is_flag=True)
def log_show(entry_id, as_json):
    """One logbook entry in full: ENTRY_ID as `gptkit log` lists it (42, r7 for a ranking, x3 for an experiment row)."""
    from gptkit.errors import UsageError
    from gptkit.store import open_logbook
    from gptkit.ui.logbook import parse_entry_ref

    ref = parse_entry_ref(entry_id)
    if ref is None:
        raise UsageError(f"{entry_id!r}: expected an entry id as gptkit log lists it: 42, r7 or x3")
    with open_logbook() as logbook:
        row = logbook.get(*ref)
    if row is None:
        raise UsageError(f"no logbook entry {entry_id} (gptkit log lists them)")
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
        return
    from rich.console import Console

    from gptkit.ui.logbook import logbook_entry

    Console().print(logbook_entry(row))


@log_group.command("export")
@click.argument("out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--kind", default=None, help="Only this kind: chat, vote, generate, rank or experiment.")
def log_export(out, kind):
    """Write logbook entries of every kind (oldest first) as JSONL to OUT (- for stdout)."""
    from gptkit.files import atomic_writer
    from gptkit.store import open_logbook

    with open_logbook() as logbook:
        if str(out) == "-":
            logbook.export_entries(click.get_text_stream("stdout"), kind)
            return
        with atomic_writer(out) as fp:
            count = logbook.export_entries(fp, kind)
    click.echo(f"wrote {count} entries -> {out}")


@log_group.command("check")
def log_check():
    """Check the logbook's integrity; exits non-zero when there are problems."""
    from gptkit import paths
    from gptkit.store import open_logbook

    with open_logbook() as logbook:
        problems = logbook.check()
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise GptkitError(f"{paths.logbook_path()}: {len(problems)} problem(s) found")
    click.echo(f"logbook OK: {paths.logbook_path()}")


# ----------------------------------------------------------------------------------------------
# learning from rankings: reward model, DPO, PPO

def preference_source(data) -> str:
    from gptkit.errors import UsageError

    if len(data) > 1:
        raise UsageError("--data: give one source: logbook, or a preference JSONL file")
    return data[0] if data else "logbook"


@cli.command()
@training_options(default_steps=300, default_lr=3e-4, default_batch=8)
@click.option("-m", "--model", "init_from", default=None, help="Assistant (SFT) checkpoint the reward model starts from.")
@click.option("--no-synthetic", is_flag=True, help="Leave out synthetic (auto-ranked) rankings of the logbook.")
def reward(args: TrainingArgs, init_from, no_synthetic):
    """Train a reward model on ranked answers (Bradley-Terry over every pair a ranking implies).

    --data: logbook (default: your rankings) or a TRL preference JSONL file {"prompt","chosen","rejected"}.
    """
    from gptkit.device import pick_device
    from gptkit.train.reward import run_reward
    from gptkit.ui.progress import make_reporter

    last, figures = run_reward(init_from=init_from, data=preference_source(args.data), run_dir=args.run_dir("reward"),
                               cfg=args.train_config(), dc=pick_device(args.device), resume=args.resume,
                               include_synthetic=not no_synthetic, reporter=make_reporter("reward", args.as_json))
    accuracy = figures["val_accuracy"]
    held_out = f" (held-out pairwise accuracy {accuracy:.3f} on {figures['val_pairs']} pairs)" if accuracy is not None else ""
    print_result(args.as_json, {"event": "saved", "checkpoint": str(last), **figures}, f"saved {last}{held_out}")


@cli.command()
@training_options(default_steps=200, default_lr=1e-4, default_batch=8)
@click.option("-m", "--model", "init_from", default=None, help="Assistant (SFT) checkpoint: the policy's start and its frozen reference.")
@click.option("--method", type=click.Choice(["dpo", "ppo"]), default="dpo", show_default=True)
@click.option("--beta", type=FiniteFloat(min=0, min_open=True), default=0.1, show_default=True, help="DPO: how firmly the policy is held to the reference.")
@click.option("--sft-weight", type=FiniteFloat(min=0), default=0.0, show_default=True, help="DPO: add this times the chosen answers' NLL (RPO); keeps them likely.")
@click.option("--reward", "reward_spec", default=None, help="PPO: the reward model checkpoint (from `gptkit reward`).")
@click.option("--kl-coef", type=FiniteFloat(min=0), default=0.05, show_default=True, help="PPO: per-token KL penalty to the reference.")
@click.option("--samples", type=click.IntRange(2, 64), default=4, show_default=True, help="PPO: answers sampled per prompt (one prefill).")
@click.option("--max-tokens", type=click.IntRange(1, limits.MAX_NEW_TOKENS), default=64, show_default=True, help="PPO: longest sampled answer.")
@click.option("--no-synthetic", is_flag=True, help="Leave out synthetic (auto-ranked) rankings of the logbook.")
def rlhf(args: TrainingArgs, init_from, method, beta, sft_weight, reward_spec, kl_coef, samples, max_tokens, no_synthetic):
    """Tune an assistant on rankings: DPO (default) or PPO with a reward model.

    --data: logbook (default: your rankings) or a TRL preference JSONL file; PPO uses only their
    prompts (or `toyworld`'s ranking prompts), and --batch-size is its prompts per rollout.
    """
    from gptkit.device import pick_device
    from gptkit.ui.progress import make_reporter

    if method == "dpo":
        refuse_given(("reward_spec", "kl_coef", "samples", "max_tokens"), "a PPO option; --method dpo does not use it")
    else:
        refuse_given(("beta", "sft_weight"), "a DPO option; --method ppo does not use it")
    common = dict(init_from=init_from, data=preference_source(args.data), run_dir=args.run_dir("policy"),
                  cfg=args.train_config(), dc=pick_device(args.device), resume=args.resume,
                  include_synthetic=not no_synthetic, reporter=make_reporter(f"rlhf ({method})", args.as_json))
    if method == "dpo":
        from gptkit.train.dpo import run_dpo

        last = run_dpo(beta=beta, sft_weight=sft_weight, **common)
    else:
        from gptkit.train.ppo import PPOSettings, run_ppo

        settings = PPOSettings(samples_per_prompt=samples, prompts_per_rollout=args.batch_size, kl_coef=kl_coef,
                               max_new_tokens=max_tokens)
        last = run_ppo(reward_spec=reward_spec, settings=settings, **common)
    print_result(args.as_json, {"event": "saved", "checkpoint": str(last)}, f"saved {last}")


# ----------------------------------------------------------------------------------------------
# prompt engineering: templates and experiments

@cli.group(cls=GptkitGroup)
def prompt():
    """Prompt templates: list them, see exactly what a model reads, run experiments.

    \b
    gptkit prompt list
    gptkit prompt show few-shot -m base --var question="What is the capital of Peru?"
    gptkit prompt run -t few-shot -t chain-of-thought -m base -m assistant --cases toyworld --limit 30
    """


def template_shape(t) -> str:
    """A template's prompting techniques in a few words, e.g. "3-shot, CoT, SC x10 @0.7"."""
    parts = [f"{len(t.examples)}-shot" if t.examples else "zero-shot"]
    if t.cot_exemplars or t.cot_trigger:
        parts.append("CoT")
    if t.sc_samples:
        parts.append(f"SC x{t.sc_samples} @{t.sc_temperature:g}")
    if t.base_layout == "raw":
        parts.append("raw")
    return ", ".join(parts)


@prompt.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per template.")
def prompt_list(as_json):
    """List the shipped templates, then the project's (./prompts), then yours ($GPTKIT_HOME/prompts)."""
    from gptkit.prompting.templates import list_templates, template_origin

    problems = []
    templates = list_templates(problems)
    for problem in problems:  # one bad file of the user's is flagged, the others still listed
        click.echo(f"warning: skipped {problem}", err=True)
    if as_json:
        for t in templates:
            click.echo(json.dumps({"name": t.name, "from": template_origin(t), "description": t.description,
                                   "examples": len(t.examples),
                                   "chain_of_thought": bool(t.cot_exemplars or t.cot_trigger),
                                   "self_consistency": {"samples": t.sc_samples, "temperature": t.sc_temperature}
                                   if t.sc_samples else None, "source": str(t.source)}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "from", "shape", "description"):
        table.add_column(column)
    for t in templates:
        table.add_row(t.name, template_origin(t), template_shape(t), t.description)
    Console().print(table)


def parse_vars(pairs) -> dict[str, str]:
    from gptkit.errors import UsageError

    variables = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip().isidentifier():
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE, e.g. --var question=\"What is 2 + 3?\"")
        variables[name.strip()] = value
    return variables


@prompt.command("show")
@click.argument("template")
@click.option("-m", "--model", "model_spec", required=True, help="Checkpoint whose tokenizer and kind decide the rendering.")
@click.option("--var", "var_pairs", multiple=True, help="NAME=VALUE for a template variable (repeatable).")
@click.option("--json", "as_json", is_flag=True)
def prompt_show(template, model_spec, var_pairs, as_json):
    """Show exactly what the model reads: TEMPLATE rendered for a checkpoint, token by token.

    A base model reads a document; an assistant reads a chat with special tokens (magenta).
    """
    from gptkit.checkpoint import GENERATIVE_KINDS, display_name, peek_kind, resolve_checkpoint
    from gptkit.prompting.experiment import render_for
    from gptkit.prompting.templates import load_template
    from gptkit.tokenizer import load_tokenizer

    t = load_template(template)
    step_dir = resolve_checkpoint(model_spec)
    kind = peek_kind(step_dir, GENERATIVE_KINDS)  # the weights are not needed to render: tokenizer and kind only
    tok = load_tokenizer(step_dir)
    rendered = render_for(t, kind, tok, parse_vars(var_pairs))
    special = [i for i, token_id in enumerate(rendered.ids) if tok.is_special(token_id)]
    if as_json:
        click.echo(json.dumps({"template": t.name, "checkpoint": display_name(step_dir), "kind": kind,
                               "tokens": len(rendered.ids), "special_positions": special, "ids": rendered.ids,
                               "pieces": tok.token_strings(rendered.ids), "text": rendered.text}, ensure_ascii=False))
        return
    from rich.console import Console

    from gptkit.ui.render import colored_tokens

    console = Console()
    console.print(f"[bold]{t.name}[/] for [bold]{display_name(step_dir)}[/] ({kind}): {len(rendered.ids)} tokens, "
                  f"{len(special)} special [dim](special tokens magenta; backgrounds alternate per token)[/]",
                  highlight=False, soft_wrap=True)
    console.print(colored_tokens(tok, rendered.ids), soft_wrap=True)  # soft: no newlines that are not tokens


@prompt.command("run")
@click.option("-t", "--template", "template_specs", multiple=True, required=True, help="Template name or YAML file (repeatable).")
@click.option("-m", "--model", "model_specs", multiple=True, required=True, help="Checkpoint (repeatable).")
@click.option("--cases", "cases_spec", required=True, help="toyworld, toyworld:KIND (toyworld-ja[:KIND] in Japanese), or a .yaml/.jsonl file of {id?, question | vars, expected}.")
@click.option("--kind", default=None, help="Only cases of this kind (toyworld: two-hop, hop-1, hop-2, capital, age, arithmetic).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N cases.")
@click.option("--samples", type=click.IntRange(1, limits.MAX_SAMPLES), default=None, help="Answers per case, voted (default: the template's self_consistency, else 1).")
@click.option("--vote-at", "vote_at", default="", metavar="K,K,...", help="Also vote over each case's first K samples (e.g. 5,10 with --samples 20): the same as runs with --samples K.")
@click.option("--score", "score_method", type=click.Choice(["exact", "contains", "regex"]), default="exact", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Same seed, same results.")
@click.option("--detail", is_flag=True, help="Also show every case: answer, expected, agreement, output.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the rows to a .jsonl or .csv file.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per result, then one summary line.")
def prompt_run(template_specs, model_specs, cases_spec, kind, limit, samples, vote_at, score_method, seed, detail, out,
               device, as_json):
    """Run templates x checkpoints x cases; print accuracy per template and checkpoint.

    Every row also goes to the logbook with its checkpoint, template, seed, settings and votes.

    \b
    gptkit prompt run -t few-shot -t plain -m base -m assistant --cases toyworld:capital
    gptkit prompt run -t self-consistency -m assistant --cases toyworld:two-hop --samples 20 --vote-at 5,10
    gptkit prompt run -t chain-of-thought -m base --cases toyworld:two-hop --limit 20 --detail
    gptkit prompt run -t mine.yaml -m assistant --cases cases.jsonl --score contains --out results.csv
    """
    from rich.console import Console

    from gptkit.checkpoint import load_checkpoint
    from gptkit.device import pick_device
    from gptkit.prompting.experiment import (
        GENERATIVE_KINDS,
        check_cases,
        check_results_path,
        load_cases,
        run_experiment,
        write_results,
    )
    from gptkit.prompting.templates import load_template
    from gptkit.ui.progress import task_progress
    from gptkit.ui.render import experiment_tables

    from gptkit.errors import UsageError

    if out is not None:
        check_results_path(out)
    try:
        vote_at = [int(k) for k in vote_at.split(",") if k.strip()]
    except ValueError:
        raise UsageError(f"--vote-at: expected numbers separated by commas, got {vote_at!r}") from None
    if any(k < 1 for k in vote_at):
        raise UsageError("--vote-at: every K must be at least 1")
    templates = [load_template(spec) for spec in template_specs]
    cases = load_cases(cases_spec, kind=kind, limit=limit)
    check_cases(templates, cases, score_method)  # before loading any weights
    dc = pick_device(device)
    checkpoints = [load_checkpoint(spec, device=dc.device, kinds=GENERATIVE_KINDS, dtype=dc.dtype) for spec in model_specs]
    with task_progress("experiment", len(templates) * len(checkpoints) * len(cases), "answers") as advance:
        result = run_experiment(templates, checkpoints, cases, samples=samples, seed=seed, score_method=score_method,
                                on_result=lambda row: advance(f"{row.template} x {row.checkpoint}"), vote_at=vote_at)
    if out is not None:
        write_results(result, out)
    if as_json:
        for row in result.rows:
            click.echo(json.dumps(row.to_dict(), ensure_ascii=False))
        click.echo(json.dumps({"experiment_id": result.experiment_id,
                               "summary": [cell.to_dict() for cell in result.summary]}, ensure_ascii=False))
        return
    console = Console()
    for table in experiment_tables(result, detail):
        console.print(table)
    for cell in result.summary:
        if cell.truncated and cell.samples == max(c.samples for c in result.summary if c.template == cell.template):
            console.print(f"[bold red]warning:[/] {cell.template} on {cell.checkpoint}: {cell.truncated} of {cell.total} "
                          f"prompts did not fit the model's context; their front was cut off (see prompt_truncated "
                          f"in --out/--json)", highlight=False)
    console.print(f"[dim]experiment {result.experiment_id}: {len(result.rows)} rows in the logbook"
                  + (f"; written to {out}" if out is not None else "") + "[/]", highlight=False)


def main():
    cli(prog_name="gptkit")


if __name__ == "__main__":
    main()
