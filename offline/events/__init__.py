"""Event files in the ADC2021 layout, and where events come from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offline.lazy import lazy_exports

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
    from offline.events.merge import merge_event_files
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
    "merge_event_files",
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
    "merge_event_files": "offline.events.merge",
    "BACKGROUND_PROCESSES": "offline.events.schema",
    "N_FEATURES": "offline.events.schema",
    "N_OBJECTS": "offline.events.schema",
    "OBJECT_ROWS": "offline.events.schema",
    "PROCESSES": "offline.events.schema",
    "SIGNAL_PROCESSES": "offline.events.schema",
    "feature_names": "offline.events.schema",
    "process_label": "offline.events.schema",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
