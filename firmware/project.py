"""Write ``hls_projects/NAME/``: the hls4ml network, the trigger wrapper, testbench and tb_data.

Layout (hls4ml's, with the trigger on top):

- ``firmware/trigger_nets.cpp|h``, ``defines.h``, ``parameters.h``, ``weights/``,
  ``nnet_utils/``, ``ap_types/``: hls4ml's network function (both autoencoders); with the
  distributed_arithmetic strategy (the default) the dense layers are da4ml's shift-and-add
  functions in ``nnet_utils/nnet_code_gen.h`` and ``weights/`` stays empty;
- ``firmware/trigger_top.cpp|h``: the wrapper (:mod:`firmware.wrapper`), the HLS top;
- ``trigger_top_test.cpp``: C testbench on ``tb_data/`` (hardware words in, R1, R2,
  region and trigger bits expected, as :class:`emulation.TriggerEmulator` gives them);
- ``project.tcl`` names ``trigger_top`` the project and top, so hls4ml's
  ``build_prj.tcl`` (``vitis_hls -f build_prj.tcl "csim=1 synth=1 cosim=0"``,
  ``vivado_hls`` for Vivado) synthesises the whole trigger and ``hls4ml.report`` reads it;
- ``Makefile``: ``make csim`` builds and runs the testbench with g++ only (no vendor tools),
  ``make lib`` the shared library behind :class:`CSim`;
- ``trigger_bridge.cpp``: ctypes entry point for :class:`CSim`;
- ``emulator/`` (on request): the ``hls4mlEmulator::Model`` package (:mod:`firmware.emulator_lib`).

The directory is written beside its target and renamed when complete.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emulation.spec import FirmwareSpec
from emulation.trigger import TriggerBits as TriggerBits  # re-exported: part of firmware's API
from emulation.trigger import TriggerEmulator, mismatching_events
from firmware.convert import NETS_NAME, ConversionSettings, convert
from firmware.defaults import DEFAULT_STRATEGY
from firmware.wrapper import TOP_NAME, NetsInterface, render, render_bridge, render_testbench
from offline.artifacts import atomic_directory, write_json
from offline.events.schema import N_FEATURES

PROJECT_KIND = "hls-project"  # atomic_directory replaces only earlier projects
TB_INPUTS = "tb_data/tb_input_features.dat"
TB_OUTPUTS = "tb_data/tb_output_predictions.dat"
CXXFLAGS = ("-std=c++14", "-O1", "-fPIC", "-w")


def call_batch(
    fn: Callable[..., Any], words: np.ndarray, score_dtype: type
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Call a compiled ``f(words, n, r1, r2, bits)`` over hardware words (N, 57): its return value,
    R1 and R2 as ``score_dtype`` and the (N, 5) region + trigger bits."""
    words = np.ascontiguousarray(words, dtype=np.int64)
    if words.ndim != 2 or words.shape[1] != N_FEATURES:
        raise ValueError(f"expected hardware words of shape (N, {N_FEATURES}), got {words.shape}")
    n = len(words)
    r1: np.ndarray = np.empty(n, dtype=score_dtype)
    r2: np.ndarray = np.empty(n, dtype=score_dtype)
    bits = np.empty((n, 5), dtype=np.uint8)
    ptr = ctypes.c_void_p
    done = fn(
        ptr(words.ctypes.data),
        ctypes.c_long(n),
        ptr(r1.ctypes.data),
        ptr(r2.ctypes.data),
        ptr(bits.ctypes.data),
    )
    return done, r1, r2, bits


@dataclass
class CSimOutputs:
    """Outputs of the C simulation (score mantissas, region bits (N, 4) A-D, trigger bit)."""

    r1: np.ndarray
    r2: np.ndarray
    regions: np.ndarray
    trigger: np.ndarray

    def __len__(self) -> int:
        return len(self.r1)


@dataclass(frozen=True)
class Project:
    path: Path
    backend: str
    frontend: str
    tb_events: int
    strategy: str = DEFAULT_STRATEGY


