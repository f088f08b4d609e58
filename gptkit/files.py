"""Files: reading what a user hands gptkit, writing what a user keeps, locking a run folder.

Every reader and writer goes through here, so each rule lives in one place:
- Reading (`read_bytes`, `read_text`): regular files only (a FIFO would block forever and
  /dev/zero never ends), at most `max_bytes`, decoded as UTF-8; problems are one-line
  `DataError`s naming the file.
- Parsing (`parse_json`, `parse_yaml`): a nesting too deep for the parser, a number too long to
  convert, or YAML aliases that expand past `MAX_YAML_NODES` (a "billion laughs" file) are
  DataErrors, found before any expanded value exists. Messages quote user data only through
  `excerpt`, never whole.
- Writing (`atomic_write`, `atomic_writer`): into a temporary file beside the target, fsynced,
  then renamed over it, so a crash or a full disk leaves the old file whole. A target that is a
  device or a pipe (/dev/stdout, /dev/full) is written in place. OSErrors become one line.
- Locking (`lock_folder`): one writing process per run folder; the kernel drops the lock when
  the process ends, so even kill -9 leaves nothing to clean up.

Must not know: what the files mean (templates, checkpoints, chats belong to their modules).
"""

import json
import os
import reprlib
import stat
from contextlib import contextmanager
from pathlib import Path

from gptkit.errors import DataError, UsageError, WriteError

