"""The hls4mlEmulator::Model library of the whole trigger: built with g++, loaded with ctypes and
dlopen, bit-exact with the integer emulator (``l1ad emulate``'s library)."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from emulation import TriggerEmulator
from emulation.events import edge_words
from firmware.convert import ConversionSettings
from firmware.emulator_lib import EmulatorLibrary, build_emulator, model_name, write_emulator
from firmware.example import default_model, toy_words
from firmware.models import qkeras_pair_from_spec
from firmware.project import compare, write_project

pytestmark = pytest.mark.hls

N_EVENTS = 10_000


@pytest.fixture(scope="module")
def small():
    from offline.ad.model import AEConfig
    from quantize.precision import QuantConfig

    return default_model(
        seed=2, n_fit=1000, quantile=0.9, ae_config=AEConfig(hidden=(3,), latent=2, bias=True),
        quant_config=QuantConfig().uniform(6), score_outputs=(0, 1, 3, 6, 9),
    )  # fmt: skip


@pytest.fixture(scope="module")
def package(small, tmp_path_factory):
    """A project written with its emulator package, and the library built from it (hls4ml's Latency
    strategy, whose weight headers the package compiles in; the default distributed-arithmetic project
    carries its weights in code: tests/test_firmware_cli.py builds and checks its library)."""
    spec, weights = small
    root = tmp_path_factory.mktemp("emulib")
    words = toy_words(60, 9)
    settings = ConversionSettings(backend="Vitis", strategy="latency")
    project = write_project(root / "ad-v1", spec, weights, qkeras_pair_from_spec(spec, weights),
                            settings, words, emulator=True)  # fmt: skip
    directory = project.path / "emulator"
    return directory, build_emulator(directory)


def _words(spec, n):
    rng = np.random.default_rng(11)
    return np.concatenate([toy_words(n - n // 4, 4), edge_words(spec, rng, n // 4)])


def test_library_through_the_model_interface_is_bit_exact_on_10k_events_with_edges(
    small, package, tmp_path, monkeypatch
):
    spec, weights = small
    library = package[1]
    assert (
        library.name == "ad_v1.so"
    )  # the model name the experiment's loader dlopen()s, as a C identifier
    words = _words(spec, N_EVENTS + 2000)
    assert (words == 0).all(axis=1).any(), "all-empty events included"
    assert (words[:, 0::3] == spec.hardware_input.max_int).any(), "saturating pT included"
    monkeypatch.chdir(tmp_path)  # no weights/ here: the library must carry its weights
    got = EmulatorLibrary(library, spec)(words)
    expected = TriggerEmulator(spec, weights)(words)
    assert compare(got, expected) == 0
    # not vacuous: scores vary, the trigger fires on some events only, every region is populated,
    # and the network's inputs saturate on the edge events
    assert len(np.unique(expected.r1)) > 100 and len(np.unique(expected.r2)) > 100
    assert (
        expected.trigger.any() and not expected.trigger.all() and expected.regions.any(axis=0).all()
    )
    assert (TriggerEmulator(spec, weights).inputs(words) == spec.input.max_int).any()


def test_library_loads_with_dlopen_like_the_experiments_loader_and_passes_tb_data(package):
    directory, _ = package
    done = subprocess.run(
        ["make", "-s", "-C", str(directory), "check"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ad_v1 emulator: 60 events, 0 mismatches" in done.stdout
    nn = (directory / "NN" / "trigger_nets.cpp").read_text()
    assert "load_weights_from_txt" not in nn
    assert "__SYNTHESIS__" not in (directory / "NN" / "weights" / "w2.h").read_text()


def test_interface_header_declares_the_documented_model_and_inputs_of_the_wrong_type_are_refused(
    package, tmp_path
):
    """Compiled against the package's headers: the documented hls4mlEmulator::Model API, then the
    library used through it from C++ with a wrong input type."""
    directory, library = package
    source = tmp_path / "api.cpp"
    source.write_text(
        r"""
