"""Console output and exit codes shared by the ``liveproof`` commands.

Exit codes follow sigstore's verify CLI: 0 all good, 1 something failed verification,
2 bad usage or unreachable input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from chain.errors import LiveProofError, VerificationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# soft_wrap: OK and FAIL lines stay one line each, whatever the terminal width.
# markup=False: what is printed often comes from the audited party (manifests, API answers,
# chain data); a "[red]" or "[/]" in it must print as itself, never restyle or crash the line.
# emoji=False: likewise, "did:key:..." must not print as "did🔑...".
console = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err_console = Console(stderr=True, highlight=False, markup=False, emoji=False)

T = TypeVar("T")


def _labelled(label: str, style: str, text: str) -> Text:
    return Text.assemble((label, style), ": ", text)


def ok(item: str) -> None:
    """Print ``OK: <item>``."""
    console.print(_labelled("OK", "green", item))


def fail(item: str, why: str) -> None:
    """Print ``FAIL: <item>: <why>``."""
    console.print(_labelled("FAIL", "red", f"{item}: {why}"))


def caution(item: str) -> None:
    """Print ``WARN: <item>`` (a figure worth a look that is not a failure) to stdout."""
    console.print(_labelled("WARN", "yellow", item))


def warn(message: str) -> None:
    """Print ``warning: <message>`` to stderr."""
    err_console.print(_labelled("warning", "yellow", message), soft_wrap=True)


def error(message: str) -> None:
    """Print ``error: <message>`` to stderr (without exiting)."""
    err_console.print(_labelled("error", "red", message), soft_wrap=True)


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with ``code``."""
    error(message)
    raise typer.Exit(code)


@contextmanager
def errors_as_exit_codes() -> Iterator[None]:
    """Turn LiveProof errors into a one-line message and the matching exit code."""
    try:
        yield
    except VerificationError as exc:
        die(str(exc), EXIT_FAILED)
    except LiveProofError as exc:
        die(str(exc), EXIT_USAGE)


def run(fn: Callable[[], T]) -> T:
    """Call ``fn`` under :func:`errors_as_exit_codes`."""
    with errors_as_exit_codes():
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover
