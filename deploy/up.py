"""``make up``: the production shape on one box, in one command.

Starts, against ``DATABASE_URL`` and ``REDIS_URL``:

* ``web``: gunicorn with ``WEB_PROCESSES`` worker processes (default 2) on ``HOST:PORT``;
* ``worker-<queue>``: a Celery worker for each queue of ``personalization/queues.py``, with
  ``WORKER_CONCURRENCY`` processes (default 1; training always 1);
* ``beat``: Celery beat, the schedules being rows in PostgreSQL (django-celery-beat);
* ``relay``: the outbox relay (``manage.py relay_outbox --loop RELAY_SECONDS``, default 1).

``manage.py migrate`` runs first (``--no-migrate`` skips it). Every line a process writes comes out
prefixed with its name. Ctrl-C (or SIGTERM) stops them all the way each stops cleanly (SIGTERM:
gunicorn finishes its requests, Celery workers their tasks, beat and the relay stop) and waits up
to ``STOP_SECONDS`` (default 60) for them; a second Ctrl-C kills what is left. Should any process
exit by itself, the others are stopped too and ``make up`` exits with an error: a shape with a
piece missing does not run on silently.

Plain Python on purpose: the same lines are what systemd units or a compose file start one by one
(``deploy/``, ``docs/deploy.md``), and ``--print`` shows them.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personalization.queues import QUEUES, TRAINING  # noqa: E402  (plain data, no Django)


def _env_int(name: str, default: int, low: int = 1) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < low:
        sys.exit(f"make up: {name}={value!r} must be a whole number of at least {low}")
    return int(value)


@dataclass
class Process:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


def shape(python: str, host: str, port: int) -> list[Process]:
    """The processes of the production shape, in the order they start."""
    web_processes = _env_int("WEB_PROCESSES", 2)
    concurrency = _env_int("WORKER_CONCURRENCY", 1)
    relay_seconds = os.environ.get("RELAY_SECONDS", "1")
    celery = [python, "-m", "celery", "-A", "personalization"]
    processes = [
        Process(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "personalization.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_processes),
                "--graceful-timeout",
                "30",
                "--access-logfile",
                "-",
            ],
        )
    ]
    for queue in QUEUES:
        processes.append(
            Process(
                f"worker-{queue}",
                [
                    *celery,
                    "worker",
                    "-Q",
                    queue,
                    "-n",
                    f"{queue}@%h",
                    "--concurrency",
                    "1" if queue == TRAINING else str(concurrency),
                    "--loglevel",
                    "info",
                ],
            )
        )
    processes.append(Process("beat", [*celery, "beat", "--loglevel", "info"]))
    processes.append(Process("relay", [python, "manage.py", "relay_outbox", "--loop", relay_seconds]))
    return processes


class Shape:
    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes
        self.width = max(len(p.name) for p in processes)
        self.stopping = False
        self.output = threading.Lock()

    def say(self, name: str, line: str) -> None:
        with self.output:
            sys.stdout.write(f"{name:<{self.width}} | {line}\n")
            sys.stdout.flush()

    def _follow(self, process: Process) -> None:
        assert process.popen is not None and process.popen.stdout is not None
        for raw in process.popen.stdout:
            self.say(process.name, raw.decode("utf-8", "replace").rstrip())

    def start(self) -> None:
        for process in self.processes:
            # A session of its own: Ctrl-C reaches this script only, which stops each in its own way.
            process.popen = subprocess.Popen(
                process.argv,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            process.reader = threading.Thread(target=self._follow, args=(process,), daemon=True)
            process.reader.start()
            self.say("up", f"started {process.name} (pid {process.popen.pid}): {shlex.join(process.argv[1:])}")

    def exited(self) -> Process | None:
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is not None:
                return process
        return None

    def stop(self, seconds: float) -> None:
        self.stopping = True
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + seconds
        for process in self.processes:
            if process.popen is None:
                continue
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("up", f"{process.name} did not stop within {seconds:.0f} s: killed")
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
        for process in self.processes:
            if process.reader is not None:
                process.reader.join(timeout=2)

    def kill(self) -> None:
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGKILL)


def _web_answers(host: str, port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1" if host in ("0.0.0.0", "") else host, port, timeout=2)
        conn.request("GET", "/api/v1/track")  # any answer (401 without a key) says the app is up
        conn.getresponse().read()
        return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-migrate", action="store_true", help="Do not run manage.py migrate first.")
    parser.add_argument("--print", action="store_true", help="Print the commands and exit.")
    args = parser.parse_args()

    host = os.environ.get("HOST", "0.0.0.0")
    port = _env_int("PORT", 8000)
    stop_seconds = _env_int("STOP_SECONDS", 60)
    processes = shape(sys.executable, host, port)
    if args.print:
        for process in processes:
            print(f"{process.name}: {shlex.join(process.argv)}")
        return 0
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        print(
            f"make up: set {' and '.join(missing)}: this is the production shape, PostgreSQL and Redis "
            "shared by every process (`make demo` runs without them).",
            file=sys.stderr,
        )
        return 2
    if not args.no_migrate:
        print("up | manage.py migrate", flush=True)
        if subprocess.call([sys.executable, "manage.py", "migrate", "--verbosity", "1"], cwd=ROOT) != 0:
            return 1

    running = Shape(processes)
    interrupted = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if interrupted.is_set():
            running.say("up", "stopping again: killing what is left")
            running.kill()
            return
        interrupted.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    running.start()
    ready = False
    code = 0
    while not interrupted.is_set():
        gone = running.exited()
        if gone is not None:
            running.say("up", f"{gone.name} exited with {gone.popen.returncode if gone.popen else '?'}: stopping all")
            code = 1
            break
        if not ready and _web_answers(host, port):
            ready = True
            running.say("up", f"ready: web on http://{host}:{port}/, {len(QUEUES)} workers, beat, relay (Ctrl-C stops)")
        interrupted.wait(0.5)
    running.say("up", f"stopping (SIGTERM to each, up to {stop_seconds} s)")
    running.stop(stop_seconds)
    running.say("up", "stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
