"""The runtime's replay of packaged join tables on raw records and field lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstrata.runtime.inputs import InvalidInputError
from mlstrata.runtime.joins import JoinTable, enrich_lists, enrich_records, load_joins


def _write(folder: Path, name: str, **table: object) -> None:
    (folder / "joins").mkdir(exist_ok=True)
    (folder / "joins" / name).write_text(json.dumps(table))


@pytest.fixture
def tables(tmp_path: Path) -> tuple[JoinTable, ...]:
    _write(tmp_path, "01.json", dataset="stores@2", id="ab", on=["store"], how="left",
           key_types=["integer"], columns=["city", "size"],
           rows=[[1, "Bilbao", 120.5], [2, "Vigo", None]])
    _write(tmp_path, "02.json", dataset="weeks@1", id="cd", on=["city", "week"], how="inner",
           key_types=["text", "integer"], columns=["holiday"],
           rows=[["Bilbao", 7, True], ["Vigo", 7, False]])
    return load_joins(tmp_path)


def test_tables_are_read_in_recipe_order(tables: tuple[JoinTable, ...]) -> None:
    assert [t.dataset for t in tables] == ["stores@2", "weeks@1"]
    assert load_joins(Path("/nonexistent")) == ()


def test_records_are_enriched_in_order_with_keys_normalized(
        tables: tuple[JoinTable, ...]) -> None:
    records = [{"store": 1, "week": 7}, {"store": "2", "week": 7.0}]
    assert enrich_records(tables, records) == [
        {"store": 1, "week": 7, "city": "Bilbao", "size": 120.5, "holiday": True},
        {"store": "2", "week": 7.0, "city": "Vigo", "size": None, "holiday": False}]


def test_sent_fields_are_kept(tables: tuple[JoinTable, ...]) -> None:
    record = {"store": 1, "week": 7, "city": "Vigo", "size": 1.0, "holiday": False}
    assert enrich_records(tables, [record]) == [record]


def test_an_inner_join_without_a_match_is_refused(tables: tuple[JoinTable, ...]) -> None:
    with pytest.raises(InvalidInputError, match=r"record 1, field 'city, week': \('Vigo', 8\) "
                                                r"has no row in weeks@1"):
        enrich_records(tables, [{"store": 1, "week": 7}, {"store": 2, "week": 8}])


def test_a_left_join_without_a_match_leaves_the_fields_missing(
        tables: tuple[JoinTable, ...]) -> None:
    assert enrich_records(tables[:1], [{"store": 9}]) == [{"store": 9, "city": None,
                                                          "size": None}]


def test_field_lists_from_text_cells(tables: tuple[JoinTable, ...]) -> None:
    lists = enrich_lists(tables, {"store": ["1", "2"], "week": ["7", "7"]})
    assert lists["city"] == ["Bilbao", "Vigo"] and lists["holiday"] == [True, False]


def test_arrow_batches_are_joined_like_records(tables: tuple[JoinTable, ...]) -> None:
    """Batch scoring's Arrow join (``mlstrata predict`` from a package alone) fills what the
    runtime fills for the same rows — CSV text cells included — and turns an inner join's
    unmatched key into a problem of that row instead of refusing the batch."""
    import pyarrow as pa

    from mlstrata.batch.joining import join_batch, joined_columns

    batch = pa.record_batch({"store": ["1", "2", "1", "9"], "week": ["7", "7", "7", "7"]})
    assert joined_columns(tables, batch.schema.names) == ["city", "size", "holiday"]
    assert joined_columns(tables, ["week"]) == []  # no store: nothing to join on
    joined, problems = join_batch(tables, batch)
    assert joined.to_pylist()[:3] == enrich_records(tables, batch.to_pylist()[:3])
    assert joined.column("city").to_pylist() == ["Bilbao", "Vigo", "Bilbao", None]
    assert [(p.row, p.field) for p in problems] == [(3, "city, week")]
    assert "(None, '7') has no row in weeks@1" in problems[0].message
    sent = batch.append_column("city", pa.array(["Vigo"] * 4))
    assert join_batch(tables, sent)[0].column("city").to_pylist() == ["Vigo"] * 4
