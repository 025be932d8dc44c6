"""The emulator package the experiment's software loads: ``hls_projects/NAME/emulator/``.

Level-1 networks reach the experiment twice: as firmware, and as an emulator built with g++
from the same HLS C++, loaded at run time through the ``hls4mlEmulator::Model`` interface
(CMSSW's ``hls4mlEmulatorExtras``: ``dlopen("<model>.so")``, ``create_model()``, then
``prepare_input`` / ``predict`` / ``read_result``). This module writes that package for the
whole trigger, beside the HLS project:

- ``NN/``: the project's own ``trigger_top`` and hls4ml network sources, with the weights
  compiled in (hls4ml's C simulation reads them from ``weights/*.txt`` at run time; the
  emulator must not depend on files beside it);
- ``hls4ml/emulator.h``: the interface, written from its documented API;
- ``trigger_emulator.h|cpp``: the model class (hardware words in; R1, R2, region bits and the
  trigger bit out), ``create_model`` / ``destroy_model``, and ``l1ad_emulate_batch`` for ctypes;
- ``emulator_check.cpp``: loads the library with ``dlopen`` as the experiment's loader does and
  checks it on the project's ``tb_data``;
- ``Makefile``: ``make`` builds ``<model>.so`` (g++ -std=c++17 -O2 -fPIC, the project's ap_types),
  ``make check`` runs the check.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
from pathlib import Path
from string import Template

import numpy as np

from firmware.convert import NETS_NAME
from firmware.project import CSimOutputs, _make, call_batch
from firmware.wrapper import TEMPLATES, TOP_NAME, _ctype
from offline.artifacts import atomic_directory
from offline.events.schema import N_FEATURES
from quantize.spec import FirmwareSpec

__all__ = ["EMULATOR_DIR", "EmulatorLibrary", "build_emulator", "model_name", "write_emulator"]

EMULATOR_DIR = "emulator"
BATCH_ENTRY = "l1ad_emulate_batch"
_TEMPLATES = TEMPLATES / "emulator"

# hls4ml's weight headers with WriteWeightsTxt: a bare declaration for C simulation (filled from
# weights/*.txt at run time), the initialised one for synthesis. The emulator keeps the latter.
_WEIGHT_SWITCH = re.compile(r"#ifndef __SYNTHESIS__\n[^\n]*;\n#else\n(.*?)\n#endif\n", re.DOTALL)
_WEIGHT_LOADING = re.compile(
    r"#ifndef __SYNTHESIS__\n\s*static bool loaded_weights = false;.*?#endif", re.DOTALL
)


def model_name(project_name: str) -> str:
    """The emulator's model name (its library is ``<model name>.so``): the project name as a C identifier."""
    name = re.sub(r"\W", "_", project_name, flags=re.ASCII)
    if not name or name[0].isdigit():
        name = f"l1ad_{name}"
    return name


def _embed_weights(header: Path) -> None:
    text = header.read_text()
    if "__SYNTHESIS__" not in text:
        return  # written without txt weights: already initialised
    new, n = _WEIGHT_SWITCH.subn(r"\1\n", text)
    if n != 1 or "__SYNTHESIS__" in new:
        raise ValueError(
            f"{header}: hls4ml's weight header layout changed; cannot compile its weights in"
        )
    header.write_text(new)


def _drop_weight_loading(source: Path) -> None:
    text = source.read_text()
    new, n = _WEIGHT_LOADING.subn("    // weights: compiled in (NN/weights/*.h)", text)
    if (
        n > 1
        or "load_weights_from_txt" in new
        or "load_compressed_weights" in new
        or "load_exponent_weights" in new
    ):
        raise ValueError(
            f"{source}: hls4ml's weight loading block changed; cannot compile the weights in"
        )
    source.write_text(new)


def _copy_network(firmware: Path, nn: Path) -> None:
    """The project's C++ (wrapper and hls4ml network, weights compiled in) without ap_types."""
    for name in (f"{TOP_NAME}.h", f"{TOP_NAME}.cpp", f"{NETS_NAME}.h", f"{NETS_NAME}.cpp"):
        if not (firmware / name).is_file():
            raise ValueError(
                f"{firmware}: no {name}; not a trigger project written by l1ad firmware"
            )
    nn.mkdir()
    for path in firmware.iterdir():
        if path.is_file() and path.suffix in (".h", ".cpp"):
            shutil.copy2(path, nn / path.name)
    shutil.copytree(firmware / "nnet_utils", nn / "nnet_utils")
    (nn / "weights").mkdir()
    for header in sorted((firmware / "weights").glob("*.h")):
        shutil.copy2(header, nn / "weights" / header.name)
        _embed_weights(nn / "weights" / header.name)
    _drop_weight_loading(nn / f"{NETS_NAME}.cpp")


