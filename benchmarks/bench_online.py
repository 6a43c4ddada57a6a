"""Online-learning benchmark: a raw River predict-then-learn loop vs mlstrata, one run.

**In-process.** Each stream is learnt by

- ``raw``: River alone — the very pipeline mlstrata builds for the stream's contract
  (``build_pipeline``: scaler / one-hot, then the model), over feature dicts built before the
  clock starts (numbers as floats, labels as class indices): ``predict_one``, update an
  accuracy, ``learn_one``;
- ``mlstrata``: ``mlstrata.online.replay`` (what ``mlstrata online replay --commit`` runs) on a
  model created in a throw-away workspace from the stream's contract, in chunks of 1,000 rows,
  with everything on — every row checked against the contract, every chunk written to the
  event log and fsynced before it is learnt (checkpoints every 10,000 events), the guard
  (shadow model, ADWIN, snapshots);
- the same with **one part off** at a time (``no_guard``, ``no_log``: a scratch model that
  logs nothing, ``no_checks``: events taken as they come), and with all three off (``bare``:
  what is left is the feature building, the JSON form of each event and the progressive
  metric), so that the cost of each part is visible.

Streams: River's SEA (3 numbers) and Agrawal (9 numbers) generators, each as is and with a
concept drift in the middle (``ConceptDriftStream``: SEA variant 0 → 3, Agrawal function 0 → 2),
for logistic regression, Hoeffding adaptive tree and adaptive random forest (10 trees; it runs
``--events // 10`` events: ~500 events/s); and a 1M-event synthetic stream (5 numbers, one of
them nullable, 2 categories, a logistic rule with noise), logistic regression, raw vs mlstrata
with the checks and the event log (no guard: it would not fit the run's time). Events/s
exclude generating the stream. Accuracy is progressive (each event predicted before it is
learnt); raw and mlstrata learn the same pipeline, so their accuracies should match up to the
events a guard rolls back.

**HTTP.** ``mlstrata serve --online`` (logistic regression on the synthetic stream's contract,
prediction log on, guard off), pinned to CPU 0, and ``wrk`` (one thread, 8 connections) pinned
to CPU 1: each connection alternates ``POST /v1/predict`` and ``POST /v1/learn`` with the same
record's features and label (a pair = 2 requests, 1 learnt event; a learn is answered only
after its event is fsynced); also pairs whose learn names the prediction's request id. The
server's CPU time per pair is recorded too (it is what bounds the pairs on one core), and the
disk's fsync latency (what bounds them with N connections: at most N / fsync learns a second).

The machine is shared: ``os.getloadavg()`` is recorded before and after. Results:
``benchmarks/results/bench_online.json``.
Usage: ``.venv/bin/python benchmarks/bench_online.py [--events 10000] [--big 1000000]
[--seconds 10] [--repeat 1] [--only sea agrawal ... big http]`` (``--events 2000 --big 20000
--seconds 3`` checks it in a minute; ``--only`` updates those parts of the last results).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import psutil
import yaml
from _results import RESULTS, write_results
from bench_serve import _parse_wrk, free_port, stop

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SERVER_CPU, LOAD_CPU = "0", "1"
CHUNK = 1000
MODELS = ("logistic_regression", "hoeffding_adaptive_tree", "adaptive_random_forest")
CONFIGS = ("mlstrata", "no_guard", "no_log", "no_checks", "bare")
Record = dict[str, Any]


# -- streams ---------------------------------------------------------------------------------

def _number(low: float, high: float, kind: str = "float") -> dict[str, Any]:
    return {"type": kind, "min": low, "max": high}


SEA_CONTRACT = {"columns": {"x0": _number(0, 10), "x1": _number(0, 10), "x2": _number(0, 10),
                            "y": {"type": "boolean"}}}
AGRAWAL_CONTRACT = {"columns": {
    "salary": _number(0, 200_000), "commission": _number(0, 100_000),
    "age": _number(0, 120, "integer"), "elevel": _number(0, 4, "integer"),
    "car": _number(1, 20, "integer"), "zipcode": _number(0, 8, "integer"),
    "hvalue": _number(0, 1_500_000), "hyears": _number(0, 40, "integer"),
    "loan": _number(0, 600_000), "y": {"type": "integer", "allowed": [0, 1]}}}
BIG_CONTRACT = {"columns": {
    "amount": _number(0, 1e6), "rate": _number(0, 1), "age": _number(18, 100, "integer"),
    "lines": {"type": "integer", "min": 0, "max": 50, "nullable": True},
    "score": _number(-10, 10),
    "region": {"type": "text", "allowed": ["north", "south", "east", "west"]},
    "channel": {"type": "text", "allowed": ["web", "branch", "phone"]},
    "y": {"type": "text", "allowed": ["no", "yes"]}}}


def river_stream(name: str, count: int, seed: int = 7) -> list[Record]:
    """``count`` rows of River's SEA or Agrawal generator (``_drift``: a concept change in the
    middle), as records with the target ``y``."""
    from river.datasets import synth

    position, width = count // 2, max(count // 20, 1)
    if name.startswith("sea"):
        stream: Any = synth.SEA(variant=0, seed=seed)
        if name.endswith("drift"):
            stream = synth.ConceptDriftStream(stream, synth.SEA(variant=3, seed=seed + 1),
                                              position=position, width=width, seed=seed)
        return [{"x0": x[0], "x1": x[1], "x2": x[2], "y": bool(y)}
                for x, y in itertools.islice(stream, count)]
    stream = synth.Agrawal(classification_function=0, seed=seed)
    if name.endswith("drift"):
        stream = synth.ConceptDriftStream(
            stream, synth.Agrawal(classification_function=2, seed=seed + 1),
            position=position, width=width, seed=seed)
    return [{**x, "y": int(y)} for x, y in itertools.islice(stream, count)]


def big_chunks(count: int, seed: int = 11) -> Iterator[list[Record]]:
    """The synthetic stream in chunks of :data:`CHUNK` records (numpy, deterministic)."""
    rng = np.random.default_rng(seed)
    regions, channels = np.array(["north", "south", "east", "west"]), \
        np.array(["web", "branch", "phone"])
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        amount = rng.gamma(2.0, 2000.0, n)
        rate = rng.uniform(0, 1, n)
        age = rng.integers(18, 90, n)
        lines = rng.integers(0, 10, n)
        score = rng.normal(0, 2, n)
        region = rng.integers(0, 4, n)
        channel = rng.integers(0, 3, n)
        logit = (amount / 4000 - 1) - 2 * rate + (age - 50) / 30 + 0.6 * score \
            + (region == 0) - 0.5 * (channel == 2) + rng.normal(0, 1, n)
        missing = rng.uniform(0, 1, n) < 0.1
        rows = zip(amount.tolist(), rate.tolist(), age.tolist(), lines.tolist(),
                   missing.tolist(), score.tolist(), regions[region].tolist(),
                   channels[channel].tolist(), (logit > 0).tolist(), strict=True)
        yield [{"amount": a, "rate": r, "age": g, "lines": None if m else li, "score": s,
                "region": re, "channel": c, "y": "yes" if p else "no"}
               for a, r, g, li, m, s, re, c, p in rows]


# -- the raw River loop ----------------------------------------------------------------------

def raw_loop(spec: Any, chunks: Callable[[], Iterator[list[Record]]]) -> dict[str, Any]:
    """River alone: the same pipeline, feature dicts built before the clock runs."""
    from river import metrics

    from mlstrata.online.estimators import build_pipeline

    pipeline = build_pipeline(spec)
    accuracy = metrics.Accuracy()
    numbers, categories = spec.numbers, spec.categories
    index = {label: i for i, label in enumerate(spec.classes)}
    seconds, events = 0.0, 0
    for chunk in chunks():
        prepared = [({**{k: float(v) for k in numbers if (v := r[k]) is not None},
                      **{k: r[k] for k in categories if r[k] is not None}}, index[r[spec.target]])
                    for r in chunk]
        began = time.perf_counter()
        for x, y in prepared:
            accuracy.update(y, pipeline.predict_one(x))
            pipeline.learn_one(x, y)
        seconds += time.perf_counter() - began
        events += len(prepared)
    return _figures(events, seconds, accuracy.get())


# -- mlstrata in-process ---------------------------------------------------------------------

class _Unchecked:
    """The ``no_checks`` row: events taken as they come (the contract is not evaluated)."""

    def __init__(self, spec: Any) -> None:
        self.target = spec.target
        self.columns = [name for name in spec.contract.columns if name != spec.target]

    def learn_event(self, row: Record) -> dict[str, Any]:
        return {"record": {name: row.get(name) for name in self.columns},
                "label": row[self.target]}


def workspace_with(root: Path, contract: dict[str, Any], model: str) -> Any:
    """A fresh workspace holding the online model ``bench`` for ``contract``."""
    from mlstrata.online.creation import CreateRequest, create_online
    from mlstrata.workspace import Workspace

    ws = Workspace.init(root, "bench-online")
    path = root / "contract.yaml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    create_online(ws, CreateRequest("bench", "y", model, contract=path))
    return ws


def mlstrata_run(config: str, contract: dict[str, Any], model: str,
                 chunks: Callable[[], Iterator[list[Record]]]) -> dict[str, Any]:
    """``replay`` on a new model with the parts ``config`` leaves on; generation not timed."""
    from mlstrata.config import GuardConfig
    from mlstrata.online.guard import open_guarded
    from mlstrata.online.learner import OnlineModel
    from mlstrata.online.recovery import open_online
    from mlstrata.online.replay import replay

    root = Path(tempfile.mkdtemp(prefix="bench-online-"))
    try:
        ws = workspace_with(root, contract, model)
        writable = config not in ("no_log", "bare")
        opened: Any
        if config in ("no_guard", "bare"):
            opened, _ = open_online(ws, "bench", writable=writable)
        else:
            opened, _ = open_guarded(ws, "bench", writable=writable,
                                     settings=GuardConfig(enabled=True))
        if config in ("no_checks", "bare"):
            opened.checker = _Unchecked(opened.spec)
        generating = [0.0]
        report = replay(cast(OnlineModel, opened), _untimed(chunks(), generating), every=10**9)
        opened.close()
        figures = _figures(report.learnt, report.seconds - generating[0], report.overall)
        if hasattr(opened, "counters"):
            figures["rollbacks"] = int(opened.counters()["rollbacks"])
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _untimed(chunks: Iterator[list[Record]], spent: list[float]) -> Iterator[list[Record]]:
    """``chunks``, adding the time spent making each to ``spent[0]``."""
    while True:
        began = time.perf_counter()
        chunk = next(chunks, None)
        spent[0] += time.perf_counter() - began
        if chunk is None:
            return
        yield chunk


def _figures(events: int, seconds: float, accuracy: float | None) -> dict[str, Any]:
    return {"events": events, "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds) if seconds else None,
            "accuracy": round(float(accuracy), 5) if accuracy is not None else None}


def spec_for(contract: dict[str, Any], model: str) -> Any:
    from mlstrata.contract import Contract
    from mlstrata.online.spec import build_spec

    params = {"adaptive_random_forest": {"n_models": 10}}.get(model, {})
    return build_spec("bench", Contract.model_validate(contract), "y", model, params=params)


def compare(name: str, contract: dict[str, Any], model: str,
            chunks: Callable[[], Iterator[list[Record]]],
            configs: tuple[str, ...] = CONFIGS, repeat: int = 1) -> dict[str, Any]:
    """The raw loop and each mlstrata configuration on one stream, side by side; with
    ``repeat`` > 1 they take turns that many times and each keeps its fastest run (the
    machine is shared: the best of interleaved runs is the least disturbed)."""
    rows: dict[str, Any] = {}
    for _ in range(repeat):
        runs = {"raw": raw_loop(spec_for(contract, model), chunks)}
        for config in configs:
            runs[config] = mlstrata_run(config, contract, model, chunks)
        for config, run in runs.items():
            if config not in rows or run["events_per_s"] > rows[config]["events_per_s"]:
                rows[config] = run
    raw = rows["raw"]["events_per_s"]
    for row in rows.values():
        row["vs_raw"] = round(row["events_per_s"] / raw, 3) if raw and row["events_per_s"] \
            else None
        # what mlstrata adds to each event, in µs: a fixed cost, whatever the model's own is
        row["added_us_per_event"] = round(1e6 / row["events_per_s"] - 1e6 / raw, 1) \
            if raw and row["events_per_s"] else None
    shown = "  ".join(f"{k} {v['events_per_s']}/s {v['accuracy']}" for k, v in rows.items())
    print(f"  {name} {model}: {shown}", flush=True)
    return rows


def in_process(streams: list[str], events: int, repeat: int = 1) -> dict[str, Any]:
    """Every stream × model (ARF on a tenth of the events)."""
    found: dict[str, Any] = {}
    for stream in streams:
        contract = SEA_CONTRACT if stream.startswith("sea") else AGRAWAL_CONTRACT
        found[stream] = {}
        for model in MODELS:
            count = events // 10 if model == "adaptive_random_forest" else events
            rows = river_stream(stream, count)

            def chunks(rows: list[Record] = rows) -> Iterator[list[Record]]:
                return (rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK))

            found[stream][model] = compare(stream, contract, model, chunks, repeat=repeat)
    return found


def big(count: int, repeat: int = 1) -> dict[str, Any]:
    """The synthetic stream, logistic regression: raw vs mlstrata with checks and the event
    log (the guard's cost is on the River streams; at ~3x it would not fit the run's time)."""
    return compare(f"synthetic {count:,}", BIG_CONTRACT, "logistic_regression",
                   lambda: big_chunks(count), configs=("no_guard",), repeat=repeat)


# -- HTTP ------------------------------------------------------------------------------------

PAIRS_LUA = """
bodies = { %s }
labels = { %s }
i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local n = math.floor(i / 2) %% #bodies + 1
  if i %% 2 == 1 then
    return wrk.format(nil, "/v1/predict", nil, bodies[n])
  end
  return wrk.format(nil, "/v1/learn", nil, labels[n])
