"""Marketer templates rendered in a child process that is killed at its deadline.

The sandbox (:mod:`campaigns.templating`) checks its wall-clock budget between operations, so one
operation that runs long inside C code — ``sum`` of lists, ``wordwrap`` of a huge string, comparing
or sorting nested lists — used to outlast it by minutes. Here every render runs in a long-lived child
process: the parent sends the template and the context, waits at most the render budget plus a small
grace, and on a miss kills the child with SIGKILL, answers a :class:`~campaigns.templating.TemplateError`
and starts a fresh child at once. No single call can escape that.

The child is started with ``python -m campaigns.render_process`` and an almost empty environment (no
database URL, no keys: a template that escaped the sandbox would find nothing to read there), limits
its own address space, compiles each template once and keeps the most recent ones. One child per
process that renders (a gunicorn worker, a Celery worker process), used by one thread at a time.
Requests go as pickles (the parent trusts itself), answers come back as JSON (the parent trusts
nothing the child says beyond four strings or an error).

Free of Django.
"""

from __future__ import annotations

import atexit
import itertools
import json
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from campaigns.templating import (
    FIELDS,
    LimitExceeded,
    MessageTemplate,
    RenderedMessage,
    TemplateError,
    TemplateFields,
    TemplateTooCostly,
)

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 0.05
"""How long past the template's own budget the parent waits before it kills the child."""
START_SECONDS = 20.0
"""How long a new child may take to start (imports) before rendering is declared broken."""
MEMORY_BYTES = 1024 * 1024 * 1024
"""The child's address-space limit: a template that needs more fails with a memory error."""
_HEADER = struct.Struct(">I")
_READY = b"ready"
_KEEP_COMPILED = 64
_PICKLE = pickle.HIGHEST_PROTOCOL


class RenderProcessError(RuntimeError):
    """The child could not be started or spoke nonsense: an operator's problem, not the template's."""


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the render process closed its pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: IO[bytes]) -> bytes:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return _read_exact(stream, size)


def _error_answer(error: TemplateError) -> dict[str, Any]:
    return {
        "error": {
            "field": error.field,
            "message": error.message,
            "line": error.line,
            "block": error.block,
            "costly": isinstance(error, TemplateTooCostly),
        }
    }


def _template_error(answer: Mapping[str, Any]) -> TemplateError:
    error = answer["error"]
    kind = TemplateTooCostly if error.get("costly") else TemplateError
    line = error.get("line")
    return kind(
        str(error.get("field") or "template"),
        str(error.get("message") or "the template failed"),
        line if isinstance(line, int) else None,
        error.get("block") if isinstance(error.get("block"), str) else None,
    )


