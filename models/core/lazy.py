"""Public names of a package loaded when first used (PEP 562): a room's `__init__` declares
what it offers (`__all__`) without importing every module behind it, so importing one module
of a room (a flow run's, say) does not load the rest (a webhook endpoint's cryptography, the
migrations' Alembic)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping


def load(package: str, where: Mapping[str, str], name: str) -> object:
    """The public `name` of `package`, imported from its module (`where[name]`; a submodule
    when that is `package.name`) and kept on the package. AttributeError for another name."""
    if name not in where:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module = importlib.import_module(where[name])
    value = module if where[name] == f"{package}.{name}" else getattr(module, name)
    setattr(sys.modules[package], name, value)
    return value
