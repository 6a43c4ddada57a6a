"""Objects of an S3-compatible store: ``s3://bucket/key`` — one object, a prefix, or a glob —
listed and fetched through pyarrow's S3 filesystem.

Why pyarrow: its S3 client ships inside the pyarrow wheel, while DuckDB's ``httpfs`` extension is
downloaded from DuckDB's site on first use, which fails on a machine that reaches only package
registries. Listing pages through ListObjectsV2 continuation tokens, so a prefix of more than
1,000 keys lists whole; each object is streamed to staging in 1 MiB blocks while its sha256 is
computed, so memory stays flat whatever its size. The ingest then reads those staged copies: the
dataset is built from exactly the bytes that are backed up (a second read from the store could
see a newer object).

Configuration is the usual environment, as the AWS CLI reads it: ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` (an S3-compatible server), ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and
credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``) or the
profile ``AWS_PROFILE`` names in ``~/.aws``. Messages and the catalog never hold a secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SourceError
from ._db_readers import redact_url
from ._lake_files import glob_regex, is_bookkeeping, split_glob

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

__all__ = ["S3Location", "StoredObject", "fetch_object", "list_objects", "open_store",
           "parse_s3_url", "store_details"]

_BLOCK = 1 << 20
_AWS_ERROR = re.compile(r"AWS Error (\w+) during (\w+) operation:? ?(.*?)(?: \(Request ID|$)")
_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key that may be a prefix or hold a glob."""

    bucket: str
    key: str

    @property
    def url(self) -> str:
        """``s3://bucket/key`` as the user wrote it (an S3 URL has no place for a secret)."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class StoredObject:
    """One listed object: its key, its key relative to the listed prefix, its size."""

    key: str
    relative: str
    size: int


def parse_s3_url(location: str) -> S3Location:
    """The bucket and key of ``s3://bucket/key`` (split by hand: ``?`` is a glob here, not the
    start of a query string).

    >>> parse_s3_url("s3://lake/sales/year=2024/*.parquet")
    S3Location(bucket='lake', key='sales/year=2024/*.parquet')
    """
    bucket, _, key = location.split("://", 1)[-1].partition("/")
    if "@" in bucket:
        raise SourceError("an s3:// URL cannot carry credentials; set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and write s3://BUCKET/KEY")
    if not bucket:
        raise SourceError(f"{location}: an S3 URL names a bucket, e.g. s3://BUCKET/prefix/")
    return S3Location(bucket, key.lstrip("/"))


def open_store(env: Mapping[str, str] = os.environ) -> S3FileSystem:
    """An S3 filesystem configured from ``env`` (endpoint, region, credentials or profile)."""
    from pyarrow.fs import S3FileSystem

    options: dict[str, Any] = {"connect_timeout": 10, "request_timeout": 60}
    endpoint = _endpoint(env)
    if endpoint:
        options["endpoint_override"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region or endpoint:
        options["region"] = region or "us-east-1"
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(access_key=env["AWS_ACCESS_KEY_ID"],
                       secret_key=env["AWS_SECRET_ACCESS_KEY"],
                       session_token=env.get("AWS_SESSION_TOKEN"))
    return S3FileSystem(**options)


def store_details(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What the catalog records about the store: endpoint and region, never a credential."""
    details = {"endpoint": redact_url(_endpoint(env) or "https://s3.amazonaws.com")}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        details["region"] = region
    if env.get("AWS_PROFILE") and not env.get("AWS_ACCESS_KEY_ID"):
        details["profile"] = env["AWS_PROFILE"]
    return details


def list_objects(fs: S3FileSystem, where: S3Location) -> list[StoredObject]:
    """The data objects ``where`` names, in key order: the object itself, every object under
    the prefix, or those the glob matches; bookkeeping files (``_SUCCESS``...) are left out."""
    from pyarrow.fs import FileType

    base, pattern = split_glob(where.key)
    prefix = base.rstrip("/")
    with _store_errors(where):
        infos = _list_under(fs, f"{where.bucket}/{prefix}")
        if not infos and pattern is None and prefix:
            single = fs.get_file_info(f"{where.bucket}/{prefix}")
            if single.type == FileType.File:
                return [StoredObject(prefix, prefix.rsplit("/", 1)[-1], int(single.size))]
    matcher = glob_regex(pattern) if pattern is not None else None
    start = len(where.bucket) + len(prefix) + 2 if prefix else len(where.bucket) + 1
    found = []
    for info in infos:
        relative = info.path[start:]
        if (info.type == FileType.File and not is_bookkeeping(relative)
                and (matcher is None or matcher.fullmatch(relative))):
            found.append(StoredObject(info.path[len(where.bucket) + 1:], relative, int(info.size)))
    if not found:
        raise SourceError(_nothing_found(fs, where, prefix))
    return sorted(found, key=lambda item: item.key)


