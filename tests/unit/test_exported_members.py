"""Every public name is exported, and nothing private leaks into ``__all__``."""

from __future__ import annotations

import micronetwork
from micronetwork import errors


def test_all_names_exist_and_are_public() -> None:
    for name in micronetwork.__all__:
        assert hasattr(micronetwork, name), name
        assert not name.startswith("_") or name == "__version__"


def test_public_objects_are_exported() -> None:
    public = {
        name
        for name, value in vars(micronetwork).items()
        if not name.startswith("_") and not type(value).__name__ == "module"
    }
    assert public == set(micronetwork.__all__) - {"__version__"}


def test_every_error_is_under_one_root_and_documented() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.MicronetworkError)
        assert cls.__doc__, name
        assert name in errors.__doc__, f"{name} missing from the tree in errors' docstring"
        assert name in micronetwork.__all__
