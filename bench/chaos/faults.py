"""The fault mix, as sandbox fault rules.

The sandbox tries rules in order and fires the first that matches, so each rule's
probability is conditioned on the earlier ones not firing; `rules()` does that arithmetic so
the overall shares are the ones asked for. Every platform request (digi.me, both PDAs, the
S3 stand-in) is exposed; only `/_control` is exempt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultMix:
    server_errors: float = 0.10   # 500 / 502 / 503, split evenly
    throttled: float = 0.05       # 429 with Retry-After
    timeouts: float = 0.03        # held longer than the worker's HTTP timeout, before handling
    drops: float = 0.02           # connection closed without an answer, before handling
    retry_after_s: int = 1
    timeout_hold_ms: int = 4_000

    def shares(self) -> list[tuple[float, dict]]:
        third = self.server_errors / 3
        return [
            (third, {"status": 500}),
            (third, {"status": 502}),
            (third, {"status": 503}),
            (self.throttled, {"status": 429, "retry_after": str(self.retry_after_s)}),
            (self.timeouts, {"delay_ms": self.timeout_hold_ms}),
            (self.drops, {"drop": True}),
        ]

    def rules(self) -> list[dict]:
        """Rules whose conditional probabilities give the asked-for overall shares."""
        out, left = [], 1.0
        for share, action in self.shares():
            if share <= 0:
                continue
            out.append({"target": "*", "path": "", "probability": min(1.0, share / left),
                        **action})
            left -= share
        return out

    def to_json(self) -> dict:
        return {"server_errors": self.server_errors, "throttled_429": self.throttled,
                "timeouts": self.timeouts, "drops": self.drops,
                "retry_after_s": self.retry_after_s, "timeout_hold_ms": self.timeout_hold_ms}
