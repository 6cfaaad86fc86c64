"""Make testdata/features_golden.npz: librosa 0.11 reference outputs for features.py.

Run from the repository root with an interpreter that has librosa 0.11:
    /tmp/ref/bin/python testdata/make_golden_features.py
librosa is only needed here, never by features.py or the tests. The input waveforms are
stored next to the outputs, so the tests never depend on how the signals were generated.
Keys are "<clip>__<what>"; clips are listed in "clips" with their rates in "clip_sr".
It also prints how far librosa's DEFAULT tonnetz (chroma_cqt) is from
tonnetz(chroma=chroma_stft(...)), the definition features.py uses.
"""
import pathlib
import sys
import warnings

import numpy as np
import scipy
import scipy.signal

import librosa

OUT = pathlib.Path(__file__).resolve().parent / "features_golden.npz"
N_FFT, HOP = 2048, 512  # librosa feature defaults


def make_clips():
    """Deterministic float32 test signals: name -> (waveform, sr)."""
    rs = np.random.RandomState(20240611)
    clips = {}

    def t_axis(sr, dur):
        return np.arange(int(round(sr * dur))) / sr

    sr = 22050
    # two tones, detuned by about +0.24 semitone from A440, plus a little noise
    t = t_axis(sr, 1.0)
    y = 0.5 * np.sin(2 * np.pi * 446.2 * t) + 0.3 * np.sin(2 * np.pi * 669.3 * t)
    clips["tones"] = (y + 0.01 * rs.randn(len(t)), sr)
    # harmonic stack (12 partials, 1/k amplitudes) on a G3 tuned 0.3 semitone flat, with a swell
    t = t_axis(sr, 0.75)
    f0 = 196.0 * 2 ** (-0.3 / 12)
    y = sum(0.5 / k * np.sin(2 * np.pi * k * f0 * t + 0.1 * k) for k in range(1, 13))
    clips["harmonic"] = (y * (0.3 + 0.7 * np.sin(np.pi * t / t[-1])), sr)
    # exponential chirp 100 Hz -> 9 kHz
    t = t_axis(sr, 0.75)
    f_a, f_b, dur = 100.0, 9000.0, 0.75
    k = np.log(f_b / f_a) / dur
    clips["chirp"] = (0.5 * np.sin(2 * np.pi * f_a * (np.exp(k * t) - 1) / k), sr)
    # four noise bursts on a -60 dB noise floor
    t = t_axis(sr, 1.0)
    env = np.full(len(t), 1e-3)
    for start in (0.05, 0.3, 0.55, 0.8):
        env += np.exp(-0.5 * ((t - start - 0.05) / 0.02) ** 2)
    clips["bursts"] = (0.3 * env * rs.randn(len(t)), sr)
    # digital silence
    clips["silent"] = (np.zeros(int(0.5 * sr)), sr)
    # shorter than n_fft=2048
    t = t_axis(sr, 1500 / sr)
    clips["short"] = (0.4 * np.sin(2 * np.pi * 1000.0 * t) + 0.02 * rs.randn(len(t)), sr)
    # made at 8 kHz and upsampled to 22050 Hz: everything above 4 kHz is (nearly) empty
    t8 = t_axis(8000, 0.75)
    y8 = 0.3 * np.sin(2 * np.pi * 500.0 * t8) + 0.1 * rs.randn(len(t8))
    clips["up8k"] = (scipy.signal.resample_poly(y8, 441, 160), sr)
    # white noise only
    clips["noise"] = (0.1 * rs.randn(int(0.5 * sr)), sr)
    # a 16 kHz clip: tones + noise
    sr16 = 16000
    t = t_axis(sr16, 1.0)
    y = 0.3 * np.sin(2 * np.pi * 300.0 * t) + 0.2 * np.sin(2 * np.pi * 2000.0 * t)
    clips["sr16k"] = (y + 0.05 * rs.randn(len(t)), sr16)
    # 2 s at 32 kHz for the PANNs log-mel: tone, 0.2 s of digital silence, chirp 50 Hz -> 14 kHz
    sr32 = 32000
    t = t_axis(sr32, 2.0)
    y = np.where(t < 0.9, 0.3 * np.sin(2 * np.pi * 1000.0 * t), 0.0)
    tc = t - 1.1
    kc = np.log(14000.0 / 50.0) / 0.9
    y = np.where(tc >= 0, 0.4 * np.sin(2 * np.pi * 50.0 * (np.exp(kc * tc) - 1) / kc), y)
    y = y + np.where((t >= 0.9) & (t < 1.1), 0.0, 0.003 * rs.randn(len(t)))
    clips["panns"] = (y, sr32)
    return {name: (np.asarray(y, dtype=np.float32), sr) for name, (y, sr) in clips.items()}