def write_project(
    directory: str | os.PathLike[str],
    spec: FirmwareSpec,
    weights: dict[str, np.ndarray],
    model: Any,
    settings: ConversionSettings,
    tb_words: np.ndarray,
    frontend: str = "keras",
    emulator: bool = False,
) -> Project:
    """Convert ``model`` (the two-output pair of ``spec`` with ``weights``) and write the complete trigger
    project at ``directory``; the trigger emulator of ``spec`` and ``weights`` gives tb_data's expected
    outputs. With ``emulator``, the project holds the emulator package too (:mod:`firmware.emulator_lib`)."""
    from firmware.options import check_spec_types  # imports this module's neighbours

    check_spec_types(spec, strategy=settings.strategy)
    reference = TriggerEmulator(
        spec, weights
    )  # checks the weights against the spec before anything is written
    directory = Path(directory)
    tb_words = np.asarray(tb_words, dtype=np.int64)
    if tb_words.ndim != 2 or tb_words.shape[1] != N_FEATURES or len(tb_words) == 0:
        raise ValueError(
            f"tb_data events must be (N>0, {N_FEATURES}) hardware words, got {tb_words.shape}"
        )
    with atomic_directory(directory, kind=PROJECT_KIND) as tmp:
        hls_model = convert(model, spec, tmp, settings, frontend)
        hls_model.write()
        nets = NetsInterface.from_model(hls_model)
        for name, text in render(spec, nets).items():
            (tmp / "firmware" / name).write_text(text)
        (tmp / f"{TOP_NAME}_test.cpp").write_text(render_testbench())
        (tmp / "trigger_bridge.cpp").write_text(render_bridge())
        (tmp / f"{NETS_NAME}_test.cpp").unlink(
            missing_ok=True
        )  # hls4ml's network-only bench: superseded
        _retarget_tcl(tmp)
        (tmp / "Makefile").write_text(_build_script())
        write_tb_data(tmp, spec, reference(tb_words), tb_words)
        write_json(
            tmp / "l1ad_firmware.json",
            {
                "top": TOP_NAME,
                "network_function": NETS_NAME,
                "backend": settings.backend,
                "part": settings.part,
                "clock_period_ns": settings.clock_period_ns,
                "strategy": settings.strategy,
                # da4ml's LUT estimate of each dense layer's DA kernel, as hls4ml solved it
                "da_kernel_luts": {
                    layer.name: float(layer.attributes["da_kernel_cost"])
                    for layer in hls_model.get_layers()
                    if "da_kernel_cost" in layer.attributes
                },
                "frontend": frontend,
                "spec": spec.to_dict(),
            },
        )
        if emulator:
            from firmware.emulator_lib import write_emulator  # imports this module

            write_emulator(tmp, spec, name=directory.name)
    return Project(directory, settings.backend, frontend, len(tb_words), settings.strategy)


def _retarget_tcl(path: Path) -> None:
    """Make the trigger the HLS project and top; add the network source next to it."""
    tcl = path / "project.tcl"
    text = tcl.read_text()
    text, n = re.subn(r'set project_name "\w+"', f'set project_name "{TOP_NAME}"', text)
    if n != 1:
        raise ValueError(f"{tcl}: no project_name line to retarget")
    tcl.write_text(text)
    build = path / "build_prj.tcl"
    text = build.read_text()
    line = 'add_files firmware/${project_name}.cpp -cflags "-std=c++0x"'
    if line not in text:
        raise ValueError(f"{build}: hls4ml's add_files line changed; cannot add the network source")
    text = text.replace(line, f'{line}\nadd_files firmware/{NETS_NAME}.cpp -cflags "-std=c++0x"')
    build.write_text(text)


