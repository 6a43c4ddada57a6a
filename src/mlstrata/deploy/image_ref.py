"""Container image references, checked against the Docker distribution reference grammar.

A manifest with an image Kubernetes cannot parse fails only when a pod is scheduled
(``InvalidImageName``), long after ``kubectl apply`` said yes; checking ``--image`` here turns
that into one line before anything is written. The grammar is the one of
``github.com/distribution/reference`` (``reference.go``)::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [domain "/"] path-component ["/" path-component]*
    domain      := host [":" port]          (a dotted name, localhost, IPv4 or [IPv6])
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | "__" | "-"+
    tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest      := algorithm ":" hex{32,}   (sha256: exactly 64 hex digits)

and a name is at most 255 characters.

>>> parse_image("registry.example.com:5000/team/credit-model:1.2")
ImageReference(domain='registry.example.com:5000', path='team/credit-model', tag='1.2', digest=None)
>>> parse_image("credit").pinned
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .output import DeployError

__all__ = ["ImageReference", "parse_image"]

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII)
_NAME_MAX = 255
_EXAMPLE = "e.g. registry.example.com/team/credit-model:1.0"


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference: registry (``None`` for Docker Hub), repository path, tag, digest.
    """

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The repository with its registry, without tag or digest (kustomize's ``images.name``).
        """
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def pinned(self) -> bool:
        """True when the reference names one image for good: a digest, or a tag other than
        ``latest`` (an untagged reference means ``latest``, which moves)."""
        return self.digest is not None or (self.tag is not None and self.tag != "latest")

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def parse_image(reference: str, option: str = "--image") -> ImageReference:
    """Parse ``reference``; raise :class:`DeployError` naming ``option``, what is wrong and an
    example of a valid reference.

    >>> parse_image("ghcr.io/acme/credit@sha256:" + "a" * 64).pinned
    True
    >>> parse_image("Acme/credit:1")
    Traceback (most recent call last):
    ...
    mlstrata.deploy.output.DeployError: --image 'Acme/credit:1' is not a valid image reference: \
the repository name must be lowercase (e.g. registry.example.com/team/credit-model:1.0)
    """
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        raise DeployError(f"{option} {reference!r} is not a valid image reference: "
                          f"{_why_invalid(reference)} ({_EXAMPLE})")
    if len(match["name"]) > _NAME_MAX:
        raise DeployError(f"{option} {reference[:40]!r}... is not a valid image reference: the "
                          f"repository name is longer than {_NAME_MAX} characters")
    digest = match["digest"]
    if digest is not None and digest.startswith("sha256:") and len(digest) != 7 + 64:
        raise DeployError(f"{option} {reference!r} is not a valid image reference: a sha256 "
                          f"digest has 64 hex digits, not {len(digest) - 7}")
    domain, path = match["domain"], match["path"]
    if domain is not None and not _looks_like_domain(domain):
        # As Docker normalizes it: a first component without '.', ':' or localhost is a path.
        if domain != domain.lower():
            raise DeployError(f"{option} {reference!r} is not a valid image reference: the "
                              f"repository name must be lowercase ({_EXAMPLE})")
        domain, path = None, f"{domain}/{path}"
    return ImageReference(domain=domain, path=path, tag=match["tag"], digest=digest)


def _why_invalid(reference: str) -> str:
    """A short reason a reference does not parse, for the error message."""
    if not reference.strip():
        return "it is empty"
    if any(ch.isspace() for ch in reference):
        return "it contains whitespace"
    if "://" in reference:
        return "drop the URL scheme (an image reference has none)"
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    repository = name.rsplit(":", 1)[0] if ":" in last else name
    path = repository.split("/", 1)[1] if "/" in repository and _looks_like_domain(
        repository.split("/", 1)[0]) else repository
    if path != path.lower():
        return "the repository name must be lowercase"
    if "@" in reference:
        return "the digest must be ALGORITHM:HEX (sha256: and 64 hex digits)"
    if ":" in last and not re.fullmatch(_TAG, last.rsplit(":", 1)[1], re.ASCII):
        return "a tag is 1-128 letters, digits, '_', '.' or '-' and does not start with '.' or '-'"
    return "repository path components are lowercase letters and digits joined by '.', '_', " \
           "'__' or '-'"


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"
