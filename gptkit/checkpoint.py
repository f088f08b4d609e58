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
import re
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from gptkit import paths
from gptkit.errors import CheckpointError, DataError, GptkitError, TokenizerError, WriteError
from gptkit.files import atomic_write, clip, excerpt, fsync_dir, parse_json, read_bytes, read_json, seal_folder

FORMAT = "gptkit-checkpoint"
VERSION = 1
KINDS = ("base", "assistant", "policy", "reward")
CHAT_KINDS = ("assistant", "policy")  # tuned on conversations: they read chats, not documents
GENERATIVE_KINDS = ("base", *CHAT_KINDS)  # they write text; a reward model only scores it
TIED = "lm_head.weight"  # shares storage with transformer.wte.weight; stored once
STEP_NAME = re.compile(r"step-\d{6,}")  # what LATEST may name: a step folder inside the run, nothing else
MAX_JSON_BYTES = 16 << 20  # meta.json, train_state.json: a few kilobytes when gptkit writes them
MAX_HEADER_BYTES = 100 << 20  # a safetensors header (safetensors' own limit)


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


def _write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def model_state(model) -> dict:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k != TIED}


def non_finite(tensors: dict) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, else None."""
    import torch

    return next((name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)


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
    `keep` newest steps are kept, older ones removed (after LATEST moved on). Weights holding a
    NaN or an infinity are refused (CheckpointError), never saved as a good step; a failed write
    (a full disk) is a CheckpointError and leaves the previous step as it was. Temporary folders
    left by a killed save are removed.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    assert meta.get("kind") in KINDS, f"bad kind {meta.get('kind')!r}"
    run_dir = Path(run_dir)
    final = run_dir / step_dirname(int(meta["step"]))
    state = model_state(model)
    if (bad := non_finite(state)) is not None:
        raise CheckpointError(f"{final}: not saved: tensor {bad} holds NaN or infinite values")
    tmp = run_dir / f".tmp-{final.name}-{os.getpid()}"
    full_meta = {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": model.config.to_dict(),
        "n_vocab": tokenizer.n_vocab,
        **meta,
    }
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        save_file(state, tmp / "model.safetensors", metadata={"format": FORMAT})
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
        fsync_dir(run_dir)
        atomic_write(run_dir / "LATEST", final.name + "\n")
    except (OSError, SafetensorError, GptkitError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = (err.reason if isinstance(err, WriteError) else err.strerror if isinstance(err, OSError) and err.strerror
                  else clip(str(err), 200))
        kept = latest_step(run_dir) if run_dir.is_dir() else None
        raise CheckpointError(f"{final}: cannot save ({reason})"
                              + (f"; the last saved step {kept.name} is kept" if kept else "")) from None
    steps = sorted(p for p in run_dir.glob("step-*") if p.is_dir())
    for old in steps[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    remove_stale_temporaries(run_dir)
    return final


def remove_stale_temporaries(run_dir: Path) -> None:
    """Remove the `.tmp-step-*` / `.old-step-*` folders of saves whose process is gone (killed,
    or stopped by a full disk); a live process's are left alone."""
    for path in [*run_dir.glob(".tmp-step-*"), *run_dir.glob(".old-step-*")]:
        pid = path.name.rpartition("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process's own leftovers are never in use once a save returned
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def latest_step(run_dir: Path) -> Path | None:
    """The step LATEST names, else the newest complete step folder, else None. LATEST may name
    only a step folder of this run: anything else (another path, `../x`, bytes) is refused."""
    latest = run_dir / "LATEST"
    if latest.is_file():
        try:
            name = read_bytes(latest, max_bytes=64).decode("utf-8", "replace").strip()
        except DataError as err:
            raise CheckpointError(f"{latest}: expected the name of a step folder like step-000500 "
                                  f"({str(err).removeprefix(f'{latest}: ')})") from None
        if not STEP_NAME.fullmatch(name):
            raise CheckpointError(f"{latest}: expected the name of a step folder like step-000500, got {excerpt(name)}")
        if (run_dir / name / "meta.json").is_file():
            return run_dir / name
    complete = sorted(p for p in run_dir.glob("step-*") if (p / "meta.json").is_file())
    return complete[-1] if complete else None


def resolve_checkpoint(spec: str | Path) -> Path:
    """NAME, NAME/step-N, NAME:N, or a path to a run or step folder -> the step folder."""
    try:
        return _resolve(spec)
    except OSError as err:  # a name too long for the filesystem, a folder we may not read, ...
        raise CheckpointError(f"checkpoint {excerpt(str(spec))}: {err.strerror or err}") from None


def _resolve(spec: str | Path) -> Path:
    spec_s = str(spec)
    step = None
    if ":" in spec_s and not Path(spec_s).exists():
        spec_s, _, step_s = spec_s.rpartition(":")
        if not step_s.isdigit() or len(step_s) > 12:
            raise CheckpointError(f"{excerpt(str(spec))}: expected NAME:STEP with a whole-number step")
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
    where = f"looked for the path {excerpt(spec)} and in {root.resolve()} ({chosen})"
    if not root.is_dir():
        return f"checkpoint {excerpt(spec)} not found: {where}, which does not exist"
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
    return f"checkpoint {excerpt(spec)} not found: {where}{hint} (gptkit list shows them all)"


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


def _head(path: Path, n: int = 4) -> bytes:
    """The first `n` bytes of a file (never the whole file: it may be 20 GB)."""
    with open(path, "rb") as f:
        return f.read(n)


def _refuse_foreign_file(path: Path) -> None:
    head = _head(path)
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


def read_json_file(path: Path, what: str):
    """A small JSON file gptkit wrote (meta.json, train_state.json) -> its value; CheckpointError
    saying `what` it is when unreadable, too big, too deeply nested or not JSON."""
    try:
        return read_json(path, max_bytes=MAX_JSON_BYTES)
    except DataError as err:
        raise CheckpointError(f"{path}: unreadable {what} ({str(err).removeprefix(f'{path}: ')})") from None


def read_meta(step_dir: Path) -> dict:
    """meta.json of a step folder, its fields checked (the model config fully: see GPTConfig)."""
    meta_path = step_dir / "meta.json"
    meta = read_json_file(meta_path, "checkpoint metadata")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a gptkit checkpoint (format field missing or wrong)")
    version = meta.get("version", 0)
    if type(version) is not int or version > VERSION:
        raise CheckpointError(f"{meta_path}: checkpoint version {excerpt(version)} is newer than this gptkit ({VERSION})")
    for key in ("kind", "config", "step"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: field '{key}' missing")
    if meta["kind"] not in KINDS:
        raise CheckpointError(f"{meta_path}: field 'kind': expected one of {', '.join(KINDS)}, got {excerpt(meta['kind'])}")
    if type(meta["step"]) is not int or meta["step"] < 0:
        raise CheckpointError(f"{meta_path}: field 'step': expected a whole number, got {excerpt(meta['step'])}")
    model_config(meta, meta_path)
    return meta


def model_config(meta: dict, source):
    """The GPTConfig of checkpoint metadata, every field checked before anything is allocated."""
    from gptkit.model import GPTConfig

    try:
        return GPTConfig.from_dict(meta["config"])
    except CheckpointError as err:
        raise CheckpointError(f"{source}: {err}") from None


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{name: shape} from a safetensors file's header alone (its first 8 + N bytes), so a file
    can be checked against a config before any tensor is read or allocated. A pickle, a
    truncated file or a malformed header is a CheckpointError."""
    try:
        if not path.is_file():
            raise CheckpointError(f"{path}: file missing")
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:1] == b"\x80" or head[:2] == b"PK":
                raise CheckpointError(f"{path}: looks like a pickle/torch.save file; gptkit never loads pickles")
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
                raise CheckpointError(f"{path}: corrupted or truncated safetensors file (header length {n} "
                                      f"in a file of {size} bytes)")
            header = parse_json(f.read(n))
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror or err})") from None
    except DataError as err:
        raise CheckpointError(f"{path}: corrupted safetensors header ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupted safetensors header (not a JSON object)")
    shapes = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{path}: corrupted safetensors header (tensor {excerpt(name)} has no valid shape)")
        shapes[name] = tuple(shape)
    return shapes


def read_tensors(path: Path) -> dict:
    """Load a safetensors file to CPU; anything else (truncated, pickle, garbage) is refused."""
    from safetensors.torch import load_file

    tensor_shapes(path)  # the pickle check and a header sanity check, reading only the header
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own error types for truncation/corruption
        raise CheckpointError(f"{path}: corrupted or truncated safetensors file "
                              f"({type(e).__name__}: {clip(str(e), 200)})") from None


def build_model(meta: dict, device=None):
    """The model (GPT, or RewardModel for kind reward) meta's config describes, initialised;
    device "meta" builds it without allocating (for its parameter shapes)."""
    import torch

    from gptkit.model import GPT, RewardModel

    config = model_config(meta, "checkpoint metadata")
    with torch.device(device) if device else nullcontext():
        return RewardModel(config) if meta["kind"] == "reward" else GPT(config)


def expected_shapes(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k != TIED}


def check_weight_shapes(path: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """CheckpointError unless the safetensors file at `path` lists exactly the tensors `expected`
    names, with those shapes (read from its header: nothing is allocated)."""
    shapes = tensor_shapes(path)
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the config "
                              f"(missing {excerpt(missing[:3])}, unexpected {excerpt(unexpected[:3])})")
    for name, shape in shapes.items():
        if shape != expected[name]:
            raise CheckpointError(f"{path}: tensor {name} has shape {shape}, config expects {expected[name]}")


def load_weights(model, step_dir: Path) -> None:
    """Load the step's weights into `model`: shapes checked from the file's header first, and
    weights holding NaN or infinity refused (such a step was never a good one)."""
    path = step_dir / "model.safetensors"
    check_weight_shapes(path, expected_shapes(model))
    tensors = read_tensors(path)
    if (bad := non_finite(tensors)) is not None:
        raise CheckpointError(f"{path}: tensor {bad} holds NaN or infinite values; this step is not usable "
                              "(an earlier step may be: NAME:STEP)")
    model.load_state_dict(tensors, strict=False)


def validate_checkpoint(spec: str | Path, kinds: tuple[str, ...] | None = None) -> tuple[Path, dict]:
    """(step folder, meta) of a checkpoint whose metadata, model config and weight shapes are
    all consistent, checked from meta.json and the safetensors header alone: milliseconds, no
    weights read, no model allocated. `load_checkpoint` runs it first; a UI that offers to
    switch models can call it to refuse a bad one before unloading the current one."""
    step_dir = resolve_checkpoint(spec)
    meta = read_meta(step_dir)
    if kinds is not None:
        check_kind(step_dir, meta["kind"], kinds)
    path = step_dir / "model.safetensors"
    layers = {int(m.group(1)) for name in tensor_shapes(path) if (m := _LAYER.match(name))}
    n_layer = model_config(meta, step_dir / "meta.json").n_layer
    if layers != set(range(n_layer)):  # before building even an empty model of n_layer blocks
        raise CheckpointError(f"{path}: weights do not match the config (the file holds {len(layers)} layers, "
                              f"meta.json says n_layer {n_layer})")
    check_weight_shapes(path, expected_shapes(build_model(meta, device="meta")))
    return step_dir, meta


_LAYER = re.compile(r"(?:transformer\.)?h\.(\d{1,6})\.")


def check_vocabulary(step_dir: Path, tokenizer, config) -> None:
    """CheckpointError when the tokenizer can produce ids the model has no embedding for."""
    if tokenizer.n_vocab > config.vocab_size:
        raise CheckpointError(f"{step_dir}: the tokenizer has {tokenizer.n_vocab} tokens but the model's vocabulary "
                              f"holds {config.vocab_size}: ids past it have no embedding")


def load_checkpoint(spec: str | Path, *, device: str = "cpu", kinds: tuple[str, ...] | None = None,
                    dtype: str | None = None) -> Checkpoint:
    """Resolve `spec`, rebuild model and tokenizer from the step folder alone, load the weights.

    `dtype` ("bfloat16" | "float32") casts the loaded weights: commands that only generate pass
    their DeviceChoice's, so a CUDA GPU decodes in bf16 (half the bytes read per token)."""
    import torch

    from gptkit.tokenizer import load_tokenizer

    step_dir, meta = validate_checkpoint(spec, kinds)
    tokenizer = load_tokenizer(step_dir)
    model = build_model(meta)
    check_vocabulary(step_dir, tokenizer, model.config)
    load_weights(model, step_dir)
    model.to(device=device, dtype=getattr(torch, dtype) if dtype else None)
    model.eval()
    return Checkpoint(path=step_dir, meta=meta, model=model, tokenizer=tokenizer)


TRAIN_STATE_TENSORS = ("rng.data", "rng.torch")  # besides the optimizer's "opt.*" tensors


def load_train_state(step_dir: Path) -> tuple[dict, dict]:
    """(tensors, info) saved with the step for resuming; CheckpointError when absent or when a
    field or tensor resuming needs is missing or of the wrong type."""
    import torch

    path = step_dir / "train_state.json"
    if not path.is_file():
        raise CheckpointError(f"{step_dir}: no training state saved with this step; cannot resume from it")
    info = read_json_file(path, "training state")
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    for key in ("step", "tokens_seen"):
        if type(info.get(key)) is not int or info[key] < 0:
            raise CheckpointError(f"{path}: field '{key}': expected a whole number, got {excerpt(info.get(key))}")
    if info.get("best_val") is not None and type(info["best_val"]) not in (int, float):
        raise CheckpointError(f"{path}: field 'best_val': expected a number or null, got {excerpt(info['best_val'])}")
    tensors = read_tensors(step_dir / "train_state.safetensors")
    for name in TRAIN_STATE_TENSORS:
        if name not in tensors or tensors[name].dtype != torch.uint8 or tensors[name].dim() != 1:
            raise CheckpointError(f"{step_dir / 'train_state.safetensors'}: tensor {name} (a random generator's "
                                  "state, 1-D uint8) missing or malformed; cannot resume from this step")
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
        try:
            step = latest_step(child)
        except CheckpointError:  # a tampered LATEST: not listed (resolving it names the problem)
            continue
        if step is not None:
            yield child, step
        elif not child.is_symlink():
            yield from run_folders(child)
