"""The steps of l1ad, one module each.

A step module owns its part of the command line and of ``l1ad run``:

- ``NAME``: the step's key in the run config and in ``summary.json``;
- ``DEFAULTS``: its built-in config (a dict; the run config overrides it);
- ``DEFAULTS``: its built-in config (a dict; the run config overrides it). The values come from
  the library's ``defaults.py`` modules, and the step's command-line options read them from here,
  so a command and ``l1ad run`` have one default per option;
- ``register(app)``: adds its commands to the typer app;
- ``NEEDS``: the steps whose results it takes (``l1ad.pipeline.run_step`` passes them by name and
  stops with one line naming the first that has not run);
- ``run(ctx, **needs)``: maps the config to the arguments of ONE library function, calls it and
  returns its result dataclass, which ``run_step`` stores in ``ctx`` under ``NAME``. The report's
  prose and the ``summary.json`` figures are written from that dataclass in :mod:`l1ad.report`.

``STEPS`` lists them in pipeline order; commands that are not part of the
pipeline (``inspect``, ``unfold``, ``shower``) live in modules with
``run = None``.
"""

from l1ad.steps import ad, emulation, events, firmware, inspect, quantize, shower, unfold

STEPS = (inspect, events, ad, quantize, firmware, emulation, shower, unfold)

__all__ = ["STEPS"]
