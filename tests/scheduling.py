"""How ``make test`` shares the suite out between its pytest-xdist workers (``-n 2 --dist loadfile``).

pytest-django runs the tests in Django's order: first those in a transaction that is rolled back,
then the transactional ones (``transactional_db``, ``live_server``), whose database is emptied after
each (roles, beat schedules and whatever else the migrations wrote included), then those without a
database. The tests of the first kind count on what the migrations wrote, so none may run after a
transactional one in the same database.

Plain ``--dist loadfile`` sends a whole file to one worker, in the order of how many tests it holds:
a worker could run a file's transactional tests and then another file's rolled-back ones, which find
no roles. Here the unit of work is a file's run of tests in that order (a file with both kinds is two
units), and the units go out in that order, so that each worker runs its tests in the order a
single process would, and still each file's tests of one kind (and what its module builds once) in
one worker.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadFileScheduling


class FileRunsInOrder(LoadFileScheduling):
    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._units: dict[str, str] = {}

    def schedule(self) -> None:
        # The units in the order collected (Django's), not the largest first as loadfile does.
        self.config.option.loadscopereorder = False
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        if not self._units:
            assert self.collection is not None, "units are known once the collection is"
            runs = 0
            previous = None
            for test in self.collection:
                file = test.split("::", 1)[0]
                if file != previous:
                    runs, previous = runs + 1, file
                self._units[test] = f"{file} (run {runs})"
        return self._units[nodeid]