def main():
    warnings.simplefilter("ignore")  # short-clip / empty-filter warnings are expected
    clips = make_clips()
    g = {"clips": np.array(list(clips)), "clip_sr": np.array([sr for _, sr in clips.values()]),
         "versions": np.array([f"librosa {librosa.__version__}", f"numpy {np.__version__}",
                               f"scipy {scipy.__version__}"])}
    for name, (y, sr) in clips.items():
        g[f"{name}__y"] = y

    # --- mel filterbanks
    g["fb_panns"] = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000)
    g["fb_us8k"] = librosa.filters.mel(sr=22050, n_fft=2048, n_mels=60)
    g["fb_htk"] = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=20, fmax=7600,
                                      htk=True, norm=None)
    g["chroma_fb_tuned"] = librosa.filters.chroma(sr=22050, n_fft=2048, tuning=0.23)

    # --- per-clip features at the librosa defaults (n_fft 2048, hop 512, constant padding)
    spectral = [n for n in clips if n != "panns"]
    for name in spectral:
        y, sr = clips[name]
        S_pow = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2
        g[f"{name}__mel_db"] = librosa.power_to_db(
            librosa.feature.melspectrogram(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP))
        g[f"{name}__tuning"] = np.float64(
            librosa.estimate_tuning(S=S_pow, sr=sr, n_fft=N_FFT, bins_per_octave=12))
        chroma = librosa.feature.chroma_stft(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP)
        g[f"{name}__chroma"] = chroma
        g[f"{name}__tonnetz"] = librosa.feature.tonnetz(y=y, sr=sr, chroma=chroma)
        g[f"{name}__contrast"] = librosa.feature.spectral_contrast(
            y=y, sr=sr, n_fft=N_FFT, hop_length=HOP)
    for name in ("tones", "short", "sr16k"):  # reflect padding (PANNs-style), only edges differ
        y, sr = clips[name]
        g[f"{name}__mel_db_reflect"] = librosa.power_to_db(librosa.feature.melspectrogram(
            y=y, sr=sr, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect"))
    g["tones__mel_power"] = librosa.feature.melspectrogram(y=clips["tones"][0], sr=22050)
    g["harmonic__mel_db_htk"] = librosa.power_to_db(librosa.feature.melspectrogram(
        y=clips["harmonic"][0], sr=22050, n_fft=1024, hop_length=256, n_mels=40, htk=True,
        norm=None, fmin=30.0, fmax=8000.0))

    # --- STFT: complex for the short clip; magnitude with win_length < n_fft and center=False
    g["short__stft"] = librosa.stft(clips["short"][0], n_fft=N_FFT, hop_length=HOP)
    g["noise__stft_mag_nocenter"] = np.abs(librosa.stft(
        clips["noise"][0][:4000], n_fft=512, hop_length=128, win_length=400, center=False))

    # --- PANNs log-mel through librosa, transposed to (frames, mels)
    y, sr = clips["panns"]
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=320, n_mels=64,
                                         fmin=50, fmax=14000, pad_mode="reflect")
    g["panns__log_mel"] = librosa.power_to_db(mel, top_db=None).T

    # --- recipe 1: UrbanSound8K 85 x 128 from an already-22050-Hz waveform
    for name in ("bursts", "harmonic"):
        y = librosa.util.fix_length(clips[name][0], size=66150)
        sr = 22050
        logmel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=60))
        chroma = librosa.feature.chroma_stft(y=y, sr=sr)
        ton = librosa.feature.tonnetz(chroma=chroma)
        contrast = librosa.feature.spectral_contrast(y=y, sr=sr)
        feats = np.concatenate([logmel, chroma, ton, contrast], axis=0)[:, :128]
        g[f"{name}__us8k"] = feats.T.astype(np.float32)

    # --- recipe 2: Speech Commands 32 x 32 from a 16 kHz waveform
    y = librosa.util.fix_length(clips["sr16k"][0], size=16000)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=512, n_mels=32,
                                         fmin=0.0, fmax=8000.0)
    g["sr16k__speechcommands"] = librosa.power_to_db(mel).T.astype(np.float32)

    # store float64 outputs as float32 where float32 precision is far inside the tolerances
    for key, val in g.items():
        if isinstance(val, np.ndarray) and val.dtype == np.float64 and val.ndim > 0 \
                and key not in ("clip_sr",):
            g[key] = val.astype(np.float32)
    np.savez_compressed(OUT, **g)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(g)} arrays)")

    # --- how far is librosa's default tonnetz (chroma_cqt) from tonnetz(chroma=chroma_stft)?
    print("\nlibrosa.feature.tonnetz(y) [chroma_cqt] vs tonnetz(chroma=chroma_stft(y)):")
    print(f"{'clip':>14s} {'sr':>6s} {'frames':>6s} {'max abs':>8s} {'mean abs':>8s}")
    all_diffs = []
    inputs = [(n, *clips[n]) for n in spectral]
    inputs += [("bursts_us8k", librosa.util.fix_length(clips["bursts"][0], size=66150), 22050),
               ("harmonic_us8k", librosa.util.fix_length(clips["harmonic"][0], size=66150), 22050)]
    for name, y, sr in inputs:
        try:
            t_cqt = librosa.feature.tonnetz(y=y, sr=sr)
        except Exception as exc:  # e.g. CQT filters longer than the clip
            print(f"{name:>14s} {sr:6d}  chroma_cqt failed: {type(exc).__name__}: {exc}")
            continue
        t_stft = librosa.feature.tonnetz(chroma=librosa.feature.chroma_stft(y=y, sr=sr))
        n = min(t_cqt.shape[-1], t_stft.shape[-1])
        d = np.abs(t_cqt[:, :n] - t_stft[:, :n])
        all_diffs.append(d.ravel())
        print(f"{name:>14s} {sr:6d} {n:6d} {d.max():8.4f} {d.mean():8.4f}")
    d = np.concatenate(all_diffs)
    print(f"{'all':>14s} {'':6s} {'':6s} {d.max():8.4f} {d.mean():8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