def _build_script() -> str:
    flags = " ".join(CXXFLAGS)
    return f"""# C simulation of the whole trigger with g++ only (no vendor tools).
#   make -C PROJECT csim   builds csim/{TOP_NAME}_test and runs it on tb_data/
#   make -C PROJECT lib    builds csim/libtrigger.so (ctypes bridge used by l1ad)
CXX ?= g++
CXXFLAGS = {flags} -Ifirmware/ap_types -Ifirmware -I. -DWEIGHTS_DIR='"$(CURDIR)/firmware/weights"'
HEADERS = $(wildcard firmware/*.h firmware/weights/*.h firmware/nnet_utils/nnet_code_gen.h)

csim: csim/{TOP_NAME}_test
	./csim/{TOP_NAME}_test

lib: csim/libtrigger.so

csim/%.o: firmware/%.cpp $(HEADERS)
	@mkdir -p csim
	$(CXX) $(CXXFLAGS) -c $< -o $@

csim/%.o: %.cpp $(HEADERS)
	@mkdir -p csim
	$(CXX) $(CXXFLAGS) -c $< -o $@

csim/{TOP_NAME}_test: csim/{NETS_NAME}.o csim/{TOP_NAME}.o csim/{TOP_NAME}_test.o
	$(CXX) $^ -o $@

csim/libtrigger.so: csim/{NETS_NAME}.o csim/{TOP_NAME}.o csim/trigger_bridge.o
	$(CXX) -shared $^ -o $@

.PHONY: csim lib
"""


def _fmt(value: float) -> str:
    return repr(float(value))


def write_tb_data(path: Path, spec: FirmwareSpec, expected: TriggerBits, words: np.ndarray) -> None:
    """tb_data: hardware words per event and the reference outputs (exact decimals)."""
    tb = path / "tb_data"
    tb.mkdir(exist_ok=True)
    np.savetxt(tb / "tb_input_features.dat", words, fmt="%d")
    r1 = np.ldexp(expected.r1.astype(np.float64), -spec.autoencoders[0].score.score.fractional)
    r2 = np.ldexp(expected.r2.astype(np.float64), -spec.autoencoders[1].score.score.fractional)
    with open(tb / "tb_output_predictions.dat", "w") as fh:
        for e in range(len(words)):
            bits = " ".join(str(int(b)) for b in expected.regions[e])
            fh.write(f"{_fmt(r1[e])} {_fmt(r2[e])} {bits} {int(expected.trigger[e])}\n")


def _make(project: Path, target: str, timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which("g++") is None or shutil.which("make") is None:
        raise ValueError("g++ and make must be on PATH to build the C simulation")
    jobs = str(min(2, os.cpu_count() or 1))
    return subprocess.run(
        ["make", "-s", "-j", jobs, "-C", str(project), target],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def build_testbench(
    project: str | os.PathLike[str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Build the C testbench with g++ and run it on tb_data; the process's return code is the
    testbench's (0: every output matches, 1: mismatches, 2: no data)."""
    project = Path(project)
    done = _make(project, f"csim/{TOP_NAME}_test", timeout)
    if done.returncode != 0:
        raise ValueError(f"building the C testbench of {project} failed:\n{done.stderr[-4000:]}")
    return subprocess.run(
        [f"./csim/{TOP_NAME}_test"], cwd=project, capture_output=True, text=True, timeout=timeout
    )


class CSim:
    """The whole trigger compiled with g++ from the project's sources, called through ctypes."""

    def __init__(
        self, project: str | os.PathLike[str], spec: FirmwareSpec, timeout: float = 900
    ) -> None:
        self.project = Path(project)
        self.spec = spec
        done = _make(self.project, "lib", timeout)
        if done.returncode != 0:
            raise ValueError(
                f"building the C simulation of {self.project} failed:\n{done.stderr[-4000:]}"
            )
        self._lib = ctypes.CDLL(str(self.project / "csim" / "libtrigger.so"))
        self._fn = self._lib.trigger_batch
        self._fn.restype = None

    def __call__(self, words: np.ndarray) -> CSimOutputs:
        """R1, R2 (score mantissas), region and trigger bits of hardware words (N, 57)."""
        _, r1, r2, bits = call_batch(self._fn, words, np.float64)
        f1 = self.spec.autoencoders[0].score.score.fractional
        f2 = self.spec.autoencoders[1].score.score.fractional
        return CSimOutputs(
            np.ldexp(r1, f1).astype(np.int64),
            np.ldexp(r2, f2).astype(np.int64),
            bits[:, :4].copy(),
            bits[:, 4].copy(),
        )


def compare(a: TriggerBits, b: TriggerBits) -> int:
    """Number of events whose R1, R2, region or trigger bits differ."""
    return int(mismatching_events(a, b).sum())
