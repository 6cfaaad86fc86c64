"""Generated stand-ins for the datasets in their real on-disk layouts, so that every loader of data.py runs
without a download (make demo, the synth-* datasets, the tests). Each class is a sound family with a signature drawn
from a fixed seed; its events vary, clips mix them over noise, and the same seed writes byte-identical files:
python data.py synth --kind audioset --out DIR [--seconds 10 --sr 32000] (or python synth.py ...)."""
import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import features
from data import (AUDIOSET_CLASSES, AUDIOSET_HEADER, AUDIOSET_TSV, ESC10, ESC50_CLASSES, ESC50_HEADER, FSD50K_AUDIO,
                  FSD50K_CLASSES, FSD50K_GROUND_TRUTH, PHASE_SIZES, SPEECHCOMMANDS_WORDS, URBANSOUND8K_CLASSES,
                  URBANSOUND8K_HEADER, DataError, FolderLock, Progress, _FSD50K_INDEX, read_synth_marker,
                  authors_file_names, gsc_list_of, load_audioset, make_phases, make_split, sigterm_as_interrupt,
                  write_atomic, write_failure)

SYNTH_SR = 16000  # every event is rendered at 16 kHz (and resampled for files at other rates)
_SIGNATURE_SEED = 1234  # class signatures: fixed for all dataset seeds
AUTHORS_PREFIX = '/scratch/project_2003370/alex/Audioset'  # where the authors' phase files say the clips are


def _rms(y): return float(np.sqrt(np.mean(np.square(y)))) + 1e-12
def _J(rs, sd): return math.exp(rs.normal(0, sd))  # within-class variation: a log-normal factor
def _phase(freq): return 2 * np.pi * np.cumsum(freq) / SYNTH_SR
def _S(family, **pinned): return family, pinned  # a class's sound: its family, the parameters it pins


def _fade(n, attack, release):
    t = np.arange(n) / SYNTH_SR
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.minimum(1.0, (n / SYNTH_SR - t) / max(release, 1e-4))


def _add(y, x, i):  # y[i:] += x, cut at the end of y
    x = x[:max(0, len(y) - i)]
    y[i:i + len(x)] += x


def _band_noise(n, rs, fc, bw, slope=None):
    """Unit-RMS white noise through a Gaussian band (centre fc, width bw Hz), or coloured: power ~ 1/f^slope."""
    m = max(n, 2)
    X, f = np.fft.rfft(rs.standard_normal(m)), np.fft.rfftfreq(m, 1.0 / SYNTH_SR)
    X = X * np.exp(-0.5 * ((f - fc) / max(bw, 1.0)) ** 2) if slope is None else X / np.maximum(f, f[1]) ** (slope / 2)
    y = np.fft.irfft(X, m)[:n]
    return y / _rms(y)


def _harmonic(f0, tilt_db=6.0, formants=None, odd_only=False, fmax=5000.0):
    """Harmonics of an f0 track below fmax, -tilt_db per octave, through formants ((3, T) centres, 3 widths) if any."""
    fmax, z = min(fmax, 0.45 * SYNTH_SR), np.exp(1j * _phase(f0))
    zk, y = np.ones_like(z), np.zeros(len(f0))  # sin(k phi) as the powers of exp(i phi)
    for k in range(1, 200):
        zk *= z
        fk = k * f0
        if fk.min() >= fmax:
            break
        if odd_only and k % 2 == 0:
            continue
        a = 10 ** (-tilt_db * math.log2(k) / 20) * (fk < fmax)
        if formants is not None:
            a = a * sum(1.0 / (1.0 + ((fk - F) / B) ** 2) for F, B in zip(*formants))
        y += a * zk.imag
    return y


def _decays(n, times, decay):
    """Exponential decays starting at `times` (s), summed: the envelope of clicks and strikes."""
    env, t = np.zeros(n), np.arange(n) / SYNTH_SR
    for i in (int(t0 * SYNTH_SR) for t0 in times):
        if 0 <= i < n:
            env[i:] += np.exp(-(t[i:] - t[i]) / decay)
    return env


# --- speech-like syllables (speech classes and keywords) ---------------------------------------

_VOWELS = {'i': (280, 2250, 2900), 'I': (400, 1900, 2550), 'e': (530, 1850, 2500), 'ae': (660, 1700, 2400),
           'a': (730, 1100, 2450), 'uh': (640, 1190, 2400), 'o': (570, 840, 2410), 'u': (300, 870, 2240),
           'er': (490, 1350, 1690)}
_CONSONANTS = {  # fricatives (fc, bw, s), stops (burst fc, bw, s), voiced (formants, s)
    's': ('fric', 5500, 1500, .10), 'z': ('vfric', 5000, 1500, .08), 'sh': ('fric', 3000, 900, .10),
    'f': ('fric', 4500, 3000, .08), 'v': ('vfric', 4000, 3000, .06), 'th': ('fric', 6000, 3000, .07),
    'h': ('fric', 1500, 1500, .06), 't': ('stop', 4000, 2500, .02), 'd': ('stop', 3000, 2000, .015),
    'k': ('stop', 2000, 700, .03), 'g': ('stop', 1800, 700, .02), 'p': ('stop', 900, 1200, .015),
    'b': ('stop', 800, 1000, .01), 'n': ('voiced', (250, 1400, 2500), .06), 'm': ('voiced', (250, 1100, 2300), .06),
    'l': ('voiced', (350, 1050, 2700), .05), 'r': ('voiced', (420, 1250, 1650), .06),
    'w': ('voiced', (300, 700, 2200), .05), 'y': ('voiced', (270, 2300, 3000), .05)}
_WORDS = {  # keywords as rough phone sequences: (onset consonants, vowel start, vowel end, coda consonants)
    'yes': [('y', 'e', 'e', 's')], 'no': [('n', 'o', 'u', '')], 'up': [('', 'uh', 'uh', 'p')],
    'down': [('d', 'a', 'u', 'n')], 'left': [('l', 'e', 'e', 'f t')], 'right': [('r', 'a', 'i', 't')],
    'on': [('', 'o', 'o', 'n')], 'off': [('', 'o', 'o', 'f')], 'stop': [('s t', 'o', 'o', 'p')],
    'go': [('g', 'o', 'u', '')], 'zero': [('z', 'i', 'i', ''), ('r', 'o', 'u', '')], 'one': [('w', 'uh', 'uh', 'n')],
    'two': [('t', 'u', 'u', '')], 'three': [('th r', 'i', 'i', '')], 'four': [('f', 'o', 'er', '')],
    'five': [('f', 'a', 'i', 'v')], 'six': [('s', 'I', 'I', 'k s')], 'eight': [('', 'e', 'i', 't')],
    'seven': [('s', 'e', 'e', 'v'), ('', 'uh', 'uh', 'n')], 'nine': [('n', 'a', 'i', 'n')],
    'bed': [('b', 'e', 'e', 'd')], 'bird': [('b', 'er', 'er', 'd')]}


def _consonant(c, f0, fscale, rs, coda=False):
    kind, *p = _CONSONANTS[c]
    if kind in ('fric', 'vfric'):
        n = int(p[2] * SYNTH_SR * _J(rs, .15))
        y = 0.35 * _band_noise(n, rs, p[0] * fscale, p[1])
        if kind == 'vfric':
            y += 0.3 * _harmonic(np.full(n, f0), 12.0)
    elif kind == 'stop':
        n = int(p[2] * SYNTH_SR) + 40
        burst = 0.6 * _band_noise(n, rs, p[0] * fscale, p[1]) * np.exp(-np.arange(n) / (0.3 * n))
        y = np.concatenate([np.zeros(int(0.03 * SYNTH_SR) if coda else 0), burst])
    else:
        n = int(p[1] * SYNTH_SR)
        F = np.array(p[0], float)[:, None] * fscale * np.ones(n)
        y = 0.4 * _harmonic(np.full(n, f0), 6.0, (F, (90.0, 110.0, 160.0)))
    return y * _fade(len(y), 0.005, 0.005)


def _syllable(onset, v1, v2, coda, f0, fscale, dur, rs, flat=False):
    parts = [_consonant(c, f0, fscale, rs) for c in onset.split()]
    n = int(dur * SYNTH_SR)
    w = np.linspace(0, 1, n)
    F = (np.outer(_VOWELS[v1], 1 - w) + np.outer(_VOWELS[v2], w)) * fscale
    contour = np.ones(n) if flat else np.linspace(1.06, 0.92, n) * (1 + 0.01 * np.sin(2 * np.pi * 5 * w))
    vowel = _harmonic(f0 * contour, 6.0, (F, (80.0, 100.0, 150.0))) * _fade(n, 0.02, 0.04)
    parts += [vowel / _rms(vowel)] + [_consonant(c, f0, fscale, rs, coda=True) for c in coda.split()]
    return np.concatenate(parts)


