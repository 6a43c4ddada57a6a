"""The PostgreSQL sink against a real server: tables created, lines loaded, requests found."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from mlstrata.predlog import FeedbackItem, open_log
from mlstrata.predlog.reading import find_request, logged_models
from mlstrata.runtime.model import LoadedModel

from .conftest import log_request

pytestmark = pytest.mark.postgres


def test_predictions_and_feedback_land_in_postgres(postgres: Any, model: LoadedModel,
                                                   records: list[dict[str, Any]]) -> None:
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute("DROP TABLE IF EXISTS mlstrata_predictions, mlstrata_feedback")
    with open_log(postgres.url, interval=0.01) as log:
        predictions = log_request(log, model, records[:3], "pg-1")
        log_request(log, model, records[:2], "pg-2", keys=["K1", None])
        log.log_feedback([FeedbackItem("credit.model", 1, "pg-1", 0, None, time.time())])
    assert (log.written, log.dropped) == (6, 0)
    with psycopg.connect(postgres.url) as con:
        rows = con.execute("SELECT request_id, record, model, version, source, key, "
                           "prediction, probabilities, inputs->>'purpose', warnings "
                           "FROM mlstrata_predictions ORDER BY request_id, record").fetchall()
        [label] = con.execute("SELECT label FROM mlstrata_feedback").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("pg-1", 0), ("pg-1", 1), ("pg-1", 2), ("pg-2", 0),
                                            ("pg-2", 1)]
    assert rows[0][2:6] == ("credit.model", 1, "rest", None) and rows[3][5] == "K1"
    assert [r[6] for r in rows[:3]] == predictions.predictions
    assert set(rows[0][7]) == {"0", "1"} and rows[0][8] == records[0]["purpose"]
    assert rows[0][9] == [] and label == (1,)
    found, feedback = find_request(postgres.url, "pg-1")
    assert [line["record"] for line in found] == [0, 1, 2]
    assert found[0]["time"].endswith("Z") and feedback[0]["label"] == 1
    assert logged_models(postgres.url) == ["credit.model"]
    with open_log(postgres.url) as reader:  # a second replica: tables exist, ids are found
        assert reader.find("credit.model", ["pg-1", "pg-9"], ["K1", "K9"]) == (
            {"pg-1": 3}, {"K1"})


def test_a_dropped_connection_loses_one_batch_then_reconnects(
        postgres: Any, model: LoadedModel, records: list[dict[str, Any]]) -> None:
    log = open_log(postgres.url, interval=3600)
    try:
        sink: Any = log.sink
        pid = sink._con.info.backend_pid
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        log_request(log, model, records[:2], "pg-lost")
        log._wake.set()
        deadline = time.monotonic() + 10
        while log.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        log_request(log, model, records[:1], "pg-after")
    finally:
        log.close()
    assert (log.dropped, log.written) == (2, 1)
    assert len(find_request(postgres.url, "pg-after")[0]) == 1