def child_environment() -> dict[str, str]:
    """All the child gets of the environment: where Python and the project are, nothing else."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }


class RenderProcess:
    """One child process and the pipe to it. Not for use by two threads at once (see :func:`render`)."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES) -> None:
        self.memory_bytes = memory_bytes
        self._child: subprocess.Popen[bytes] | None = None
        self._spare: subprocess.Popen[bytes] | None = None
        self._progress: dict[int, mmap.mmap] = {}
        self._ready = False
        self.kills = 0
        self._numbers: weakref.WeakKeyDictionary[MessageTemplate, int] = weakref.WeakKeyDictionary()
        self._counter = itertools.count(1)

    # The child's life ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Have a running child and a spare one. The spare imports in the background and takes over
        at once when the child is killed, so that the next render does not wait for a start."""
        if self._child is None or self._child.poll() is not None:
            self._drop(self._child)
            self._child, self._spare = self._spare or self._spawn(), None
            self._ready = False
            self._numbers.clear()  # a new child knows no template yet
        if self._spare is None or self._spare.poll() is not None:
            self._drop(self._spare)
            self._spare = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # One shared byte where the child writes which field it is rendering, so that a render killed
        # at its deadline can still be reported against its field (without a write per field).
        with tempfile.TemporaryFile() as progress:
            progress.truncate(1)
            child = self._popen(progress.fileno())
            self._progress[child.pid] = mmap.mmap(progress.fileno(), 1)
        return child

    def _popen(self, progress_fd: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "campaigns.render_process", str(self.memory_bytes), str(progress_fd)],
            pass_fds=(progress_fd,),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            env=child_environment(),
            close_fds=True,
            bufsize=0,  # unbuffered, so that select() sees every byte the child wrote
        )

    def _field_in_progress(self) -> str:
        assert self._child is not None
        index = self._progress[self._child.pid][0]
        return FIELDS[index - 1] if 1 <= index <= len(FIELDS) else "template"

    def _drop(self, child: subprocess.Popen[bytes] | None) -> None:
        if child is None:
            return
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait()
        progress = self._progress.pop(child.pid, None)
        if progress is not None:
            progress.close()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()

    def stop(self) -> None:
        """Stop the child and the spare."""
        self._drop(self._child)
        self._drop(self._spare)
        self._child = self._spare = None

    def _restart(self) -> None:
        """Kill the child; the spare takes over and a new spare starts."""
        self._drop(self._child)
        self._child = None
        self.start()

    def _wait_readable(self, seconds: float) -> bool:
        assert self._child is not None and self._child.stdout is not None
        readable, _, _ = select.select([self._child.stdout], [], [], max(seconds, 0.0))
        return bool(readable)

    def _ensure_ready(self) -> None:
        self.start()
        if self._ready:
            return
        assert self._child is not None and self._child.stdout is not None
        if not self._wait_readable(START_SECONDS):
            self._restart()
            raise RenderProcessError(f"the render process did not start within {START_SECONDS:g} s")
        try:
            hello = _read_frame(self._child.stdout)
        except EOFError:
            hello = b""
        if hello != _READY:
            self.stop()
            raise RenderProcessError("the render process failed to start")
        self._ready = True

    # Rendering ----------------------------------------------------------------------------------------------

    def render(self, template: MessageTemplate, context: Mapping[str, Any]) -> RenderedMessage:
        """Render every field for one recipient in the child; raises :class:`TemplateError`."""
        self._ensure_ready()
        assert self._child is not None and self._child.stdin is not None and self._child.stdout is not None
        # The sources go once per template and child; after that, the template's number in this child.
        number = self._numbers.get(template)
        if number is None:
            number = self._numbers[template] = next(self._counter)
            fields = template.fields
            sources = (fields.subject, fields.preheader, fields.html, fields.text)
            request = pickle.dumps((number, (sources, template.blocks, template.limits), context), _PICKLE)
        else:
            request = pickle.dumps((number, None, context), _PICKLE)
        self._progress[self._child.pid][0] = 0
        deadline = time.monotonic() + template.limits.max_seconds + GRACE_SECONDS
        try:
            _write_frame(self._child.stdin, request)
        except (BrokenPipeError, OSError):
            self._restart()
            raise TemplateError("template", "the render process stopped; the template was not rendered") from None
        if not self._wait_readable(deadline - time.monotonic()):
            self.kills += 1
            field = self._field_in_progress()
            self._restart()
            raise TemplateTooCostly(
                field, f"rendering took longer than {template.limits.max_seconds:g} s and was stopped"
            )
        try:
            answer = json.loads(_read_frame(self._child.stdout))
        except (EOFError, ValueError, struct.error):
            # Killed by its memory limit or any other way: the template is what made it stop.
            field = self._field_in_progress()
            self._restart()
            raise TemplateTooCostly(field, "the template needs too much memory or time") from None
        if not isinstance(answer, dict):
            self._restart()
            raise RenderProcessError("the render process answered something that is not an answer")
        if answer.get("forgotten"):
            # The child kept only its most recent templates: send this one again, whole.
            self._numbers.pop(template, None)
            return self.render(template, context)
        if "error" in answer:
            raise _template_error(answer)
        values = answer.get("ok")
        if not isinstance(values, list) or len(values) != len(FIELDS) or not all(isinstance(v, str) for v in values):
            self._restart()
            raise RenderProcessError("the render process answered something that is not a message")
        return RenderedMessage(*values)


_shared: RenderProcess | None = None
_shared_pid = 0
_lock = threading.Lock()


def _stop_shared() -> None:
    if _shared is not None and _shared_pid == os.getpid():
        _shared.stop()


atexit.register(_stop_shared)


def shared() -> RenderProcess:
    """This process's render process (a forked process gets its own, never its parent's)."""
    global _shared, _shared_pid
    if _shared is None or _shared_pid != os.getpid():
        _shared, _shared_pid = RenderProcess(), os.getpid()
    return _shared


def render(template: MessageTemplate, context: Mapping[str, Any]) -> RenderedMessage:
    """Render in this process's child, one thread at a time; raises :class:`TemplateError`."""
    with _lock:
        return shared().render(template, context)


# --- the child -------------------------------------------------------------------------------------------------


def _limit_memory(memory_bytes: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _serve(memory_bytes: int, progress_fd: int | None) -> None:
    _limit_memory(memory_bytes)
    progress = mmap.mmap(progress_fd, 1) if progress_fd is not None else bytearray(1)

    def on_field(name: str) -> None:
        progress[0] = FIELDS.index(name) + 1

    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    compiled: OrderedDict[int, MessageTemplate] = OrderedDict()
    _write_frame(answers, _READY)
    while True:
        try:
            request = _read_frame(requests)
        except EOFError:
            return  # the parent is gone or done
        answer: dict[str, Any]
        try:
            number, spec, context = pickle.loads(request)
            if spec is not None:
                sources, blocks, limits = spec
                compiled[number] = MessageTemplate(TemplateFields(*sources), blocks=blocks, limits=limits)
                if len(compiled) > _KEEP_COMPILED:
                    compiled.popitem(last=False)
            template = compiled.get(number)
            if template is None:
                _write_frame(answers, json.dumps({"forgotten": number}).encode())
                continue
            compiled.move_to_end(number)
            message = template.render(context, on_field=on_field)
            answer = {"ok": [message.subject, message.preheader, message.html, message.text]}
        except TemplateError as error:
            answer = _error_answer(error)
        except (MemoryError, LimitExceeded, RecursionError) as error:
            answer = _error_answer(TemplateTooCostly("template", str(error) or "the template needs too much memory"))
        try:
            payload = json.dumps(answer).encode()
        except (MemoryError, ValueError):
            payload = json.dumps(_error_answer(TemplateTooCostly("template", "the output is too large"))).encode()
        _write_frame(answers, payload)


if __name__ == "__main__":
    _serve(
        int(sys.argv[1]) if len(sys.argv) > 1 else MEMORY_BYTES,
        int(sys.argv[2]) if len(sys.argv) > 2 else None,
    )
