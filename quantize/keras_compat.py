"""The one place that reconciles QKeras (tf_keras) with hls4ml 1.3 under TensorFlow 2.21.

Why: TensorFlow 2.21 ships Keras 3 as ``keras``. QKeras 0.9 only trains under the
legacy Keras 2 (``tf_keras``), which TensorFlow selects when ``TF_USE_LEGACY_KERAS=1``
is set *before* TensorFlow is imported. hls4ml 1.3 does ``import keras``, sees Keras 3
and sends a tf_keras model to its Keras 3 parser ("'Node' object has no attribute
'arguments'"); it parses correctly when ``keras`` resolves to ``tf_keras`` in
``sys.modules`` before hls4ml is imported.

Importing this module has no side effects. :func:`use_legacy_keras` does exactly two
things, documented there, and is idempotent. Call it before anything imports
TensorFlow, QKeras or hls4ml.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

__all__ = ["import_hls4ml", "import_qkeras", "use_legacy_keras"]


def use_legacy_keras() -> ModuleType:
    """Select Keras 2 (``tf_keras``) for TensorFlow, QKeras and hls4ml; returns ``tf_keras``.

    Side effects: sets ``os.environ["TF_USE_LEGACY_KERAS"] = "1"`` (and a default
    ``TF_CPP_MIN_LOG_LEVEL=2``) and binds
    ``sys.modules["keras"]`` to ``tf_keras``. Raises ``RuntimeError`` if TensorFlow was
    already imported under Keras 3 (too late to switch: restart the interpreter).
    """
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError(
            "TensorFlow was imported before quantize.keras_compat.use_legacy_keras(); "
            "call it first (or set TF_USE_LEGACY_KERAS=1 in the environment)"
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    # TensorFlow's C++ start-up chatter (oneDNN, missing CUDA) is noise in a CPU run; a user's own
    # setting wins
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras

    # Modules that imported Keras 3 earlier keep their reference; hls4ml must come after.
    sys.modules["keras"] = tf_keras
    return tf_keras


def import_qkeras() -> ModuleType:
    """``qkeras``, imported under legacy Keras."""
    use_legacy_keras()
    import qkeras

    return qkeras


def import_hls4ml() -> ModuleType:
    """``hls4ml``, imported so that its Keras parser handles tf_keras models."""
    use_legacy_keras()
    import hls4ml

    return hls4ml
