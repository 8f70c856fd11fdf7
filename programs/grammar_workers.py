"""Worker processes that build documents' copy grammars off the caller's GIL.

Building a document's grammar (copy_grammar.py) is pure Python, ~1.5 µs of CPU per character
(a bench invoice ~6 ms), and it held the gateway's GIL for half of the gateway's CPU per
document (perf/results/host-side-*): the event loop and the other documents' calls waited
behind it. A worker is `python -m forkpoint.programs.grammar_workers`, a child of its own that
imports nothing of the caller's `__main__` (multiprocessing's spawn and forkserver re-run the
caller's script in the child; fork copies a threaded process's locks), and reads requests from
its stdin: length-prefixed pickles of (grammar, document), answered on its stdout with
(EBNF, CPU seconds) or the exception. Pickles cross only between this process and its own
children.

Up to a quarter of the machine's cores, at least one, at most four (SGLang's processes and its
grammar compiles need the rest). Started on first use, in the background: until one is up, and
whenever one cannot start or dies, the grammar is built in place, as it was before workers.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forkpoint.programs.copy_grammar import CopyGrammar

_LENGTH = struct.Struct("<Q")
WAIT_SECONDS = 1.0  # for a busy worker, before building in place
_log = logging.getLogger(__name__)


class _Worker:
    """One child process, used by one caller at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "forkpoint.programs.grammar_workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def build(self, grammar: CopyGrammar, document: str) -> tuple[bool, Any]:
        """(True, (EBNF, the child's CPU seconds)) or (False, the grammar's own error);
        OSError/EOFError if it died."""
        assert self.process.stdin is not None and self.process.stdout is not None
        _send(self.process.stdin, (grammar, document))
        return _receive(self.process.stdout)

    def close(self) -> None:
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:  # it died with a request unread
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


class GrammarWorkers:
    """A few grammar-building processes. Thread-safe; `cpu_seconds` is the CPU the workers
    spent building so far (forkpoint's own work, in processes of its own)."""

    def __init__(self, workers: int | None = None) -> None:
        self.size = workers or max(1, min(4, (os.cpu_count() or 1) // 4))
        self.cpu_seconds = 0.0
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._started = 0  # workers started and not lost
        self._failed = False  # a worker could not be started here: build in place from now on
        self._lock = threading.Lock()

    def build(self, grammar: CopyGrammar, document: str) -> str:
        """`grammar.for_document(document)`, built by a worker when one is up."""
        worker = self._take()
        if worker is None:
            return grammar.for_document(document)
        try:
            ok, value = worker.build(grammar, document)
        except BaseException as exc:
            self._lose(worker)  # died, or interrupted mid-answer: its pipe is never reused
            if isinstance(exc, (OSError, EOFError, pickle.UnpicklingError)):
                return grammar.for_document(document)
            raise
        self._idle.put(worker)
        if not ok:
            raise value  # the grammar's own error (an empty document): the caller's to see
        ebnf, cpu = value
        with self._lock:
            self.cpu_seconds += float(cpu)
        return str(ebnf)

    def start(self) -> None:
        """Start the workers not yet started, in the background (a job's first documents then
        find them up, instead of being built in place while they start)."""
        while self._begin_one():
            pass

    def close(self) -> None:
        """Stop the idle workers (a busy one stops when its caller is done with it)."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            self._lose(worker)

    def _take(self) -> _Worker | None:
        """An idle worker; None (build in place) while one is being started, or when all are
        busy for longer than WAIT_SECONDS (a burst past what they build)."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        if self._failed or self._begin_one():
            return None
        try:
            return self._idle.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            return None

    def _begin_one(self) -> bool:
        """Start one more worker in the background, if there is room for one."""
        with self._lock:
            if self._failed or self._started >= self.size:
                return False
            self._started += 1
        threading.Thread(target=self._start, daemon=True, name="grammar-worker").start()
        return True

    def _start(self) -> None:
        try:
            worker = _Worker()
            assert worker.process.stdin is not None and worker.process.stdout is not None
            _send(worker.process.stdin, None)  # ready? (the child's imports are done)
            ok, _ = _receive(worker.process.stdout)
            assert ok
        except (OSError, EOFError, AssertionError, pickle.UnpicklingError) as exc:
            with self._lock:
                self._failed = True
            _log.warning(
                "no grammar worker could start (%s): copy grammars are built in place", exc
            )
            return
        self._idle.put(worker)

    def _lose(self, worker: _Worker) -> None:
        worker.close()
        with self._lock:
            self._started -= 1


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> tuple[bool, Any]:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError("the grammar worker ended")
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError("the grammar worker ended mid-answer")
    answer: tuple[bool, Any] = pickle.loads(data)
    return answer


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: one (grammar, document) at a time until its stdin closes."""
    from forkpoint.programs.copy_grammar import CopyGrammar  # noqa: F401  (unpickling needs it)

    while True:
        header = requests.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return
        (length,) = _LENGTH.unpack(header)
        request = pickle.loads(requests.read(length))
        if request is None:
            _send(answers, (True, None))
            continue
        grammar, document = request
        started = time.process_time()
        try:
            ebnf = grammar.for_document(document)
        except Exception as exc:  # noqa: BLE001 (sent back to the caller as it is)
            _send(answers, (False, exc))
            continue
        _send(answers, (True, (ebnf, time.process_time() - started)))


WORKERS = GrammarWorkers()

if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
