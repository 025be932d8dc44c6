"""Emulator vs hls4ml C simulation on a Conv2D network (a small jet-image CNN), single-threaded, per CPU second.

A QKeras CNN on 16x16 one-channel jet images: QConv2D(8, 3x3) + ReLU, max pooling 2x2,
QConv2D(8, 3x3) + ReLU, max pooling 2x2, flatten, QDense(16) + ReLU, QDense(5); random
weights. hls4ml writes and compiles it (io_parallel, Latency); the emulator reads the
project and runs --events images (BLAS on one thread), hls4ml's ``predict()`` (one thread) a
sample of them. Prints events per CPU second of both, the ratio (target >= 100x) and the
mismatch count (must be 0); writes ``benchmarks/results/bench_emulation_conv2d.json``.

    python benchmarks/bench_emulation_conv2d.py [--events 100000] [--csim-events 2000] [--repeat 3]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from bench_emulation import csim_sample, fastest, parser, report, single_threaded

SIDE = 16


def jet_cnn(seed: int = 0):
    from quantize.keras_compat import import_qkeras, use_legacy_keras

    keras = use_legacy_keras()
    qkeras = import_qkeras()
    keras.utils.set_random_seed(seed)
    wq = qkeras.quantized_bits(6, 0, alpha=1)
    relu = qkeras.quantized_relu(8, 3)
    init = keras.initializers.RandomUniform(-1, 1, seed=seed)
    x = keras.Input((SIDE, SIDE, 1), name="image")
    h = qkeras.QConv2D(
        8, (3, 3), kernel_quantizer=wq, bias_quantizer=wq, kernel_initializer=init, name="conv1"
    )(x)
    h = qkeras.QActivation(relu, name="relu1")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool1")(h)
    h = qkeras.QConv2D(
        8, (3, 3), kernel_quantizer=wq, bias_quantizer=wq, kernel_initializer=init, name="conv2"
    )(h)
    h = qkeras.QActivation(relu, name="relu2")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = qkeras.QDense(
        16, kernel_quantizer=wq, bias_quantizer=wq, kernel_initializer=init, name="dense1"
    )(h)
    h = qkeras.QActivation(relu, name="relu3")(h)
    h = qkeras.QDense(
        5, kernel_quantizer=wq, bias_quantizer=wq, kernel_initializer=init, name="dense2"
    )(h)
    return keras.Model(x, h)


def jet_images(n: int, seed: int = 0) -> np.ndarray:
    """Sparse positive images: ~10 % of pixels lit (exponential pT, GeV-like), 1 % empty and 1 % saturating events."""
    rng = np.random.default_rng(seed)
    x = rng.exponential(5.0, (n, SIDE * SIDE)) * (rng.random((n, SIDE * SIDE)) < 0.1)
    x[: n // 100] = 0.0
    x[n // 100 : n // 50] *= 50
    return x


def main() -> None:
    args = parser(__doc__, events=100_000, csim_events=2_000).parse_args()
    from emulation import emulate_project, load_hls_project
    from emulation.float_path import compile_project
    from firmware.csim import CSimulation, write_qkeras_project

    with tempfile.TemporaryDirectory(prefix="bench_conv2d_") as tmp:
        folder = args.project_dir or Path(tmp) / "prj"
        start = time.perf_counter()
        sim = write_qkeras_project(jet_cnn(), folder, project_name="bench_cnn")
        assert isinstance(sim, CSimulation)  # compiled (compile=True)
        print(
            f"hls4ml project written and compiled in {time.perf_counter() - start:.1f} s: {folder}"
        )
        project = load_hls_project(folder)
        print(project.describe())
        program = compile_project(project)
        print(
            "float path per step: " + ", ".join(f"{s.node.kind}:{s.dtype}" for s in program.steps)
        )
        x = jet_images(args.events)
        with single_threaded():
            emulate_project(project, x[:2000])  # warm-up
            result, emu_cpu, emu_wall = fastest(lambda: emulate_project(project, x), args.repeat)
            sample = csim_sample(args.events, args.csim_events)
            sim.predict(x[sample[:50]])  # warm-up
            expected, csim_cpu, csim_wall = fastest(lambda: sim.predict(x[sample]), args.repeat)
    mismatches = int(np.any(expected != result.outputs[sample], axis=1).sum())
    report("bench_emulation_conv2d", 100, args.events, emu_cpu, emu_wall, len(sample), csim_cpu, csim_wall,
           mismatches, len(sample), overflows=result.overflows.total, image=[SIDE, SIDE, 1],
           steps=[f"{s.node.kind}:{s.dtype}" for s in program.steps])  # fmt: skip


if __name__ == "__main__":
    main()
