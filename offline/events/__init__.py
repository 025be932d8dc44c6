"""Event files in the ADC2021 layout, and where events come from."""


from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offline.events.io import (
        EventFileError,
        Events,
        concatenate,
        event_count,
        flatten_features,
        iter_events,
        read_events,
        read_metadata,
        write_events,
    )
    from offline.events.schema import (
        BACKGROUND_PROCESSES,
        N_FEATURES,
        N_OBJECTS,
        OBJECT_ROWS,
        PROCESSES,
        SIGNAL_PROCESSES,
        feature_names,
        process_label,
    )

__all__ = [
    "BACKGROUND_PROCESSES",
    "N_FEATURES",
    "N_OBJECTS",
    "OBJECT_ROWS",
    "PROCESSES",
    "SIGNAL_PROCESSES",
    "EventFileError",
    "Events",
    "concatenate",
    "event_count",
    "feature_names",
    "flatten_features",
    "iter_events",
    "process_label",
    "read_events",
    "read_metadata",
    "write_events",
]

# public names load their submodule on first use (PEP 562), so `import offline.events.x` stays light
_EXPORTS = {
    "EventFileError": "offline.events.io",
    "Events": "offline.events.io",
    "concatenate": "offline.events.io",
    "event_count": "offline.events.io",
    "flatten_features": "offline.events.io",
    "iter_events": "offline.events.io",
    "read_events": "offline.events.io",
    "read_metadata": "offline.events.io",
    "write_events": "offline.events.io",
    "BACKGROUND_PROCESSES": "offline.events.schema",
    "N_FEATURES": "offline.events.schema",
    "N_OBJECTS": "offline.events.schema",
    "OBJECT_ROWS": "offline.events.schema",
    "PROCESSES": "offline.events.schema",
    "SIGNAL_PROCESSES": "offline.events.schema",
    "feature_names": "offline.events.schema",
    "process_label": "offline.events.schema",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
