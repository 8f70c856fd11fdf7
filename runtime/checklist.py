"""Pass/fail checks with the fix for each failure: what `doctor` and `model prepare` report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One checked fact. `fix` says what to do when the status is not `pass`."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> Check:
    return Check(name, "pass", detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def warned(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def skipped(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, "skip", detail, fix)


def any_failed(checks: list[Check]) -> bool:
    return any(check.status == "fail" for check in checks)
