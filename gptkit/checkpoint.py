"""Checkpoints: atomic save/load in safetensors + JSON, name/step resolution, and the kinds.

A run is a folder (`checkpoints/NAME/` by default) holding one folder per saved step and a
`LATEST` file naming the newest complete one:

    NAME/LATEST                      "step-000500"
    NAME/metrics.jsonl               one JSON object per logged step (appended during training)
    NAME/step-000500/meta.json       format, kind, model config, parent, step, tokens seen, ...
    NAME/step-000500/model.safetensors
    NAME/step-000500/tokenizer.json + tokenizer.tiktoken   (the step folder alone rebuilds all)
    NAME/step-000500/train_state.safetensors + train_state.json   (optimizer, RNG, data position)

Atomicity: a step is written into a hidden temporary folder, fsynced, renamed into place, and only
then is LATEST replaced (os.replace, atomic). A crash at any moment leaves the previous step
loadable. Nothing here uses pickle: files that look like pickles are refused, never executed.

Kinds: every checkpoint is one of `KINDS`; `GENERATIVE_KINDS` write text (a reward model only
scores it), and of those `CHAT_KINDS` were tuned on conversations, so they are prompted through
`render_chat` and are what reward models and policies start from. Code that asks "can this
checkpoint do X" uses these names, never its own tuple of strings.

HF GPT-2 interop (import/export of a transformers folder) lives in `hf.py`. Must not know: the
training loop or any objective (nothing here imports from `train/`).
"""

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gptkit import paths
from gptkit.errors import CheckpointError, TokenizerError

FORMAT = "gptkit-checkpoint"
VERSION = 1
KINDS = ("base", "assistant", "policy", "reward")
CHAT_KINDS = ("assistant", "policy")  # tuned on conversations: they read chats, not documents
GENERATIVE_KINDS = ("base", *CHAT_KINDS)  # they write text; a reward model only scores it
TIED = "lm_head.weight"  # shares storage with transformer.wte.weight; stored once
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what any new file gets (0644 usually); safetensors alone writes 0600


@dataclass
class Checkpoint:
    path: Path  # the step folder
    meta: dict
    model: object  # gptkit.model.GPT (or RewardModel for kind "reward")
    tokenizer: object  # gptkit.tokenizer.Tokenizer

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def name(self) -> str:
        return display_name(self.path)


def display_name(step_dir: Path) -> str:
    return f"{step_dir.parent.name}/{step_dir.name}"


def step_dirname(step: int) -> str:
    return f"step-{step:06d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal_folder(folder: Path) -> None:
    """Before a written folder is renamed into place: every file below it gets `FILE_MODE` and is
    fsynced, then every folder is."""
    for path in folder.rglob("*"):
        if path.is_file():
            os.chmod(path, FILE_MODE)
        _fsync_dir(path)  # an O_RDONLY fsync serves files and folders alike
    _fsync_dir(folder)


