"""The `gptkit` command line: a thin Click layer over the library.

Rules of this file: no ML logic (each command parses options, calls one library function and
prints the result); every heavy import (torch, rich, the library) happens inside the command
that needs it, so `gptkit --help` stays instant; a `GptkitError` raised anywhere below becomes
one clean line on stderr and a non-zero exit, never a traceback.
"""

import json
import sys
from pathlib import Path

import click

from gptkit.errors import GptkitError


class GptkitGroup(click.Group):
    """A group that turns user-facing errors into one line and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GptkitError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=GptkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gptkit")
def cli():
    """Build, watch and steer a small ChatGPT-like model in your terminal.

    \b
    Start here:   gptkit quickstart        (toy world: tokenizer -> base model -> assistant)
    Your text:    gptkit train --data notes/ --out checkpoints/mine
    Generate:     gptkit generate -m mine "Once upon a time"
    """


# ----------------------------------------------------------------------------------------------
# options shared by every training command (same names everywhere)

def training_options(default_steps: int, default_lr: float, default_batch: int):
    def decorate(f):
        options = [
            click.option("--data", "data", multiple=True, help="Input file/folder (repeatable), or the word toyworld."),
            click.option("--preset", default="small", show_default=True, help="Model size (tiny, small, medium, large, gpt2, ...)."),
            click.option("--max-steps", type=click.IntRange(1), default=default_steps, show_default=True),
            click.option("--batch-size", type=click.IntRange(1), default=default_batch, show_default=True),
            click.option("--grad-accum", type=click.IntRange(1), default=1, show_default=True, help="Gradient accumulation steps."),
            click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=default_lr, show_default=True),
            click.option("--warmup", type=click.IntRange(0), default=None, help="Warmup steps (default: 5% of --max-steps)."),
            click.option("--eval-every", type=click.IntRange(0), default=None, help="Validate every N steps (default: 10 times a run)."),
            click.option("--save-every", type=click.IntRange(1), default=None, help="Checkpoint every N steps (default: 5 times a run)."),
            click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (default: checkpoints/<name>)."),
            click.option("--seed", type=int, default=1337, show_default=True),
            click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
            click.option("--stop-after", type=click.IntRange(1), default=None, help="Save and stop at this step (the schedule still spans --max-steps); --resume later."),
            click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | mps"),
            click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (CUDA)."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a progress bar."),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def make_train_config(max_steps, batch_size, grad_accum, lr, warmup, eval_every, save_every, seed, compile_, stop_after):
    from gptkit.train.loop import TrainConfig

    return TrainConfig(
        max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        warmup_steps=warmup if warmup is not None else max(1, max_steps // 20),
        eval_every=eval_every if eval_every is not None else max(1, max_steps // 10),
        save_every=save_every or max(1, max_steps // 5),
        log_every=max(1, min(10, max_steps // 50)), seed=seed, compile=compile_, stop_after=stop_after,
    )


def run_folder(out: Path | None, default_name: str) -> Path:
    from gptkit import paths

    return out if out is not None else paths.checkpoints_dir() / default_name


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


@tokenizer.command("train")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--vocab-size", type=click.IntRange(262), default=4096, show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Folder to write tokenizer.json + tokenizer.tiktoken to.")
def tokenizer_train(inputs, vocab_size, output):
    """Train a byte-level BPE tokenizer on text files/folders/JSONL (or `toyworld`)."""
    from gptkit.tokenizer import train_tokenizer
    from gptkit.train.pretrain import load_pretrain_documents

    documents, _ = load_pretrain_documents(list(inputs))
    tok = train_tokenizer(documents, vocab_size, name=output.name)
    output.mkdir(parents=True, exist_ok=True)
    tok.save(output)
    click.echo(f"trained {tok.n_vocab}-token tokenizer on {len(documents)} documents -> {output}")


@tokenizer.command("encode")
@click.option("--tokenizer", "-t", "spec", required=True, help="Tokenizer folder, checkpoint, or tiktoken name.")
@click.argument("text")
def tokenizer_encode(spec, text):
    """Show how TEXT splits into tokens."""
    from gptkit.tokenizer import load_tokenizer

    tok = load_tokenizer(resolve_tokenizer_spec(spec))
    ids = tok.encode(text)
    click.echo(f"{len(ids)} tokens: {ids}")
    click.echo(" | ".join(tok.token_strings(ids)))


def resolve_tokenizer_spec(spec: str):
    """A tokenizer folder/name as given, or the tokenizer stored in a checkpoint."""
    from gptkit.checkpoint import resolve_checkpoint
    from gptkit.errors import CheckpointError

    if Path(spec).exists():
        return spec
    try:
        return resolve_checkpoint(spec)
    except CheckpointError:
        return spec


# ----------------------------------------------------------------------------------------------
# training

@cli.command()
@training_options(default_steps=1000, default_lr=2e-3, default_batch=16)
@click.option("-m", "--model", "init_from", default=None, help="Continue pretraining from this checkpoint.")
@click.option("--tokenizer", "tokenizer_spec", default=None, help="Tokenizer folder or tiktoken name (default: train one on --data).")
@click.option("--vocab-size", type=click.IntRange(262), default=4096, show_default=True, help="When training a tokenizer.")
def train(data, preset, max_steps, batch_size, grad_accum, lr, warmup, eval_every, save_every, out, seed, resume,
          stop_after, device, compile_, as_json, init_from, tokenizer_spec, vocab_size):
    """Pretrain a base model (a document completer) on raw text."""
    from gptkit.device import pick_device
    from gptkit.errors import UsageError
    from gptkit.model import PRESETS
    from gptkit.train.pretrain import run_pretrain
    from gptkit.ui.progress import make_reporter

    if not data:
        raise UsageError("--data: give a file or folder of text (or `--data toyworld`)")
    if preset not in PRESETS:
        raise UsageError(f"--preset: expected one of {', '.join(PRESETS)}, got '{preset}'")
    dc = pick_device(device)
    cfg = make_train_config(max_steps, batch_size, grad_accum, lr, warmup, eval_every, save_every, seed, compile_, stop_after)
    reporter = make_reporter("train", as_json)
    last = run_pretrain(data=list(data), run_dir=run_folder(out, "base"), cfg=cfg, dc=dc, preset=preset,
                        tokenizer_spec=tokenizer_spec, vocab_size=vocab_size, init_from=init_from,
                        resume=resume, reporter=reporter)
    print_result(as_json, {"event": "saved", "checkpoint": str(last)}, f"saved {last}")


@cli.command()
@training_options(default_steps=600, default_lr=5e-4, default_batch=16)
@click.option("-m", "--model", "init_from", default=None, help="Base checkpoint to fine-tune.")
@click.option("--show-mask", is_flag=True, help="Print the first conversations with trained tokens coloured, then exit.")
def sft(data, preset, max_steps, batch_size, grad_accum, lr, warmup, eval_every, save_every, out, seed, resume,
        stop_after, device, compile_, as_json, init_from, show_mask):
    """Fine-tune a base model on conversations: it becomes an assistant.

    --data takes JSONL with {"messages": [...]} or {"prompt", "completion"} lines, or toyworld.
    """
    from gptkit.errors import UsageError

    if len(data) != 1:
        raise UsageError("--data: give exactly one JSONL file of conversations (or `--data toyworld`)")
    if show_mask:
        return show_sft_mask(init_from, data[0])
    from gptkit.device import pick_device
    from gptkit.train.sft import run_sft
    from gptkit.ui.progress import make_reporter

    dc = pick_device(device)
    cfg = make_train_config(max_steps, batch_size, grad_accum, lr, warmup, eval_every, save_every, seed, compile_, stop_after)
    last = run_sft(init_from=init_from, data=data[0], run_dir=run_folder(out, "assistant"), cfg=cfg, dc=dc,
                   resume=resume, reporter=make_reporter("sft", as_json))
    print_result(as_json, {"event": "saved", "checkpoint": str(last)}, f"saved {last}")


def show_sft_mask(init_from, data, count: int = 3):
    from rich.console import Console

    from gptkit.checkpoint import resolve_checkpoint
    from gptkit.data.chat import load_conversations
    from gptkit.errors import UsageError
    from gptkit.tokenizer import load_tokenizer, render_chat
    from gptkit.ui.render import colored_tokens

    if not init_from:
        raise UsageError("--show-mask needs -m/--model (its tokenizer renders the conversations)")
    tok = load_tokenizer(resolve_checkpoint(init_from))
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
@click.option("-n", "--samples", type=click.IntRange(1, 256), default=1, show_default=True, help="Samples decoded in lock-step from one prefill.")
@click.option("--temperature", "-t", type=click.FloatRange(0), default=0.8, show_default=True)
@click.option("--top-k", type=click.IntRange(1), default=None)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None)
@click.option("--max-tokens", type=click.IntRange(1), default=128, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
@click.option("--raw", is_flag=True, help="Treat the prompt as a document even for an assistant model.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def generate(model_spec, prompt, samples, temperature, top_k, top_p, max_tokens, seed, stop, raw, device, as_json):
    """Continue PROMPT (base model) or answer it (assistant model)."""
    from gptkit.checkpoint import load_checkpoint
    from gptkit.device import pick_device
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate_text, prompt_ids

    dc = pick_device(device)
    ckpt = load_checkpoint(model_spec, device=dc.device, kinds=("base", "assistant", "policy"))
    ids = prompt_ids(ckpt.tokenizer, "base" if raw else ckpt.kind, prompt)
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_tokens, seed=seed)
    stream = samples == 1 and not as_json
    if stream and ckpt.kind == "base":
        click.echo(click.style(prompt, bold=True), nl=False)
    results = generate_text(ckpt.model, ckpt.tokenizer, ids, params, num_samples=samples, stop_strings=tuple(stop),
                            on_text=(lambda row, delta: click.echo(delta, nl=False)) if stream else None)
    if stream:
        click.echo()
        return
    if as_json:
        for i, r in enumerate(results):
            click.echo(json.dumps({"checkpoint": ckpt.name, "sample": i, "prompt": prompt, "text": r.text,
                                   "tokens": len(r.tokens), "finish_reason": r.finish_reason,
                                   "seconds": round(r.seconds, 4), "settings": params.to_dict()}, ensure_ascii=False))
        return
    for i, r in enumerate(results):
        click.echo(click.style(f"--- sample {i + 1}/{samples} ({len(r.tokens)} tokens, {r.finish_reason})", dim=True))
        click.echo(r.text)


# ----------------------------------------------------------------------------------------------
# checkpoints

@cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json):
    """List the checkpoints in the checkpoints folder."""
    from gptkit import paths
    from gptkit.checkpoint import list_checkpoints

    rows = list_checkpoints()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo(f"no checkpoints in {paths.checkpoints_dir()}")
    for row in rows:
        parent = f"  <- {row['parent']}" if row.get("parent") else ""
        click.echo(f"{row['name']:<20} {row['kind']:<10} step {row['step']:<7} {row['path']}{parent}")


def main():
    cli(prog_name="gptkit")


if __name__ == "__main__":
    main()
