"""Default event-generation settings, kept apart so the CLI can show them without the generator."""

from __future__ import annotations

# accepted events per generation task (see offline/events/generate.py)
DEFAULT_TASK_SIZE = 500
