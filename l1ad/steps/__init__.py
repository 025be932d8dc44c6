"""The steps of l1ad, one module each.

A step module owns its part of the command line and of ``l1ad run``:

- ``NAME``: the step's key in the run config and in ``summary.json``;
- ``DEFAULTS``: its built-in config (a dict; the run config overrides it);
- ``register(app)``: adds its commands to the typer app;
- ``run(ctx) -> dict[str, dict]``: runs the step inside ``l1ad run`` and returns
  the headline figures, keyed by the ``summary.json`` object they belong to
  (a step may fill several, e.g. ``ad`` and ``abcd``). It reads what earlier
  steps produced from ``ctx.artifacts`` and records what it produced there.

``STEPS`` lists them in pipeline order; commands that are not part of the
pipeline (``inspect``, ``unfold``, ``shower``) live in modules with
``run = None``.
"""

from l1ad.steps import ad, emulation, events, firmware, inspect, quantize, shower, unfold

STEPS = (inspect, events, ad, quantize, firmware, emulation, shower, unfold)

__all__ = ["STEPS"]
