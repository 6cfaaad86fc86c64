"""Throughput of features.log_mel (PANNs front end) on 10 s, 32 kHz clips, and of the feature cache build.

    python bench/bench_features.py [--n-clips 16] [--repeats 3]
    python bench/bench_features.py --cache-build [--n-clips 200] [--repeats 3]

Compares, on the same synthetic clips, with the same timer (best of --repeats passes over
all clips, one call per clip):
  baseline  a straightforward Python loop over frames (pad, window, np.fft.rfft, power,
            mel matmul, log) written below,
  librosa   librosa.feature.melspectrogram + librosa.power_to_db, same config (if installed),
  log_mel   features.log_mel, one clip per call, and once more on the whole (N, L) batch.
Also prints the largest difference of each output from features.log_mel in dB.

--cache-build: `data.py cache` of generated clips in the paper's format (AudioSet layout, 10 s at
32 kHz, PANNs front end), each build in a fresh process and a fresh cache folder, with
OPENBLAS_NUM_THREADS unset (as a user runs it), forced to 1, and unset with data.blas_threads
switched off (each worker's BLAS thread pool as before the pin), at 1 worker and at every usable
core; the variants interleaved round by round, the median build rate reported, and the ratio of
the unset build to the forced one.
This is a benchmark, not a test.
"""
import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import features  # noqa: E402

CFG = dict(sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50.0, fmax=14000.0)


def make_clips(n, seconds=10.0, sr=32000, seed=0):
    """Tones, chirps and noise at random levels, float32 (n, L)."""
    rs = np.random.RandomState(seed)
    t = np.arange(int(seconds * sr)) / sr
    clips = []
    for _ in range(n):
        f0, f1 = rs.uniform(50, 2000), rs.uniform(2000, 14000)
        k = np.log(f1 / f0) / seconds
        y = rs.uniform(0.05, 0.5) * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
        y += rs.uniform(0.0, 0.3) * np.sin(2 * np.pi * rs.uniform(100, 4000) * t)
        y += rs.uniform(1e-4, 0.1) * rs.randn(len(t))
        clips.append(y)
    return np.asarray(clips, dtype=np.float32)


