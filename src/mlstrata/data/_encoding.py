"""Character encodings of text sources: detect them, and hand DuckDB a UTF-8 file.

DuckDB reads UTF-8 only, so a Latin-1, cp1252 or UTF-16 file is transcoded chunk by chunk into the
staging folder; the user's file is never modified. Detection streams the file in fixed-size chunks,
so memory stays flat whatever the file size:

1. a byte-order mark decides (UTF-8 with BOM, UTF-16);
2. otherwise a file that decodes as UTF-8 is UTF-8;
3. otherwise a file that looks like single-byte Western text is cp1252 (when it uses the bytes
   0x80-0x9F, which cp1252 maps to letters and punctuation) or Latin-1;
4. otherwise the file is refused with the first line that is not UTF-8.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from ..errors import SourceError

__all__ = ["detect_encoding", "to_utf8"]

_CHUNK = 1 << 20
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_UTF8 = {"utf-8", "utf-8-sig"}
# Bytes no text contains: C0 controls other than tab/newlines/form feed/EOF marker; a single-byte
# Western file does not contain the five bytes cp1252 leaves undefined either.
_CONTROL = bytes([*range(0x00, 0x09), *range(0x0E, 0x1A), *range(0x1B, 0x20)])
_IMPLAUSIBLE = _CONTROL + bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D])
_ALL_BUT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)
_ALL_BUT_IMPLAUSIBLE = bytes(b for b in range(256) if b not in _IMPLAUSIBLE)
_ALL_BUT_C1 = bytes(b for b in range(256) if not 0x80 <= b <= 0x9F)


def detect_encoding(path: Path) -> str:
    """The encoding of a text file: ``utf-8``, ``utf-8-sig``, ``utf-16``, ``cp1252`` or ``latin-1``.

    Raises :class:`SourceError` naming the first line that is not UTF-8 when no candidate fits.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    try:
        _check_decodes(path, "utf-8")
    except SourceError:
        single_byte = _single_byte_encoding(path)
        if single_byte is None:
            raise
        return single_byte
    if _contains(path, _ALL_BUT_CONTROL):
        raise SourceError(f"{path} contains control bytes (e.g. NUL) and is not text: it may be "
                          "UTF-16 without a byte-order mark or a binary file; pass --encoding "
                          "utf-16 or export it as CSV again")
    return "utf-8"


def to_utf8(path: Path, encoding: str | None, staging: Path) -> tuple[Path, str]:
    """A UTF-8 file with the content of ``path`` (``path`` itself when already UTF-8), and the
    encoding the source was read in (``encoding`` when given, else the detected one)."""
    name = encoding or detect_encoding(path)
    codec = _codec(name)
    if codec in _UTF8:
        if encoding is not None:
            _check_decodes(path, codec)
        return path, name
    target = staging / f"{path.stem}.utf8{path.suffix}"
    with target.open("w", encoding="utf-8", newline="") as out:
        for text in _decoded_chunks(path, codec):
            out.write(text)
    return target, name


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise SourceError(f"unknown encoding {name!r}; pass a Python codec name such as utf-8, "
                          "latin-1, cp1252 or utf-16") from exc


def _check_decodes(path: Path, codec: str) -> None:
    for _ in _decoded_chunks(path, codec):
        pass


def _decoded_chunks(path: Path, codec: str) -> Iterator[str]:
    """Decode ``path`` chunk by chunk; a bad byte raises SourceError with its line number."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    lines = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                line = lines + data[: exc.start].decode(codec, "replace").count("\n") + 1
                raise SourceError(
                    f"{path}: line {line} has bytes that are not valid {codec} "
                    f"(0x{data[exc.start:exc.end].hex()}); pass the file's encoding with "
                    "--encoding (e.g. --encoding latin-1 or --encoding cp1252)") from exc
            lines += text.count("\n")
            yield text
            if not chunk:
                return


def _single_byte_encoding(path: Path) -> str | None:
    """``cp1252`` or ``latin-1`` when the bytes look like Western single-byte text, else None."""
    if _contains(path, _ALL_BUT_IMPLAUSIBLE):
        return None
    return "cp1252" if _contains(path, _ALL_BUT_C1) else "latin-1"


def _contains(path: Path, other_bytes: bytes) -> bool:
    """Whether the file holds any byte outside ``other_bytes`` (the complement of what we seek)."""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if chunk.translate(None, other_bytes):
                return True
    return False
