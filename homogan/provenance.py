"""Which code produced a result: the package's own content hash, and the git commit when there is one.

Why the content hash decides: "same code" must mean the same bytes of ``homogan/``, also for a copy
without ``.git`` (a downloaded archive, a frozen experiment moved elsewhere) and for a checkout with
uncommitted edits, where the commit alone would claim a sameness that is not there.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def package_hash() -> str:
    """SHA-256 (first 16 hex digits) over every ``.py`` file of the package: relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def git_commit() -> str | None:
    """The commit of the checkout the package lives in (with ``-dirty`` if files differ from it), or None."""
    try:
        run = lambda *args: subprocess.run(["git", *args], cwd=PACKAGE, capture_output=True, text=True,  # noqa: E731
                                           timeout=10)
        head = run("rev-parse", "--short=12", "HEAD")
        if head.returncode != 0:
            return None
        dirty = run("status", "--porcelain", "--", str(PACKAGE)).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def code_version() -> dict:
    """{"package_sha256": ..., "git": commit or None}: what a run records and ``reproduce`` compares."""
    return {"package_sha256": package_hash(), "git": git_commit()}
