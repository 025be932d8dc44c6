"""Event files in the ADC2021 layout, and where events come from."""

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
