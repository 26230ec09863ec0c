"""Semantic versions (SemVer 2.0.0) and the version ranges clients ask for.

A service declares one exact version (``Service("greeter", version="1.2.0")``); a client asks
for a range (``"^1.2"``) and gets the instances whose version the range matches. Ranges follow
npm's grammar, the one most people already know:

=================  ==================================  ================================
range              means                               notes
=================  ==================================  ================================
``*``, ``x``, ``""``  any release
``1.2.3``          exactly 1.2.3 (``=1.2.3`` too)      build metadata is ignored
``1.2``, ``1.x``   ``>=1.2.0 <1.3.0``, ``>=1.0.0 <2``  a partial version is an x-range
``^1.2.3``         ``>=1.2.3 <2.0.0``                  ``^0.2.3``: ``<0.3.0``, ``^0.0.3``:
                                                       ``<0.0.4``
``~1.2.3``         ``>=1.2.3 <1.3.0``                  ``~1``: ``<2.0.0``
``>=1.0,<2``       both comparators (a comma or        ``>1.2`` means ``>=1.3.0``,
``>=1.0 <2``       whitespace joins them)              ``<=1.2`` means ``<1.3.0``
``^1 || ^2``       either set
=================  ==================================  ================================

Pre-releases: ``1.3.0-rc.1`` is matched only by a comparator set that names a pre-release of the
same ``1.3.0`` (``>=1.3.0-rc.0``), as in npm and Cargo; a client asking ``^1.2`` never lands on
a release candidate by accident. Upper bounds exclude the pre-releases of the bound
(``<2.0.0-0``), so ``^1`` does not match ``2.0.0-alpha`` either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ConfigError

__all__ = ["Version", "VersionRange", "best"]

_NUM = r"0|[1-9]\d*"
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_PRE = rf"{_IDENT}(?:\.{_IDENT})*"
_BUILD = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION = re.compile(rf"({_NUM})\.({_NUM})\.({_NUM})(?:-({_PRE}))?(?:\+({_BUILD}))?\Z")
_X = r"(?:0|[1-9]\d*|[xX*])"
_PARTIAL = re.compile(rf"({_X})(?:\.({_X})(?:\.({_X})(?:-({_PRE}))?(?:\+{_BUILD})?)?)?\Z")
_OP = re.compile(r"(\^|~|>=|<=|>|<|=)?(.*)\Z")

PreId = int | str


@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A SemVer 2.0.0 version. Compared by precedence: build metadata is ignored (so
    ``1.0.0+a == 1.0.0+b``) and a pre-release sorts before its release."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[PreId, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``"1.2.3-rc.1+build.5"``; :class:`ConfigError` if it is not SemVer 2.0.0."""
        m = _VERSION.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ConfigError(
                f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build], "
                "e.g. '1.2.3' or '2.0.0-rc.1')"
            )
        pre = tuple(_pre_id(p) for p in m[4].split(".")) if m[4] else ()
        build = tuple(m[5].split(".")) if m[5] else ()
        return cls(int(m[1]), int(m[2]), int(m[3]), pre, build)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release outranks its pre-releases; numeric identifiers sort below alphanumeric ones
        # and compare as numbers; a longer identifier list wins when the shorter is a prefix.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def _pre_id(text: str) -> PreId:
    return int(text) if text.isdigit() else text


