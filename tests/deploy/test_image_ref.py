"""--image follows the Docker distribution reference grammar; a bad one is named with the fix."""

from __future__ import annotations

import pytest

from mlstrata.deploy.image_ref import ImageReference, parse_image
from mlstrata.deploy.output import DeployError

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("reference", "parsed"), [
    ("credit", ImageReference(None, "credit", None, None)),
    ("credit:1.0", ImageReference(None, "credit", "1.0", None)),
    ("team/credit-model:v1_2", ImageReference(None, "team/credit-model", "v1_2", None)),
    ("library/python:3.11-slim", ImageReference(None, "library/python", "3.11-slim", None)),
    ("registry.example.com/team/credit:1", ImageReference("registry.example.com",
                                                          "team/credit", "1", None)),
    ("localhost:5000/credit:1", ImageReference("localhost:5000", "credit", "1", None)),
    ("localhost/credit", ImageReference("localhost", "credit", None, None)),
    ("[::1]:5000/credit", ImageReference("[::1]:5000", "credit", None, None)),
    ("10.0.0.1:5000/a/b/c", ImageReference("10.0.0.1:5000", "a/b/c", None, None)),
    (f"ghcr.io/acme/credit@{DIGEST}", ImageReference("ghcr.io", "acme/credit", None, DIGEST)),
    (f"ghcr.io/acme/credit:1@{DIGEST}", ImageReference("ghcr.io", "acme/credit", "1", DIGEST)),
    ("Registry.Example.com/a__b/c--d.e:X", ImageReference("Registry.Example.com", "a__b/c--d.e",
                                                          "X", None)),
])
def test_valid_references_parse(reference: str, parsed: ImageReference) -> None:
    assert parse_image(reference) == parsed
    assert str(parsed) == reference


@pytest.mark.parametrize(("reference", "reason"), [
    ("", "it is empty"),
    ("credit model", "whitespace"),
    ("https://registry.example.com/credit", "drop the URL scheme"),
    ("Credit:1", "must be lowercase"),
    ("team/Credit", "must be lowercase"),
    ("registry.example.com/Team/credit", "must be lowercase"),
    ("credit:-1", "a tag is"),
    ("credit:" + "x" * 129, "a tag is"),
    ("credit@sha256:abc", "digest"),
    (f"credit@sha256:{'0' * 63}g", "digest"),
    ("credit@sha256:" + "0" * 40, "64 hex digits"),
    ("a___b", "path components"),
    ("-credit", "path components"),
    ("credit/", "path components"),
    ("a:b:c", "path components"),
    ("registry.example.com/" + "a" * 255, "longer than 255"),
])
def test_invalid_references_say_why(reference: str, reason: str) -> None:
    with pytest.raises(DeployError) as error:
        parse_image(reference)
    message = str(error.value)
    assert message.startswith("--image ") and "not a valid image reference" in message
    assert reason in message and "\n" not in message


def test_pinned_means_a_digest_or_a_tag_other_than_latest() -> None:
    assert parse_image("credit:1").pinned and parse_image(f"credit@{DIGEST}").pinned
    assert not parse_image("credit").pinned and not parse_image("credit:latest").pinned
    assert parse_image("registry.example.com/team/credit:1").name == \
        "registry.example.com/team/credit"


def test_the_option_is_named() -> None:
    with pytest.raises(DeployError, match="^--batch-image 'X' "):
        parse_image("X", "--batch-image")