def baseline_log_mel(y, sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50.0, fmax=14000.0):
    """The obvious version: one frame at a time."""
    mel_fb = features.mel_filterbank(sr, n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    y_pad = np.pad(y, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(y_pad) - n_fft) // hop_length
    out = np.empty((n_frames, n_mels), dtype=np.float32)
    for t in range(n_frames):
        frame = y_pad[t * hop_length: t * hop_length + n_fft] * window
        spec = np.fft.rfft(frame)
        power = spec.real ** 2 + spec.imag ** 2
        out[t] = 10.0 * np.log10(np.maximum(mel_fb @ power, 1e-10))
    return out


def librosa_log_mel(y, librosa):
    mel = librosa.feature.melspectrogram(y=y, pad_mode="reflect", **CFG)
    return librosa.power_to_db(mel, top_db=None).T


def best_time(fn, clips, repeats, per_clip=True):
    """Best wall time of `repeats` passes over all clips; also returns the last outputs."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = [fn(y) for y in clips] if per_clip else fn(clips)
        best = min(best, time.perf_counter() - t0)
    return best, out


CHILD = """
import contextlib, sys, time
sys.path.insert(0, sys.argv[1])
import data
if sys.argv[5] == 'unpinned':
    data.blas_threads = lambda n: contextlib.nullcontext()
t0 = time.perf_counter()
ds, cache = data.prepare('audioset', sys.argv[2], sys.argv[3], workers=int(sys.argv[4]), progress=False)
assert cache.stats['computed'] == len(ds)
print(len(ds) / (time.perf_counter() - t0))
"""


def cache_build(n_clips, repeats):
    """The cache-build rows (see the docstring); returns {(variant, workers): clips/s}."""
    sys.path.insert(0, str(ROOT))
    import data
    import synth
    cores = data.usable_cores()
    with tempfile.TemporaryDirectory() as tmp:
        clips = pathlib.Path(tmp) / "as10"
        synth.synth_audioset(clips, n_train=n_clips - n_clips // 4, n_eval=n_clips // 4, seconds=10.0, sr=32000,
                            progress=False)
        variants = [(v, w) for w in sorted({1, cores}) for v in ("unset", "forced 1", "unset, no pin")]
        rates = {v: [] for v in variants}
        for r in range(repeats):
            for name, workers in variants:
                env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
                if name == "forced 1":
                    env["OPENBLAS_NUM_THREADS"] = "1"
                cache = pathlib.Path(tmp) / f"cache-{r}-{len(rates[(name, workers)])}-{workers}-{name[:6]}"
                out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(clips), str(cache), str(workers),
                                      "unpinned" if "no pin" in name else "pinned"], env=env, capture_output=True,
                                     text=True, check=True)
                rates[(name, workers)].append(float(out.stdout.split()[-1]))
                print(f"round {r + 1}: {name:14s} workers {workers}: {rates[(name, workers)][-1]:.1f} clips/s",
                      flush=True)
    print(f"\ncache build of {n_clips} clips (10 s, 32 kHz, PANNs 1001 x 64), {cores} usable cores, median of "
          f"{repeats} interleaved rounds; numpy {np.__version__}")
    print(f"{'OPENBLAS_NUM_THREADS':22s} {'workers':>7s} {'clips/s':>8s} {'per core':>8s} {'x forced 1':>10s}")
    med = {v: statistics.median(r) for v, r in rates.items()}
    for name, workers in variants:
        print(f"{name:22s} {workers:7d} {med[(name, workers)]:8.1f} {med[(name, workers)] / workers:8.1f} "
              f"{med[(name, workers)] / med[('forced 1', workers)]:10.2f}")
    return med


ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-clips", type=int, default=None, help="clips (default 16; --cache-build 200)")
    ap.add_argument("--repeats", type=int, default=3, help="best of k passes (--cache-build: rounds, median)")
    ap.add_argument("--cache-build", action="store_true", help="time data.py's feature cache build instead")
    args = ap.parse_args()
    if args.cache_build:
        cache_build(args.n_clips or 200, args.repeats)
        return
    args.n_clips = args.n_clips or 16

    clips = make_clips(args.n_clips)
    print(f"{args.n_clips} clips x 10 s @ 32 kHz, best of {args.repeats}; "
          f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    features.log_mel(clips[0])  # warm the filterbank cache

    rows = [("baseline (loop over frames)",) + best_time(lambda y: baseline_log_mel(y, **CFG),
                                                         clips, args.repeats)]
    try:
        import librosa
    except ImportError:
        librosa = None
        print("librosa not importable: librosa row skipped")
    if librosa is not None:
        librosa_log_mel(clips[0], librosa)  # warm-up (numba / caches)
        rows.append((f"librosa {librosa.__version__} melspectrogram+power_to_db",)
                    + best_time(lambda y: librosa_log_mel(y, librosa), clips, args.repeats))
    rows.append(("features.log_mel (per clip)",) + best_time(features.log_mel, clips,
                                                             args.repeats))
    rows.append((f"features.log_mel (batch {args.n_clips}, L)",)
                + best_time(features.log_mel, clips, args.repeats, per_clip=False))

    ref = rows[-2][2]
    base_rate = args.n_clips / rows[0][1]
    print(f"\n{'method':44s} {'clips/s':>9s} {'ms/clip':>8s} {'x baseline':>10s} "
          f"{'max |diff| dB':>13s}")
    for name, sec, out in rows:
        rate = args.n_clips / sec
        diff = max(float(np.abs(np.asarray(o) - r).max()) for o, r in zip(out, ref))
        print(f"{name:44s} {rate:9.1f} {1e3 / rate:8.2f} {rate / base_rate:10.1f} {diff:13.2e}")


if __name__ == "__main__":
    main()
