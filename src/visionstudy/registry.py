"""One small registry type for every pluggable kind (datasets, models, augmentations, optimizers, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from visionstudy.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → object. Registering a taken name raises; looking up an unknown name lists the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj

    def get(self, name: str, field: str | None = None, hint: str | None = None) -> T:
        """The entry `name`; an unknown one is one error listing the names and `hint` (what the
        caller knows of it), else the name it was likely meant as."""
        try:
            return self._items[name]
        except KeyError:
            where = f"{field}: " if field else ""
            near = near_name(name, self.names())
            hint = f"; {hint}" if hint else f"; did you mean {near}?" if near else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}{hint}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def near_name(name: object, names: list[str]) -> str | None:
    """The one of `names` that `name` was likely meant as: the same letters in other cases or with
    `-` for `_` (`fashion-mnist`, `ResNet18`, `SGD`, `emnist_balanced`), else the nearest spelling."""
    import difflib

    def bare(text: str) -> str:
        return text.lower().replace("-", "").replace("_", "").replace(" ", "")

    text = str(name)
    same = [n for n in names if bare(n) == bare(text)]
    if same:
        return same[0]
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1)
    return lowered[close[0]] if close else None
