"""Holdout assignments (random, stratified, time, group) and recorded train/validation splits."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlstrata.data.split import (
    holdout_query,
    load_split,
    split_dataset,
    stratified_positions,
    stratum_rows,
    subset_sql,
)
from mlstrata.errors import DataError, RefNotFoundError
from mlstrata.workspace import Workspace
from tests._factories import make_dataset

TABLE = """
CREATE TABLE rows AS SELECT
    range AS id,
    CASE WHEN range % 10 < 7 THEN 'a' WHEN range % 10 < 9 THEN 'b' ELSE 'c' END AS label,
    DATE '2024-01-01' + CAST((range * 37) % 200 AS INTEGER) AS day,
    range // 4 AS customer
FROM range(200)
"""
KW = {"target": "label", "time": "day", "group": "customer"}


def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(TABLE)
    return con


def _assign(con: duckdb.DuckDBPyConnection, strategy: str, seed: int = 0,
            fraction: float = 0.2) -> list[tuple[object, ...]]:
    query = holdout_query("rows", strategy=strategy, fraction=fraction, seed=seed, **KW)
    return con.execute(query).fetchall()


@pytest.mark.parametrize("strategy", ["random", "stratified", "time", "group"])
def test_holdout_is_deterministic_across_connections_and_keeps_row_order(strategy: str) -> None:
    first, second = _assign(_connection(), strategy), _assign(_connection(), strategy)
    assert first == second
    assert [row[0] for row in first] == list(range(200))
    assert len(first[0]) == 5 and all(isinstance(row[-1], bool) for row in first)


@pytest.mark.parametrize("strategy", ["random", "stratified", "group"])
def test_holdout_depends_on_the_seed(strategy: str) -> None:
    con = _connection()
    assert _assign(con, strategy, seed=0) != _assign(con, strategy, seed=1)


def test_random_holds_out_exactly_the_fraction() -> None:
    rows = _assign(_connection(), "random", fraction=0.15)
    assert sum(row[-1] for row in rows) == 30


def test_stratified_holds_out_the_fraction_of_every_class() -> None:
    rows = _assign(_connection(), "stratified", fraction=0.25)
    held = {label: sum(1 for r in rows if r[1] == label and r[-1]) for label in "abc"}
    assert held == {"a": round(0.25 * 140), "b": round(0.25 * 40), "c": round(0.25 * 20)}


def test_time_holds_out_the_most_recent_rows() -> None:
    rows = _assign(_connection(), "time", fraction=0.2)
    held = [r for r in rows if r[-1]]
    kept = [r for r in rows if not r[-1]]
    assert len(held) == 40
    assert min(r[2] for r in held) >= max(r[2] for r in kept)


def test_time_ties_are_broken_by_row_order() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE rows AS SELECT range AS id, DATE '2024-01-01' AS day FROM range(10)")
    query = holdout_query("rows", strategy="time", fraction=0.3, seed=0, time="day")
    assert [r[0] for r in con.execute(query).fetchall() if r[-1]] == [7, 8, 9]


def test_group_keeps_every_group_on_one_side() -> None:
    rows = _assign(_connection(), "group", fraction=0.2)
    sides: dict[object, set[bool]] = {}
    for row in rows:
        sides.setdefault(row[3], set()).add(bool(row[-1]))
    assert all(len(side) == 1 for side in sides.values())
    assert 0.1 <= sum(bool(r[-1]) for r in rows) / len(rows) <= 0.3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "random", "fraction": 1.0}, "fraction 1.0 is outside (0, 1)"),
        ({"strategy": "random", "fraction": 0}, "fraction 0 is outside (0, 1)"),
        ({"strategy": "stratified", "fraction": 0.2},
         "needs a target column; name it with --target"),
        ({"strategy": "stratified", "fraction": 0.2, "target": "lable"},
         "target column 'lable' does not exist (did you mean 'label'?)"),
        ({"strategy": "grup", "fraction": 0.2},
         "strategy 'grup' is unknown (did you mean 'group'?)"),
    ],
)
def test_holdout_arguments_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataError) as info:
        holdout_query("rows", seed=0, columns=["id", "label", "day"], **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- strata of a continuous or rare-valued target -----------------------------------------------


def _held(values: Sequence[object], fraction: float, seed: int = 0) -> list[bool]:
    """Whether each of ``values`` is held out when a table of them is stratified on them."""
    con = duckdb.connect()
    con.register("given", pa.table({"y": pa.array(values)}))
    con.execute("CREATE TABLE t AS SELECT * FROM given")
    query = holdout_query("t", strategy="stratified", fraction=fraction, seed=seed, target="y")
    return [bool(held) for _, held in con.execute(query).fetchall()]


def _half_up(fraction: float, rows: int) -> int:
    return math.floor(Fraction(repr(fraction)) * rows + Fraction(1, 2))


def test_continuous_target_gives_every_band_its_share_and_both_tails() -> None:
    # One stratum per distinct value sealed nothing of a continuous target (20% of 1 row is 0).
    values = np.random.default_rng(0).lognormal(0.0, 2.0, size=2000)
    held = np.array(_held(values.tolist(), 0.2))
    assert held.sum() == 400
    by_rank = held[np.argsort(values)]
    assert [int(decile.sum()) for decile in by_rank.reshape(10, 200)] == [40] * 10
    assert by_rank[:5].sum() == 1 and by_rank[-5:].sum() == 1, "one of the 5 lowest and highest"


def test_continuous_holdout_is_deterministic_and_depends_on_the_seed() -> None:
    values = np.random.default_rng(1).normal(size=300).tolist()
    assert _held(values, 0.2, seed=3) == _held(values, 0.2, seed=3)
    assert _held(values, 0.2, seed=3) != _held(values, 0.2, seed=4)


def test_classes_too_small_to_give_a_row_are_pooled() -> None:
    values = ["common"] * 180 + [f"rare{i:02}" for i in range(20)]
    held = _held(values, 0.2)
    assert sum(held) == 40
    assert sum(held[180:]) == 4, "20 single rows pooled in 4 bins of 5 give one row each"
    assert sum(held[:180]) == 36


def test_strata_carry_the_rounding_so_the_total_is_the_fraction() -> None:
    # 3 classes of 7 rows at 50%: rounding each alone would hold out 3 x round(3.5) = 12 rows.
    values = ["a"] * 7 + ["b"] * 7 + ["c"] * 7
    held = _held(values, 0.5)
    assert sum(held) == 11
    assert sorted(sum(held[i:i + 7]) for i in (0, 7, 14)) == [3, 4, 4]


@st.composite
def _targets(draw: st.DrawFn) -> list[float]:
    """Continuous, tied, heavy-tailed, few-level and one-huge-class targets of 200-600 rows."""
    kind = draw(st.sampled_from(["normal", "rounded", "lognormal", "pareto", "levels", "huge"]))
    rows = draw(st.integers(200, 600))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "normal":
        return list(rng.normal(size=rows))
    if kind == "rounded":
        return list(rng.normal(size=rows).round(1))
    if kind == "lognormal":
        return list(rng.lognormal(0.0, 2.5, size=rows))
    if kind == "pareto":
        return list(rng.pareto(1.1, size=rows))
    if kind == "levels":
        return list(rng.choice(4, size=rows, p=rng.dirichlet(np.ones(4))).astype(float))
    tiny = rng.integers(-3, 4, size=draw(st.integers(1, 15))).astype(float)
    return [*np.zeros(rows - len(tiny)), *tiny]


def _bands(values: Sequence[float]) -> list[int]:
    """Each value's decile band: values between two consecutive deciles (ties stay together)."""
    ordered = sorted(values)
    cuts = [ordered[len(ordered) * j // 10] for j in range(1, 10)]
    return [bisect_right(cuts, v) for v in values]


@settings(max_examples=40)
@given(values=_targets(), fraction=st.sampled_from([0.1, 0.15, 0.2, 0.25, 0.3, 0.5]),
       seed=st.integers(0, 1000))
def test_held_out_share_is_exact_and_every_band_is_represented(
    values: list[float], fraction: float, seed: int
) -> None:
    held = _held(values, fraction, seed)
    assert sum(held) == _half_up(fraction, len(values))
    least = stratum_rows(fraction)
    for value, count in Counter(values).items():
        if count >= least:
            value_held = sum(h for v, h in zip(values, held, strict=True) if v == value)
            assert abs(value_held - fraction * count) <= 1
    bands = _bands(values)
    checked = {band for band, count in Counter(bands).items() if count >= 2 * least}
    assert checked == {b for b, h in zip(bands, held, strict=True) if h and b in checked}
    if len(set(values)) == len(values):
        assert {0, 9} <= checked, "both tails of a continuous target reach the held-out rows"


def test_stratified_positions_are_a_seeded_permutation_in_value_order() -> None:
    values = np.random.default_rng(2).pareto(1.5, size=50)
    places = stratified_positions(values, min_rows=5, seed=0)
    assert sorted(places) == list(range(50))
    assert places == stratified_positions(values, min_rows=5, seed=0)
    assert places != stratified_positions(values, min_rows=5, seed=1)
    by_rank = np.asarray(places)[np.argsort(values)]
    assert [sorted(by_rank[i:i + 5] // 5) for i in range(0, 50, 5)] == [[i // 5] * 5
                                                                       for i in range(0, 50, 5)]


# -- recorded splits ----------------------------------------------------------------------------

DATA = "SELECT range AS x, range % 3 AS y, range // 5 AS g FROM range(60)"


def test_split_is_recorded_with_meta_and_lineage(workspace: Workspace) -> None:
    dataset = make_dataset(workspace, DATA, target="y")
    report = split_dataset(workspace, "toy", fraction=0.2, seed=3)
    split = report.artifact
    assert (split.kind, split.name) == ("split", "toy.split")
    assert split.meta["strategy"] == "stratified" and split.meta["columns"] == {"target": "y"}
    assert split.meta["counts"] == {"train": 48, "validation": 12}
    assert split.meta["balance"]["validation"] == {"0": 4, "1": 4, "2": 4}
    assert [(role, a.id) for role, a in workspace.parents(split.id)] == [("dataset", dataset.id)]
    assert report.to_dict()["dataset"] == "toy@1" and "<table>" in report.to_html()


def test_same_seed_gives_the_same_split_artifact(workspace: Workspace) -> None:
    make_dataset(workspace, DATA, target="y")
    first = split_dataset(workspace, "toy", seed=1).artifact
    again = split_dataset(workspace, "toy", seed=1).artifact
    other = split_dataset(workspace, "toy", seed=2).artifact
    assert first.id == again.id and first.version == again.version
    assert other.id != first.id


def test_splits_of_equal_sized_datasets_stay_distinct(workspace: Workspace) -> None:
    make_dataset(workspace, DATA, name="one")
    make_dataset(workspace, DATA.replace("range % 3", "range % 4"), name="two")
    one, two = split_dataset(workspace, "one").artifact, split_dataset(workspace, "two").artifact
    assert one.id != two.id
    assert load_split(workspace, "two")[0].id == two.id


def test_split_aligns_with_the_dataset_rows(workspace: Workspace) -> None:
    dataset = make_dataset(workspace, DATA)
    split_dataset(workspace, "toy", strategy="group", group="g", fraction=0.3)
    split, path = load_split(workspace, "toy")
    data_path = workspace.store / dataset.relpath
    con = duckdb.connect()
    validation = con.execute(subset_sql(data_path, path, "validation")).fetchall()
    train = con.execute(subset_sql(data_path, path, "train")).fetchall()
    assert len(validation) == split.meta["counts"]["validation"]
    assert {r[2] for r in validation}.isdisjoint({r[2] for r in train})
    assert [r[0] for r in train] == sorted(r[0] for r in train)


def test_time_split_defaults_to_the_ingest_time_column(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS x, DATE '2024-01-01' + CAST(range AS INTEGER) AS d "
                            "FROM range(20)", extra_meta={"time": "d"})
    report = split_dataset(workspace, "toy", strategy="time", fraction=0.25)
    _, path = load_split(workspace, "toy")
    subsets = [r[0] for r in duckdb.connect().execute(
        f"SELECT subset FROM read_parquet('{path}')").fetchall()]
    assert report.artifact.meta["columns"] == {"time": "d"}
    assert subsets == ["train"] * 15 + ["validation"] * 5


def test_split_on_a_continuous_target_holds_out_the_fraction(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS x, sqrt(range) * 1.5 AS y FROM range(97)",
                 target="y")
    report = split_dataset(workspace, "toy", fraction=0.1, seed=0)
    assert report.artifact.meta["strategy"] == "stratified"
    assert report.artifact.meta["counts"] == {"train": 87, "validation": 10}
    _, path = load_split(workspace, "toy")
    subsets = [r[0] for r in duckdb.connect().execute(
        f"SELECT subset FROM read_parquet('{path}')").fetchall()]
    assert [subsets[i:i + 10].count("validation") for i in range(0, 90, 10)] == [1] * 9


def test_split_errors_leave_nothing_behind(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS x FROM range(3)")
    before = workspace.artifacts()
    with pytest.raises(DataError, match="leaves the validation subset empty"):
        split_dataset(workspace, "toy", fraction=0.1)
    with pytest.raises(DataError, match="group column 'gg' does not exist"):
        split_dataset(workspace, "toy", strategy="group", group="gg")
    with pytest.raises(RefNotFoundError, match="no split recorded for toy@1"):
        load_split(workspace, "toy")
    assert workspace.artifacts() == before
