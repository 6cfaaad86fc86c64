"""Audio features in numpy + scipy: a readable re-implementation of librosa 0.11 definitions.

Every function keeps librosa's name, argument names and output orientation
(features x frames), so it can be compared with librosa line by line. librosa is
NOT needed; it is only the reference the goldens in testdata/ were made with
(librosa 0.11.0, see testdata/make_golden_features.py).

Contents
  mel scale ........ hz_to_mel, mel_to_hz, mel_filterbank
  spectrogram ...... stft, melspectrogram, power_to_db, normalize
  tuning ........... piptrack, pitch_tuning, estimate_tuning
  chroma/tonal ..... chroma_filterbank, chroma_stft, tonnetz (from chroma_stft!)
  contrast ......... spectral_contrast
  resampling ....... resample (scipy.signal.resample_poly, NOT librosa's soxr)
  front ends ....... log_mel (PANNs / CNN14), log_mel_authors (the authors' torchaudio-style),
                     urbansound8k_features, speechcommands_features

This file depends only on numpy, scipy and the standard library and can be copied alone.
"""
import functools
import math
import warnings

import numpy as np
import scipy.fft
import scipy.signal

# ----------------------------------------------------------------------------------------------
# Recipe configurations (plain dicts, so a feature cache can hash them, e.g. json.dumps(sort_keys)).

LOG_MEL_CONFIG = dict(  # PANNs Cnn14 front end (torchlibrosa Spectrogram + LogmelFilterBank)
    name='panns_log_mel', version=1, sr=32000, n_fft=1024, hop_length=320, window='hann',
    center=True, pad_mode='reflect', power=2.0, n_mels=64, fmin=50.0, fmax=14000.0,
    htk=False, norm='slaney', ref=1.0, amin=1e-10, top_db=None, layout='frames x mels')

URBANSOUND8K_CONFIG = dict(  # 60 log-mel | 12 chroma_stft | 6 tonnetz | 7 spectral contrast
    name='urbansound8k_lmc', version=1, sr=22050, resampler='scipy.signal.resample_poly',
    n_samples=66150, n_fft=2048, hop_length=512, window='hann', center=True,
    pad_mode='constant', n_mels=60, mel_htk=False, mel_norm='slaney', top_db=80.0,
    n_chroma=12, tuning='estimated', tonnetz_chroma='chroma_stft', contrast_fmin=200.0,
    contrast_n_bands=6, contrast_quantile=0.02, n_frames=128, n_features=85,
    layout='frames x features')

SPEECHCOMMANDS_CONFIG = dict(  # 32 x 32 log-mel of a 1 s keyword
    name='speechcommands_logmel32', version=1, sr=16000, resampler='scipy.signal.resample_poly',
    n_samples=16000, n_fft=1024, hop_length=512, window='hann', center=True,
    pad_mode='constant', n_mels=32, fmin=0.0, fmax=8000.0, mel_htk=False, mel_norm='slaney',
    top_db=80.0, n_frames=32, layout='frames x mels')

_STFT_PAD_MODES = ('constant', 'edge', 'linear_ramp', 'reflect', 'symmetric', 'empty')


# ----------------------------------------------------------------------------------------------
# Small helpers


def tiny(x):
    """Smallest positive normal number of x's float dtype (float32's for non-float input)."""
    dtype = np.asarray(x).dtype
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating)):
        dtype = np.float32
    return np.finfo(dtype).tiny