end
"""

BY_ID_LUA = """
bodies = { %s }
pending = {}
i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local id = table.remove(pending)
  if id then
    return wrk.format(nil, "/v1/learn", nil,
                      '{"request_id": "' .. id .. '", "label": "' .. labels[id] .. '"}')
  end
  i = i %% #bodies + 1
  return wrk.format(nil, "/v1/predict", nil, bodies[i])
end
labels = {}
response = function(status, headers, body)
  local id = headers["x-request-id"] or headers["X-Request-Id"]
  if id and string.find(body, "predictions", 1, true) then
    labels[id] = answers[(i - 1) %% #bodies + 1]
    table.insert(pending, id)
  end
end
answers = { %s }
"""


def _lua_strings(items: list[str]) -> str:
    return ",\n".join("[==[" + item + "]==]" for item in items)


def wrk_run(url: str, script: str, connections: int, seconds: int) -> dict[str, Any]:
    """wrk pinned to the load CPU running ``script``; parsed figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}",
                              f"-d{seconds}s", "--latency", "-s", handle.name, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)
    return _parse_wrk(out)


def start_online(root: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlstrata serve --online bench`` pinned to the server CPU, once it answers."""
    import urllib.error
    import urllib.request

    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, str(BIN / "mlstrata"), "serve", "--online", "bench",
         "-w", str(root), "--port", str(port)], cwd=root,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    began = time.perf_counter()
    while time.perf_counter() - began < 60:
        if process.poll() is not None:
            error = process.stderr.read().decode()[-800:] if process.stderr else ""
            raise RuntimeError(f"mlstrata serve --online exited: {error}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready",
                                        timeout=2) as answer:
                if answer.status == 200:
                    return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    stop(process)
    raise RuntimeError("mlstrata serve --online did not answer within 60 s")


def fsync_latency(directory: Path, count: int = 200) -> dict[str, float]:
    """p50/p99 ms of appending one event-sized line and fsyncing it, in ``directory`` (the
    floor of an acknowledged learn: with N connections at most N / p50 learns a second)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 200 + b"\n")
            began = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - began) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 3),
            "p99_ms": round(times[int(len(times) * 0.99)], 3)}


