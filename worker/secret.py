"""A wrapper that keeps secret values out of reprs, logs and error messages."""

from __future__ import annotations


class Secret:
    """Holds bytes that must never be printed; `reveal()` is the only way to read them."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
