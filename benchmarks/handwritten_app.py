"""The baseline of ``bench_serve.py``: what a user writes by hand today to serve ``model.onnx``.

A minimal FastAPI app on uvicorn[standard] (httptools + uvloop): one ``async`` endpoint taking a
JSON record, building onnxruntime feeds (numbers as float64, text as strings, date parts as the
package's signature says) and returning the label and class probabilities. No input validation,
no integrity check — it is the floor of what a service must do, not a product.

Run: ``BENCH_PACKAGE=dir uvicorn handwritten_app:app --loop uvloop --http httptools``
"""

from __future__ import annotations

import datetime
import json
import math
import os
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI

PACKAGE = os.environ["BENCH_PACKAGE"]
with open(os.path.join(PACKAGE, "signature.json")) as handle:
    SIGNATURE = json.load(handle)
_options = ort.SessionOptions()
_options.intra_op_num_threads = 1
_options.log_severity_level = 3
SESSION = ort.InferenceSession(os.path.join(PACKAGE, "model.onnx"), _options,
                               providers=["CPUExecutionProvider"])
DATE_COLUMNS = {spec["column"] for spec in SIGNATURE["dates"]}

app = FastAPI()


def date_parts(column: str, value: str) -> dict[str, float]:
    """The numeric parts the graph takes for a date column."""
    day = datetime.datetime.fromisoformat(value)
    month, dow = day.month - 1, day.weekday()
    return {f"{column}_year": float(day.year), f"{column}_month": float(day.month),
            f"{column}_day": float(day.day), f"{column}_dayofweek": float(dow),
            f"{column}_hour": float(day.hour),
            f"{column}_month_sin": math.sin(2 * math.pi * month / 12),
            f"{column}_month_cos": math.cos(2 * math.pi * month / 12),
            f"{column}_dow_sin": math.sin(2 * math.pi * dow / 7),
            f"{column}_dow_cos": math.cos(2 * math.pi * dow / 7)}


@app.post("/predict")
async def predict(record: dict[str, Any]) -> dict[str, Any]:
    """Score one record."""
    values = dict(record)
    for column in DATE_COLUMNS:
        values.update(date_parts(column, record[column]))
    feeds = {}
    for spec in SIGNATURE["onnx_inputs"]:
        value = values.get(spec["name"])
        if spec["onnx_type"] == "string":
            feeds[spec["name"]] = np.array([[value or ""]], dtype=object)
        else:
            feeds[spec["name"]] = np.array([[np.nan if value is None else value]],
                                           dtype=np.float64)
    label, probabilities = SESSION.run(None, feeds)
    return {"prediction": label.tolist()[0], "probabilities": probabilities[0].tolist()}
