"""Running a command with its errors turned into exit codes: what `nlp-ssl <command>` and `nlp-ssl answer` share.

Errors a user can cause (`nlp_ssl.errors`, a full disk, a folder without write permission) print as one paragraph,
`nlp-ssl COMMAND: KIND: message`, and exit with their class's code; `debug` adds the traceback. Anything else is a
bug: printed with its traceback, exit code 70. It sits below every command, so a command module and the command
table (`cli.py`) both import it and neither imports the other for it.

Example:
    >>> run_guarded("report", lambda: 0)
    0
"""

from __future__ import annotations

import sys
import traceback
from typing import Callable

from nlp_ssl.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, NlpSslError, OutputError


def _user_error(e: BaseException) -> NlpSslError | None:
    """The user-facing form of an error, or None for a bug. Disk full and permission errors raised while
    writing are the user's to fix (free space, choose another folder)."""
    import errno

    if isinstance(e, NlpSslError):
        return e
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return OutputError(f"the disk is full (writing {e.filename or 'an output file'}); free some space and run "
                           "again: finished outputs are intact and an interrupted run resumes")
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return OutputError(f"no permission to write {e.filename or 'an output file'} ({e.strerror}); choose "
                           "another output folder or fix its permissions")
    return None


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader closed the pipe


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (so a BrokenPipeError came from our own output, not from a
    worker's pipe or a socket, which stay errors)."""
    import select

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured output), or no poll here
        return False


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to flush into a pipe
        pass


def run_guarded(command: str, fn: Callable[[], object], debug: bool = False) -> int:
    """Run `fn` and turn what it raises into an exit code: user errors as one paragraph (traceback only with
    `debug`), bugs with their traceback."""
    try:
        rc = fn()
    except KeyboardInterrupt:
        print(f"nlp-ssl {command}: interrupted; finished outputs are intact, unfinished ones were removed",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - every exception is reported, one way or the other
        if isinstance(e, BrokenPipeError) and _stdout_closed():  # the reader went away (`... --dry-run | head`)
            _quiet_stdout()
            return EXIT_BROKEN_PIPE
        user = _user_error(e)
        if user is None:
            traceback.print_exc()
            print(f"nlp-ssl {command}: internal error ({type(e).__name__}): this is a bug in nlp-ssl; please "
                  "report it with the traceback above", file=sys.stderr)
            return EXIT_INTERNAL
        if debug:
            traceback.print_exc()
        print(f"nlp-ssl {command}: {user.kind}: {user}", file=sys.stderr)
        return user.exit_code
    return rc if isinstance(rc, int) else 0
