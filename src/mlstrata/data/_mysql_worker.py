"""A worker process of a parallel MySQL/MariaDB read: ``python -m mlstrata.data._mysql_worker``.

It reads one JSON task per line on stdin (a :class:`~mlstrata.data._mysql_client.RangeTask`: the
URL, the statements of one key range, the expected columns, the Arrow stream file to write), reads
that range over its own connection, and answers one JSON line on stdout — ``{"result": path}``, or
``{"error": "one line"}`` for a problem the ingest reports (never the password) — until its stdin
closes. :func:`mlstrata.data._mysql_ranges.in_order` runs these workers.
"""

from __future__ import annotations

import json
import sys

from ..errors import SourceError
from ._mysql_client import RangeTask, read_range


def main() -> None:
    """Serve tasks from stdin until it closes."""
    for line in sys.stdin:
        data = json.loads(line)
        task = RangeTask(**{**data, "names": tuple(data["names"]), "binary": tuple(data["binary"])})
        try:
            answer = {"result": read_range(task)}
        except SourceError as exc:
            answer = {"error": str(exc)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