_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what any new file gets (0644 usually); safetensors alone writes 0600
MAX_YAML_NODES = 100_000  # YAML nodes after alias expansion: far above any template or case file
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel = 60, 60, 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def excerpt(value, limit: int = 80) -> str:
    """A short repr of user data for an error message: never more than about `limit` characters."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a value whose repr fails (or recurses) still gets a message
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def clip(text: str, limit: int = 120) -> str:
    """`text` cut to at most `limit` characters (with "..." when cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- reading ---------------------------------------------------------------------------------


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path, *, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file `path` (at most `max_bytes`); DataError otherwise.

    The file is opened non-blocking and checked with fstat before any read, so a FIFO or a
    device is refused at once instead of hanging or filling memory."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataError("no such file", path=path) from None
    except OSError as err:
        raise DataError(f"cannot read ({err.strerror or err})", path=path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(f"is {_kind(mode)}; expected a regular file", path=path)
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise DataError(f"{size:,} bytes; files of this kind are at most {max_bytes:,}", path=path)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:  # grew while being read
                raise DataError(f"more than {max_bytes:,} bytes; files of this kind are at most that", path=path)
        return b"".join(chunks)
    except OSError as err:
        raise DataError(f"cannot read ({err.strerror or err})", path=path) from None
    finally:
        os.close(fd)


def read_text(path, *, max_bytes: int | None = None) -> str:
    """`read_bytes` decoded as UTF-8; a binary file (NUL bytes) or another encoding is a DataError."""
    raw = read_bytes(path, max_bytes=max_bytes)
    if b"\x00" in raw[:65536]:
        raise DataError("looks like a binary file (NUL bytes); expected UTF-8 text", path=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text (invalid byte at offset {err.start})", path=path) from None


def parse_json(text: str | bytes, *, path=None, line: int | None = None):
    """The JSON value of `text`; invalid, too deeply nested or unconvertible input is a DataError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"invalid JSON ({err.msg} at column {err.colno})", path=path, line=line) from None
    except RecursionError:
        raise DataError("invalid JSON (nested too deeply)", path=path, line=line) from None
    except (ValueError, UnicodeDecodeError) as err:  # e.g. a number of more than 4300 digits
        raise DataError(f"invalid JSON ({clip(str(err))})", path=path, line=line) from None


def read_json(path, *, max_bytes: int | None = None):
    """The JSON value of the regular file `path` (at most `max_bytes`); DataError naming it otherwise."""
    return parse_json(read_bytes(path, max_bytes=max_bytes), path=path)


def parse_yaml(text: str, *, path=None, error=DataError):
    """(data, root node) of a YAML document under the safe loader; (None, None) when empty.

    The node tree (it carries line numbers) is composed first and measured: aliases that expand
    past MAX_YAML_NODES nodes, or that refer to themselves, are refused before any value is
    built. Malformed or too deeply nested YAML raises `error` (a DataError subclass)."""
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_expansion(root, path, error)
        return loader.construct_document(root), root
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = clip(" ".join(str(err.problem or err.context).split()))
        raise error(f"malformed YAML: {problem}", path=path, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise error(f"malformed YAML: {clip(' '.join(str(err).split()))}", path=path) from None
    except RecursionError:
        raise error("malformed YAML: nested too deeply", path=path) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root, path, error) -> None:
    """Count the nodes `root` expands to (an alias counts its whole target each time it is used),
    depth first with an explicit stack; refuse cycles and trees over MAX_YAML_NODES."""
    import yaml

    def children(node):
        if isinstance(node, yaml.SequenceNode):
            return node.value
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in children(node))
            if size[key] > MAX_YAML_NODES:
                raise error(f"YAML expands to more than {MAX_YAML_NODES:,} values (aliases repeating aliases); "
                            "write the values out", path=path, line=node.start_mark.line + 1)
        elif key not in size:
            if key in open_nodes:
                raise error("YAML alias refers to the value that contains it", path=path,
                            line=node.start_mark.line + 1)
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children(node) if id(child) not in size)


# ---- writing ---------------------------------------------------------------------------------


def write_error(path, err: OSError) -> WriteError:
    """The one-line error for an OSError while writing `path`."""
    return WriteError(path, err.strerror or str(err))


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable (the folder's own fsync)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None):
    """A file object whose contents replace `path` only once the block finishes without error.

    Written to `.NAME.tmp-PID` beside the target, flushed and fsynced, then renamed over it (and
    the folder fsynced): readers see the old file or the new one, never a mix, and a full disk
    leaves the old file as it was. A link is followed (its target is replaced); an existing
    device or pipe is written in place; a folder is refused. OSErrors become a GptkitError."""
    path = Path(path)
    binary = "b" in mode
    opts = {} if binary else {"encoding": encoding, "newline": newline}
    try:
        if path.is_symlink():
            path = Path(os.path.realpath(path))
        existing = os.stat(path) if path.exists() else None
    except OSError as err:
        raise write_error(path, err) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise UsageError(f"{path}: is a folder; expected a file to write")
    if existing is not None and not stat.S_ISREG(existing.st_mode):  # /dev/stdout, /dev/full, a pipe
        try:
            with open(path, mode, **opts) as f:
                yield f
        except OSError as err:
            raise write_error(path, err) from None
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode, **opts) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        _remove_quietly(tmp)
        raise write_error(path, err) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextmanager
def atomic_path(path):
    """A temporary path beside `path` for a writer that takes a file name (safetensors, gguf);
    once the block finishes it is made an ordinary file (`FILE_MODE`), fsynced and renamed onto
    `path`: readers see the old file or the new one, never half of one. If the block raises,
    the temporary file is removed; OSErrors become a GptkitError."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        fsync_dir(tmp)  # an O_RDONLY fsync serves files and folders alike
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        raise write_error(path, err) from None
    finally:
        _remove_quietly(tmp)


def seal_folder(folder: Path) -> None:
    """Before a written folder is renamed into place: every file below it gets `FILE_MODE` and is
    fsynced, then every folder is."""
    for path in folder.rglob("*"):
        if path.is_file():
            os.chmod(path, FILE_MODE)
        fsync_dir(path)
    fsync_dir(folder)


def atomic_write(path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace `path` with `data` atomically (see `atomic_writer`)."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w", encoding=encoding) as f:
        f.write(data)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def make_folder(path, option: str = "--out") -> Path:
    """`path` as an existing folder (created with its parents); a file in the way is a UsageError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{option} {path}: is a file; expected a folder") from None
    except NotADirectoryError:
        raise UsageError(f"{option} {path}: a part of this path is a file; expected a folder") from None
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot create the folder ({err.strerror or err})") from None
    return path


# ---- locking ---------------------------------------------------------------------------------

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # resolved folder -> open lock fd, for the locks this process holds


@contextmanager
def lock_folder(folder, what: str = "run folder"):
    """Hold an exclusive lock on `folder` for the block; UsageError at once if another process
    holds it. Re-entrant within one process. The lock file (`.lock`, holding the pid) stays."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing to lock with
        yield
        return
    folder = make_folder(folder)
    key = str(folder.resolve())
    if key in _held:
        yield
        return
    lock_path = folder / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise write_error(lock_path, err) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise UsageError(f"{folder}: another gptkit process{who} is writing to this {what}; "
                         "wait for it to finish or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[key] = fd
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # closing the descriptor releases the flock
