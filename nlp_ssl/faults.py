"""Fault injection for the reliability tests: `NLP_SSL_FAULT=NAME` (or `NAME@N`, the N-th time) makes the
process kill itself with SIGKILL when it reaches `fault_point(NAME)`, so a test can crash a run at exactly the
worst moment (half-way through a checkpoint, between two renames). Unset, a fault point costs one dict lookup.

Points: `save_model` (after the weights of a checkpoint or the final model are written, before the rest),
`checkpoint_before_marker`, `finalize_before_marker`, `atomic_dir_before_rename`.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    spec = os.environ.get("NLP_SSL_FAULT")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
