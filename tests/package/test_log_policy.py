"""The package carries ingest's PII policy and business key for the prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlstrata
from mlstrata.package.log_policy import add_log_policy
from mlstrata.workspace import Workspace


def test_inputs_get_the_ingest_action_and_the_key_is_named(workspace: Workspace,
                                                           tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    rows = [f"P{n},user{n}@example.com,+34 612 345 {n:03d},{n % 2},{20 + n}" for n in range(40)]
    source.write_text("person,email,phone,label,age\n" + "\n".join(rows) + "\n")
    dataset = mlstrata.ingest(source, "people", target="label", key="person",
                              pii={"email": "hash", "phone": "mask", "person": "hash"},
                              workspace=workspace.root).dataset
    model = workspace.put_bytes(b"not a real model", suffix=".joblib", kind="model",
                                name="people.model", meta={"dataset": dataset.id},
                                inputs={"dataset": dataset.id})
    signature: dict[str, Any] = {"inputs": [{"name": n} for n in ("email", "phone", "age")]}
    add_log_policy(signature, workspace, model)
    by_name = {entry["name"]: entry for entry in signature["inputs"]}
    assert by_name["email"]["pii"]["action"] == "hash"
    assert by_name["phone"]["pii"] == {"action": "mask", "kinds": ["phone"]}
    assert "pii" not in by_name["age"]
    assert signature["key"] == "person"
    assert signature["key_pii"]["action"] == "hash"
