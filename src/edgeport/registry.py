"""One small generic registry: every named thing (format, runtime, family, frontend...) lives in one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object, with an error that lists what is available."""

    def __init__(self, kind: str, error: type[Exception] = KeyError):
        self.kind = kind
        self._error = error
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """``reg.register("x", obj)`` or ``@reg.register("x")``."""
        if obj is not None:
            return self._add(name, obj)

        def decorator(o: T) -> T:
            return self._add(name, o)

        return decorator

    def _add(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self._error(f"Unknown {self.kind} '{name}'. Available: {sorted(self._items)}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
