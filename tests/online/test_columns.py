"""Which columns an online model leaves out: identifiers, hashed or masked PII and text with too
many categories, by the rules of batch training; ``online.keep`` and ``online.drop`` win."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlstrata import api
from mlstrata.contract import Contract
from mlstrata.errors import ConfigError
from mlstrata.online.columns import ColumnCounts, left_out
from mlstrata.online.creation import CreateRequest, create_online
from mlstrata.online.spec import build_spec

CONTRACT = Contract.model_validate({"columns": {
    "ref": {"type": "text"}, "row": {"type": "integer"}, "city": {"type": "text"},
    "zone": {"type": "text"}, "amount": {"type": "float"},
    "plan": {"type": "text", "allowed": [f"p{i}" for i in range(40)]},
    "key": {"type": "text", "unique": True}, "paid": {"type": "boolean"}}})


def _rows(count: int = 200) -> pd.DataFrame:
    return pd.DataFrame({
        "ref": [f"r-{i:05d}" for i in range(count)], "row": range(1, count + 1),
        "city": [f"c{i % 40}" for i in range(count)], "zone": [("a", "b", "c")[i % 3]
                                                              for i in range(count)],
        "amount": [i * 1.5 % 17 for i in range(count)]})


def _reasons(findings: list[dict[str, str]]) -> dict[str, str]:
    return {f["column"]: f["reason"] for f in findings}


def test_the_contract_alone_names_unique_columns_and_too_many_allowed_values() -> None:
    assert _reasons(left_out(CONTRACT, "paid")) == {"key": "unique",
                                                    "plan": "high_cardinality"}


def test_rows_add_training_s_identifier_rule_and_the_one_hot_limit() -> None:
    findings = left_out(CONTRACT, "paid", rows=_rows(), source="dataset d@1",
                        pii=[{"column": "zone", "action": "mask"},
                             {"column": "amount", "action": "keep"}])
    assert _reasons(findings) == {"ref": "identifier", "row": "identifier",
                                  "city": "high_cardinality", "zone": "pii",
                                  "plan": "high_cardinality", "key": "unique"}
    detail = {f["column"]: f["detail"] for f in findings}
    assert detail["city"].startswith("40 distinct values in dataset d@1, more than "
                                     "model.features.max_onehot_levels (30)")
    assert "a dense integer sequence" in detail["row"]
    assert detail["plan"].startswith("the contract allows 40 values")  # not in the rows


def test_whole_dataset_counts_find_a_row_counter_a_sample_would_miss() -> None:
    """A sample of 1..300,000 is no dense sequence, the whole column is: online create counts
    every row in one query, as training looks at the whole column."""
    sample = pd.Series(range(1, 300_001)).sample(100_000, random_state=0)
    assert "row" not in _reasons(left_out(CONTRACT, "paid", rows=pd.DataFrame({"row": sample})))
    whole = {"row": ColumnCounts(300_000, 300_000, (1.0, 300_000.0)),
             "city": ColumnCounts(300_000, 12, None)}
    assert _reasons(left_out(CONTRACT, "paid", counts=whole)) == {
        "row": "identifier", "plan": "high_cardinality", "key": "unique"}


def test_the_spec_leaves_the_findings_out_unless_kept_and_always_drops() -> None:
    findings = left_out(CONTRACT, "paid", rows=_rows())
    spec = build_spec("m", CONTRACT, "paid", "logistic_regression", findings=findings,
                      keep=["city"], drop=["amount"])
    assert spec.features == ("city", "zone")
    assert [(e["column"], e["reason"]) for e in spec.excluded] == [
        ("ref", "identifier"), ("row", "identifier"), ("amount", "dropped"),
        ("plan", "high_cardinality"), ("key", "unique")]
    again = type(spec).from_json(spec.to_json())
    assert again.excluded == spec.excluded and again.features == spec.features


@pytest.mark.parametrize("setting", ["keep", "drop"])
def test_a_near_miss_or_the_target_in_keep_or_drop_is_named(setting: str) -> None:
    with pytest.raises(ConfigError, match=rf"online.{setting} names 'cty'.*did you mean city"):
        build_spec("m", CONTRACT, "paid", "knn", **{setting: ["cty"]})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=rf"online.{setting} names 'paid'"):
        build_spec("m", CONTRACT, "paid", "knn", **{setting: ["paid"]})  # type: ignore[arg-type]


def test_keep_and_drop_serve_every_model_of_the_project() -> None:
    """A column of another model's contract (nothing like this one's) is passed over."""
    spec = build_spec("m", CONTRACT, "paid", "logistic_regression",
                      drop=["email_address", "amount"], keep=["merchant_category"])
    assert "amount" not in spec.features and "email_address" not in spec.features
    assert [e["column"] for e in spec.excluded if e["reason"] == "dropped"] == ["amount"]


@pytest.mark.slow
def test_online_create_from_the_credit_data_leaves_ids_pii_and_postal_codes_out(
        cli: Any, tmp_path: Path) -> None:
    project = tmp_path / "project"
    api.init(project, "columns")
    api.synth_credit(project / "data" / "credit.csv", rows=1500, seed=3)
    api.ingest(project / "data" / "credit.csv", "credit", target="default",
               key="application_id", workspace=project)
    created = cli("online", "create", "loans", "--dataset", "credit", "--target", "default",
                  "-w", project)
    assert created.code == 0, created.err
    assert "left out postal_code (identifier): text with a distinct value per row" in created.out
    shown = json.loads(cli("online", "show", "loans", "-w", project, "--json").out)["spec"]
    assert {e["column"]: e["reason"] for e in shown["excluded"]} == {
        "application_id": "unique", "postal_code": "identifier", "email": "pii",
        "phone": "pii"}
    assert not {"application_id", "postal_code", "email", "phone"} & set(shown["features"])
    config = project / "mlstrata.yaml"
    config.write_text(config.read_text() + "online: {keep: [postal_code]}\n")
    kept = create_online(api.open_workspace(project), CreateRequest(
        name="loans2", target="default", dataset="credit"))
    assert "postal_code" in kept.spec.categories