def normalize(S, norm=np.inf, axis=0, threshold=None):
    """Scale S so that its `norm` along `axis` is 1 (librosa.util.normalize with fill=None).

    norm: np.inf (max |.|), -np.inf (min |.|), a positive p (Lp norm) or None (no-op).
    Slices whose norm is below `threshold` (default tiny(S)) are left unnormalised,
    so all-zero frames stay zero instead of becoming NaN.
    """
    S = np.asarray(S)
    if norm is None:
        return S
    if threshold is None:
        threshold = tiny(S)
    mag = np.abs(S).astype(np.float64)  # norms are computed in float64
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    elif norm == -np.inf:
        length = np.min(mag, axis=axis, keepdims=True)
    elif norm > 0:
        length = np.sum(mag ** norm, axis=axis, keepdims=True) ** (1.0 / norm)
    else:
        raise ValueError(f'unsupported norm={norm!r}')
    length[length < threshold] = 1.0
    out = np.empty_like(S)
    out[...] = S / length  # divide in float64, store in S's dtype
    return out


def fft_frequencies(sr=22050, n_fft=2048):
    """Centre frequency (Hz) of each rfft bin: k * sr / n_fft, k = 0 .. n_fft//2."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _hann(win_length, n_fft):
    """Periodic Hann window 0.5 - 0.5 cos(2 pi n / N) of length win_length (float64),
    zero-padded on both sides (centred) to n_fft."""
    if win_length > n_fft:
        raise ValueError(f'win_length={win_length} must be <= n_fft={n_fft}')
    w = scipy.signal.get_window('hann', win_length, fftbins=True)
    lpad = (n_fft - win_length) // 2
    return np.pad(w, (lpad, n_fft - win_length - lpad))


def _frames(y, frame_length, hop_length):
    """Strided view (..., n_frames, frame_length) with frame t = y[..., t*hop : t*hop+frame_length]."""
    return np.lib.stride_tricks.sliding_window_view(y, frame_length, axis=-1)[..., ::hop_length, :]


# ----------------------------------------------------------------------------------------------
# Mel scale


def hz_to_mel(f, htk=False):
    """Hz -> mel. Slaney (default): linear f/(200/3) below 1 kHz, logarithmic above
    (27 mels per factor 6.4). HTK: 2595 log10(1 + f/700)."""
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3  # Hz per mel in the linear part
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp  # = 15
    logstep = np.log(6.4) / 27.0
    mels = f / f_sp
    log_part = f >= min_log_hz
    return np.where(log_part, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
                    mels)[()]


def mel_to_hz(m, htk=False):
    """mel -> Hz, the inverse of hz_to_mel."""
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    freqs = f_sp * m
    log_part = m >= min_log_mel
    return np.where(log_part, min_log_hz * np.exp(logstep * (np.maximum(m, min_log_mel) - min_log_mel)),
                    freqs)[()]


def mel_filterbank(sr, n_fft, n_mels=128, fmin=0.0, fmax=None, htk=False, norm='slaney'):
    """Triangular mel filters (librosa.filters.mel), float32 (n_mels, 1 + n_fft//2).

    n_mels + 2 edge points are equally spaced in mel between fmin and fmax (default sr/2).
    Triangles are evaluated in Hz at the exact bin frequencies k*sr/n_fft (no bin rounding).
    norm='slaney' scales filter i by 2 / (f[i+2] - f[i]) (constant area); norm=None keeps peak 1.
    """
    if fmax is None:
        fmax = float(sr) / 2
    if norm not in ('slaney', None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    fftfreqs = fft_frequencies(sr=sr, n_fft=n_fft)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2),
                      htk=htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]  # rising edge of filter i
    upper = ramps[2:] / fdiff[1:, None]  # falling edge of filter i
    # triangles are built in float64 but stored in float32 before the area norm (as librosa)
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    if norm == 'slaney':
        enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
        weights *= enorm[:, None]
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn('Empty filters detected in mel frequency basis (too many mels for n_fft/sr?).',
                      stacklevel=2)
    return weights


# ----------------------------------------------------------------------------------------------
# Spectrogram


def stft(y, n_fft=2048, hop_length=None, win_length=None, center=True, pad_mode='constant'):
    """Short-time Fourier transform with a periodic Hann window, complex (1 + n_fft//2, n_frames).

    y: float array (..., L). hop_length defaults to win_length // 4, win_length to n_fft.
    center=True pads n_fft//2 samples on both sides with np.pad(mode=pad_mode) ('constant' =
    zeros, librosa >= 0.9 default; 'reflect' = PANNs), so frame t is centred on y[t*hop] and
    n_frames = 1 + L // hop (for even n_fft). Output is complex64 for float32 input.
    """
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f'audio must be floating-point, got dtype {y.dtype}')
    win_length = n_fft if win_length is None else win_length
    hop_length = win_length // 4 if hop_length is None else hop_length
    if hop_length < 1:
        raise ValueError(f'hop_length={hop_length} must be a positive integer')
    window = _hann(win_length, n_fft)  # float64
    if center:
        if pad_mode not in _STFT_PAD_MODES:
            raise ValueError(f'pad_mode={pad_mode!r} is not supported by stft')
        if n_fft > y.shape[-1]:
            warnings.warn(f'n_fft={n_fft} is too large for input signal of length={y.shape[-1]}',
                          stacklevel=2)
        pad = [(0, 0)] * (y.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        y = np.pad(y, pad, mode=pad_mode)
    elif n_fft > y.shape[-1]:
        raise ValueError(f'center=False needs len(y) >= n_fft, got len(y)={y.shape[-1]} < '
                         f'n_fft={n_fft}; use center=True or a shorter n_fft')
    frames = _frames(y, n_fft, hop_length)  # (..., T, n_fft) view, no copy
    # float64 window * float32 frames -> float64 FFT (as librosa); only the result is cast
    D = scipy.fft.rfft(window * frames, axis=-1)
    out_dtype = np.complex64 if y.dtype == np.float32 else np.result_type(y.dtype, np.complex64)
    return np.swapaxes(D.astype(out_dtype, copy=False), -1, -2)  # (..., freq, T)


def _spectrogram(y=None, S=None, n_fft=2048, hop_length=512, power=1.0, win_length=None,
                 center=True, pad_mode='constant'):
    """|stft(y)|**power, or S as given (then n_fft is inferred from S unless consistent)."""
    if S is not None:
        if n_fft is None or n_fft // 2 + 1 != S.shape[-2]:
            n_fft = 2 * (S.shape[-2] - 1)
        return S, n_fft
    if y is None:
        raise ValueError('either y or S must be given')
    D = stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center,
             pad_mode=pad_mode)
    return np.abs(D) ** power, n_fft


def melspectrogram(y=None, sr=22050, S=None, n_fft=2048, hop_length=512, win_length=None,
                   center=True, pad_mode='constant', power=2.0, n_mels=128, fmin=0.0, fmax=None,
                   htk=False, norm='slaney'):
    """Mel spectrogram (n_mels, T) = mel_filterbank @ |stft(y)|**power.

    If S (a power spectrogram, (1 + n_fft//2, T)) is given it is used as is.
    """
    S, n_fft = _spectrogram(y=y, S=S, n_fft=n_fft, hop_length=hop_length, power=power,
                            win_length=win_length, center=center, pad_mode=pad_mode)
    mel_basis = mel_filterbank(sr, n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    return np.einsum('...ft,mf->...mt', S, mel_basis, optimize=True)


def power_to_db(S, ref=1.0, amin=1e-10, top_db=80.0):
    """10 log10(max(S, amin) / max(ref, amin)), then floored at (max - top_db).

    ref may be a callable (e.g. np.max) applied to the whole S. The top_db floor uses the
    maximum over the WHOLE array given (all frames, all bands, any batch axis): call it per
    clip, never on a batch, or a quiet clip gets clipped relative to a loud one.
    top_db=None disables the floor.
    """
    S = np.asarray(S)
    if amin <= 0:
        raise ValueError('amin must be strictly positive')
    if np.iscomplexobj(S):
        warnings.warn('power_to_db got complex input; using |S|', stacklevel=2)
        S = np.abs(S)
    ref_value = ref(S) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None:
        if top_db < 0:
            raise ValueError('top_db must be non-negative')
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


# ----------------------------------------------------------------------------------------------
# Tuning estimation (what chroma_stft does when tuning=None)


def _localmax(x, axis=-2):
    """x[i] > x[i-1] and x[i] >= x[i+1]; the first element is never a maximum, the last one
    is if x[-1] > x[-2]."""
    x = np.moveaxis(x, axis, -1)
    out = np.zeros(x.shape, dtype=bool)
    out[..., 1:-1] = (x[..., 1:-1] > x[..., :-2]) & (x[..., 1:-1] >= x[..., 2:])
    out[..., -1] = x[..., -1] > x[..., -2]
    return np.moveaxis(out, -1, axis)


def _parabolic_shift(x, axis=-2):
    """Offset (in bins) of the vertex of the parabola through x[k-1], x[k], x[k+1]:
    -b/a with a = x[k+1] + x[k-1] - 2x[k], b = (x[k+1] - x[k-1]) / 2; 0 where |b| >= |a|
    (vertex outside [k-1, k+1]) and at the first and last element."""
    x = np.moveaxis(x, axis, -1)
    left, mid, right = x[..., :-2], x[..., 1:-1], x[..., 2:]
    # librosa's numba stencil promotes to float64 ("2 * x" with an int64 literal)
    a = (right + left).astype(np.float64) - 2 * mid.astype(np.float64)
    b = (right - left).astype(np.float64) / 2
    with np.errstate(divide='ignore', invalid='ignore'):
        s = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    shift = np.zeros(x.shape, dtype=x.dtype)
    shift[..., 1:-1] = s
    return np.moveaxis(shift, -1, axis)


def piptrack(S, sr, n_fft=None, fmin=150.0, fmax=4000.0, threshold=0.1):
    """Pitch candidates from a spectrogram S (1 + n_fft//2, T); returns (pitches, mags), same shape.

    chroma_stft passes its POWER spectrogram here (used as |S|, no square root), as librosa.
    A bin is a candidate if fmin <= f < min(fmax, sr/2) and it is a local maximum (over
    frequency) of S after zeroing values <= threshold * (max of its frame).
    pitch = (bin + parabolic shift) * sr / n_fft, mag = S[bin] + 0.5 * gradient * shift.
    """
    S = np.abs(np.asarray(S))
    if n_fft is None or n_fft // 2 + 1 != S.shape[-2]:
        n_fft = 2 * (S.shape[-2] - 1)
    fmin = np.maximum(fmin, 0)
    fmax = np.minimum(fmax, float(sr) / 2)
    freqs = fft_frequencies(sr=sr, n_fft=n_fft)

    avg = np.gradient(S, axis=-2)  # central differences, one-sided at the edges
    shift = _parabolic_shift(S, axis=-2)
    dskew = 0.5 * avg * shift

    freq_mask = ((fmin <= freqs) & (freqs < fmax))[:, None]
    ref_value = threshold * np.max(S, axis=-2, keepdims=True)
    idx = np.nonzero(freq_mask & _localmax(S * (S > ref_value), axis=-2))

    pitches = np.zeros_like(S)
    mags = np.zeros_like(S)
    pitches[idx] = (idx[-2] + shift[idx]) * float(sr) / n_fft
    mags[idx] = S[idx] + dskew[idx]
    return pitches, mags


def pitch_tuning(frequencies, resolution=0.01, bins_per_octave=12):
    """Tuning offset (fraction of a bin, in [-0.5, 0.5)) that best explains `frequencies`.

    Each frequency's deviation from the equal-tempered grid (A440) is folded into [-0.5, 0.5);
    the answer is the LEFT edge of the fullest of ceil(1/resolution) histogram bins
    (first one on ties). No positive frequency -> warning and 0.0.
    """
    frequencies = np.atleast_1d(frequencies)
    frequencies = frequencies[frequencies > 0]
    if not np.any(frequencies):
        warnings.warn('Trying to estimate tuning from empty frequency set.', stacklevel=2)
        return 0.0
    octs = np.log2(frequencies / (440.0 / 16))  # octaves above C0-ish reference A440/16
    residual = np.mod(bins_per_octave * octs, 1.0)
    residual[residual >= 0.5] -= 1.0  # 0.95 of a bin above = 0.05 below the next one
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, bins)
    return edges[np.argmax(counts)]


def estimate_tuning(S, sr, n_fft=None, resolution=0.01, bins_per_octave=12):
    """Tuning estimate from a spectrogram (librosa.estimate_tuning(S=S, ...)).

    Runs piptrack, keeps pitches whose magnitude is >= the median magnitude of all
    candidates, and histograms their deviation from the semitone grid (pitch_tuning).
    """
    pitch, mag = piptrack(S, sr, n_fft=n_fft)
    pitch_mask = pitch > 0
    threshold = np.median(mag[pitch_mask]) if pitch_mask.any() else 0.0
    return pitch_tuning(pitch[(mag >= threshold) & pitch_mask], resolution=resolution,
                        bins_per_octave=bins_per_octave)


# ----------------------------------------------------------------------------------------------
# Chroma and tonnetz


def chroma_filterbank(sr, n_fft, n_chroma=12, tuning=0.0, ctroct=5.0, octwidth=2.0, base_c=True):
    """Chroma filters (librosa.filters.chroma, Ellis' chromagram_E), float32 (n_chroma, 1 + n_fft//2).

    Each FFT bin gets a Gaussian bump over the chroma circle at its (tuned) pitch class,
    columns are L2-normalised, then weighted by a Gaussian over octaves centred on octave
    `ctroct` (880 Hz) with std `octwidth` octaves. Row 0 is C when base_c.
    """
    # bin frequencies up to sr (DC excluded), as fractional chroma bins above A440/16
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (a440 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))  # invented DC bin
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))

    D = frqbins[None, :] - np.arange(n_chroma, dtype=np.float64)[:, None]
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2  # wrap to [-6, 6)
    wts = np.exp(-0.5 * (2 * D / binwidthbins[None, :]) ** 2)
    wts = normalize(wts, norm=2, axis=0)
    if octwidth is not None:
        wts *= np.exp(-0.5 * ((frqbins / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    if base_c:
        wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)  # start at C instead of A
    return np.ascontiguousarray(wts[:, :int(1 + n_fft / 2)], dtype=np.float32)


def chroma_stft(y=None, sr=22050, S=None, norm=np.inf, n_fft=2048, hop_length=512,
                win_length=None, center=True, pad_mode='constant', tuning=None, n_chroma=12):
    """Chromagram (n_chroma, T) from a power spectrogram.

    S, if given, must be a POWER spectrogram |stft|**2. tuning=None estimates the tuning of
    S (estimate_tuning), exactly like librosa's default; pass tuning=0.0 to skip it.
    Each frame is divided by its `norm` (default max); silent frames stay all zero.
    """
    S, n_fft = _spectrogram(y=y, S=S, n_fft=n_fft, hop_length=hop_length, power=2.0,
                            win_length=win_length, center=center, pad_mode=pad_mode)
    if tuning is None:
        tuning = estimate_tuning(S, sr, n_fft=n_fft, bins_per_octave=n_chroma)
    chromafb = chroma_filterbank(sr, n_fft, n_chroma=n_chroma, tuning=tuning)
    raw_chroma = np.einsum('cf,...ft->...ct', chromafb, S, optimize=True)
    return normalize(raw_chroma, norm=norm, axis=-2)


def tonnetz(y=None, sr=22050, chroma=None, **chroma_kwargs):
    """Tonal centroid features (6, T): fifths x/y, minor thirds x/y, major thirds x/y.

    NOTE: when chroma is None this computes chroma_stft(y, sr, **chroma_kwargs), NOT
    librosa's default chroma_cqt; the values therefore differ from librosa.feature.tonnetz(y=y)
    (they equal librosa.feature.tonnetz(chroma=librosa.feature.chroma_stft(y=y))).
    Each chroma frame is L1-normalised and projected onto 6 circles.
    """
    if chroma is None:
        chroma = chroma_stft(y=y, sr=sr, **chroma_kwargs)
    n_chroma = chroma.shape[-2]
    dim_map = np.linspace(0, 12, num=n_chroma, endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    V = scale[:, None] * dim_map[None, :]
    V[::2] -= 0.5  # even rows are the sine (y) coordinates
    R = np.array([1, 1, 1, 1, 0.5, 0.5])  # radii: fifths, minor thirds, major thirds
    phi = R[:, None] * np.cos(np.pi * V)
    return np.einsum('pc,...ci->...pi', phi, normalize(chroma, norm=1, axis=-2), optimize=True)


# ----------------------------------------------------------------------------------------------
# Spectral contrast


def spectral_contrast(y=None, sr=22050, S=None, n_fft=2048, hop_length=512, win_length=None,
                      center=True, pad_mode='constant', fmin=200.0, n_bands=6, quantile=0.02,
                      linear=False):
    """Spectral contrast (n_bands + 1, T) of a MAGNITUDE spectrogram, in dB (10 log10!).

    Bands: [0, fmin], [fmin, 2 fmin], ..., the last one up to Nyquist. In each band the
    valley/peak is the mean of the lowest/highest q = max(1, rint(quantile * n_bins)) values.
    Output power_to_db(peak) - power_to_db(valley), where top_db=80 is applied to the
    WHOLE peak matrix and the WHOLE valley matrix (all bands and frames), as librosa.
    """
    if n_bands < 1 or not isinstance(n_bands, (int, np.integer)):
        raise ValueError('n_bands must be a positive integer')
    if not 0.0 < quantile < 1.0:
        raise ValueError('quantile must lie in (0, 1)')
    if fmin <= 0:
        raise ValueError('fmin must be positive')
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    if np.any(octa[:-1] >= 0.5 * sr):
        raise ValueError(f'spectral_contrast: band edge {octa[:-1].max():g} Hz (fmin={fmin:g} * '
                         f'2**{n_bands - 1}) is >= Nyquist {0.5 * sr:g} Hz (sr={sr}); reduce fmin '
                         f'or n_bands, or resample to a higher rate')
    S, n_fft = _spectrogram(y=y, S=S, n_fft=n_fft, hop_length=hop_length, power=1.0,
                            win_length=win_length, center=center, pad_mode=pad_mode)
    freq = fft_frequencies(sr=sr, n_fft=n_fft)

    shape = list(S.shape)
    shape[-2] = n_bands + 1
    valley = np.zeros(shape)  # float64
    peak = np.zeros(shape)
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        band = (freq >= f_low) & (freq <= f_high)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True  # plus the bin just below the band
        if k == n_bands:
            band[idx[-1] + 1:] = True  # last band runs to Nyquist
        sub_band = S[..., band, :]
        if k < n_bands:
            sub_band = sub_band[..., :-1, :]  # drop the top bin (it starts the next band)
        q = int(max(np.rint(quantile * np.sum(band)), 1))  # counted BEFORE the drop
        sortedr = np.sort(sub_band, axis=-2)
        # np.mean of a float32 array accumulates in float32; the result is stored in float64
        valley[..., k, :] = np.mean(sortedr[..., :q, :], axis=-2)
        peak[..., k, :] = np.mean(sortedr[..., -q:, :], axis=-2)
    if linear:
        return peak - valley
    return power_to_db(peak) - power_to_db(valley)


# ----------------------------------------------------------------------------------------------
# Resampling


def resample(y, orig_sr, target_sr):
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser window beta 5) along the last axis.

    up/down = target_sr/orig_sr reduced by their gcd; output length ceil(L * up / down).
    NOTE: librosa.load uses soxr_hq instead; the two differ near Nyquist (spec: up to 5.6 dB).
    """
    y = np.asarray(y)
    if orig_sr != int(orig_sr) or target_sr != int(target_sr):
        raise ValueError(f'sample rates must be integers, got {orig_sr} and {target_sr}')
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return y
    g = math.gcd(orig_sr, target_sr)
    out = scipy.signal.resample_poly(y, target_sr // g, orig_sr // g, axis=-1)
    return out.astype(y.dtype, copy=False) if np.issubdtype(y.dtype, np.floating) else out


def _fix_length(y, size):
    """Crop or zero-pad (at the end) the last axis to `size` samples."""
    n = y.shape[-1]
    if n >= size:
        return y[..., :size]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, size - n)])


def _mono_float32(y):
    """The recipes take a mono float waveform and work in float32 (as librosa.load returns)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f'expected a mono waveform of shape (L,), got shape {y.shape}')
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f'expected a float waveform in [-1, 1], got dtype {y.dtype}')
    return y.astype(np.float32, copy=False)


# ----------------------------------------------------------------------------------------------
# PANNs log-mel front end (fast path)


@functools.lru_cache(maxsize=16)
def _log_mel_constants(sr, n_fft, n_mels, fmin, fmax):
    """Window and transposed mel matrix for one config, cached. The mel matrix is cut to the
    FFT bins where some filter is non-zero (bins 1..447 of 513 for the PANNs config), so the
    power and the matmul skip bins no filter uses."""
    window = _hann(n_fft, n_fft)  # float64
    melW = mel_filterbank(sr, n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)  # float32 (mels, freq)
    used = np.flatnonzero(melW.max(axis=0) > 0)
    lo, hi = int(used[0]), int(used[-1]) + 1
    melW_T = np.ascontiguousarray(melW[:, lo:hi].T)  # float32 (hi - lo, mels)
    window.setflags(write=False)
    melW_T.setflags(write=False)
    return window, melW_T, lo, hi


_LOG_MEL_BLOCK = 32  # frames per block, see log_mel


def log_mel(y, sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50.0, fmax=14000.0):
    """PANNs / CNN14 log-mel: float32 (frames, mels); y of shape (B, L) gives (B, frames, mels).

    reflect-pad n_fft//2 -> periodic Hann -> |rfft|^2 -> Slaney mel (Slaney area norm)
    -> 10 log10(max(S, 1e-10)), NO top_db (digital silence gives -100 dB). Frames = 1 + L // hop.
    Equals librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, pad_mode='reflect'),
    top_db=None).T up to float32 rounding (README: features.py gives the measured difference).
    For L <= n_fft // 2, numpy's reflect padding reflects repeatedly, where torch would fail.
    """
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f'audio must be floating-point, got dtype {y.dtype}')
    if y.ndim > 1:  # a batch: clip by clip (faster than one huge array, which leaves the cache)
        out = [log_mel(row, sr, n_fft, hop_length, n_mels, fmin, fmax)
               for row in y.reshape(-1, y.shape[-1])]
        return np.stack(out).reshape(y.shape[:-1] + out[0].shape)
    window, melW_T, lo, hi = _log_mel_constants(int(sr), int(n_fft), int(n_mels), float(fmin),
                                                float(fmax))
    frames = _frames(np.pad(y, n_fft // 2, mode='reflect'), n_fft, hop_length)  # (T, n_fft) view
    mel = np.empty((frames.shape[0], n_mels), dtype=np.float32)
    # blocks of 32 frames: the temporaries stay in cache, and the matmul small (README: features.py)
    for s in range(0, frames.shape[0], _LOG_MEL_BLOCK):
        # a float64 FFT, as librosa: a float32 one's rounding floor swamps quiet bands of tonal frames
        X = scipy.fft.rfft(frames[s:s + _LOG_MEL_BLOCK] * window, axis=-1)[:, lo:hi]
        power = (X.real ** 2 + X.imag ** 2).astype(np.float32)  # |X|^2 in float32, as librosa
        np.matmul(power, melW_T, out=mel[s:s + _LOG_MEL_BLOCK])
    np.maximum(mel, np.float32(1e-10), out=mel)
    np.log10(mel, out=mel)
    mel *= 10.0
    return mel


def log_mel_authors(y, sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=20.0, fmax=14000.0):
    """The authors' log-mel (mulimani/CIL-ML-Audio), a torchaudio-style front end: float32 (frames, mels).

    torchaudio MelSpectrogram defaults: reflect-pad n_fft//2 -> periodic Hann -> |rfft|^2 -> HTK mel
    without filter normalisation (peaks near 1), here from 20 Hz; then the natural log of
    mel + float32 eps (digital silence gives ln(eps) = -15.94). Unlike log_mel: no Slaney scale or
    area norm, ln instead of 10 log10, an additive eps instead of a floor.
    """
    mel = melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, pad_mode='reflect', n_mels=n_mels,
                         fmin=fmin, fmax=fmax, htk=True, norm=None)
    return np.log(mel + np.finfo(np.float32).eps).T.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Recipes of the second paper (class-incremental KWS / sound events)


def urbansound8k_features(y, sr):
    """UrbanSound8K "LMC" features, float32 (128 frames, 85).

    Resample to 22050 Hz (resample_poly), keep the first 3 s (66150 samples, zero-pad at the
    end), one STFT (n_fft 2048, hop 512, centred, zero padding) -> 130 frames, of which the
    first 128 are kept (every statistic, e.g. top_db and tuning, is taken over all 130).
    Columns: [0:60] power_to_db(mel, 60 Slaney bands, top_db 80) | [60:72] chroma_stft
    (tuning estimated) | [72:78] tonnetz of that chroma | [78:85] spectral_contrast.
    """
    c = URBANSOUND8K_CONFIG
    y = _mono_float32(y)
    y = _fix_length(resample(y, sr, c['sr']), c['n_samples'])
    D = stft(y, n_fft=c['n_fft'], hop_length=c['hop_length'], center=True, pad_mode='constant')
    mag = np.abs(D)  # float32 magnitude (contrast)
    power = mag ** 2  # float32 power (mel, chroma)
    logmel = power_to_db(melspectrogram(S=power, sr=c['sr'], n_mels=c['n_mels']),
                         top_db=c['top_db'])
    chroma = chroma_stft(S=power, sr=c['sr'], n_chroma=c['n_chroma'])
    ton = tonnetz(chroma=chroma)
    contrast = spectral_contrast(S=mag, sr=c['sr'], fmin=c['contrast_fmin'],
                                 n_bands=c['contrast_n_bands'], quantile=c['contrast_quantile'])
    feats = np.concatenate([logmel, chroma, ton, contrast], axis=0)  # (85, 130)
    return np.ascontiguousarray(feats[:, :c['n_frames']].T, dtype=np.float32)


def speechcommands_features(y, sr):
    """Speech Commands log-mel, float32 (32 frames, 32 mels).

    Resample to 16 kHz, pad/crop to 16000 samples, n_fft 1024, hop 512, centred zero
    padding (1 + 16000 // 512 = 32 frames), 32 Slaney mel bands over 0-8000 Hz,
    power_to_db (top_db 80, per clip), transposed to frames x mels.
    """
    c = SPEECHCOMMANDS_CONFIG
    y = _mono_float32(y)
    y = _fix_length(resample(y, sr, c['sr']), c['n_samples'])
    mel = melspectrogram(y=y, sr=c['sr'], n_fft=c['n_fft'], hop_length=c['hop_length'],
                         center=True, pad_mode='constant', n_mels=c['n_mels'], fmin=c['fmin'],
                         fmax=c['fmax'])
    return np.ascontiguousarray(power_to_db(mel, top_db=c['top_db']).T, dtype=np.float32)