#include <dlfcn.h>
#include <cstdio>
#include <stdexcept>
#include <type_traits>
#include "trigger_emulator.h"
using hls4mlEmulator::Model;
static_assert(std::is_abstract_v<Model> && std::has_virtual_destructor_v<Model>);
static_assert(std::is_same_v<decltype(&Model::prepare_input), void (Model::*)(std::any)>);
static_assert(std::is_same_v<decltype(&Model::predict), void (Model::*)()>);
static_assert(std::is_same_v<decltype(&Model::read_result), void (Model::*)(std::any)>);
int main(int, char **argv) {
    void *lib = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
    if (!lib) return 2;
    auto create = (hls4mlEmulator::create_model_cls *)dlsym(lib, "create_model");
    auto destroy = (hls4mlEmulator::destroy_model_cls *)dlsym(lib, "destroy_model");
    Model *m = create();
    int refused = 0;
    try { m->prepare_input(42); } catch (const std::invalid_argument &e) { refused++; std::puts(e.what()); }
    hw_word_t words[N_FEATURES] = {};
    m->prepare_input(words);
    m->predict();
    try { m->read_result(3.0); } catch (const std::invalid_argument &e) { refused++; std::puts(e.what()); }
    l1ad::TriggerResult out;
    m->read_result(&out);
    destroy(m);
    std::printf("refused %d, empty event region_d %d\n", refused, (int)out.region_d);
    return 0;
}
"""
    )
    flags = [
        "-std=c++17",
        "-w",
        f"-I{directory}",
        f"-I{directory / 'NN'}",
        f"-I{directory.parent / 'firmware' / 'ap_types'}",
    ]
    built = subprocess.run(["g++", *flags, str(source), "-o", str(tmp_path / "api"), "-ldl"], capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr
    run = subprocess.run(
        [str(tmp_path / "api"), str(library.resolve())], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused 2" in run.stdout
    assert re.search(r"ad_v1: prepare_input takes a hw_word_t\* to 57 hardware words", run.stdout)


def test_a_changed_weight_in_the_library_is_caught(small, package, tmp_path):
    """The comparison sees the weights: one weight changed in the package's copy makes events differ."""
    import shutil

    spec, weights = small
    directory = tmp_path / "emulator"
    shutil.copytree(
        package[0], directory, ignore=shutil.ignore_patterns("build", "*.so", "emulator_check")
    )
    (directory / "Makefile").write_text(
        (directory / "Makefile")
        .read_text()
        .replace("../firmware/ap_types", str(package[0].parent / "firmware/ap_types"))
    )
    header = directory / "NN" / "weights" / "w2.h"
    text = header.read_text()
    body = text[text.index("= {") :]
    values = body[3 : body.index("}")].split(", ")
    k = next(i for i, v in enumerate(values) if float(v) != 0)
    values[k] = str(-float(values[k]))
    header.write_text(text.replace(body[3 : body.index("}")], ", ".join(values), 1))
    words = _words(spec, 2000)
    got = EmulatorLibrary(build_emulator(directory), spec)(words)
    assert compare(got, TriggerEmulator(spec, weights)(words)) > 0


def test_model_names_are_c_identifiers():
    assert model_name("ad-v1") == "ad_v1"
    assert model_name("2024.run") == "l1ad_2024_run"
    assert model_name("CICADA_v1p1") == "CICADA_v1p1"


def test_a_directory_that_is_no_trigger_project_gets_no_emulator(small, tmp_path):
    spec, _ = small
    (tmp_path / "prj" / "firmware").mkdir(parents=True)
    with pytest.raises(
        ValueError, match=r"no trigger_top\.h; not a trigger project written by l1ad"
    ):
        write_emulator(tmp_path / "prj", spec)
    assert not (tmp_path / "prj" / "emulator").exists()
    assert [p.name for p in (tmp_path / "prj").iterdir()] == ["firmware"]
    with pytest.raises(ValueError, match="emulator library does not exist"):
        EmulatorLibrary(tmp_path / "missing.so", spec)
