"""Run the backfill flow in this process and SIGKILL it in the middle of one day.

Used by ``test_backfill.py`` (run as a script, with ``PREFECT_API_URL`` and the ``SMDA_*``
variables in the environment)::

    python crash_backfill.py START END KILL_DAY

The process kills itself when it starts publishing ``KILL_DAY``: the state of that day is
committed to the chain, its COG and STAC item are not written — the worst moment for a crash
(a machine lost, a worker OOM-killed, a cancelled flow run's process terminated).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any


def main(start: date, end: date, kill_day: date) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from smda.storage.publish import Publisher

    publish = Publisher.publish

    def publish_or_die(self: Publisher, day: date, *args: Any, **kwargs: Any) -> Any:
        if day == kill_day:
            os.kill(os.getpid(), signal.SIGKILL)
        return publish(self, day, *args, **kwargs)

    Publisher.publish = publish_or_die  # type: ignore[method-assign]

    from flows.backfill import backfill

    backfill(start, end)
    raise SystemExit(f"the backfill finished without reaching {kill_day}")


if __name__ == "__main__":
    main(*(date.fromisoformat(arg) for arg in sys.argv[1:4]))
