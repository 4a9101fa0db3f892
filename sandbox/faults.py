"""Fault rules: make chosen endpoints fail, slow down or drop the connection.

A rule matches on target (`digime`, `pda`, `s3` or `*`), optional host, HTTP method and a
regular expression searched in the path. It fires for the next `times` matching requests,
or with `probability` on every one, or both (then at most `times` firings). With `after`,
the request is handled first and the delay or drop hits the answer: the provider did the
work but the client never hears of it (the classic lost response).
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field

TARGETS = ("digime", "pda", "s3", "*")


class FaultRuleError(ValueError):
    """A control-API fault rule is malformed; the message says which field."""


@dataclass
class FaultRule:
    id: int
    target: str = "*"
    path: str = ""
    method: str | None = None
    host: str | None = None
    status: int | None = None
    retry_after: str | None = None
    body: object | None = None
    delay_ms: int = 0
    drop: bool = False
    after: bool = False
    times: int | None = None
    probability: float | None = None
    fired: int = 0
    _pattern: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("_pattern", None)
        return data

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, target: str, host: str, method: str, path: str) -> bool:
        if self.target not in ("*", target):
            return False
        if self.host and self.host.lower() != host.lower():
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return bool(self._pattern.search(path))


def parse_rule(rule_id: int, data: object) -> FaultRule:
    """Validate a rule from JSON, raising FaultRuleError with the offending field."""
    if not isinstance(data, dict):
        raise FaultRuleError("a fault rule must be a JSON object")
    known = {"target", "path", "method", "host", "status", "retry_after", "body",
             "delay_ms", "drop", "after", "times", "probability"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise FaultRuleError(f"unknown field(s): {', '.join(unknown)}")
    target = data.get("target", "*")
    if target not in TARGETS:
        raise FaultRuleError(f"target must be one of {', '.join(TARGETS)}")
    path = data.get("path", "")
    if not isinstance(path, str):
        raise FaultRuleError("path must be a string (a regular expression)")
    try:
        pattern = re.compile(path)
    except re.error as exc:
        raise FaultRuleError(f"path is not a valid regular expression: {exc}") from None
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise FaultRuleError("status must be an integer HTTP status (100-599)")
    delay = data.get("delay_ms", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 600_000:
        raise FaultRuleError("delay_ms must be an integer from 0 to 600000")
    drop = data.get("drop", False)
    if not isinstance(drop, bool):
        raise FaultRuleError("drop must be true or false")
    if status is None and not drop and not delay:
        raise FaultRuleError("a rule needs at least one of status, drop or delay_ms")
    after = data.get("after", False)
    if not isinstance(after, bool):
        raise FaultRuleError("after must be true or false")
    if after and status is not None:
        raise FaultRuleError("after applies to delay_ms and drop (the real answer is kept), "
                             "not to status")
    times = data.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise FaultRuleError("times must be a positive integer")
    prob = data.get("probability")
    if prob is not None and (not isinstance(prob, int | float) or not 0 < prob <= 1):
        raise FaultRuleError("probability must be a number in (0, 1]")
    if times is None and prob is None:
        raise FaultRuleError("give times (next N requests) or probability (or both)")
    retry_after = data.get("retry_after")
    if retry_after is not None:
        retry_after = str(retry_after)
    for name in ("method", "host"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise FaultRuleError(f"{name} must be a string")
    return FaultRule(
        id=rule_id, target=target, path=path, method=data.get("method"),
        host=data.get("host"), status=status, retry_after=retry_after, body=data.get("body"),
        delay_ms=delay, drop=drop, after=after, times=times, probability=prob, _pattern=pattern,
    )


class FaultInjector:
    """Holds the active rules and decides, per request, which one (if any) fires."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, data: object) -> FaultRule:
        rule = parse_rule(next(self._ids), data)
        with self._lock:
            self._rules.append(rule)
        return rule

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pick(self, target: str, host: str, method: str, path: str) -> FaultRule | None:
        """Return the first matching rule that fires for this request, counting the firing."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(target, host, method, path):
                    continue
                if rule.probability is not None and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None
