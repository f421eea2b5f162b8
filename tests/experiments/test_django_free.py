from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_statistical_core_does_not_import_django() -> None:
    script = (
        "import sys\n"
        "import experiments.assignment, experiments.stats, experiments.sequential\n"
        "import experiments.bandits, experiments.decision\n"
        "assert not any(name == 'django' or name.startswith('django.') for name in sys.modules), 'django imported'\n"
    )

    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})