def _speech(p, n, rs, t):
    """Speech-like: random syllables of the class's phones, or the class's fixed keyword."""
    out = np.zeros(n)
    for v in range(p.get('voices', 1)):
        f0 = p['f0'] * _J(rs, p['jit']) * (1 if v == 0 else _J(rs, .3))
        fscale, rate = p.get('fscale', 1.0) * _J(rs, .05), p.get('rate', 1.0) * _J(rs, .1)
        count = int(n / SYNTH_SR * 5 * rate) + 1
        if 'word' in p:
            syl = [(*s, 0.2 / rate) for s in _WORDS[p['word']]]
        elif p.get('pattern') == 'ha':
            syl = [('h', 'a', 'a', '', 0.09 * _J(rs, .1)) for _ in range(count)]
        else:
            cons = lambda: ' '.join(rs.choice(p['cons'], rs.randint(0, 2)))  # noqa: E731
            syl = [(cons(), rs.choice(p['vowels']), rs.choice(p['vowels']), cons(), rs.uniform(0.08, 0.22) / rate)
                   for _ in range(count)]
        pos = int(rs.uniform(0, 0.1) * SYNTH_SR) if v else 0
        for onset, v1, v2, coda, dur in syl:
            s = _syllable(onset, v1, v2, coda, f0 * _J(rs, .04), fscale, dur, rs, flat=p.get('mono', False))
            _add(out, s * (1.0 if v == 0 else 0.7), pos)
            pos += len(s) + int(rs.uniform(0.01, 0.06) * SYNTH_SR)
            if pos >= n:
                break
    return out


# --- the event families (p: class signature, n: samples, rs: within-class variation, t: sample times) ---

def _tone(p, n, rs, t):
    vib = p['vib_depth'] * np.sin(2 * np.pi * p['vib_rate'] * _J(rs, .1) * t + rs.uniform(0, 6.3))
    phi = _phase(p['f'] * _J(rs, p['jit']) * (1 + vib))
    y = np.sin(phi) + p['h2'] * np.sin(2 * phi)
    if p.get('pulse'):
        gate = ((t * p['pulse'] * _J(rs, .1)) % 1.0) < p.get('duty', 0.5)
        y *= np.convolve(gate, np.hanning(81) / 40.5, mode='same')
    return y


