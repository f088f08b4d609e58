"""`gptkit chat`'s loops: the prompt-toolkit REPL a person types into, and the line-by-line loop
used when stdin is not a terminal (a chat you can script).

Owns input only: history, Tab completion, multi-line blocks (\"\"\" or Esc+Enter), the bottom
toolbar, Ctrl-C (clears the line; during an answer it stops the answer) and Ctrl-D (leaves).
Enter sends (an input method's Enter that commits a conversion never reaches us); a bracketed
paste lands in the buffer whole, its newlines included, so pasted lines are one message.
Each input goes to `chat_commands.handle`; the session (chat_session.py) owns all state.

Contract: a bug in a command prints one "internal error" line and the conversation goes on
(GPTKIT_DEBUG=1 adds the traceback); in the scripted loop, errors go to stderr and
`run_lines` reports whether every input succeeded, so `gptkit chat` can exit non-zero.
"""

import os
import sys
import traceback

from rich.console import Console
from rich.text import Text

from gptkit import paths
from gptkit.checkpoint import peek_kind
from gptkit.ui.chat_commands import ChatCompleter, handle
from gptkit.ui.chat_session import ChatSession


# ---- the loops --------------------------------------------------------------------------------


def unwrap_block(text: str) -> str:
    """A \"\"\"-delimited block without its delimiters; anything else unchanged."""
    stripped = text.strip()
    if stripped.startswith('"""'):
        body = stripped[3:]
        return (body[:-3] if body.endswith('"""') else body).strip("\n")
    return text


def open_block(text: str) -> bool:
    """Whether Enter should add a line: a \"\"\" block that has not been closed yet."""
    stripped = text.strip()
    return stripped.startswith('"""') and not (len(stripped) >= 6 and stripped.endswith('"""'))


def run_lines(session: ChatSession, lines, *, errors: Console | None = None) -> bool:
    """Scripting: each line (or \"\"\" block) of `lines` is one input; answers go to the session's
    console, error lines to `errors`. True when every input succeeded."""
    ok, block = True, None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if block is not None:
            block.append(line)
            if line.rstrip().endswith('"""'):
                ok &= handle(session, unwrap_block("\n".join(block)), errors=errors)
                block = None
        elif open_block(line):
            block = [line]
        else:
            ok &= handle(session, line, errors=errors)
        if session.done:
            break
    if block is not None and not session.done:
        ok &= handle(session, unwrap_block("\n".join(block)), errors=errors)
    session.close()
    return ok


def _key_bindings():
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event):
        buffer = event.current_buffer
        if buffer.complete_state is not None and buffer.complete_state.current_completion is not None:
            buffer.apply_completion(buffer.complete_state.current_completion)
        elif open_block(buffer.text):
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _(event):
        event.current_buffer.insert_text("\n")

    return bindings


def run_repl(session: ChatSession, input=None, output=None) -> None:
    """The interactive loop: history, completion, multi-line input; Ctrl-C clears, Ctrl-D leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    history = paths.history_path("chat")
    paths.ensure_dir(history.parent)
    prompt = PromptSession(history=FileHistory(str(history)), completer=ChatCompleter(),
                           key_bindings=_key_bindings(), multiline=True, prompt_continuation="... ",
                           complete_while_typing=True, bottom_toolbar=session.status_line,
                           input=input, output=output)

    def start_loading(_app) -> None:
        # Importing torch holds the GIL for seconds: started earlier, it would delay the first frame.
        prompt.app.after_render.remove_handler(start_loading)
        session.preload()

    prompt.app.after_render.add_handler(start_loading)
    try:
        while not session.done:
            try:
                line = prompt.prompt(session.prompt_label())
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            try:
                handle(session, unwrap_block(line))
            except Exception as e:  # a bug must not cost the user the conversation
                session.console.print(Text(f"internal error (a gptkit bug): {type(e).__name__}: {e}", style="red"))
                if os.environ.get("GPTKIT_DEBUG"):
                    traceback.print_exc(file=sys.stderr)
    finally:
        session.close()


def print_banner(session: ChatSession) -> None:
    kinds = ", ".join(f"{n} ({peek_kind(n)})" for n in session.names)
    session.console.print(Text.assemble(("gptkit chat", "bold"), f" · {kinds} · mode {session.mode}"))
    session.console.print(Text('/help lists commands · Esc+Enter adds a line · """ starts a multi-line block · '
                               "Ctrl-C stops an answer · Ctrl-D leaves", style="dim"))

