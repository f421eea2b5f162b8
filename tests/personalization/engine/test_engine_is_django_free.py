"""The numerical package must import without Django, so workers and benchmarks can use it bare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_engine_imports_without_django() -> None:
    root = Path(__file__).resolve().parents[3]
    code = (
        "import sys; import personalization.engine.engine, personalization.engine.evaluation; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"Django modules imported: {run.stdout} {run.stderr[-500:]}"