def _harmonic_event(p, n, rs, t):
    f0, env = p['f0'] * _J(rs, p['jit']), np.ones(n)
    track = np.full(n, f0)
    if p.get('notes'):
        note = int(p['note_dur'] * _J(rs, .15) * SYNTH_SR)
        track = f0 * 2.0 ** (np.repeat(rs.choice([0, 2, 4, 5, 7, 9, 12], n // note + 1), note)[:n] / 12)
        env = np.tile(np.exp(-np.arange(note) / (p['decay'] * SYNTH_SR)), n // note + 1)[:n]
    track = track * (1 + p['vib_depth'] * np.sin(2 * np.pi * p['vib_rate'] * t))
    formants = ((np.array(_VOWELS[p['vowel']], float)[:, None] * np.ones(n), (90.0, 110.0, 160.0))
                if p.get('vowel') else None)
    return sum(_harmonic(track * (1.0 if v == 0 else _J(rs, .01)), p['tilt'], formants, p.get('odd', False))
               for v in range(p.get('voices', 1))) * env


def _chirp(p, n, rs, t):
    y, pos = np.zeros(n), int(rs.uniform(0, 0.05) * SYNTH_SR)
    lo, hi = p['f_lo'] * _J(rs, p['jit']), p['f_hi'] * _J(rs, p['jit'])
    while pos < n:
        m = max(16, int(p['sweep'] * _J(rs, .15) * SYNTH_SR))
        up, down = np.geomspace(lo, hi, m), np.geomspace(hi, lo, m)
        f = {'up': up, 'down': down, 'updown': np.concatenate([up[::2], down[1::2]])}[p['dir']]
        _add(y, np.sin(_phase(f)) * np.hanning(m), pos)
        pos += m + int(p['gap'] * _J(rs, .3) * SYNTH_SR)
    return y


def _noise(p, n, rs, t):
    y = _band_noise(n, rs, p['fc'] * _J(rs, p['jit']), p['bw'] * _J(rs, .1))
    if p.get('am_rate'):
        y *= 1 + p['am_depth'] * np.sin(2 * np.pi * p['am_rate'] * _J(rs, .2) * t + rs.uniform(0, 6.3))
    if p.get('gusts'):
        y *= np.exp(0.7 * _band_noise(n, rs, 0.0, p['gusts']))
    for t0 in rs.uniform(0, n / SYNTH_SR, int(n / SYNTH_SR * 12)) if p.get('bubbles') else ():
        m, i = int(rs.uniform(0.01, 0.04) * SYNTH_SR), int(t0 * SYNTH_SR)
        _add(y, 2.0 * np.sin(_phase(np.geomspace(1, 1.6, m) * rs.uniform(500, 2500))) * np.hanning(m), i)
    if p.get('hum'):
        y += 2.0 * _harmonic(np.full(n, p['hum'] * _J(rs, .02)), 9.0, fmax=2000.0)
    return y


def _clicks(p, n, rs, t):
    rate, times, t0 = p['rate'] * _J(rs, .15), [], rs.uniform(0, 0.1)
    while t0 < n / SYNTH_SR:
        times += [t0, t0 + 0.08] if p.get('pairs') else [t0]
        t0 += max(0.005, (1 + p['tj'] * rs.normal()) / rate)
    env = _decays(n, times, p['decay'] * _J(rs, .2))
    return _band_noise(n, rs, p['fc'] * _J(rs, p['jit']), p['bw']) * env


def _impulse(p, n, rs, t):
    count = rs.randint(p['count'][0], p['count'][1] + 1)
    times = np.cumsum(np.r_[rs.uniform(0, 0.05), rs.uniform(0.6, 1.4, count - 1) * p['spacing']])
    decay = p['decay'] * _J(rs, .2)
    y = _band_noise(n, rs, p['fc'] * _J(rs, p['jit']), p['bw']) * _decays(n, times, decay)
    if p['low_mix']:
        thump = np.sin(2 * np.pi * p['f_low'] * _J(rs, .1) * t)
        y += p['low_mix'] * 3 * (thump * _decays(n, times, decay * 1.5))
    return y


def _fm(p, n, rs, t):
    x = 2 * np.pi * p['mod_rate'] * _J(rs, .1) * t + rs.uniform(0, 6.3)
    mod = {'sine': np.sin(x), 'square': np.sign(np.sin(x)), 'saw': (x / np.pi) % 2 - 1}[p['mod']]
    y = np.sin(_phase(p['fc'] * _J(rs, p['jit']) * 2.0 ** (p['dev'] * mod)))
    return np.tanh(4 * y) if p['wave'] == 'square' else y


def _bark(p, n, rs, t):
    y, pos = np.zeros(n), int(rs.uniform(0, 0.05) * SYNTH_SR)
    f0 = p['f0'] * _J(rs, p['jit'])
    for _ in range(rs.randint(p['count'][0], p['count'][1] + 1)):
        m = int(p['len'] * _J(rs, .2) * SYNTH_SR)
        if pos + m > n:
            break
        F = np.array([p['formant'], p['formant'] * 2.2, p['formant'] * 3.5])[:, None] * np.ones(m)
        b = _harmonic(f0 * np.linspace(1.15, 0.8, m), 4.0, (F, (300.0, 400.0, 500.0)))
        b = b / _rms(b) + p['noise'] * _band_noise(m, rs, p['formant'], 1500)
        y[pos:pos + m] += b * _fade(m, 0.005, 0.04)
        pos += m + int(p['gap'] * _J(rs, .3) * SYNTH_SR)
    return y


def _am(p, n, rs, t):
    rate, group, period = p['rate'] * _J(rs, .1), p['group'], 1.0 / (p['group_rate'] * _J(rs, .1))
    gate = ((t % period) < group / rate) * (np.sin(2 * np.pi * rate * t) > 0)
    tone = np.sin(_phase(np.full(n, p['f'] * _J(rs, p['jit']))))
    return tone * np.convolve(gate, np.hanning(17) / 8.5, 'same')


def _bell(p, n, rs, t):
    count = rs.randint(p['count'][0], p['count'][1] + 1)
    times = np.sort(rs.uniform(0, max(0.01, n / SYNTH_SR - 0.3), count))
    f, y = p['f'] * _J(rs, p['jit']), np.zeros(n)
    for r, ratio in enumerate(p['ratios']):
        y += np.sin(2 * np.pi * f * ratio * t) * _decays(n, times, p['decay'] / (1 + r)) / (1 + r)
    return y


def _pulse(p, n, rs, t):
    rate, times, t0 = p['rate'] * _J(rs, .1), [], rs.uniform(0, 0.2)
    while t0 < n / SYNTH_SR:
        times += [t0, t0 + p['gap'] * _J(rs, .1)]
        t0 += 1.0 / rate
    return np.sin(2 * np.pi * p['f_low'] * _J(rs, p['jit']) * t) * _decays(n, times, 0.05)


def _engine(p, n, rs, t):
    f0 = p['f0'] * _J(rs, p['jit']) * np.linspace(1.0, p['rev'] * _J(rs, .1) if p['rev'] > 1 else 1.0, n)
    y = _harmonic(f0, p['tilt'], odd_only=p.get('odd', False), fmax=3000.0)
    y = y / _rms(y) * (1 + 0.5 * np.sin(_phase(f0 / 2))) + p['noise'] * _band_noise(n, rs, 400, 600)
    return y * (1 + p.get('am_depth', 0.0) * np.sin(2 * np.pi * p.get('am_rate', 8.0) * t))


_FAMILIES = {  # family: (renderer, event duration range in s)
    'speech': (_speech, (0.6, 1.8)), 'word': (_speech, (0.4, 0.9)), 'tone': (_tone, (0.2, 1.0)),
    'harmonic': (_harmonic_event, (0.5, 2.0)), 'chirp': (_chirp, (0.3, 1.2)), 'noise': (_noise, (0.5, 2.0)),
    'clicks': (_clicks, (0.4, 1.5)), 'impulse': (_impulse, (0.3, 1.0)), 'fm': (_fm, (0.4, 1.5)),
    'bark': (_bark, (0.3, 1.2)), 'am': (_am, (0.5, 1.5)), 'bell': (_bell, (0.6, 1.8)), 'pulse': (_pulse, (1.0, 2.0)),
    'engine': (_engine, (0.6, 2.0))}


def _draw_signature(family, rs, overrides):
    """Class-level parameters of one family, drawn from ranges; `overrides` pins some of them."""
    logu = lambda a, b: float(np.exp(rs.uniform(np.log(a), np.log(b))))  # noqa: E731
    u = lambda a, b: float(rs.uniform(a, b))  # noqa: E731
    p = {'speech': lambda: dict(f0=logu(100, 260), jit=.08, rate=u(.8, 1.2), fscale=u(.9, 1.1),
                                vowels=list(rs.choice(list(_VOWELS), 4, replace=False)),
                                cons=list(rs.choice(list(_CONSONANTS), 5, replace=False))),
         'word': lambda: dict(f0=150.0, jit=.05),
         'tone': lambda: dict(f=logu(500, 4000), vib_rate=u(0, 8), vib_depth=u(0, .02), h2=u(0, .5), jit=.04),
         'harmonic': lambda: dict(f0=logu(110, 600), tilt=u(3, 12), vib_rate=u(4, 7), vib_depth=u(0, .01),
                                  note_dur=u(.12, .4), decay=u(.1, .5), jit=.06),
         'chirp': lambda: dict(f_lo=logu(1500, 4000), f_hi=0.0, sweep=u(.04, .25), gap=u(.02, .2),
                               dir=str(rs.choice(['up', 'down', 'updown'])), jit=.06),
         'noise': lambda: dict(fc=logu(200, 5000), bw=0.0, am_rate=u(.2, 2) if rs.rand() < .5 else 0.0,
                               am_depth=u(.3, .9), jit=.08),
         'clicks': lambda: dict(rate=logu(2, 25), fc=logu(1000, 6000), bw=u(500, 3000), decay=u(.002, .02),
                                tj=u(.05, .4), jit=.05),
         'impulse': lambda: dict(count=(1, 3), fc=logu(300, 3000), bw=u(500, 4000), decay=u(.03, .3),
                                 f_low=u(50, 150), low_mix=u(0, 1), spacing=u(.15, .5), jit=.08),
         'fm': lambda: dict(fc=logu(400, 2000), mod_rate=u(.3, 8), dev=u(.2, 1.0),
                            mod=str(rs.choice(['sine', 'square', 'saw'])), wave=str(rs.choice(['sine', 'square'])),
                            jit=.05),
         'bark': lambda: dict(f0=logu(300, 900), formant=logu(800, 2500), len=u(.08, .2), gap=u(.1, .35),
                              count=(1, 4), noise=u(.2, .6), jit=.08),
         'am': lambda: dict(f=logu(3000, 6000), rate=u(20, 60), group=int(rs.randint(2, 6)), group_rate=u(1.5, 4),
                            jit=.03),
         'bell': lambda: dict(f=logu(400, 2000), ratios=[1.0] + sorted(rs.uniform(1.5, 6, 4).tolist()),
                              decay=u(.4, 1.5), count=(1, 3), jit=.03),
         'pulse': lambda: dict(rate=u(.9, 1.6), f_low=u(40, 90), gap=u(.12, .2), jit=.08),
         'engine': lambda: dict(f0=logu(25, 90), tilt=u(2, 6), noise=u(.2, .8), rev=1.0, jit=.08)}[family]()
    p.update(overrides)
    if family == 'chirp' and not p['f_hi']:
        p['f_hi'] = p['f_lo'] * u(1.3, 2.5)
    if family == 'noise' and not p['bw']:
        p['bw'] = p['fc'] * u(.2, 1.0)
    return dict(p, family=family)


_AUDIOSET_FAMILIES = {  # display name: (family, pinned parameters), by guessed popularity
    'Speech': _S('speech'), 'Male speech, man speaking': _S('speech', f0=115.0), 'Music': _S('harmonic', notes=True),
    'Female speech, woman speaking': _S('speech', f0=210.0), 'Background noise': _S('noise', fc=2000.0, bw=3000.0),
    'Generic impact sounds': _S('impulse'), 'Human voice': _S('speech'), 'Conversation': _S('speech', voices=2),
    'Mechanisms': _S('clicks', rate=12.0), 'Surface contact': _S('clicks', rate=6.0),
    'Wind noise (microphone)': _S('noise', fc=150.0, bw=250.0, gusts=1.0), 'Tick': _S('clicks', rate=2.0, decay=.003),
    'Breathing': _S('noise', fc=900.0, bw=900.0, am_rate=.3, am_depth=.9),
    'Child speech, kid speaking': _S('speech', f0=290.0, fscale=1.2),
    'Walk, footsteps': _S('impulse', count=(2, 5), spacing=.45, fc=600.0, decay=.05),
    'Bird vocalization, bird call, bird song': _S('chirp'), 'Laughter': _S('speech', pattern='ha', f0=230.0),
    'Tap': _S('clicks', rate=3.0, decay=.01), 'Sound effect': _S('fm'),
    'Wind': _S('noise', fc=400.0, bw=500.0, gusts=.5), 'Human sounds': _S('speech', voices=2),
    'Clapping': _S('clicks', rate=4.0, fc=2000.0, bw=3000.0, decay=.01), 'Chirp, tweet': _S('chirp', sweep=.05),
    'Clicking': _S('clicks'), 'Male singing': _S('harmonic', f0=140.0, vowel='a', vib_depth=.02, notes=True),
    'Accelerating, revving, vroom': _S('engine', rev=2.0), 'Beep, bleep': _S('tone', pulse=3.0, duty=.5),
    'Bark': _S('bark'), 'Shout': _S('speech', f0=260.0),
    'Female singing': _S('harmonic', f0=300.0, vowel='o', vib_depth=.02, notes=True),
    'Heart sounds, heartbeat': _S('pulse'), 'Video game sound': _S('fm', mod='square', wave='square'),
    'Animal': _S('bark', f0=200.0), 'Dog': _S('bark'),
    'Gunshot, gunfire': _S('impulse', decay=.25, fc=1500.0, bw=4000.0),
    'Hubbub, speech noise, speech babble': _S('speech', voices=4), 'Cricket': _S('am'),
    'Squeal': _S('tone', f=2500.0, vib_rate=6.0, vib_depth=.03), 'Crowd': _S('speech', voices=6),
    'Water': _S('noise', bubbles=True), 'Computer keyboard': _S('clicks', rate=8.0, tj=.5),
    'Whistling': _S('tone', vib_depth=.01), 'Crumpling, crinkling': _S('clicks', rate=30.0, tj=.6, decay=.003),
    'Thump, thud': _S('impulse', fc=300.0, bw=400.0, low_mix=1.0), 'Speech synthesizer': _S('speech', mono=True),
    'Bell': _S('bell'), 'Choir': _S('harmonic', voices=4, vowel='a', notes=True),
    'Hammer': _S('impulse', count=(2, 4), spacing=.4), 'Motor vehicle (road)': _S('engine'),
    'Clickety-clack': _S('clicks', pairs=True, rate=3.0)}
AUDIOSET_EXTRA_MIDS = [  # real MIDs outside the 50 (the real mid_to_display_name.tsv has 456)
    ('/m/01yrx', 'Cat', _S('bark', f0=600.0, formant=1800.0)), ('/m/0k4j', 'Car', _S('engine')),
    ('/m/06mb1', 'Rain', _S('clicks', rate=40.0, tj=.8)), ('/m/0342h', 'Guitar', _S('harmonic', notes=True, tilt=8.0)),
    ('/m/05r5c', 'Piano', _S('harmonic', notes=True, tilt=10.0)), ('/m/07yv9', 'Vehicle', _S('engine', noise=.8))]
_URBANSOUND8K_FAMILIES = dict(
    air_conditioner=_S('noise', fc=300.0, bw=500.0, hum=50.0),
    car_horn=_S('harmonic', f0=420.0, tilt=3.0, odd=True, vib_depth=0.0),
    children_playing=_S('speech', f0=300.0, fscale=1.2, voices=3), dog_bark=_S('bark'),
    drilling=_S('engine', f0=180.0, tilt=2.0, am_depth=.3, am_rate=25.0),
    engine_idling=_S('engine', f0=35.0, am_depth=.3, am_rate=12.0), gun_shot=_S('impulse', decay=.25, count=(1, 3)),
    jackhammer=_S('clicks', rate=18.0, fc=1500.0, bw=3000.0, decay=.02),
    siren=_S('fm', fc=900.0, mod_rate=.4, dev=.6, mod='sine', wave='sine'),
    street_music=_S('harmonic', notes=True, voices=2))
# FSD50K labels carry every ancestor (a Dog clip is also Domestic_animals_and_pets and Animal); four classes
# lie outside the 50: Musical_instrument, only ever an ancestor, and three the loader drops.
_FSD50K_TABLE = {  # name: (MID, parents, (family, pinned parameters))
    'Music': ('/m/04rlf', (), _S('harmonic', notes=True)), 'Musical_instrument': ('/m/04szw', ('Music',), None),
    'Plucked_string_instrument': ('/m/0fx80y', ('Musical_instrument',), _S('harmonic', notes=True, decay=.3)),
    'Guitar': ('/m/0342h', ('Plucked_string_instrument',), _S('harmonic', notes=True, tilt=8.0)),
    'Electric_guitar': ('/m/02sgy', ('Guitar',), _S('harmonic', notes=True, tilt=4.0, odd=True)),
    'Acoustic_guitar': ('/m/042v_gx', ('Guitar',), _S('harmonic', notes=True, tilt=9.0, decay=.2)),
    'Keyboard_(musical)': ('/m/05148p4', ('Musical_instrument',), _S('harmonic', notes=True, tilt=10.0)),
    'Piano': ('/m/05r5c', ('Keyboard_(musical)',), _S('harmonic', notes=True, tilt=10.0, decay=.5)),
    'Percussion': ('/m/0l14md', ('Musical_instrument',), _S('impulse', count=(2, 5), spacing=.25)),
    'Drum': ('/m/026t6', ('Percussion',), _S('impulse', count=(2, 4), low_mix=1.0, fc=200.0)),
    'Snare_drum': ('/m/06rvn', ('Drum',), _S('impulse', count=(2, 4), fc=2000.0, bw=3000.0, decay=.08)),
    'Cymbal': ('/m/01qbl', ('Percussion',), _S('noise', fc=6000.0, bw=3000.0, am_rate=.5)),
    'Hi-hat': ('/m/03qtq', ('Cymbal',), _S('clicks', rate=8.0, fc=6500.0, bw=2000.0, decay=.02)),
    'Brass_instrument': ('/m/01kcd', ('Musical_instrument',), _S('harmonic', f0=300.0, tilt=3.0)),
    'Trumpet': ('/m/07gql', ('Brass_instrument',), _S('harmonic', f0=450.0, tilt=3.0, vib_depth=.01)),
    'Bowed_string_instrument': ('/m/0l14_3', ('Musical_instrument',), _S('harmonic', f0=300.0, vib_depth=.02)),
    'Wind_instrument_and_woodwind_instrument': ('/m/085jw', ('Musical_instrument',),
                                                _S('harmonic', f0=500.0, tilt=10.0, odd=True)),
    'Bell': ('/m/0395lw', (), _S('bell')),
    'Singing': ('/m/015lz1', ('Human_voice', 'Music'), _S('harmonic', vowel='a', notes=True, vib_depth=.02)),
    'Animal': ('/m/0jbk', (), _S('bark', f0=200.0)),
    'Domestic_animals_and_pets': ('/m/068hy', ('Animal',), _S('bark', f0=600.0, formant=1800.0)),
    'Dog': ('/m/0bt9lr', ('Domestic_animals_and_pets',), _S('bark')),
    'Livestock_and_farm_animals_and_working_animals': ('/m/0ch8v', ('Animal',),
                                                       _S('bark', f0=150.0, formant=900.0, noise=.6)),
    'Wild_animals': ('/m/01280g', ('Animal',), _S('am')), 'Bird': ('/m/015p6', ('Wild_animals',), _S('chirp')),
    'Bird_vocalization_and_bird_call_and_bird_song': ('/m/020bb7', ('Bird',), _S('chirp', sweep=.05)),
    'Human_voice': ('/m/09l8g', (), _S('speech')), 'Speech': ('/m/09x0r', ('Human_voice',), _S('speech', f0=150.0)),
    'Laughter': ('/m/01j3sz', ('Human_voice',), _S('speech', pattern='ha', f0=230.0)),
    'Respiratory_sounds': ('/m/09hlz4', (), _S('noise', fc=900.0, bw=900.0, am_rate=.3, am_depth=.9)),
    'Fart': ('/m/02_nn', (), _S('engine', f0=70.0, noise=.4)),
    'Hands': ('/m/0k65p', (), _S('clicks', rate=4.0, fc=2000.0, bw=3000.0, decay=.01)),
    'Human_group_actions': ('/t/dd00012', (), _S('speech', voices=4)),
    'Vehicle': ('/m/07yv9', (), _S('engine', noise=.8)),
    'Motor_vehicle_(road)': ('/m/012f08', ('Vehicle',), _S('engine')),
    'Car': ('/m/0k4j', ('Motor_vehicle_(road)',), _S('engine', f0=40.0, rev=1.5)),
    'Rail_transport': ('/m/06d_3', ('Vehicle',), _S('clicks', pairs=True, rate=3.0)),
    'Engine': ('/m/02mk9', (), _S('engine', f0=30.0, am_depth=.3, am_rate=12.0)),
    'Domestic_sounds_and_home_sounds': ('/t/dd00071', (), _S('clicks', rate=6.0)),
    'Door': ('/m/02dgv', ('Domestic_sounds_and_home_sounds',), _S('impulse', fc=300.0, bw=400.0, low_mix=.5)),
    'Water': ('/m/0838f', (), _S('noise', bubbles=True)),
    'Rain': ('/m/06mb1', ('Water',), _S('clicks', rate=40.0, tj=.8)),
    'Thunderstorm': ('/m/0jb2l', (), _S('noise', fc=300.0, bw=400.0, gusts=.5)),
    'Thunder': ('/m/0ngt1', ('Thunderstorm',), _S('impulse', decay=.3, fc=200.0, low_mix=1.0)),
    'Liquid': ('/m/04k94', (), _S('noise', bubbles=True, fc=800.0)), 'Glass': ('/m/039jq', (), _S('bell', f=2000.0)),
    'Tools': ('/m/07k1x', (), _S('clicks', rate=8.0, tj=.3)), 'Mechanisms': ('/t/dd00077', (), _S('clicks', rate=12.0)),
    'Alarm': ('/m/07pp_mv', (), _S('tone', pulse=3.0, duty=.5)),
    'Telephone': ('/m/07cx4', ('Alarm',), _S('am', f=1000.0)),
    'Explosion': ('/m/014zdl', (), _S('impulse', decay=.25, fc=1500.0, bw=4000.0)),
    'Crumpling_and_crinkling': ('/t/dd00112', (), _S('clicks', rate=30.0, tj=.6, decay=.003)),
    'Walk_and_footsteps': ('/m/07pbtc8', (), _S('impulse', count=(2, 5), spacing=.45, fc=600.0, decay=.05)),
    'Wind': ('/m/03m9d0z', (), _S('noise', fc=150.0, bw=250.0, gusts=1.0))}
FSD50K_EXTRA = [name for name in _FSD50K_TABLE if name not in _FSD50K_INDEX]  # its classes outside the 50
_ESC50_FAMILIES = dict(
    dog=_S('bark'), rooster=_S('harmonic', f0=550.0, vowel='a', vib_depth=.03),
    pig=_S('bark', f0=150.0, formant=700.0, noise=.6), cow=_S('harmonic', f0=120.0, vowel='o'),
    frog=_S('am', f=900.0, rate=25.0), cat=_S('bark', f0=600.0, formant=1800.0, len=.4),
    hen=_S('bark', f0=400.0, formant=1500.0, len=.1), insects=_S('am', f=4000.0),
    sheep=_S('harmonic', f0=250.0, vowel='e', vib_depth=.05), crow=_S('bark', f0=500.0, noise=.8),
    rain=_S('clicks', rate=40.0, tj=.8), sea_waves=_S('noise', fc=500.0, bw=800.0, am_rate=.2),
    crackling_fire=_S('clicks', rate=15.0, tj=.7, decay=.004), crickets=_S('am', f=4500.0, rate=40.0),
    chirping_birds=_S('chirp'), water_drops=_S('noise', bubbles=True, fc=300.0),
    wind=_S('noise', fc=150.0, bw=250.0, gusts=1.0), pouring_water=_S('noise', bubbles=True, fc=2000.0),
    toilet_flush=_S('noise', fc=700.0, bw=900.0, gusts=.4), thunderstorm=_S('impulse', decay=.3, fc=200.0, low_mix=1.0),
    crying_baby=_S('harmonic', f0=420.0, vowel='ae', vib_depth=.03), sneezing=_S('noise', fc=3000.0),
    clapping=_S('clicks', rate=4.0, fc=2000.0, bw=3000.0, decay=.01),
    breathing=_S('noise', fc=900.0, bw=900.0, am_rate=.3, am_depth=.9),
    coughing=_S('impulse', count=(1, 3), fc=800.0, bw=1500.0, decay=.12),
    footsteps=_S('impulse', count=(2, 5), spacing=.45, fc=600.0, decay=.05),
    laughing=_S('speech', pattern='ha', f0=230.0), brushing_teeth=_S('noise', fc=4000.0, am_rate=2.0),
    snoring=_S('engine', f0=60.0, noise=.6), drinking_sipping=_S('noise', bubbles=True, fc=1200.0),
    door_wood_knock=_S('impulse', count=(2, 4), fc=500.0, decay=.04), mouse_click=_S('clicks', rate=2.0, decay=.003),
    keyboard_typing=_S('clicks', rate=8.0, tj=.5), door_wood_creaks=_S('fm', fc=600.0, mod='saw'),
    can_opening=_S('impulse', fc=3000.0, decay=.05), washing_machine=_S('engine', f0=45.0, am_depth=.5, am_rate=1.0),
    vacuum_cleaner=_S('noise', fc=1500.0, bw=2000.0, hum=120.0), clock_alarm=_S('tone', pulse=6.0),
    clock_tick=_S('clicks', rate=2.0, decay=.003, tj=.02), glass_breaking=_S('bell', f=2500.0),
    helicopter=_S('engine', f0=25.0, am_depth=.8, am_rate=20.0), chainsaw=_S('engine', f0=110.0, rev=1.3),
    siren=_S('fm', fc=900.0, mod_rate=.4, dev=.6, mod='sine', wave='sine'),
    car_horn=_S('harmonic', f0=420.0, tilt=3.0, odd=True), engine=_S('engine'),
    train=_S('clicks', pairs=True, rate=3.0), church_bells=_S('bell', f=500.0),
    airplane=_S('noise', fc=600.0, bw=1500.0, hum=90.0), fireworks=_S('impulse', decay=.25, count=(2, 4)),
    hand_saw=_S('noise', fc=3000.0, am_rate=3.0, am_depth=.9))
_OWN_FORMATS = [(16000, 'WAV', 'PCM_16', 1), (22050, 'FLAC', 'PCM_16', 1), (44100, 'WAV', 'PCM_24', 2),
                (8000, 'WAV', 'FLOAT', 1), (48000, 'FLAC', 'PCM_24', 1)]  # own data: sr, format, subtype, channels


def class_signatures(kind):
    """The fixed event recipe of every class of a generated dataset (list, canonical class order)."""
    table = {'audioset': [_AUDIOSET_FAMILIES[name] for name, _ in AUDIOSET_CLASSES]
             + [family for _, _, family in AUDIOSET_EXTRA_MIDS],
             'urbansound8k': [_URBANSOUND8K_FAMILIES[name] for name in URBANSOUND8K_CLASSES],
             'speechcommands': [_S('word', word=w) for w in SPEECHCOMMANDS_WORDS + ['bed', 'bird']],
             'fsd50k': [_FSD50K_TABLE[name][2] or _S('harmonic') for name in FSD50K_CLASSES + FSD50K_EXTRA],
             'esc50': [_ESC50_FAMILIES[name] for name in ESC50_CLASSES]}.get(kind)  # Musical_instrument: no event
    if table is None:
        raise ValueError(f'unknown kind {kind!r}')
    rs = np.random.RandomState(_SIGNATURE_SEED)
    return [_draw_signature(family, rs, pinned) for family, pinned in table]


def render_event(sig, seconds, rs):
    """One event of a class: unit-RMS waveform (16 kHz) of about `seconds`, faded in and out."""
    n = max(64, int(seconds * SYNTH_SR))
    y = _FAMILIES[sig['family']][0](sig, n, rs, np.arange(n) / SYNTH_SR)[:n]
    y = np.pad(y, (0, n - len(y))) * _fade(n, 0.005, 0.02)
    return y / _rms(y)


def _mix(events, n, rs, noise_db):
    """events [(waveform, onset sample, level dB)] over noise of random colour (some mains hum) at noise_db dBFS RMS."""
    y = _band_noise(n, rs, 0, 0, rs.uniform(0.3, 1.8))
    if rs.rand() < 0.3:
        y += rs.uniform(0.2, 1.0) * _harmonic(np.full(n, rs.choice([50.0, 60.0])), 10.0, fmax=1000.0)
    y = y / _rms(y) * 10 ** (noise_db / 20)
    for x, i, level in events:
        _add(y, x * 10 ** (level / 20), i)
    peak = np.abs(y).max()
    return (y * (0.95 / peak if peak > 0.95 else 1.0)).astype(np.float32)


def _write_csv(path, rows, header=None):
    with open(path, 'w', newline='') as f:  # Unix line ends
        csv.writer(f, lineterminator='\n').writerows(([header] if header is not None else []) + list(rows))


def _write_audio(path, y, sr, subtype='PCM_16', right=None):
    """A 16 kHz waveform written at `sr` (resampled), in its suffix's format; stereo where right(y) is channel 2."""
    y = features.resample(np.asarray(y, np.float32), SYNTH_SR, sr)
    if right is not None:
        y = np.stack([y, right(y).astype(np.float32)], axis=1)
    sf.write(path, np.clip(y, -1, 1), sr, subtype=subtype)
    if subtype == 'FLOAT':  # libsndfile writes the time into a float WAV's PEAK chunk: zeroed, for the same bytes
        b = bytearray(Path(path).read_bytes())
        i = b.find(b'PEAK', 12, 4096)
        if i >= 0:
            b[i + 12:i + 16] = bytes(4)  # 'PEAK', size, version, timestamp
            Path(path).write_bytes(bytes(b))


def _start(out, seed, kind, *folders):
    """(out, the clips' RandomState, the class signatures); synth.json goes first, so a folder has one only if whole."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    return out, np.random.RandomState(seed), class_signatures(kind)


def _finish(out, readme=None, name='README.md', noun='audio', **record):
    """The readme (when given), then synth.json, written atomically: absent or whole, never half a file."""
    if readme:
        kind = record['kind']
        (out / name).write_text(f'Generated {readme} (python data.py synth --kind {kind}). Not real {noun}.\n')
    write_atomic(out / 'synth.json', json.dumps(dict(record, generator='data.py synth'), indent=1, sort_keys=True)
                 + '\n')
    return out


def _place(sig, seconds, rs, levels, stretch=1.0, latest=math.inf):
    """An event at a random time in a clip, onset <= latest s: ((waveform, onset sample, level dB), onset s, dur s)."""
    dur = min(seconds, rs.uniform(*_FAMILIES[sig['family']][1]) * stretch)
    t0 = rs.uniform(0, min(seconds - dur, latest)) if seconds > dur else 0.0
    return (render_event(sig, dur, rs), int(t0 * SYNTH_SR), rs.uniform(*levels)), t0, dur


def _recording(sig, rs):  # one recording's own version of its class's sound (US8K's fsID, ESC-50's src_file)
    keys = [k for k in ('f0', 'f', 'fc', 'f_lo', 'f_hi', 'formant', 'rate') if k in sig]
    return dict(sig, **{k: sig[k] * _J(rs, 0.08) for k in keys})


def synth_audioset(out, seed=0, n_train=1500, n_eval=500, seconds=2.0, missing=0.02, sr=SYNTH_SR, progress=True):
    """AudioSet strong labels: the 50 classes and 6 others, 1-5 events a clip, long-tailed; Y<segment_id>.wav (some
    .flac or no Y), `missing` of them never written. seconds=10, sr=32000: the paper's format (nothing above 8 kHz)."""
    out, rs, sigs = _start(out, seed, 'audioset', 'train', 'eval')
    n50, n_extra = len(AUDIOSET_CLASSES), len(AUDIOSET_EXTRA_MIDS)
    mids = [m for _, m in AUDIOSET_CLASSES] + [m for m, _, _ in AUDIOSET_EXTRA_MIDS]
    weights = (np.array([list(_AUDIOSET_FAMILIES).index(name) for name, _ in AUDIOSET_CLASSES]) + 1.0) ** -0.9
    weights /= weights.sum()  # by popularity rank: about 30:1 between the ends
    alphabet = np.array(list('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'))
    n, used_ids = int(round(seconds * SYNTH_SR)), set()
    bar = Progress(n_train + n_eval, f'synth audioset -> {out}', progress)
    for part, count in (('train', n_train), ('eval', n_eval)):
        rows, cover = ['\t'.join(AUDIOSET_HEADER)], max(1, min(4, count // 100)) * n50  # the first clips: every class
        for j in range(count):
            ytid = ''.join(rs.choice(alphabet, 11))
            ytid = '-' + ytid[1:5] + '_' + ytid[6:] if j == 0 else ytid  # ids may start with '-' and contain '_'
            sid = f'{ytid}_{rs.randint(0, 300) * 1000}'
            if sid in used_ids:
                continue
            used_ids.add(sid)
            classes = list(rs.choice(n50, rs.choice([1, 2, 3, 4, 5], p=[.35, .3, .18, .11, .06]), p=weights))
            if j < cover:
                classes[0] = j % n50
            if rs.rand() < 0.1:
                classes.append(n50 + rs.randint(n_extra))
            if j >= cover and rs.rand() < 0.02:
                classes = [n50 + rs.randint(n_extra)]  # none of the 50 classes
            placed = [_place(sigs[c], seconds, rs, (-28, -12)) for c in classes]
            y = _mix([event for event, _, _ in placed], n, rs, rs.uniform(-50, -25))
            rows += [f'{sid}\t{t0:.3f}\t{t1:.3f}\t{mid}' for t0, t1, mid in sorted(
                (round(t0, 3), round(min(t0 + dur, seconds), 3), mids[c]) for c, (_, t0, dur) in zip(classes, placed))]
            r = rs.rand()
            if not (j >= cover and r < missing):  # else a clip that failed to download: rows, no file
                name = f'{sid}.wav' if r < missing + 0.05 else f'Y{sid}.flac' if r < missing + 0.10 else f'Y{sid}.wav'
                _write_audio(out / part / name, y, sr)
            bar.update()
        (out / AUDIOSET_TSV[part]).write_text('\n'.join(rows) + '\n', encoding='utf-8')
    names = sorted(zip(mids, [name for name, _ in AUDIOSET_CLASSES] + [name for _, name, _ in AUDIOSET_EXTRA_MIDS]))
    (out / 'mid_to_display_name.tsv').write_text(''.join(f'{m}\t{name}\n' for m, name in names), encoding='utf-8')
    return _finish(out, 'AudioSet-strong-like data', kind='audioset', seed=seed, n_train=n_train, n_eval=n_eval,
                   seconds=seconds, sr=sr, missing=missing)


def synth_speechcommands(out, seed=0, speakers=30, max_reps=3, other_words=('bed', 'bird'), noise_seconds=10.0,
                         progress=True):
    """Speech Commands: <word>/<speaker>_nohash_<n>.wav (<= 1 s) of the 20 core words (each speaker 1..max_reps
    times) and other_words, the validation / testing lists by the official SHA-1 rule, _background_noise_/."""
    words = SPEECHCOMMANDS_WORDS + list(other_words)
    out, rs, sigs = _start(out, seed, 'speechcommands', '_background_noise_', *words)
    sigs = dict(zip(SPEECHCOMMANDS_WORDS + ['bed', 'bird'], sigs))
    n_val = n_test = max(int(speakers >= 3), int(round(0.1 * speakers)))
    want = ['validation'] * n_val + ['testing'] * n_test + ['training'] * (speakers - n_val - n_test)
    ids = []  # (speaker id drawn to fall in its list, voice: f0, vocal-tract scale, speaking rate)
    for bucket in [want[i] for i in rs.permutation(speakers)]:
        h = None
        while h is None or h in [s for s, _ in ids] or gsc_list_of(h + '_nohash_0.wav') != bucket:
            h = '%08x' % rs.randint(0, 2 ** 32, dtype=np.int64)
        f0, fscale = ((85, 150), (0.88, 1.0)) if rs.rand() < 0.5 else ((165, 260), (1.0, 1.18))
        ids.append((h, dict(f0=float(rs.uniform(*f0)), fscale=float(rs.uniform(*fscale)),
                            rate=float(rs.uniform(0.8, 1.25)))))
    lists = {'validation': [], 'testing': []}
    bar = Progress(len(words) * speakers, f'synth speechcommands -> {out}', progress, 'word x speaker')
    for w in words:
        for h, voice in ids:
            for r in range(rs.randint(1, max_reps + 1) if w in SPEECHCOMMANDS_WORDS else rs.randint(0, 2)):
                x = render_event(dict(sigs[w], **voice, jit=0.05), 1.0, rs)
                voiced = np.flatnonzero(np.abs(x) > 0.05 * np.abs(x).max())
                x = x[voiced[0]:voiced[-1] + 1][:int(0.95 * SYNTH_SR)]  # trim silence, at most 0.95 s
                short = rs.rand() >= 0.8  # 20 % of the files are shorter than 1 s, as in GSC
                length = min(SYNTH_SR, int(max(len(x) + 800, rs.uniform(0.45, 1.0) * SYNTH_SR))) if short else SYNTH_SR
                onset, name = rs.randint(0, max(1, length - len(x))), f'{h}_nohash_{r}.wav'
                y = _mix([(x, onset, rs.uniform(-26, -14))], length, rs, rs.uniform(-60, -28))
                _write_audio(out / w / name, y, SYNTH_SR)
                lists.get(gsc_list_of(name), []).append(f'{w}/{name}')
            bar.update()
    for which, keys in lists.items():
        (out / f'{which}_list.txt').write_text(''.join(k + '\n' for k in keys))
    for name, slope in (('white_noise.wav', 0.0), ('pink_noise.wav', 1.0)):
        noise = (0.1 * _band_noise(int(noise_seconds * SYNTH_SR), rs, 0, 0, slope)).astype(np.float32)
        sf.write(out / '_background_noise_' / name, noise, SYNTH_SR, subtype='PCM_16')
    (out / '_background_noise_' / 'README.md').write_text('Long noise recordings (generated). Not a class.\n')
    return _finish(out, 'Speech-Commands-like data', noun='speech', kind='speechcommands', seed=seed,
                   speakers=speakers, max_reps=max_reps, other_words=list(other_words), sr=SYNTH_SR)


def synth_urbansound8k(out, seed=0, clips_per_class=60, progress=True):
    """UrbanSound8K: metadata/UrbanSound8K.csv, audio/fold1..10/<fsID>-<classID>-<occ>-<slice>.wav of 0.3-4 s; the
    slices of one fsID share its fold, rate (8-96 kHz), channels, subtype and source variation."""
    out, rs, sigs = _start(out, seed, 'urbansound8k', 'metadata', *[f'audio/fold{k}' for k in range(1, 11)])
    rates, rate_p = [44100, 48000, 22050, 16000, 11025, 96000, 8000], [.35, .12, .2, .15, .08, .05, .05]
    subtypes, sub_p = ['PCM_16', 'PCM_24', 'FLOAT', 'PCM_U8', 'IMA_ADPCM'], [.55, .3, .08, .04, .03]
    right = lambda y: np.roll(y, rs.randint(1, 20)) * rs.uniform(0.7, 1.0) + 0.003 * rs.standard_normal(len(y))  # noqa
    rows, fs_ids = [], set()
    bar = Progress(clips_per_class * len(URBANSOUND8K_CLASSES), f'synth urbansound8k -> {out}', progress)
    for c, cname in enumerate(URBANSOUND8K_CLASSES):
        folds, made = list(rs.permutation(10) + 1), 0
        while made < clips_per_class:
            fs_id = int(rs.randint(1000, 200000))
            if fs_id in fs_ids:
                continue
            fs_ids.add(fs_id)
            folds.append(fold := folds.pop(0))
            sr, subtype = int(rs.choice(rates, p=rate_p)), str(rs.choice(subtypes, p=sub_p))
            stereo, source = rs.rand() < 0.35, _recording(sigs[c], rs)
            occ, noise_db = rs.randint(0, 3), rs.uniform(-50, -30)
            for s in range(min(rs.randint(1, 7), clips_per_class - made)):
                dur = rs.uniform(1.0, 4.0) if rs.rand() < 0.85 else rs.uniform(0.3, 1.0)
                salience, n, events = 1 if rs.rand() < 0.7 else 2, int(dur * SYNTH_SR), []
                for _ in range(rs.randint(1, 3)):
                    ev = min(dur, rs.uniform(*_FAMILIES[source['family']][1]) * 1.5)
                    i = rs.randint(0, max(1, n - int(ev * SYNTH_SR)))
                    level = rs.uniform(-24, -12) - (12 if salience == 2 else 0)
                    events.append((render_event(source, ev, rs), i, level))
                name, y = f'{fs_id}-{c}-{occ}-{s}.wav', _mix(events, n, rs, noise_db + rs.uniform(-3, 3))
                _write_audio(out / 'audio' / f'fold{fold}' / name, y, sr, subtype, right=right if stereo else None)
                start = round(s * 4.0 + rs.uniform(0, 0.5), 6)
                rows.append([name, str(fs_id), f'{start}', f'{round(start + dur, 6)}', str(salience), str(fold),
                             str(c), cname])
                made += 1
                bar.update()
    _write_csv(out / 'metadata' / 'UrbanSound8K.csv', sorted(rows), URBANSOUND8K_HEADER)
    return _finish(out, 'UrbanSound8K-like data', 'UrbanSound8K_README.txt', 'recordings', kind='urbansound8k',
                   seed=seed, clips_per_class=clips_per_class)


def _ancestors(name):  # a generated FSD50K class, then its ancestors (FSD50K's label propagation)
    return [name] + [a for parent in _FSD50K_TABLE[name][1] for a in _ancestors(parent)]


def synth_fsd50k(out, seed=0, n_dev=600, n_eval=200, max_seconds=6.0, sr=16000, progress=True):
    """FSD50K's layout: <fname>.wav of 0.3 .. max_seconds s, 1-2 events labelled with their ancestors; the first clips
    cover every class (dev: twice), then every 10th dev clip is 'val'; ~3 % and each part's last: none of the 50."""
    out, rs, sigs = _start(out, seed, 'fsd50k', 'FSD50K.ground_truth', *FSD50K_AUDIO.values())
    names = FSD50K_CLASSES + FSD50K_EXTRA
    sigs = dict(zip(names, sigs))
    inside = [n for n in names if _FSD50K_TABLE[n][2] is not None and n in _FSD50K_INDEX]
    outside = [n for n in names if _FSD50K_TABLE[n][2] is not None and n not in _FSD50K_INDEX]
    weights = (np.arange(len(inside)) + 1.0) ** -0.5
    weights = weights[np.random.RandomState(_SIGNATURE_SEED).permutation(len(inside))]
    weights /= weights.sum()
    gt, used = out / 'FSD50K.ground_truth', set()
    bar = Progress(n_dev + n_eval, f'synth fsd50k -> {out}', progress)
    for part, count in (('dev', n_dev), ('eval', n_eval)):
        rows, cover = [], min(int(0.8 * count), (2 if part == 'dev' else 1) * len(inside))
        for j in range(count):
            fname = int(rs.randint(1, 450000))
            while fname in used:
                fname = int(rs.randint(1, 450000))
            used.add(fname)
            seconds = float(np.exp(rs.uniform(np.log(0.3), np.log(max_seconds))))
            chosen = list(rs.choice(inside, rs.choice([1, 2], p=[.7, .3]), p=weights, replace=False))
            if j == count - 1 or (j >= cover and rs.rand() < 0.03):  # none of the 50 (at least one such clip)
                chosen = [outside[rs.randint(len(outside))]]
            elif j < cover:
                chosen[0] = inside[j % len(inside)]
            mix = [_place(sigs[c], seconds, rs, (-24, -12))[0] for c in chosen]
            y = _mix(mix, max(64, int(round(seconds * SYNTH_SR))), rs, rs.uniform(-55, -35))
            _write_audio(out / FSD50K_AUDIO[part] / f'{fname}.wav', y, sr)
            labels = list(dict.fromkeys(a for c in chosen for a in _ancestors(c)))
            rows.append([str(fname), ','.join(labels), ','.join(_FSD50K_TABLE[x][0] for x in labels)]
                        + (['val' if j >= cover and (j - cover) % 10 == 0 else 'train'] if part == 'dev' else []))
            bar.update()
        _write_csv(gt / FSD50K_GROUND_TRUTH[part], rows, ['fname', 'labels', 'mids'] + ['split'] * (part == 'dev'))
    _write_csv(gt / 'vocabulary.csv', [[i, name, _FSD50K_TABLE[name][0]] for i, name in enumerate(names)])  # no header
    return _finish(out, 'FSD50K-like data', kind='fsd50k', seed=seed, n_dev=n_dev, n_eval=n_eval,
                   max_seconds=max_seconds, sr=sr)


def synth_esc50(out, seed=0, clips_per_class=20, seconds=5.0, sr=22050, n_classes=50, progress=True):
    """ESC-50-master/: meta/esc50.csv (rows sorted by filename), audio/<fold>-<src_file>-<take>-<target>.wav (ESC-50
    has 44.1 kHz); clips_per_class over the 5 folds, the takes of a src_file in one fold; the first n_classes."""
    out, rs, sigs = _start(out, seed, 'esc50', 'audio', 'meta')
    rows, used, n = [], set(), int(round(seconds * SYNTH_SR))
    bar = Progress(clips_per_class * n_classes, f'synth esc50 -> {out}', progress)
    for c, cname in enumerate(ESC50_CLASSES[:n_classes]):
        for fold in range(1, 6):
            want, made = clips_per_class // 5 + (fold <= clips_per_class % 5), 0
            while made < want:
                src = int(rs.randint(1000, 260000))
                if src in used:
                    continue
                used.add(src)
                source = _recording(sigs[c], rs)
                for take in 'ABCDEFGH'[:min(rs.randint(1, 3), want - made)]:
                    mix = [_place(source, seconds, rs, (-22, -10), stretch=1.5, latest=1.0)[0]
                           for _ in range(rs.randint(1, 3))]
                    name = f'{fold}-{src}-{take}-{c}.wav'
                    _write_audio(out / 'audio' / name, _mix(mix, n, rs, rs.uniform(-70, -40)), sr)
                    rows.append([name, str(fold), str(c), cname, str(cname in ESC10), str(src), take])
                    made += 1
                    bar.update()
    _write_csv(out / 'meta' / 'esc50.csv', sorted(rows), ESC50_HEADER)
    return _finish(out, 'ESC-50-like data', kind='esc50', seed=seed, clips_per_class=clips_per_class,
                   seconds=seconds, sr=sr, n_classes=n_classes)


def _own_clip(path_stem, classes, sigs, seconds, rs):
    """A clip of 'your own data': events of `classes` (ESC-50 sounds) in a format of _OWN_FORMATS; its path."""
    mix = [_place(sigs[c], seconds, rs, (-22, -10))[0] for c in classes]
    y = _mix(mix, int(round(seconds * SYNTH_SR)), rs, rs.uniform(-60, -35))
    sr, fmt, subtype, channels = _OWN_FORMATS[rs.randint(len(_OWN_FORMATS))]
    path = Path(f'{path_stem}.{fmt.lower()}')
    _write_audio(path, y, sr, subtype, (lambda y: np.roll(y, 7) * 0.8) if channels == 2 else None)
    return path


def synth_csv(out, seed=0, n_classes=6, clips_per_class=12, seconds=1.0, multilabel=False, progress=True):
    """'Your own data' as a CSV: clips/<n>.<wav|flac> of the first n_classes ESC-50 sounds, labels.csv with path,
    label, split (70/10/20 per class, at least one of each); multilabel: 1-3 classes a clip, joined by ';'."""
    out, rs, sigs = _start(out, seed, 'esc50', 'clips')
    if multilabel:  # clips_per_class on average
        n = n_classes * clips_per_class // 2
        parts = ['train'] * 2 * n_classes + ['test'] * n_classes + ['val'] * n_classes
        parts += list(rs.choice(['train', 'val', 'test'], max(0, n - len(parts)), p=[.7, .1, .2]))
        todo = [(sorted({j % n_classes} | set(rs.choice(n_classes, rs.randint(0, 3)).tolist())), parts[j])
                for j in range(max(n, len(parts)))]
    else:
        n_val, n_test = max(1, round(0.1 * clips_per_class)), max(1, round(0.2 * clips_per_class))
        splits = ['train'] * (clips_per_class - n_val - n_test) + ['val'] * n_val + ['test'] * n_test
        todo = [([c], split) for c in range(n_classes) for split in splits]
        todo = [todo[i] for i in rs.permutation(len(todo))]
    bar, rows = Progress(len(todo), f'synth csv -> {out}', progress), []
    for j, (classes, split) in enumerate(todo):
        path = _own_clip(out / 'clips' / f'{j:04d}', classes, sigs, seconds, rs)
        rows.append([path.relative_to(out).as_posix(), ';'.join(ESC50_CLASSES[c] for c in classes), split])
        bar.update()
    _write_csv(out / 'labels.csv', rows, ['path', 'label', 'split'])
    return _finish(out, kind='csv', seed=seed, n_classes=n_classes, clips_per_class=clips_per_class, seconds=seconds,
                   multilabel=multilabel)


def synth_folder(out, seed=0, n_classes=6, clips_per_class=12, seconds=1.0, progress=True):
    """'Your own data' as a folder per class: <class>/<n>.<wav|flac> of the first n_classes ESC-50 sounds."""
    out, rs, sigs = _start(out, seed, 'esc50', *ESC50_CLASSES[:n_classes])
    bar = Progress(n_classes * clips_per_class, f'synth folder -> {out}', progress)
    for c in range(n_classes):
        for j in range(clips_per_class):
            _own_clip(out / ESC50_CLASSES[c] / f'{j:03d}', [c], sigs, seconds, rs)
            bar.update()
    return _finish(out, kind='folder', seed=seed, n_classes=n_classes, clips_per_class=clips_per_class, seconds=seconds)


def format_target(values):
    """A target vector as the authors' files hold it: numpy's str() of a float array, 24 values a line."""
    cells = [f'{int(v)}.' for v in values]
    return '[' + '\n '.join(' '.join(cells[i:i + 24]) for i in range(0, len(cells), 24)) + ']'


def synth_authors_txt(out, seed=0, n_train=150, n_eval=70, seconds=1.0, progress=True):
    """The authors' phase files (train_phase_<k>.txt, test_phase_0_.._k.txt, classes.txt) over AudioSet-like clips
    in out/Audioset/, named under AUTHORS_PREFIX as theirs are (read with --path-map AUTHORS_PREFIX=<out>/Audioset)."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)
    audio = synth_audioset(out / 'Audioset', seed, n_train, n_eval, seconds, missing=0.0, progress=progress)
    ds = load_audioset(audio)
    phases = make_phases(ds, make_split(ds), sizes=PHASE_SIZES['audioset'])
    name = lambda i: AUTHORS_PREFIX + '/' + Path(ds.paths[i]).relative_to(audio).as_posix()  # noqa: E731
    for ph, (train_name, test_name) in zip(phases, authors_file_names(len(phases))):
        (out / train_name).write_text(''.join(f'{name(i)}_{format_target(y[ph.n_old:])}\n'
                                              for i, y in zip(ph.train, ph.train_y)))
        (out / test_name).write_text(''.join(f'{name(i)}_{format_target(y)}\n' for i, y in zip(ph.test, ph.test_y)))
    (out / 'classes.txt').write_text(''.join(f'{n}\n' for n in ds.classes))
    return _finish(out, kind='authors-txt', seed=seed, n_train=n_train, n_eval=n_eval, seconds=seconds, sr=SYNTH_SR)


SYNTH_KINDS = {'audioset': synth_audioset, 'speechcommands': synth_speechcommands, 'urbansound8k': synth_urbansound8k,
               'fsd50k': synth_fsd50k, 'esc50': synth_esc50, 'csv': synth_csv, 'folder': synth_folder,
               'authors-txt': synth_authors_txt}
ACCEPTS = {  # the size flags each kind takes
    'audioset': ('n_train', 'n_eval', 'seconds', 'sr'), 'speechcommands': (), 'urbansound8k': ('clips_per_class',),
    'esc50': ('clips_per_class', 'seconds', 'sr', 'n_classes'), 'fsd50k': ('n_train', 'n_eval', 'seconds', 'sr'),
    'csv': ('n_classes', 'clips_per_class', 'seconds'), 'folder': ('n_classes', 'clips_per_class', 'seconds'),
    'authors-txt': ('n_train', 'n_eval', 'seconds')}


def ensure_synth(kind, root, seed=0, progress=True, **sizes):
    """The generated `kind` dataset in `root`, made once under a FolderLock (a killed generation is redone); `sizes`:
    the generator's arguments; a synth.json of another kind, seed or size is one line (DataError)."""
    root = Path(root)

    def made():
        marker, want = read_synth_marker(root), dict(sizes, kind=kind, seed=seed)
        other = {k: marker[k] for k, v in want.items()  # sizes synth.json does not record are not checked
                 if k in marker and json.loads(json.dumps(v)) != marker[k]} if marker is not None else {}
        if other:  # (tuples compare as JSON lists)
            raise DataError(f'{root} holds a generated dataset with other settings ({other} instead of '
                            f"{ {k: want[k] for k in other} }); delete it or choose another folder")
        return marker is not None

    if made():
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FolderLock(root), sigterm_as_interrupt():
            if not made():  # another process may have made it while this one waited
                if progress:
                    print(f'generating the synthetic {kind} dataset in {root} (once) ...', file=sys.stderr, flush=True)
                SYNTH_KINDS[kind](root, seed=seed, progress=progress, **sizes)
    except (OSError, sf.SoundFileError) as e:  # a full disk, a read-only folder
        reason, todo = write_failure(e, root)
        raise DataError(f'cannot write the generated {kind} dataset in {root} ({reason}); {todo}, or choose '
                        'another folder (a rerun redoes the generation)') from None
    return root


def main(argv=None):
    """python data.py synth ... (or python synth.py ...): write one generated dataset."""
    p = argparse.ArgumentParser(prog='data.py synth', description='Write a generated dataset in the real on-disk '
                                'layout (every flag but --kind and --out has the default of its kind).')
    p.error = lambda message: (print(f'data.py synth: error: {message}', file=sys.stderr), sys.exit(2))
    p.add_argument('--kind', required=True, choices=list(SYNTH_KINDS), help='which layout to imitate')
    p.add_argument('--out', required=True, help='output folder (created)')
    p.add_argument('--seed', type=int, default=0, help='random seed of the clips')
    p.add_argument('--n-train', type=int, help='audioset, authors-txt: training clips (1500 / 150); fsd50k: dev (600)')
    p.add_argument('--n-eval', type=int, help='audioset, authors-txt: eval clips (500 / 70); fsd50k: eval (200)')
    p.add_argument('--seconds', type=float, help='clip length (audioset 2, esc50 5, csv / folder / authors-txt 1); '
                   'fsd50k: the longest clip (6; log-uniform from 0.3 s)')
    p.add_argument('--missing', type=float, default=0.02, help='audioset: fraction of clips without audio')
    p.add_argument('--speakers', type=int, default=30, help='speechcommands: speakers')
    p.add_argument('--max-reps', type=int, default=3, help='speechcommands: each word 1..max-reps times a speaker')
    p.add_argument('--clips-per-class', type=int, help='urbansound8k (60), esc50 (20), csv, folder (12)')
    p.add_argument('--classes', type=int, help='esc50: the first N of the 50 classes; csv, folder: N classes (6)')
    p.add_argument('--multilabel', action='store_true', help="csv: clips of 1-3 classes, labels joined by ';'")
    p.add_argument('--sr', type=int, help="audioset, fsd50k, esc50: the files' sample rate (16000 / 16000 / 22050); "
                   "audioset --seconds 10 --sr 32000 is the paper's clip format (PANNs front end, 1001 x 64)")
    args = p.parse_args(argv)
    flag = lambda k: '--' + {'n_classes': 'classes'}.get(k, k).replace('_', '-')  # noqa: E731
    kwargs = {k: v for k, v in dict(n_train=args.n_train, n_eval=args.n_eval, seconds=args.seconds, sr=args.sr,
                                    clips_per_class=args.clips_per_class, n_classes=args.classes).items()
              if v is not None}
    unused = [k for k in kwargs if k not in ACCEPTS[args.kind]]
    if unused:
        p.error(f'--kind {args.kind} does not take {flag(unused[0])}')
    bad = [k for k, v in kwargs.items() if not (math.isfinite(v) and v > 0)]
    if bad:
        p.error(f'{flag(bad[0])} must be a positive number, not {kwargs[bad[0]]}')
    if args.sr is not None and args.sr < 8000:
        p.error(f'--sr {args.sr}: write at 8000 Hz or more (the sounds are rendered at 16 kHz)')
    if not 0 <= args.missing < 1:
        p.error(f'--missing is a fraction in [0, 1), not {args.missing}')
    if args.kind == 'fsd50k':
        kwargs = {dict(n_train='n_dev', seconds='max_seconds').get(k, k): v for k, v in kwargs.items()}
    kwargs.update(dict(audioset=dict(missing=args.missing), csv=dict(multilabel=args.multilabel),
                       speechcommands=dict(speakers=args.speakers, max_reps=args.max_reps)).get(args.kind, {}))
    try:
        out = SYNTH_KINDS[args.kind](args.out, seed=args.seed, **kwargs)
    except (OSError, sf.SoundFileError) as e:  # a full disk, a read-only folder
        reason, todo = write_failure(e, args.out)
        print(f"error: {getattr(e, 'filename', None) or args.out}: {reason}; {todo}, or choose another folder",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\ndata.py synth: interrupted; run the same command again (it writes the same files)', file=sys.stderr)
        return 130
    print(f"wrote {sum(1 for f in Path(out).rglob('*') if f.is_file())} files to {out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
