"""Immutable records for the types every command builds at start-up.

A frozen dataclass is made by generated code when its module is imported (about a
millisecond apiece), which ``playbook status`` paid for every type on its path. The
principal is a plain class with ``__slots__`` instead: the same immutability, equality,
hash and repr, and :meth:`Frozen.replace` for ``dataclasses.replace``.
"""

from __future__ import annotations


class Frozen:
    """Base of an immutable record: a subclass lists its ``_fields`` (its ``__slots__``)
    and sets them in ``__init__`` with :meth:`_set`."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _compared: tuple[str, ...] | None = None  # the fields equality and hash use (default: all)
    _hidden: tuple[str, ...] = ()  # left out of the repr (a token, say)

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of an immutable {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of an immutable {type(self).__name__}")

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in (self._compared or self._fields))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields if name not in self._hidden)
        return f"{type(self).__name__}({shown})"

    def replace(self, **changes: object):
        """A copy with ``changes`` (what ``dataclasses.replace`` does for a dataclass)."""
        values = {name: getattr(self, name) for name in self._fields}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return type(self)(**values)
