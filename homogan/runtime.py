"""Import TensorFlow without its start-up chatter.

TensorFlow 2.21 prints C++ log lines on import and on first device query (oneDNN notice, "could not
find cuda drivers", "failed call to cuInit") before ``TF_CPP_MIN_LOG_LEVEL`` takes effect, which
buries the run summary and any one-line error. They are silenced by pointing file descriptor 2 at
/dev/null for exactly that moment; Python exceptions still surface normally. Set
``HOMOGAN_TF_LOGS=1`` to see them.
"""

from __future__ import annotations

import contextlib
import os
import sys

_done = False


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """``import tensorflow`` (and list devices once), quietly unless HOMOGAN_TF_LOGS=1."""
    global _done
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _done or os.environ.get("HOMOGAN_TF_LOGS") == "1":
        import tensorflow as tf
        return tf
    with _stderr_silenced():
        import tensorflow as tf
        tf.config.list_physical_devices()
    _done = True
    return tf