def write_emulator(
    project: str | os.PathLike[str],
    spec: FirmwareSpec,
    name: str | None = None,
    directory: str | None = None,
) -> Path:
    """Write the emulator package of the trigger project at ``project`` (into ``project/emulator``,
    whole or not at all); ``name``: the model name (default: from the project directory's name)."""
    project = Path(project)
    name = model_name(name or project.resolve().name)
    values = {
        "model_name": name,
        "nets": NETS_NAME,
        "top": TOP_NAME,
        "n_features": N_FEATURES,
        "score1_t": _ctype(spec.autoencoders[0].score.score),
        "score2_t": _ctype(spec.autoencoders[1].score.score),
        "fire_on": ", ".join(spec.trigger.fire_on),
    }
    target = project / (directory or EMULATOR_DIR)
    with atomic_directory(target) as tmp:
        _copy_network(project / "firmware", tmp / "NN")
        (tmp / "hls4ml").mkdir()
        shutil.copy2(_TEMPLATES / "emulator.h", tmp / "hls4ml" / "emulator.h")
        for template, out in (
            ("trigger_emulator.h.tpl", "trigger_emulator.h"),
            ("trigger_emulator.cpp.tpl", "trigger_emulator.cpp"),
            ("emulator_check.cpp.tpl", "emulator_check.cpp"),
            ("Makefile.tpl", "Makefile"),
        ):
            text = Template((_TEMPLATES / template).read_text()).substitute(values)
            (tmp / out).write_text(text)
    return target


def _library_name(directory: Path) -> str:
    found = re.search(r"^MODEL = (\w+)$", (directory / "Makefile").read_text(), re.MULTILINE)
    if found is None:
        raise ValueError(
            f"{directory}/Makefile: no MODEL line; not an emulator package written by l1ad"
        )
    return f"{found.group(1)}.so"


def build_emulator(directory: str | os.PathLike[str], timeout: float = 1800) -> Path:
    """Build the package's shared library with its Makefile (g++); returns the library's path."""
    directory = Path(directory)
    if not (directory / "Makefile").is_file():
        raise ValueError(f"{directory}: no emulator package here (no Makefile)")
    library = _library_name(directory)
    done = _make(directory, library, timeout)
    if done.returncode != 0:
        raise ValueError(
            f"building the emulator library in {directory} failed:\n{done.stderr[-4000:]}"
        )
    return directory / library


class EmulatorLibrary:
    """A built emulator library, loaded with ctypes; every event goes through the
    ``hls4mlEmulator::Model`` interface (``create_model``, ``prepare_input``, ``predict``, ``read_result``)."""

    def __init__(self, library: str | os.PathLike[str], spec: FirmwareSpec) -> None:
        self.path = Path(library)
        if not self.path.is_file():
            raise ValueError(
                f"{self.path}: emulator library does not exist (build it with make in its directory)"
            )
        self.spec = spec
        self._lib = ctypes.CDLL(str(self.path.resolve()))
        for symbol in ("create_model", "destroy_model", BATCH_ENTRY):
            if not hasattr(self._lib, symbol):
                raise ValueError(
                    f'{self.path}: no extern "C" {symbol}; not an l1ad trigger emulator'
                )
        self._fn = getattr(self._lib, BATCH_ENTRY)
        self._fn.restype = ctypes.c_long

    def __call__(self, words: np.ndarray) -> CSimOutputs:
        """R1, R2 (score mantissas), region bits (N, 4) and trigger bit of hardware words (N, 57)."""
        done, r1, r2, bits = call_batch(self._fn, words, np.int64)
        n = len(r1)
        if done != n:
            raise ValueError(
                f"{self.path}: the emulator threw on one of {n} events (hardware words in, see its header)"
            )
        return CSimOutputs(r1, r2, bits[:, :4].copy(), bits[:, 4].copy())