def http(seconds: int, connections: int = 8) -> dict[str, Any]:
    """Predict + learn pairs over HTTP (features + label, and by request id), events/s."""
    rows = next(big_chunks(200, seed=3))
    bodies = [json.dumps({k: v for k, v in r.items() if k != "y"}) for r in rows]
    learns = [json.dumps(r) for r in rows]
    answers = [r["y"] for r in rows]
    root = Path(tempfile.mkdtemp(prefix="bench-online-http-"))
    found: dict[str, Any] = {"connections": connections, "seconds": seconds,
                             "model": "logistic_regression", "prediction_log": True,
                             "guard": False}
    try:
        workspace_with(root, BIG_CONTRACT, "logistic_regression")
        found["fsync_before"] = fsync_latency(root)
        found["learns_per_s_ceiling"] = round(connections * 1000 / found["fsync_before"]["p50_ms"])
        print(f"  fsync {found['fsync_before']}: at most {found['learns_per_s_ceiling']} "
              f"acknowledged learns/s from {connections} connections", flush=True)
        port = free_port()
        process = start_online(root, port)
        try:
            url = f"http://127.0.0.1:{port}"
            scripts = {
                "pairs_features": PAIRS_LUA % (_lua_strings(bodies), _lua_strings(learns)),
                "pairs_by_request_id": BY_ID_LUA % (_lua_strings(bodies),
                                                    _lua_strings(answers)),
            }
            server = psutil.Process(process.pid)
            for name, script in scripts.items():
                used = sum(server.cpu_times()[:2])
                result = wrk_run(url, script, connections, seconds)
                used = sum(server.cpu_times()[:2]) - used
                result["pairs_per_s"] = round(result["requests_per_s"] / 2)
                # the server's own CPU time (user + system, all threads) per answered pair
                result["server_cpu_us_per_pair"] = round(used / max(result["requests"], 1)
                                                         * 2e6)
                found[name] = result
                print(f"  http {name} c={connections}: {result}", flush=True)
            with urllib_get(f"{url}/metrics") as answer:
                text = answer.read().decode()
            found["server_metrics"] = {line.split("{")[0]: line.rsplit(" ", 1)[1]
                                       for line in text.splitlines()
                                       if line.startswith(("mlstrata_online_learns_total",
                                                           "mlstrata_online_last_event"))
                                       and 'outcome="refused"' not in line}
        finally:
            stop(process)
        found["fsync_after"] = fsync_latency(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return found


def urllib_get(url: str) -> Any:
    import urllib.request

    return urllib.request.urlopen(url, timeout=10)


# -- main ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000,
                        help="events per River stream (ARF: a tenth)")
    parser.add_argument("--big", type=int, default=1_000_000,
                        help="events of the synthetic stream")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per HTTP load")
    parser.add_argument("--only", nargs="*", default=None,
                        help="parts to run: sea sea_drift agrawal agrawal_drift big http")
    parser.add_argument("--repeat", type=int, default=1,
                        help="interleaved runs of each in-process row; the fastest is kept")
    args = parser.parse_args()
    wanted = args.only or ["sea", "sea_drift", "agrawal", "agrawal_drift", "big", "http"]
    if "http" in wanted and shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    previous = RESULTS / "bench_online.json"
    figures: dict[str, Any] = json.loads(previous.read_text()) if args.only \
        and previous.exists() else {}  # a partial run updates its parts of the last results
    figures.update({"events": args.events, "chunk": CHUNK, "repeat": args.repeat})
    streams = [s for s in wanted if s in ("sea", "sea_drift", "agrawal", "agrawal_drift")]
    if streams:
        found = _with_load(lambda: in_process(streams, args.events, args.repeat))
        figures["in_process"] = {**figures.get("in_process", {}), **found}
    if "big" in wanted:
        figures["synthetic"] = _with_load(lambda: big(args.big, args.repeat))
    if "http" in wanted:
        figures["http"] = _with_load(lambda: http(args.seconds))
    write_results("bench_online", {k: v for k, v in figures.items()
                                   if k not in ("benchmark", "date", "machine")})


def _with_load(part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``part``'s figures with the load average (1, 5, 15 min) before and after it and the
    time it ran: the machine is shared."""
    load = [round(v, 2) for v in os.getloadavg()]
    print(f"load average {load}", flush=True)
    found = part()
    return {**found, "load_before": load, "load_after": [round(v, 2) for v in os.getloadavg()],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


if __name__ == "__main__":
    main()