@dataclass(frozen=True, slots=True)
class _Comparator:
    op: str  # one of < <= > >= =
    version: Version

    def test(self, v: Version) -> bool:
        c = self.version
        if self.op == "=":
            return v == c
        if self.op == "<":
            return v < c
        if self.op == "<=":
            return v <= c
        if self.op == ">":
            return v > c
        return v >= c


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A set of versions, parsed from an npm-style range (see the module docstring)."""

    spec: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    @classmethod
    def parse(cls, spec: str) -> VersionRange:
        """Parse a range; :class:`ConfigError` naming the part that is not understood."""
        if not isinstance(spec, str):
            raise ConfigError(f"a version range must be text, not {type(spec).__name__}")
        alts = tuple(_parse_set(part, spec) for part in spec.split("||"))
        return cls(spec, alts)

    def matches(self, version: Version | str) -> bool:
        """Whether ``version`` is in the range (pre-releases: see the module docstring)."""
        v = Version.parse(version) if isinstance(version, str) else version
        return any(_set_matches(cmps, v) for cmps in self.alternatives)

    def __str__(self) -> str:
        return self.spec


def _set_matches(cmps: tuple[_Comparator, ...], v: Version) -> bool:
    if not all(c.test(v) for c in cmps):
        return False
    if not v.prerelease:
        return True
    core = (v.major, v.minor, v.patch)
    return any(
        c.version.prerelease and (c.version.major, c.version.minor, c.version.patch) == core
        for c in cmps
    )


_V = TypeVar("_V", Version, str)


def best(versions: Iterable[_V], range: VersionRange | str | None = None) -> _V | None:
    """The highest of ``versions`` that ``range`` matches (``None``/``"*"``: any release), or
    ``None``. Returns the item as given; text that is not a version is skipped."""
    rng = VersionRange.parse(range or "*") if not isinstance(range, VersionRange) else range
    top: tuple[Version, _V] | None = None
    for item in versions:
        try:
            v = Version.parse(item) if isinstance(item, str) else item
        except ConfigError:
            continue
        if rng.matches(v) and (top is None or v > top[0]):
            top = (v, item)
    return None if top is None else top[1]


def _parse_set(part: str, spec: str) -> tuple[_Comparator, ...]:
    # "> = 1.2" and ">= 1.2" are written with spaces often enough to accept them.
    text = re.sub(r"(\^|~|>=|<=|>|<|=)\s+", r"\1", part.strip())
    tokens = [t for t in re.split(r"[\s,]+", text) if t]
    out: list[_Comparator] = []
    for token in tokens:
        out.extend(_parse_token(token, spec))
    return tuple(out)


def _parse_token(token: str, spec: str) -> list[_Comparator]:
    m = _OP.match(token)
    assert m is not None  # the pattern matches every string
    op, rest = m[1] or "", m[2]
    p = _PARTIAL.match(rest)
    if p is None:
        raise ConfigError(
            f"version range {spec!r}: {token!r} is not understood (try '^1.2', '~1.2.3', "
            "'>=1.0,<2', '1.x' or '*')"
        )
    parts = [None if x is None or x in "xX*" else int(x) for x in (p[1], p[2], p[3])]
    pre = tuple(_pre_id(x) for x in p[4].split(".")) if p[4] else ()
    if pre and None in parts:
        raise ConfigError(f"version range {spec!r}: a pre-release needs a full version")
    if None in parts and any(x is not None for x in parts[parts.index(None):]):
        raise ConfigError(f"version range {spec!r}: {token!r} has a number after an x")
    n = parts.index(None) if None in parts else 3  # how many numbers were given
    major, minor, patch = (x or 0 for x in parts)
    low = Version(major, minor, patch, pre)
    if n == 0 and op in ("^", "~"):
        return []
    if op == "^":
        return _caret(low, n)
    if op == "~":
        return _tilde(low, n)
    if n == 0:  # "*", ">=*", "<x" ...
        return [_Comparator("<", Version(0, 0, 0, (0,)))] if op in ("<", ">") else []
    if op in ("", "="):
        return [_Comparator("=", low)] if n == 3 else [_Comparator(">=", low),
                                                       _Comparator("<", _bump(low, n))]
    if n < 3 and op == ">":
        return [_Comparator(">=", _bump(low, n))]
    if n < 3 and op == "<=":
        return [_Comparator("<", _bump(low, n))]
    if n < 3 and op == "<":
        return [_Comparator("<", Version(major, minor, patch, (0,)))]
    return [_Comparator(op, low)]


def _bump(v: Version, n: int) -> Version:
    """The lowest version above every version starting with v's first ``n`` numbers."""
    if n <= 1:
        return Version(v.major + 1, 0, 0, (0,))
    if n == 2:
        return Version(v.major, v.minor + 1, 0, (0,))
    return Version(v.major, v.minor, v.patch + 1, (0,))


def _caret(low: Version, n: int) -> list[_Comparator]:
    # Allow changes that do not modify the left-most non-zero number given.
    if low.major > 0 or n == 1:
        high = _bump(low, 1)
    elif low.minor > 0 or n == 2:
        high = _bump(low, 2)
    else:
        high = _bump(low, 3)
    return [_Comparator(">=", low), _Comparator("<", high)]


def _tilde(low: Version, n: int) -> list[_Comparator]:
    return [_Comparator(">=", low), _Comparator("<", _bump(low, 1 if n == 1 else 2))]
