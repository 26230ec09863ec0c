"""SemVer 2.0.0 versions and npm-style ranges."""

from __future__ import annotations

import random

import pytest

from micronetwork.errors import ConfigError
from micronetwork.service.semver import Version, VersionRange, best


def test_parse_and_print() -> None:
    v = Version.parse("1.2.3-rc.1+build.5")
    assert (v.major, v.minor, v.patch) == (1, 2, 3)
    assert v.prerelease == ("rc", 1) and v.build == ("build", "5")
    assert str(v) == "1.2.3-rc.1+build.5"
    assert v.is_prerelease and not Version.parse("1.0.0").is_prerelease


@pytest.mark.parametrize(
    "text", ["1.2", "1", "01.2.3", "1.02.3", "1.2.3-01", "1.2.3-", "1.2.3+", "v1.2.3", "1.2.3.4",
             "", "x.1.2", "1.2.3-rc..1", "1.2.3 4"],
)
def test_parse_rejects_what_is_not_semver(text: str) -> None:
    with pytest.raises(ConfigError, match="not a semantic version"):
        Version.parse(text)


def test_precedence_follows_the_spec() -> None:
    # The example list of semver.org, section 11, in ascending order.
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"]
    versions = [Version.parse(t) for t in ordered]
    shuffled = versions[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled) == versions
    for a, b in zip(versions, versions[1:], strict=False):
        assert a < b and b > a and a <= b and not a >= b


def test_build_metadata_is_ignored_in_precedence() -> None:
    a, b = Version.parse("1.0.0+a"), Version.parse("1.0.0+b")
    assert a == b and hash(a) == hash(b) and not a < b
    assert Version.parse("1.0.0-1") < Version.parse("1.0.0-a")  # numeric below alphanumeric


RANGES = [
    # (range, matching, not matching)
    ("*", ["0.0.1", "1.2.3", "99.0.0"], ["1.0.0-rc.1"]),
    ("", ["1.0.0"], []),
    ("1.2.3", ["1.2.3", "1.2.3+b"], ["1.2.4", "1.2.2"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4"]),
    ("1.2", ["1.2.0", "1.2.99"], ["1.3.0", "1.1.9"]),
    ("1.x", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0", "2.0.0-rc.1"]),
    ("1.2.x", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("^1.2", ["1.2.0", "1.9.3"], ["1.1.9", "2.0.0", "2.0.0-alpha", "1.5.0-rc.1"]),
    ("^1.2.3", ["1.2.3", "1.99.99"], ["1.2.2", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^0", ["0.0.0", "0.9.9"], ["1.0.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    (">=1.0,<2", ["1.0.0", "1.99.0"], ["0.9.9", "2.0.0", "2.0.0-rc.1"]),
    (">=1.0 <2", ["1.0.0", "1.99.0"], ["0.9.9", "2.0.0"]),
    (">= 1.0, < 2", ["1.5.0"], ["2.0.0"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    ("<=1.2", ["1.2.9", "0.1.0"], ["1.3.0"]),
    (">1.2.3", ["1.2.4"], ["1.2.3"]),
    ("<1.2.3", ["1.2.2"], ["1.2.3", "1.2.3-rc.1"]),
    ("^1 || ^3", ["1.5.0", "3.0.0"], ["2.0.0"]),
    (">=1.3.0-rc.1 <2", ["1.3.0-rc.2", "1.3.0", "1.4.0"], ["1.3.0-rc.0", "1.4.0-rc.1"]),
]


@pytest.mark.parametrize(("spec", "good", "bad"), RANGES)
def test_ranges(spec: str, good: list[str], bad: list[str]) -> None:
    rng = VersionRange.parse(spec)
    for v in good:
        assert rng.matches(v), f"{spec} should match {v}"
        assert rng.matches(Version.parse(v))
    for v in bad:
        assert not rng.matches(v), f"{spec} should not match {v}"


@pytest.mark.parametrize("spec", ["^", "~x.1", "1.x.3", ">=banana", "1.2.3.4", "^1.2 || >>2",
                                  "1.x-rc.1"])
def test_bad_ranges_name_the_bad_part(spec: str) -> None:
    with pytest.raises(ConfigError, match="version range"):
        VersionRange.parse(spec)


def test_best_picks_the_highest_match_and_returns_the_item_given() -> None:
    versions = ["1.2.0", "1.3.0-rc.1", "2.0.0", "1.9.9", "not-a-version"]
    assert best(versions, "^1.2") == "1.9.9"
    assert best(versions) == "2.0.0"
    assert best(versions, "^3") is None
    assert best(versions, ">=1.3.0-rc.0 <1.4") == "1.3.0-rc.1"
    as_objects = [Version.parse(v) for v in versions[:4]]
    picked = best(as_objects, VersionRange.parse("~1.2"))
    assert picked is as_objects[0]
    assert best([], "*") is None