def _list_under(fs: S3FileSystem, path: str) -> list[Any]:
    """Every entry under ``path`` (none when the prefix does not exist; a missing bucket or
    refused credentials still raise, so they are told apart from an empty prefix)."""
    from pyarrow.fs import FileSelector

    try:
        return list(fs.get_file_info(FileSelector(path, recursive=True)))
    except FileNotFoundError:
        return []


def fetch_object(fs: S3FileSystem, where: S3Location, item: StoredObject,
                 target: Path) -> dict[str, Any]:
    """Stream one object to ``target``; return its manifest entry (key, size, ETag, sha256)."""
    digest, size = hashlib.sha256(), 0
    shown = f"s3://{where.bucket}/{item.key}"
    with _store_errors(where), fs.open_input_stream(f"{where.bucket}/{item.key}") as stream, \
            target.open("wb") as out:
        etag = (stream.metadata() or {}).get("ETag", b"").decode().strip('"')
        while block := stream.read(_BLOCK):
            digest.update(block)
            out.write(block)
            size += len(block)
    if size != item.size:
        raise SourceError(f"{shown} changed while it was being read ({item.size} bytes listed, "
                          f"{size} read); ingest it again")
    return {"key": item.key, "size": size, "etag": etag, "sha256": digest.hexdigest()}


@contextlib.contextmanager
def _store_errors(where: S3Location) -> Iterator[None]:
    """Turn the S3 client's errors into one line naming the URL and the fix."""
    try:
        yield
    except OSError as exc:
        raise SourceError(_hide_secrets(_explain(str(exc), where))) from exc


def _explain(text: str, where: S3Location) -> str:
    found = _AWS_ERROR.search(text)
    code, reason = (found.group(1), found.group(3)) if found else ("", text.splitlines()[0])
    endpoint = store_details()["endpoint"]
    if code == "NETWORK_CONNECTION" or "curlCode" in text:
        detail = reason.split("Details: ")[-1].rstrip(".")
        return (f"cannot reach the object store at {endpoint} ({detail}) to read {where.url}; "
                "check AWS_ENDPOINT_URL, the network, and that the server is running")
    if code == "NO_SUCH_BUCKET":
        return (f"{where.url}: bucket {where.bucket!r} does not exist at {endpoint}; check the "
                "bucket name (and AWS_ENDPOINT_URL if the bucket is on another server)")
    if code in ("SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY_ID"):
        which = ("the secret key does not match the access key id"
                 if code == "SIGNATURE_DOES_NOT_MATCH" else "the access key id is unknown to it")
        return (f"{where.url}: the object store at {endpoint} refused the credentials ({which});"
                " check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile AWS_PROFILE "
                "names")
    if code == "ACCESS_DENIED":
        return (f"{where.url}: access denied by {endpoint}; the credentials need s3:ListBucket "
                "and s3:GetObject on it (check AWS_ACCESS_KEY_ID / AWS_PROFILE)")
    return (f"{where.url}: the object store at {endpoint} failed ({code or 'error'}: "
            f"{reason.rstrip('.')}); check the URL and the AWS_* settings")


def _nothing_found(fs: S3FileSystem, where: S3Location, prefix: str) -> str:
    """Why nothing matched, with the nearest names at the level where the key went wrong."""
    from pyarrow.fs import FileSelector

    parent, _, last = prefix.rpartition("/")
    with contextlib.suppress(OSError):
        siblings = [info.base_name for info in fs.get_file_info(
            FileSelector(f"{where.bucket}/{parent}", allow_not_found=True))]
        near = get_close_matches(last, siblings, n=1) if last else []
        if near and near[0] != last:
            guess = f"s3://{where.bucket}/{parent + '/' if parent else ''}{near[0]}"
            return f"{where.url} matches no objects; did you mean {guess}?"
    return (f"{where.url} matches no objects (an empty prefix, or a glob that matches nothing); "
            "check the key, e.g. with 'aws s3 ls'")


def _endpoint(env: Mapping[str, str]) -> str | None:
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def _hide_secrets(message: str) -> str:
    for name in _SECRETS:
        secret = os.environ.get(name)
        if secret:
            message = message.replace(secret, "***")
    return message
