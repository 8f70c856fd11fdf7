"""Where the runtime is and how to talk to it: one frozen value, resolved in one place.

A `Target` is what every extractor is built from: the runtime's URL, the chat format its prompts
are written in, the timeouts of its calls and the runtime key. `resolve_target` decides the chat
format the same way for every door (the CLI, the Python API, the gateway, the benchmarks): the
one asked for, else the profile's when we launched the runtime ourselves, else the served
model's, and checks it against the served model either way.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forkpoint.errors import RuntimeUnavailable
from forkpoint.programs.prompt import TaskPrompt, task_prompt
from forkpoint.programs.tasks.task import ExtractionTask
from forkpoint.runtime.client import RuntimeClient, Timeouts
from forkpoint.runtime.served_model import check_chat_format

if TYPE_CHECKING:
    from forkpoint.runtime.profiles import LaunchProfile

CHECK_SECONDS = 10.0  # asking the runtime which model it serves
# A runtime someone else runs (--sglang-url, FORKPOINT_SGLANG_URL) that does not answer.
DEFAULT_TIMEOUTS = Timeouts()
NOT_ANSWERING = "start one with `forkpoint runtime up`, or omit --sglang-url"


@dataclass(frozen=True)
class Target:
    """A runtime and how to talk to it. `api_key` None: $FORKPOINT_RUNTIME_API_KEY, if set."""

    url: str
    chat_format: str
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    api_key: str | None = None

    def prompt(self, task: ExtractionTask) -> TaskPrompt:
        """`task` in this runtime's chat format."""
        return task_prompt(task, self.chat_format)

    def client(self) -> RuntimeClient:
        return RuntimeClient(self.url, api_key=self.api_key, timeouts=self.timeouts)

    def bounded(self, seconds: float) -> Target:
        """This target with no runtime call waiting longer than `seconds`."""
        connect = min(seconds, self.timeouts.connect)
        timeouts = dataclasses.replace(
            self.timeouts, connect=connect, call=seconds, generate=seconds
        )
        return dataclasses.replace(self, timeouts=timeouts)


def resolve_target(
    url: str,
    *,
    launched: LaunchProfile | None = None,
    chat_format: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    api_key: str | None = None,
    check_seconds: float = CHECK_SECONDS,
) -> Target:
    """The target at `url`: its chat format is `chat_format` if given, else the profile's when
    we `launched` the runtime from it, else the served model's. Checked against the served model
    either way: ProfileError on a mismatch, RuntimeUnavailable when the runtime does not answer."""
    wanted = chat_format or (launched.chat_format if launched is not None else None)
    try:
        checked = check_chat_format(url, wanted, timeout=check_seconds, api_key=api_key)
    except RuntimeUnavailable as exc:
        if launched is not None:
            raise
        raise RuntimeUnavailable(exc.message, hint=NOT_ANSWERING) from exc
    return Target(url, checked, timeouts, api_key)


class LazyTarget:
    """`resolve_target`'s arguments, resolved on first use and kept: a gateway may start before
    the runtime it uses answers. Thread-safe; a runtime that does not answer is asked again by
    the next caller, and `forget` makes the next caller ask again (a restarted runtime may serve
    another model)."""

    def __init__(
        self,
        url: str,
        *,
        launched: LaunchProfile | None = None,
        chat_format: str | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        api_key: str | None = None,
    ) -> None:
        self.url, self.launched, self.chat_format = url, launched, chat_format
        self.timeouts, self.api_key = timeouts, api_key
        self._target: Target | None = None
        self._lock = threading.Lock()  # one resolution at a time; the others wait for it

    def get(self, check_seconds: float = CHECK_SECONDS) -> Target:
        with self._lock:
            if self._target is None:
                self._target = resolve_target(
                    self.url,
                    launched=self.launched,
                    chat_format=self.chat_format,
                    timeouts=self.timeouts,
                    api_key=self.api_key,
                    check_seconds=check_seconds,
                )
            return self._target

    def forget(self) -> None:
        with self._lock:
            self._target = None
