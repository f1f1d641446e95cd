"""Keep TensorFlow's C++ log lines out of the output, without hiding anything else on stderr.

TensorFlow 2.16+ logs through absl before absl is initialised, so ``TF_CPP_MIN_LOG_LEVEL=2``
does not stop lines such as
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795795537.696901   10254 port.cc:153] oneDNN custom operations are on. ...
They are written by C++ straight to file descriptor 2, so they can only be filtered there:
``filter_stderr()`` points descriptor 2 at a pipe read by a small relay process that copies
every line to the real stderr except TensorFlow's info/warning log lines (and the known
continuation line of the CPU-feature banner). Errors (``E``) and fatal messages (``F``) pass,
as do Python warnings, tracebacks and everything else. The relay is a process, not a thread:
if TensorFlow aborts, the relay still reads the last lines (a fatal ``Check failed``) and passes them on.

The pytest plugin, ``python -m training_health`` and the upgrade report (``python -m
training_health.report.upgrade``) apply it (``keep_out``); ``TH_SHOW_TF_LOGS=1`` turns it off.
This file is also the relay's program (standard library only, started with ``python -I -S``).
"""

from __future__ import annotations

import os
import re
import sys

SHOW_ENV = "TH_SHOW_TF_LOGS"
TF_LOG_LINE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "  # absl/glog info and warning lines
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR\s*$"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.\s*$)"
)
_relay = None  # (process, the real stderr's descriptor) while filtering


def is_tf_log_line(line: str | bytes) -> bool:
    return bool(TF_LOG_LINE.match(line.encode() if isinstance(line, str) else line))


def without_tf_log_lines(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not is_tf_log_line(line))


def wanted() -> bool:
    return os.environ.get(SHOW_ENV, "") in ("", "0") and os.name == "posix"


def keep_out() -> bool:
    """What an entry point calls before TensorFlow is imported: its info lines off (``TF_CPP_MIN_LOG_LEVEL=2``,
    unless set) and the rest filtered (``filter_stderr``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return filter_stderr()


def filter_stderr() -> bool:
    """Route descriptor 2 through the relay (once per process); False when turned off or unavailable."""
    global _relay
    if _relay is not None or not wanted():
        return _relay is not None
    import atexit
    import subprocess

    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", __file__], stdin=read_end, stdout=real_stderr, stderr=real_stderr
        )
    except OSError:
        os.close(real_stderr)
        return False
    finally:
        os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    _relay = process, real_stderr
    atexit.register(stop_filtering)
    return True


def stop_filtering(timeout: float = 5.0) -> None:
    """Point descriptor 2 back at the real stderr and let the relay pass on what it still holds."""
    global _relay
    if _relay is None:
        return
    process, real_stderr = _relay
    _relay = None
    sys.stderr.flush()
    os.dup2(real_stderr, 2)  # closes this process's write end: the relay reads to the end and exits
    os.close(real_stderr)
    try:
        process.wait(timeout)
    except Exception:  # a child still holding the pipe keeps the relay running; it ends with that child
        pass


def relay(source: int = 0, target: int = 1) -> None:
    """Copy ``source`` to ``target`` line by line, dropping TensorFlow's log lines.

    A partial line that cannot start a log line is passed on at once (a prompt is not held back).
    """
    pending = b""
    while chunk := os.read(source, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        kept = [line + b"\n" for line in lines if not TF_LOG_LINE.match(line)]
        if pending and pending[:1] not in (b"I", b"W", b"T"):
            kept.append(pending)
            pending = b""
        write_all(target, b"".join(kept))
    if pending and not TF_LOG_LINE.match(pending):
        write_all(target, pending)


def write_all(target: int, data: bytes) -> None:
    while data:
        data = data[os.write(target, data) :]


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the whole process group: the relay ignores it and ends when its input closes, after
    # passing on the last lines (pytest's own interrupt report among them), instead of a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    relay()
