"""What the parts of :class:`~notifier.store.base.Store` kept in modules of their own (for
size) use of it, declared once for the type checker."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


class StorePart:
    """The base's internals, as its parts see them; ``Store`` provides the real ones."""

    def _run(self, name: str, args: Any = ()) -> Any:
        raise NotImplementedError

    def _one(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def now(self) -> float:
        raise NotImplementedError

    def transaction(self, *, probe: bool = False) -> AbstractContextManager[None]:
        raise NotImplementedError