@contextmanager
def atomic_path(path: Path):
    """A temporary path beside `path` for the block to write; then it is made an ordinary file
    (`FILE_MODE`), fsynced and renamed onto `path`: readers see the old file or the new one,
    never half of one. If the block raises, the temporary file is removed."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        _fsync_dir(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def model_state(model) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k != TIED}


def save_checkpoint(
    run_dir: Path,
    *,
    model,
    tokenizer,
    meta: dict,
    train_tensors: dict | None = None,
    train_info: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write one step atomically and point LATEST at it; returns the step folder.

    `meta` must hold at least kind and step; format, version, config and n_vocab are added here.
    `keep` newest steps are kept, older ones removed (after LATEST moved on).
    """
    from safetensors.torch import save_file

    assert meta.get("kind") in KINDS, f"bad kind {meta.get('kind')!r}"
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / step_dirname(int(meta["step"]))
    tmp = run_dir / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    full_meta = {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": model.config.to_dict(),
        "n_vocab": tokenizer.n_vocab,
        **meta,
    }
    save_file(model_state(model), tmp / "model.safetensors", metadata={"format": FORMAT})
    tokenizer.save(tmp)
    if train_tensors is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in train_tensors.items()}, tmp / "train_state.safetensors")
        _write_json(tmp / "train_state.json", train_info or {})
    _write_json(tmp / "meta.json", full_meta)  # written last: its presence marks a complete step
    seal_folder(tmp)
    if final.exists():  # re-saving the same step (e.g. Ctrl-C right after a scheduled save)
        old = run_dir / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(run_dir)
    atomic_write_text(run_dir / "LATEST", final.name + "\n")
    steps = sorted(p for p in run_dir.glob("step-*") if p.is_dir())
    for old in steps[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_step(run_dir: Path) -> Path | None:
    latest = run_dir / "LATEST"
    if latest.is_file():
        step = run_dir / latest.read_text(encoding="utf-8").strip()
        if (step / "meta.json").is_file():
            return step
    complete = sorted(p for p in run_dir.glob("step-*") if (p / "meta.json").is_file())
    return complete[-1] if complete else None


def resolve_checkpoint(spec: str | Path) -> Path:
    """NAME, NAME/step-N, NAME:N, or a path to a run or step folder -> the step folder."""
    spec_s = str(spec)
    step = None
    if ":" in spec_s and not Path(spec_s).exists():
        spec_s, _, step_s = spec_s.rpartition(":")
        if not step_s.isdigit():
            raise CheckpointError(f"{spec}: expected NAME:STEP with a whole-number step")
        step = int(step_s)
    candidates = [Path(spec_s).expanduser(), paths.checkpoints_dir() / spec_s]
    for path in candidates:
        if path.is_file():
            _refuse_foreign_file(path)
        if not path.is_dir():
            continue
        if step is not None:
            path = path / step_dirname(step)
            if (path / "meta.json").is_file():
                return path
            raise CheckpointError(f"{spec}: no saved step {step} in {path.parent}")
        if (path / "meta.json").is_file():
            return path
        found = latest_step(path)
        if found is not None:
            return found
        raise CheckpointError(f"{path}: not a gptkit checkpoint (no meta.json and no saved step inside)")
    raise CheckpointError(not_found_message(str(spec)))


def not_found_message(spec: str) -> str:
    """Why a checkpoint name was not found, in one line: where it looked (the path as given, and
    the checkpoints folder with what chose it) and the known names closest to it."""
    import difflib

    root = paths.checkpoints_dir()
    chosen = (f"$GPTKIT_CHECKPOINTS={os.environ['GPTKIT_CHECKPOINTS']}" if os.environ.get("GPTKIT_CHECKPOINTS")
              else f"$GPTKIT_CHECKPOINTS is not set, so ./checkpoints of {Path.cwd()}")
    where = f"looked for the path '{spec}' and in {root.resolve()} ({chosen})"
    if not root.is_dir():
        return f"checkpoint '{spec}' not found: {where}, which does not exist"
    known = [run.relative_to(root).as_posix() for run, _ in run_folders(root)]
    base = spec.rstrip("/").split(":")[0]
    close = [name for name in known if name.rsplit("/", 1)[-1] == base.rsplit("/", 1)[-1]]
    close += [name for name in difflib.get_close_matches(base, known, n=3, cutoff=0.5) if name not in close]
    if close:
        hint = f"; did you mean {' or '.join(close[:3])}?"
    elif known:
        hint = f"; it holds {', '.join(known[:8])}{', ...' if len(known) > 8 else ''}"
    else:
        hint = ", which holds no checkpoints"
    return f"checkpoint '{spec}' not found: {where}{hint} (gptkit list shows them all)"


def load_tokenizer_from(spec: str | Path):
    """A tokenizer named the way users name one: a tokenizer folder (step folders are ones too), a
    tokenizer.json, a standard tiktoken name, or any checkpoint `resolve_checkpoint` finds (NAME,
    NAME:STEP, a run folder), whose step folder holds its tokenizer. A checkpoint's name wins
    over a tiktoken name it happens to share."""
    from gptkit.tokenizer import META_FILE, load_tokenizer

    path = Path(spec).expanduser()
    if path.is_file() or (path / META_FILE).is_file():
        return load_tokenizer(path)
    try:
        step_dir = resolve_checkpoint(spec)
    except CheckpointError:
        if path.exists():
            raise TokenizerError(f"{spec}: neither a tokenizer folder (no {META_FILE}) nor a checkpoint "
                                 "(no meta.json and no saved step inside)") from None
        return load_tokenizer(str(spec))  # a tiktoken name, or the error saying what a tokenizer can be
    return load_tokenizer(step_dir)


def _refuse_foreign_file(path: Path) -> None:
    head = path.read_bytes()[:4]
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(f"{path}: looks like a pickle/torch.save file; gptkit never loads pickles (use safetensors)")
    raise CheckpointError(f"{path}: expected a checkpoint folder (meta.json + model.safetensors), got a file")


def check_kind(step_dir: Path, kind: str, kinds: tuple[str, ...]) -> None:
    """CheckpointError unless `kind` (the checkpoint in `step_dir`'s) is one of `kinds`."""
    if kind not in kinds:
        raise CheckpointError(f"{display_name(step_dir)}: is a {kind} checkpoint; expected {' or '.join(kinds)}")


def peek_kind(spec: str | Path, kinds: tuple[str, ...] | None = None) -> str:
    """A checkpoint's kind from its metadata alone (no weights, no torch); with `kinds`, a
    CheckpointError unless it is one of them."""
    step_dir = resolve_checkpoint(spec)
    kind = read_meta(step_dir)["kind"]
    if kinds is not None:
        check_kind(step_dir, kind, kinds)
    return kind


def read_meta(step_dir: Path) -> dict:
    meta_path = step_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: unreadable checkpoint metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a gptkit checkpoint (format field missing or wrong)")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{meta_path}: checkpoint version {meta['version']} is newer than this gptkit ({VERSION})")
    for key in ("kind", "config", "step"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: field '{key}' missing")
    if meta["kind"] not in KINDS:
        raise CheckpointError(f"{meta_path}: field 'kind': expected one of {', '.join(KINDS)}, got {meta['kind']!r}")
    return meta


def read_tensors(path: Path) -> dict:
    """Load a safetensors file to CPU; anything else (truncated, pickle, garbage) is refused."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: file missing")
    head = path.read_bytes()[:2]
    if head[:1] == b"\x80" or head == b"PK":
        raise CheckpointError(f"{path}: looks like a pickle/torch.save file; gptkit never loads pickles")
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own error types for truncation/corruption
        raise CheckpointError(f"{path}: corrupted or truncated safetensors file ({type(e).__name__}: {e})") from None


def build_model(meta: dict):
    from gptkit.model import GPT, GPTConfig, RewardModel

    try:
        config = GPTConfig.from_dict(meta["config"])
    except (AssertionError, TypeError) as e:
        raise CheckpointError(f"bad model config in checkpoint metadata: {e}") from None
    return RewardModel(config) if meta["kind"] == "reward" else GPT(config)


def load_weights(model, step_dir: Path) -> None:
    tensors = read_tensors(step_dir / "model.safetensors")
    expected = {k: v for k, v in model.state_dict().items() if k != TIED}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{step_dir / 'model.safetensors'}: weights do not match the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for k, v in tensors.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(f"{step_dir / 'model.safetensors'}: tensor {k} has shape {tuple(v.shape)}, config expects {tuple(expected[k].shape)}")
    model.load_state_dict(tensors, strict=False)


def load_checkpoint(spec: str | Path, *, device: str = "cpu", kinds: tuple[str, ...] | None = None,
                    dtype: str | None = None) -> Checkpoint:
    """Resolve `spec`, rebuild model and tokenizer from the step folder alone, load the weights.

    `dtype` ("bfloat16" | "float32") casts the loaded weights: commands that only generate pass
    their DeviceChoice's, so a CUDA GPU decodes in bf16 (half the bytes read per token)."""
    import torch

    from gptkit.tokenizer import load_tokenizer

    step_dir = resolve_checkpoint(spec)
    meta = read_meta(step_dir)
    if kinds is not None:
        check_kind(step_dir, meta["kind"], kinds)
    tokenizer = load_tokenizer(step_dir)
    model = build_model(meta)
    load_weights(model, step_dir)
    model.to(device=device, dtype=getattr(torch, dtype) if dtype else None)
    model.eval()
    return Checkpoint(path=step_dir, meta=meta, model=model, tokenizer=tokenizer)


def load_train_state(step_dir: Path) -> tuple[dict, dict]:
    """(tensors, info) saved with the step for resuming; CheckpointError when absent."""
    if not (step_dir / "train_state.json").is_file():
        raise CheckpointError(f"{step_dir}: no training state saved with this step; cannot resume from it")
    tensors = read_tensors(step_dir / "train_state.safetensors")
    try:
        info = json.loads((step_dir / "train_state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{step_dir / 'train_state.json'}: unreadable ({e})") from None
    return tensors, info


def list_checkpoints() -> list[dict]:
    """Every run under the checkpoints folder, nested ones included (quickstart/base), with its
    latest step's metadata and the size of its weights file; a run's name is its path below the
    folder, as `resolve_checkpoint` takes it."""
    out = []
    root = paths.checkpoints_dir()
    for run, step in run_folders(root):
        try:
            meta = read_meta(step)
        except CheckpointError:
            continue
        weights = step / "model.safetensors"
        out.append({"name": run.relative_to(root).as_posix(), "path": str(step),
                    **{k: meta.get(k) for k in ("kind", "step", "tokens_seen", "parent", "created")},
                    "weights_bytes": weights.stat().st_size if weights.is_file() else None})
    return out


def run_folders(folder: Path):
    """(run folder, its latest step) for every run below `folder`, in name order. The search goes
    down through folders that hold no step, but not into runs, hidden folders or linked folders
    (a link to a run is listed; one to anything else is not followed)."""
    children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    for child in children:
        step = latest_step(child)
        if step is not None:
            yield child, step
        elif not child.is_symlink():
            yield from run_folders(child)
