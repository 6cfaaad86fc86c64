"""Datasets for class-incremental audio classification: the layouts researchers download, read from their
metadata, split, cut into phases, and their features computed once into a checked, memory-mapped cache.

    ds = load_dataset('audioset', root)       # metadata -> Dataset (keys, paths, labels, groups), problems listed
    cache = build_cache(ds, cache_root)       # features once per clip and front end; cache.read(index) -> float16
    split = make_split(ds)                    # train / val / test indices + a hash
    phases = make_phases(ds, split, class_order(len(ds.classes)))   # per phase: indices + targets, learned order
    (or ds, cache = prepare(name, root, cache_root))

Every problem of the data (a missing, empty, truncated or undecodable file, a malformed row, an unknown
class) is one line 'file[:line]: problem; what to do', all of them collected before any training: a
DataError lists them, or skip_bad=True skips and counts them. Notes (clips never downloaded, labels
outside the classes, stray files) are counted, never fatal. Choices where the specs are silent: README.
Needs numpy, soundfile and features.py (python data.py synth: synth.py too).
"""
import argparse
import collections
import contextlib
import csv
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

import features

# -----------------------------------------------------------------------------
# Class tables

AUDIOSET_CLASSES = [  # the paper's 50 classes (mulimani/CIL-ML-Audio data/AudioSet_classes.txt), in its order
    ('Generic impact sounds', '/t/dd00099'), ('Male speech, man speaking', '/m/05zppz'), ('Tick', '/m/07qjznt'),
    ('Female speech, woman speaking', '/m/02zsn'), ('Breathing', '/m/0lyf6'), ('Music', '/m/04rlf'),
    ('Mechanisms', '/t/dd00077'), ('Background noise', '/m/093_4n'), ('Wind noise (microphone)', '/t/dd00092'),
    ('Bird vocalization, bird call, bird song', '/m/020bb7'), ('Human voice', '/m/09l8g'),
    ('Surface contact', '/t/dd00109'), ('Sound effect', '/m/0c1dj'), ('Walk, footsteps', '/m/07pbtc8'),
    ('Laughter', '/m/01j3sz'), ('Tap', '/m/07qcpgn'), ('Child speech, kid speaking', '/m/0ytgt'), ('Wind', '/m/03m9d0z'),
    ('Clapping', '/m/0l15bq'), ('Chirp, tweet', '/m/07pggtn'), ('Male singing', '/t/dd00003'),
    ('Human sounds', '/m/0dgw9r'), ('Clicking', '/m/07qc9xj'), ('Accelerating, revving, vroom', '/m/07q2z82'),
    ('Conversation', '/m/01h8n0'), ('Beep, bleep', '/m/02fs_r'), ('Bark', '/m/05tny_'), ('Shout', '/m/07p6fty'),
    ('Female singing', '/t/dd00004'), ('Heart sounds, heartbeat', '/m/01jg02'), ('Speech', '/m/09x0r'),
    ('Video game sound', '/m/0bzvm2'), ('Animal', '/m/0jbk'), ('Dog', '/m/0bt9lr'), ('Gunshot, gunfire', '/m/032s66'),
    ('Hubbub, speech noise, speech babble', '/m/07qfr4h'), ('Cricket', '/m/09xqv'), ('Squeal', '/m/07s02z0'),
    ('Crowd', '/m/03qtwd'), ('Water', '/m/0838f'), ('Computer keyboard', '/m/01m2v'), ('Whistling', '/m/01w250'),
    ('Crumpling, crinkling', '/t/dd00112'), ('Thump, thud', '/m/07qnq_y'), ('Speech synthesizer', '/m/0brhx'),
    ('Bell', '/m/0395lw'), ('Choir', '/m/0l14jd'), ('Hammer', '/m/03l9g'), ('Motor vehicle (road)', '/m/012f08'),
    ('Clickety-clack', '/m/07rwm0c')]
_AUDIOSET_MID_INDEX = {mid: i for i, (_, mid) in enumerate(AUDIOSET_CLASSES)}
AUDIOSET_TSV = {'train': 'audioset_train_strong.tsv', 'eval': 'audioset_eval_strong.tsv'}
AUDIOSET_HEADER = ['segment_id', 'start_time_seconds', 'end_time_seconds', 'label']
SPEECHCOMMANDS_WORDS = ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go', 'zero', 'one', 'two',
                        'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
SPEECHCOMMANDS_OTHER_WORDS = ['backward', 'bed', 'bird', 'cat', 'dog', 'follow', 'forward', 'happy', 'house', 'learn',
                              'marvin', 'sheila', 'tree', 'visual', 'wow']
URBANSOUND8K_CLASSES = ['air_conditioner', 'car_horn', 'children_playing', 'dog_bark', 'drilling', 'engine_idling',
                        'gun_shot', 'jackhammer', 'siren', 'street_music']
URBANSOUND8K_HEADER = ['slice_file_name', 'fsID', 'start', 'end', 'salience', 'fold', 'classID', 'class']
FSD50K_CLASSES = [  # the authors' 50 (data/FSD50K_classes.txt); FSD50K labels carry their ancestors
    'Music', 'Domestic_sounds_and_home_sounds', 'Vehicle', 'Animal', 'Human_voice', 'Water', 'Wild_animals',
    'Motor_vehicle_(road)', 'Wind_instrument_and_woodwind_instrument', 'Percussion', 'Bird', 'Alarm',
    'Plucked_string_instrument', 'Keyboard_(musical)', 'Mechanisms', 'Guitar', 'Engine', 'Bowed_string_instrument',
    'Liquid', 'Human_group_actions', 'Rail_transport', 'Thunder', 'Thunderstorm', 'Domestic_animals_and_pets',
    'Rain', 'Speech', 'Explosion', 'Car', 'Bird_vocalization_and_bird_call_and_bird_song', 'Tools', 'Bell', 'Door',
    'Dog', 'Piano', 'Singing', 'Livestock_and_farm_animals_and_working_animals', 'Brass_instrument', 'Drum',
    'Glass', 'Laughter', 'Respiratory_sounds', 'Telephone', 'Trumpet', 'Acoustic_guitar', 'Hands', 'Cymbal',
    'Electric_guitar', 'Snare_drum', 'Fart', 'Hi-hat']
_FSD50K_INDEX = {name: i for i, name in enumerate(FSD50K_CLASSES)}
FSD50K_GROUND_TRUTH = {'dev': 'dev.csv', 'eval': 'eval.csv'}
FSD50K_AUDIO = {'dev': 'FSD50K.dev_audio', 'eval': 'FSD50K.eval_audio'}
EXCERPT_SECONDS = 1.0  # fsd50k: clips cut into excerpts of this length (the authors' 1 s)
# the authors' excerpt counts (their README) and FSD50K's hours, for the counting rule (excerpt_count)
FSD50K_AUTHORS_EXCERPTS, FSD50K_HOURS = {'dev': 284447, 'eval': 97798}, {'dev': 80.4, 'eval': 27.9}
ESC50_CLASSES = [  # target 0..49
    'dog', 'rooster', 'pig', 'cow', 'frog', 'cat', 'hen', 'insects', 'sheep', 'crow', 'rain', 'sea_waves',
    'crackling_fire', 'crickets', 'chirping_birds', 'water_drops', 'wind', 'pouring_water', 'toilet_flush',
    'thunderstorm', 'crying_baby', 'sneezing', 'clapping', 'breathing', 'coughing', 'footsteps', 'laughing',
    'brushing_teeth', 'snoring', 'drinking_sipping', 'door_wood_knock', 'mouse_click', 'keyboard_typing',
    'door_wood_creaks', 'can_opening', 'washing_machine', 'vacuum_cleaner', 'clock_alarm', 'clock_tick',
    'glass_breaking', 'helicopter', 'chainsaw', 'siren', 'car_horn', 'engine', 'train', 'church_bells', 'airplane',
    'fireworks', 'hand_saw']
ESC50_HEADER = ['filename', 'fold', 'target', 'category', 'esc10', 'src_file', 'take']
ESC10 = ('dog', 'rooster', 'rain', 'sea_waves', 'crackling_fire', 'crying_baby', 'sneezing', 'clock_tick',
         'helicopter', 'chainsaw')
ESC50_FOLD = 5  # default test fold; validation on the fold before it, training on the others
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.oga', '.opus', '.mp3', '.aif', '.aiff', '.au', '.w64',
                    '.caf')  # suffixes looked at as audio (libsndfile reads them), in preference order

# -----------------------------------------------------------------------------
# Problems of the data: one line each, collected, fatal unless skip_bad


@dataclasses.dataclass
class Issue:
    """One problem: which file (and line), what is wrong, what to do. fatal=False: a note (counted,
    reported, never fatal). count: the clips this one line stands for."""
    path: str
    problem: str
    action: str = ''
    fatal: bool = True
    count: int = 1

    def __str__(self):
        return f'{self.path}: {self.problem}' + (f'; {self.action}' if self.action else '')


class DataError(Exception):
    """Problems found before training; the message lists every one. Given a str: that one line."""

    def __init__(self, issues, where='', skippable=True):
        if isinstance(issues, str):
            self.issues = []
            super().__init__(issues)
            return
        self.issues = list(issues)
        head = (f"{len(self.issues)} data problem(s){' in ' + str(where) if where else ''}, found before any "
                'training. Fix them' + (', or skip and count the bad clips with --skip-bad (Python: skip_bad=True)'
                                        if skippable else '') + ':')
        super().__init__('\n'.join([head] + [f'  - {i}' for i in self.issues]))


class Bad(Exception):
    """Raised by a row parser of read_rows: the row is left out with one line 'file:line: problem; todo'."""

    def __init__(self, problem, todo='fix or delete the row', fatal=True):
        super().__init__(problem)
        self.todo, self.fatal = todo, fatal


def missing(path, todo, where=None):
    """The one line of a metadata file that is not there."""
    return DataError([Issue(str(path), 'not found', todo)], where or Path(path).parent, skippable=False)


def raise_if_fatal(issues, skip_bad, where):
    """DataError listing the fatal issues, unless skip_bad; returns the number of clips they skip."""
    fatal = [i for i in issues if i.fatal]
    if fatal and not skip_bad:
        raise DataError(fatal, where)
    return sum(i.count for i in fatal)


def read_text(path):
    """A metadata file as text: UTF-8 (a leading BOM dropped); else one line naming the file, the line of the
    first bad byte and what to do."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f'{path}: cannot read it ({e.strerror or e}); check its permissions') from None
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        text = e.object  # the bytes after a BOM, which e.start counts in
        lineno, column = text.count(b'\n', 0, e.start) + 1, e.start - (text.rfind(b'\n', 0, e.start) + 1) + 1
        raise DataError(f'{path}:{lineno}: not UTF-8 text (byte 0x{text[e.start]:02x} at column {column}); save the '
                        'file as UTF-8 (e.g. iconv -f latin1 -t utf-8) and run again') from None


def read_rows(path, parse, issues, sep=',', need=(), advice='', fields='comma-separated fields',
              todo='fix or delete the row'):
    """parse(row, lineno) for every non-blank row of a metadata file, the items it returns (None: left out).
    sep ',': CSV with quoting; '\\t': tab-separated (display names hold commas); None: whole lines. With
    `need`, the first row is a header that must hold those columns (else one line, what to do: `advice`),
    every row must be as wide as it, and parse gets {column: value}; without, the stripped fields. A Bad
    raised by parse becomes the Issue 'path:line: problem; what to do'."""
    text = io.StringIO(read_text(path), newline='')  # lines split as open(newline='') splits them
    reader = (csv.reader(text) if sep == ',' else
              ([line.rstrip('\r\n')] if sep is None else line.rstrip('\r\n').split(sep) for line in text))
    header, out = None, []
    for lineno, row in enumerate(reader, 1):
        if header is None and need:
            header = [h.strip() for h in row]
            if not all(h in header for h in need):
                raise DataError([Issue(f'{path}:1', f'header {header} lacks the columns {list(need)}', advice)],
                                Path(path).parent, skippable=False)
            continue
        if not row or not any(c.strip() for c in row):
            continue
        try:
            if header is not None and len(row) != len(header):
                raise Bad(f"expected {len(header)} {fields}, got {len(row)}: {','.join(row)[:80]!r}", todo)
            item = parse(dict(zip(header, (c.strip() for c in row))) if header else [c.strip() for c in row], lineno)
        except Bad as e:
            issues.append(Issue(f'{path}:{lineno}', str(e), e.todo, e.fatal))
            continue
        if item is not None:
            out.append(item)
    return out


def write_failure(e, folder=None):
    """Why a write failed, as (what happened, what to do), or None when e is no failed write: the OSError is
    e or what e was raised from (torch.save reports a full disk as a RuntimeError from it); libsndfile says
    only 'System error', read as a full disk when the folder has under 1 MiB free."""
    err = e
    while err is not None and not isinstance(err, OSError):
        err = err.__cause__ or err.__context__
    if err is not None:
        code, what = err.errno, err.strerror or str(err)
    elif isinstance(e, sf.SoundFileError):
        try:
            full = folder is not None and shutil.disk_usage(folder).free < 2 ** 20
        except OSError:
            full = False
        code, what = (errno.ENOSPC, os.strerror(errno.ENOSPC)) if full else (None, f'libsndfile: {e}')
    else:
        return None
    return what, {errno.ENOSPC: 'free space there', errno.EDQUOT: 'free space there', errno.EROFS: 'make it writable',
                  errno.EACCES: 'make it writable', errno.EPERM: 'make it writable'}.get(code, 'check that folder')


# -----------------------------------------------------------------------------
# Audio files

class AudioProblem(Exception):
    """An audio file that cannot be used (a one-line message)."""


def _sf_message(e):
    """libsndfile's reason without the "Error opening '<path>': " prefix."""
    return str(e).split("': ", 1)[-1].strip().rstrip('.') or type(e).__name__


def _wav_truncation(path, size):
    """(declared, present) bytes of a WAV data chunk cut short (libsndfile would read a shorter clip), else None."""
    with open(path, 'rb') as f:
        head = f.read(65536)
    pos = 12 if head[:4] == b'RIFF' and head[8:12] == b'WAVE' else len(head)
    while pos + 8 <= len(head):
        cid, csize = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], 'little')
        if cid == b'data':  # a streaming writer leaves the size 0 or 0xFFFFFFFF
            return (csize, size - pos - 8) if csize not in (0, 0xFFFFFFFF) and csize > size - pos - 8 else None
        pos += 8 + csize + (csize & 1)
    return None


def check_audio_file(path):
    """Header-level check of one audio file, without decoding it: (soundfile info or None, Issue or None)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return None, Issue(str(path), 'file not found', 'restore it, or remove its row / list entry')
    if size == 0:
        return None, Issue(str(path), 'empty file (0 bytes)', 're-download or delete it')
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile: unknown format, broken header, not audio
        return None, Issue(str(path), f'not a readable audio file ({_sf_message(e)})',
                           're-download it or convert it to WAV/FLAC')
    if info.frames <= 0:
        return None, Issue(str(path), 'audio header but 0 samples (header-only file)', 're-download or delete it')
    cut = _wav_truncation(path, size) if path.suffix.lower() == '.wav' else None
    if cut:
        return None, Issue(str(path), f'truncated: its header declares {cut[0]} bytes of audio, the file holds '
                           f'{cut[1]}', 're-download it')
    return info, None


def check_files(paths, issues, check_audio=True):
    """Header-check each file: (ok mask, {rate: files}, {channels: files}, soundfile infos or None)."""
    ok, infos = np.ones(len(paths), bool), []
    for i, p in enumerate(paths):
        info, issue = check_audio_file(p) if check_audio else (None, None if Path(p).is_file() else Issue(
            str(p), 'file not found', 'restore it, or remove its row / list entry'))
        ok[i] = issue is None
        issues += [issue] if issue else []
        infos.append(info)
    counts = [dict(sorted(collections.Counter(int(getattr(i, k)) for i in infos if i).items()))
              for k in ('samplerate', 'channels')]
    return ok, counts[0], counts[1], infos


def decode_audio(source, segment=None):
    """A file (path or bytes) decoded with soundfile -> (float32 mono waveform in [-1, 1), sample rate); channels
    averaged (librosa's to_mono). segment=(start s, length s): that excerpt only, read by seeking."""
    try:
        src = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
        if segment is None:
            y, sr = sf.read(src, dtype='float32', always_2d=True)
        else:
            with sf.SoundFile(src) as f:
                sr, start, n = f.samplerate, int(round(segment[0] * f.samplerate)), int(round(segment[1] * f.samplerate))
                if f.seekable():
                    f.seek(min(start, f.frames))
                    y = f.read(n, dtype='float32', always_2d=True)
                else:
                    y = f.read(dtype='float32', always_2d=True)[start:start + n]
    except Exception as e:
        raise AudioProblem(f'not a readable audio file ({_sf_message(e)})') from None
    if y.shape[0] == 0:
        raise AudioProblem('audio header but 0 samples (header-only file)' if segment is None else
                           f'no samples at {segment[0]:g} s (the file is shorter than its header says)')
    y = y[:, 0] if y.shape[1] == 1 else y.mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise AudioProblem('audio contains NaN or Inf samples')
    return y, int(sr)


def typical_seconds(paths, n=16):
    """The median length (s) of up to n files spread over `paths`, from their headers; None if none reads."""
    paths = list(paths)
    lengths = []
    for i in sorted({int(i) for i in np.linspace(0, len(paths) - 1, min(n, len(paths)))}) if paths else []:
        with contextlib.suppress(Exception):
            info = sf.info(str(paths[i]))
            lengths += [info.frames / info.samplerate] if info.frames > 0 else []
    return float(np.median(lengths)) if lengths else None


# -----------------------------------------------------------------------------
# Dataset: what every loader returns

@dataclasses.dataclass
class Dataset:
    """Clips of one dataset, one row each, in a deterministic order. labels: (N,) class index or (N, C) uint8
    multi-hot; subset: the official part of each clip ('train' / 'val' / 'test' / 'eval'); groups: the
    source a clip comes from (speaker, fsID, YouTube video); folds (US8K, ESC-50, a CSV with a fold column);
    segments (FSD50K: (start s, length s) of each excerpt); phase_train / phase_test (the authors' files: the
    clip is a record of phase k's training / test file)."""
    name: str
    root: Path
    classes: list
    keys: list  # unique id per clip: 'word/basename', 'fold3/x.wav', 'train/<segment_id>'
    paths: list
    labels: np.ndarray
    subset: np.ndarray
    groups: np.ndarray
    folds: np.ndarray = None
    issues: list = dataclasses.field(default_factory=list)
    counts: dict = dataclasses.field(default_factory=dict)  # what was skipped, ignored, dropped
    sample_rates: dict = dataclasses.field(default_factory=dict)  # {rate: files} of the header check
    channels: dict = dataclasses.field(default_factory=dict)
    synthetic: dict = None  # synth.json of a generated dataset
    segments: np.ndarray = None
    phase_train: np.ndarray = None
    phase_test: np.ndarray = None
    info: dict = dataclasses.field(default_factory=dict)  # per-dataset facts for stats and defaults

    @property
    def multilabel(self):
        return self.labels.ndim == 2

    def __len__(self):
        return len(self.keys)

    def select(self, index):
        """The Dataset of the clips at `index` (bool mask or integer indices), in order."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)
        rows = {f: None if getattr(self, f) is None else getattr(self, f)[idx]
                for f in ('folds', 'segments', 'phase_train', 'phase_test')}
        return dataclasses.replace(self, keys=[self.keys[i] for i in idx], paths=[self.paths[i] for i in idx],
                                   labels=self.labels[idx], subset=self.subset[idx], groups=self.groups[idx], **rows)


def read_synth_marker(root):
    """synth.json of a generated dataset (written last by synth.py), or None."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads((Path(root) / 'synth.json').read_text())
    return None


def dataset(name, root, classes, rows, issues, counts, skip_bad, check_audio=True, multilabel=False, folds=False,
            **extra):
    """The Dataset of rows (key, path, label, subset, group[, fold]): every file header-checked (check_audio)
    or looked for, the fatal problems raised unless skip_bad (then counted), the bad files' rows dropped."""
    ok, rates, chans, _ = check_files([r[1] for r in rows], issues, check_audio)
    counts['skipped_bad'] = raise_if_fatal(issues, skip_bad, root)
    labels = [r[2] for r in rows]
    labels = np.array(labels, np.uint8).reshape(-1, len(classes)) if multilabel else np.array(labels, np.int64)
    folds = np.array([r[5] for r in rows], np.int64) if folds else None
    ds = Dataset(name, Path(root), list(classes), [r[0] for r in rows], [Path(r[1]) for r in rows], labels,
                 np.array([r[3] for r in rows], dtype='<U5'), np.array([r[4] for r in rows], dtype=object), folds,
                 issues, dict(counts), rates, chans, read_synth_marker(root), **extra)
    return ds.select(ok)


# -----------------------------------------------------------------------------
# The loaders, one per layout (shared/spec/data_formats.md); DATASETS below holds what else each one needs

_MID_RE = re.compile(r'/[mgt]/[0-9A-Za-z_]+')
_DESED_RE = re.compile(r'^Y?(.+)_(\d+\.\d{3})_(\d+\.\d{3})$')  # Y<ytid>_<start s>_<end s>


def _strong_event(row, lineno):
    """A row of audioset_*_strong.tsv -> (segment_id, MID, line); the header row is skipped."""
    if lineno == 1 and row[0] == 'segment_id':
        return None
    if len(row) != 4:
        line = '\t'.join(row)
        raise Bad(f'expected 4 tab-separated fields (segment_id, start, end, label), got {len(row)}: {line[:80]!r}')
    sid, t0, t1, mid = row
    parts = sid.rsplit('_', 1)  # YouTube ids may contain '_': split on the LAST one
    if len(parts) != 2 or not parts[0] or not parts[1].isdigit():
        raise Bad(f'segment_id {sid!r} is not <YouTubeID>_<start ms>')
    try:
        if not 0.0 <= float(t0) <= float(t1):
            raise ValueError
    except ValueError:
        raise Bad(f'bad event times {t0!r}..{t1!r} (need numbers, 0 <= start <= end)') from None
    if not _MID_RE.fullmatch(mid):
        raise Bad(f'label {mid!r} is not a MID like /m/09x0r')
    return sid, mid, lineno


def _mid_name(row, lineno):
    if len(row) != 2 or not _MID_RE.fullmatch(row[0]):
        line = '\t'.join(row)
        raise Bad(f"expected 'MID<TAB>display name', got {line[:60]!r}", 'fix or delete the line')
    return row[0]


def _audio_folder(folder, issues):
    """{segment_id: path} of one folder's clips, as Y<segment_id>.<ext>, <segment_id>.<ext> or DESED's
    Y<ytid>_<start>_<end>.<ext>; other files are stray (a note)."""
    by_stem, rank = {}, {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        stem, ext = os.path.splitext(entry.name)
        if not entry.is_file():
            continue
        if ext.lower() not in rank:
            issues.append(Issue(str(Path(folder) / entry.name), 'stray non-audio file', 'ignored', fatal=False))
            continue
        old = by_stem.get(stem)
        if old is None or rank[ext.lower()] < rank[old.suffix.lower()]:
            by_stem[stem] = Path(folder) / entry.name
    desed = {f'{m.group(1)}_{int(round(float(m.group(2)) * 1000))}': p for s, p in by_stem.items()
             if (m := _DESED_RE.match(s))}
    return by_stem, desed


def load_audioset(root, skip_bad=False, check_audio=True):
    """AudioSet strong labels: clip targets over the 50 classes (a class is on when the clip has one of its
    events; no propagation up the ontology, as CIL-ML-Audio), the train TSV's clips from train/, the eval
    TSV's from eval/. Notes, not errors: rows whose clip has no audio file, MIDs outside the 50, clips
    with none of them (dropped)."""
    root, issues, counts = Path(root), [], collections.Counter()
    mid_path = root / 'mid_to_display_name.tsv'
    if mid_path.is_file():
        mid_names = set(read_rows(mid_path, _mid_name, issues, sep='\t'))
        issues += [Issue(str(mid_path), f'class {name!r} ({mid}) is not listed', 'its built-in name is used',
                         fatal=False) for name, mid in AUDIOSET_CLASSES if mid_names and mid not in mid_names]
    else:
        mid_names = set()
        issues.append(Issue(str(mid_path), 'not found', 'download it with the strong labels; the names of the 50 '
                            'classes are built in, so this is only a note', fatal=False))
    absent = [root / name for name in AUDIOSET_TSV.values() if not (root / name).is_file()]
    if absent:  # both named at once
        raise DataError([Issue(str(t), 'not found', 'download the strong-label TSVs from '
                               'research.google.com/audioset/download_strong.html') for t in absent], root,
                        skippable=False)
    rows = []
    for part, tsv_name in AUDIOSET_TSV.items():
        clips, unknown = collections.defaultdict(set), {}
        for sid, mid, lineno in read_rows(root / tsv_name, _strong_event, issues, sep='\t'):
            if mid_names and mid not in mid_names and mid not in _AUDIOSET_MID_INDEX:
                unknown.setdefault(mid, [0, lineno])[0] += 1
            clips[sid].add(mid)
            counts['events'] += 1
        issues += [Issue(f'{root / tsv_name}:{line}', f'MID {mid} ({n} rows) is not in mid_to_display_name.tsv',
                         'ignored for targets (not one of the 50 classes)', fatal=False)
                   for mid, (n, line) in sorted(unknown.items())]
        folder = root / part
        if not folder.is_dir():
            issues.append(Issue(str(folder), 'audio folder not found', f'put the clips of {tsv_name} there as '
                                'Y<segment_id>.wav'))
            continue
        by_stem, desed = _audio_folder(folder, issues)
        used, absent = set(), []
        for sid in sorted(clips):
            counts['ignored_label_mids'] += sum(m not in _AUDIOSET_MID_INDEX for m in clips[sid])
            target = sorted(_AUDIOSET_MID_INDEX[m] for m in clips[sid] if m in _AUDIOSET_MID_INDEX)
            path = by_stem.get('Y' + sid) or by_stem.get(sid) or desed.get(sid)
            if not target:
                counts['dropped_no_class'] += 1
            elif path is None:
                absent.append(sid)
            else:
                used.add(path)
                rows.append((f'{part}/{sid}', path, np.isin(np.arange(50), target).astype(np.uint8), part,
                             sid.rsplit('_', 1)[0]))  # group: the YouTube video
        counts['missing_audio'] += len(absent)
        if absent:
            issues.append(Issue(str(folder), f"{len(absent)} of the {len(absent) + len(used)} clips with a selected "
                                f"class in {tsv_name} have no audio file (e.g. {', '.join(absent[:3])})",
                                'skipped (not downloaded?)', fatal=False))
        unlisted = sorted(p.name for p in by_stem.values() if p not in used)
        counts['unlisted_files'] += len(unlisted)
        if unlisted:
            issues.append(Issue(str(folder), f"{len(unlisted)} audio files are not clips of {tsv_name} with a "
                                f"selected class (e.g. {', '.join(unlisted[:3])})", 'ignored', fatal=False))
    return dataset('audioset', root, [n for n, _ in AUDIOSET_CLASSES], rows, issues, counts, skip_bad, check_audio,
                   multilabel=True)


def speaker_of(basename):
    """The speaker part of a GSC file name (the official rule: everything before '_nohash_')."""
    return re.sub(r'_nohash_.*$', '', basename)


def gsc_list_of(basename, validation_percentage=10, testing_percentage=10):
    """'validation' / 'testing' / 'training': the official SHA-1 rule of the GSC README."""
    pct = (int(hashlib.sha1(speaker_of(basename).encode()).hexdigest(), 16) % 2 ** 27) * (100.0 / (2 ** 27 - 1))
    return ('validation' if pct < validation_percentage else
            'testing' if pct < validation_percentage + testing_percentage else 'training')


def _list_entry(row, lineno):
    key = os.path.normpath(row[0]).replace(os.sep, '/')
    if key.count('/') != 1 or not key.endswith('.wav'):
        raise Bad(f"expected 'word/<speaker>_nohash_<n>.wav', got {row[0][:60]!r}", 'fix or delete the line')
    return key, lineno


def load_speechcommands(root, skip_bad=False, check_audio=True):
    """GSC v0.02, the 20 core words. Official split: validation_list / testing_list, training every other
    <word>/*.wav; _background_noise_ and the other words are ignored (counted)."""
    root = Path(root)
    root = next((c for c in (root, root / 'SpeechCommands' / 'speech_commands_v0.02', root / 'speech_commands_v0.02')
                 if (c / 'testing_list.txt').is_file() or (c / 'yes').is_dir()), root)
    issues, counts, lists = [], collections.Counter(), {}
    for part, name in (('val', 'validation_list.txt'), ('test', 'testing_list.txt')):
        if not (root / name).is_file():
            raise missing(root / name, 'it ships in speech_commands_v0.02.tar.gz; restore it, or point --root at the '
                          'folder that holds it and the word folders')
        lists[part] = dict(read_rows(root / name, _list_entry, issues, sep=None))
    issues += [Issue(str(root / 'testing_list.txt'), f'{key} is also in validation_list.txt', 'counted as test',
                     fatal=False) for key in sorted(set(lists['val']) & set(lists['test']))]
    rows = []
    for c, word in enumerate(SPEECHCOMMANDS_WORDS):
        if not (root / word).is_dir():
            issues.append(Issue(str(root / word), 'word folder not found (one of the 20 core words)',
                                'unpack the whole speech_commands_v0.02 archive'))
            continue
        for entry in sorted(os.scandir(root / word), key=lambda e: e.name):
            key = f'{word}/{entry.name}'
            if entry.is_file() and not entry.name.endswith('.wav'):
                issues.append(Issue(str(root / key), 'stray non-audio file', 'ignored', fatal=False))
            elif entry.is_file():
                part = 'test' if key in lists['test'] else 'val' if key in lists['val'] else 'train'
                rows.append((key, root / key, c, part, speaker_of(entry.name)))
    present = {r[0] for r in rows}
    for part, name in (('val', 'validation_list.txt'), ('test', 'testing_list.txt')):
        issues += [Issue(str(root / key), f'listed in {name} (line {lineno}) but not found', 'restore the file or '
                         'delete the line') for key, lineno in lists[part].items()
                   if key.split('/')[0] in SPEECHCOMMANDS_WORDS and key not in present]
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and entry.name not in SPEECHCOMMANDS_WORDS:
            n = sum(1 for _ in os.scandir(entry.path))
            counts['ignored_files'] += n
            why = ('background noise, not a class' if entry.name == '_background_noise_' else
                   'not one of the 20 core words' if entry.name in SPEECHCOMMANDS_OTHER_WORDS else 'unknown folder')
            issues.append(Issue(str(root / entry.name), f'{n} files ignored ({why})', 'nothing to do', fatal=False))
    return dataset('speechcommands', root, SPEECHCOMMANDS_WORDS, rows, issues, counts, skip_bad, check_audio)


def _note_unlisted(folders, paths, csv_name, counts, issues):
    """Notes for the files of `folders` the metadata does not list (an audio file, or a stray one): ignored."""
    listed = set(paths)
    for p in sorted(p for folder in folders for p in folder.iterdir() if p.is_file() and p not in listed):
        audio = p.suffix.lower() in AUDIO_EXTENSIONS
        counts['unlisted_files'] += 1
        issues.append(Issue(str(p), f'audio file not in {csv_name}' if audio else 'stray non-audio file', 'ignored',
                            fatal=False))


def _classified(row, class_col, names, name, name_col, n_folds):
    """The checks a US8K / ESC-50 row shares: whole-number fold and class, the fold in range, a known class
    that agrees with the name column (class / category) -> (fold, class)."""
    try:
        fold, c = int(row['fold']), int(row[class_col])
    except ValueError:
        raise Bad(f"fold {row['fold']!r} / {class_col} {row[class_col]!r} are not integers") from None
    if not 1 <= fold <= n_folds or not name or '/' in name:
        raise Bad(f'bad fold {fold} or {name_col} {name!r} (fold must be 1..{n_folds})')
    if not 0 <= c < len(names):
        raise Bad(f'unknown {class_col} {c} (valid: 0..{len(names) - 1})')
    label_col = 'class' if class_col == 'classID' else 'category'
    if row.get(label_col, names[c]) != names[c]:
        raise Bad(f'{class_col} {c} is {names[c]!r} but the {label_col} column says {row[label_col]!r}', 'fix the row')
    return fold, c


def _once(key, lineno, seen):
    if key in seen:
        raise Bad(f'{key} already listed on line {seen[key]}', 'delete the duplicate row')
    seen[key] = lineno
    return key


def load_urbansound8k(root, skip_bad=False, check_audio=True):
    """UrbanSound8K: one clip per row of metadata/UrbanSound8K.csv (never a directory listing), the file
    audio/fold<fold>/<slice>, the label classID checked against the class name. Official split: folds 1-7 /
    8 / 9-10."""
    root = Path(root)
    root = root / 'UrbanSound8K' if not (root / 'metadata').is_dir() and (root / 'UrbanSound8K' / 'metadata').is_dir() \
        else root
    csv_path = root / 'metadata' / 'UrbanSound8K.csv'
    if not csv_path.is_file():
        raise missing(csv_path, 'unpack UrbanSound8K.tar.gz; the loader needs metadata/UrbanSound8K.csv', root)
    issues, counts, seen = [], collections.Counter(), {}

    def parse(row, lineno):
        name = row['slice_file_name']
        fold, c = _classified(row, 'classID', URBANSOUND8K_CLASSES, name, 'slice_file_name', 10)
        return (_once(f'fold{fold}/{name}', lineno, seen), root / 'audio' / f'fold{fold}' / name, c,
                'train' if fold <= 7 else 'val' if fold == 8 else 'test', row['fsID'], fold)

    rows = read_rows(csv_path, parse, issues, need=['slice_file_name', 'fsID', 'fold', 'classID'],
                     advice=f"use the official CSV (header {','.join(URBANSOUND8K_HEADER)})")
    audio = root / 'audio'
    _note_unlisted(sorted(p for p in audio.iterdir() if p.is_dir()) if audio.is_dir() else [], [r[1] for r in rows],
                   'metadata/UrbanSound8K.csv', counts, issues)
    return dataset('urbansound8k', root, URBANSOUND8K_CLASSES, rows, issues, counts, skip_bad, check_audio,
                   folds=True)


def excerpt_count(seconds):
    """Excerpts of EXCERPT_SECONDS a clip of `seconds` gives, as the authors count FSD50K: one per started
    second, the last kept when it holds at least half an excerpt (zero-padded), at least one: 0.3 s -> 1,
    2.4 s -> 2, 2.5 s -> 3 (README, Fidelity notes: why this rule and not ceil or floor)."""
    return max(1, int(math.floor(seconds / EXCERPT_SECONDS + 0.5)))


def load_fsd50k(root, skip_bad=False, check_audio=True):
    """FSD50K on the authors' 50 classes: each clip of dev.csv / eval.csv with one of them (labels include
    ancestors), cut into 1 s excerpts (excerpt_count), one item each with the clip's targets: key
    '<dev|eval>/<fname>#<k>', segment (k s, 1 s), group the clip. Official split: dev's train / val rows,
    eval tests. Every header is read for the clip lengths (check_audio does not apply). Notes: clips with
    none of the 50 classes (dropped), labels outside them, audio files not listed."""
    root = Path(root)
    root = next((c for c in (root, root / 'FSD50K') if (c / 'FSD50K.ground_truth').is_dir()), root)
    gt, issues, counts, vocab = root / 'FSD50K.ground_truth', [], collections.Counter(), {}
    for name in FSD50K_GROUND_TRUTH.values():
        if not (gt / name).is_file():
            raise missing(gt / name, 'unpack FSD50K.ground_truth.zip there (the loader needs '
                          f"{DATASETS['fsd50k']['layout']})", root)

    def word(row, lineno):  # vocabulary.csv: no header, '<index>,<label>,<mid>'
        if len(row) != 3 or not row[0].isdigit() or not _MID_RE.fullmatch(row[2]):
            raise Bad(f"expected '<index>,<label>,<mid>', got {','.join(row)[:60]!r}", 'fix or delete the line')
        return row[1], row[2]

    if (gt / 'vocabulary.csv').is_file():
        vocab = dict(read_rows(gt / 'vocabulary.csv', word, issues))
    else:
        issues.append(Issue(str(gt / 'vocabulary.csv'), 'not found', 'the labels of dev.csv and eval.csv are used '
                            'without it', fatal=False))
    absent = [c for c in FSD50K_CLASSES if vocab and c not in vocab]
    if absent:
        issues.append(Issue(str(gt / 'vocabulary.csv'), f"{len(absent)} of the 50 classes are not listed "
                            f"({', '.join(absent[:3])})", 'their names are matched in the labels anyway', fatal=False))
    clips = []  # (part, fname, targets, split, path)
    for part, csv_name in FSD50K_GROUND_TRUTH.items():
        seen, unknown = {}, {}

        def parse(row, lineno):
            fname, split = row['fname'], row.get('split', 'test')
            labels, mids = ([x.strip() for x in row[k].split(',') if x.strip()] for k in ('labels', 'mids'))
            wrong = [(lab, mid) for lab, mid in zip(labels, mids) if lab in vocab and vocab[lab] != mid]
            problem = (f'fname {fname!r} is not a file name' if not fname or '/' in fname or '\\' in fname else
                       'no labels' if not labels else
                       f'{len(labels)} labels but {len(mids)} mids' if len(labels) != len(mids) else
                       f'split {split!r} is neither train nor val' if part == 'dev' and split not in ('train', 'val')
                       else f'fname {fname} is already on line {seen[fname]}' if fname in seen else
                       f'label {wrong[0][0]} has the MID {vocab[wrong[0][0]]} in vocabulary.csv, not {wrong[0][1]}'
                       if wrong else None)
            if problem:
                raise Bad(problem)
            seen[fname] = lineno
            for lab in labels:
                if vocab and lab not in vocab:
                    unknown.setdefault(lab, [0, f'{gt / csv_name}:{lineno}'])[0] += 1
            counts['ignored_labels'] += sum(lab not in _FSD50K_INDEX for lab in labels)
            return fname, sorted({_FSD50K_INDEX[lab] for lab in labels if lab in _FSD50K_INDEX}), split

        rows = read_rows(gt / csv_name, parse, issues, need=['fname', 'labels', 'mids'] + ['split'] * (part == 'dev'),
                         advice='use the file of the FSD50K release (FSD50K.ground_truth.zip)',
                         fields='comma-separated fields (labels and mids quoted)')
        issues += [Issue(where, f'label {lab!r} ({n} rows) is not in vocabulary.csv', 'ignored (not one of the 50 '
                         'classes)' if lab not in _FSD50K_INDEX else 'used: it is one of the 50 classes', fatal=False)
                   for lab, (n, where) in sorted(unknown.items())]
        folder = root / FSD50K_AUDIO[part]
        if not folder.is_dir():
            issues.append(Issue(str(folder), 'audio folder not found', f'unpack FSD50K.{part}_audio.zip there',
                                count=sum(1 for r in rows if r[1])))
            continue
        counts['dropped_no_class'] += sum(not r[1] for r in rows)
        clips += [(part, f, t, s, folder / f'{f}.wav') for f, t, s in rows if t]
        listed = {f'{r[0]}.wav' for r in rows}
        unlisted = sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name not in listed)
        counts['unlisted_files'] += len(unlisted)
        if unlisted:
            issues.append(Issue(str(folder), f"{len(unlisted)} files are not rows of {csv_name} (e.g. "
                                f"{', '.join(unlisted[:3])})", 'ignored', fatal=False))
    ok, rates, chans, infos = check_files([c[4] for c in clips], issues)
    counts['skipped_bad'] = raise_if_fatal(issues, skip_bad, root)
    keys, paths, labels, subset, groups, segments = [], [], [], [], [], []
    info = {part: dict(clips=0, excerpts=0, seconds=0.0, ceil=0, floor=0) for part in FSD50K_GROUND_TRUTH}
    for (part, fname, targets, split, path), good, header in zip(clips, ok, infos):
        if not good:
            continue
        seconds, n = header.frames / header.samplerate, excerpt_count(header.frames / header.samplerate)
        v = info[part]
        v.update(clips=v['clips'] + 1, excerpts=v['excerpts'] + n, seconds=v['seconds'] + seconds,
                 ceil=v['ceil'] + max(1, math.ceil(seconds / EXCERPT_SECONDS - 1e-9)),
                 floor=v['floor'] + max(1, int(seconds / EXCERPT_SECONDS)))
        for k in range(n):
            keys.append(f'{part}/{fname}#{k}')
            paths.append(path)
            labels.append(np.isin(np.arange(50), targets).astype(np.uint8))
            subset.append(split)
            groups.append(f'{part}/{fname}')
            segments.append((k * EXCERPT_SECONDS, EXCERPT_SECONDS))
    counts.update(clips=sum(v['clips'] for v in info.values()), excerpts=len(keys))
    return Dataset('fsd50k', root, FSD50K_CLASSES, keys, paths, np.array(labels, np.uint8).reshape(-1, 50),
                   np.array(subset, dtype='<U5'), np.array(groups, dtype=object), None, issues, dict(counts), rates,
                   chans, read_synth_marker(root), segments=np.array(segments, np.float64).reshape(-1, 2),
                   info=dict(parts=info, excerpt_seconds=EXCERPT_SECONDS))


def load_esc50(root, skip_bad=False, check_audio=True):
    """ESC-50: one clip per row of meta/esc50.csv, the file audio/<filename>, label = target checked against
    the category, group = src_file (its takes share a fold), 5 folds. Official split: test on one fold
    (make_split's fold, default 5), validation on the fold before it, training on the other three."""
    root = Path(root)
    root = next((c for c in (root, root / 'ESC-50-master', root / 'ESC-50') if (c / 'meta' / 'esc50.csv').is_file()),
                root)
    csv_path, issues, counts, seen = root / 'meta' / 'esc50.csv', [], collections.Counter(), {}
    if not csv_path.is_file():
        raise missing(csv_path, f"unpack ESC-50-master.zip; the loader needs {DATASETS['esc50']['layout']}", root)

    def parse(row, lineno):
        name = row['filename']
        fold, c = _classified(row, 'target', ESC50_CLASSES, name, 'filename', 5)
        return (_once(name, lineno, seen), root / 'audio' / name, c, 'test' if fold == ESC50_FOLD else 'val'
                if fold == ESC50_FOLD - 1 else 'train', row.get('src_file', name), fold)

    rows = read_rows(csv_path, parse, issues, need=['filename', 'fold', 'target'],
                     advice=f"use the official meta/esc50.csv (header {','.join(ESC50_HEADER)})")
    _note_unlisted([root / 'audio'] if (root / 'audio').is_dir() else [], [r[1] for r in rows], 'meta/esc50.csv',
                   counts, issues)
    return dataset('esc50', root, ESC50_CLASSES, rows, issues, counts, skip_bad, check_audio, folds=True)


CSV_PATH_COLUMNS = ('path', 'file', 'filename', 'fname', 'filepath', 'audio', 'audio_path')
CSV_LABEL_COLUMNS = ('label', 'labels', 'class', 'category', 'classes')
CSV_SPLITS = {'train': 'train', 'training': 'train', 'val': 'val', 'valid': 'val', 'validation': 'val', 'dev': 'val',
              'test': 'test', 'testing': 'test', 'eval': 'test', 'evaluation': 'test'}
CSV_LABEL_SEP = ';'  # several labels in one cell make the CSV multi-label


def read_label_csv(path, issues):
    """A CSV of clips: a path column (one of CSV_PATH_COLUMNS, any case), a label column (CSV_LABEL_COLUMNS:
    one label, or several joined by ';'), optionally split (train / val / test) or fold (a whole number) ->
    (rows: dicts of lineno, path, labels, split, fold; facts: multilabel, split_column, fold_column)."""
    path = Path(path)
    if not path.is_file():
        raise missing(path, 'give --csv the CSV of your clips (a path and a label column)')
    header = [h.strip() for h in next(csv.reader(io.StringIO(read_text(path))), [])]
    lower = [h.lower() for h in header]
    col = {what: next((header[lower.index(c)] for c in names if c in lower), None)
           for what, names in (('path', CSV_PATH_COLUMNS), ('label', CSV_LABEL_COLUMNS), ('split', ('split',)),
                               ('fold', ('fold',)))}
    if col['path'] is None or col['label'] is None:
        raise DataError([Issue(f'{path}:1', f"header {header} has no {'path' if col['path'] is None else 'label'} "
                               f"column", f"name the columns: a path column ({', '.join(CSV_PATH_COLUMNS)}) and a "
                               f"label column ({', '.join(CSV_LABEL_COLUMNS)}); optional: split or fold")],
                        path.parent, skippable=False)
    if col['split'] and col['fold']:
        issues.append(Issue(f'{path}:1', 'both a split and a fold column', 'the split column is used', fatal=False))
        col['fold'] = None

    def parse(row, lineno):
        labels = list(dict.fromkeys(x.strip() for x in row[col['label']].split(CSV_LABEL_SEP) if x.strip()))
        split, fold = CSV_SPLITS.get(row.get(col['split'], '').lower()), row.get(col['fold'])
        problem = ('empty path' if not row[col['path']] else 'no label' if not labels else
                   f"split {row[col['split']]!r} is not train, val or test" if col['split'] and split is None else
                   f'fold {fold!r} is not a whole number >= 1' if col['fold'] and not (
                       fold.isdigit() and int(fold) >= 1) else None)
        if problem:
            raise Bad(problem)
        return dict(lineno=lineno, path=row[col['path']], labels=labels, split=split, multi=CSV_LABEL_SEP in
                    row[col['label']], fold=int(fold) if col['fold'] else None)

    rows = read_rows(path, parse, issues, need=[col['path'], col['label']], todo='fix or delete the row (quote a '
                     'field that holds a comma)')
    return rows, dict(multilabel=any(r['multi'] for r in rows), split_column=bool(col['split']),
                      fold_column=bool(col['fold']))


def load_csv(root, csv=None, skip_bad=False, check_audio=True):
    """Your own clips, listed in a CSV (read_label_csv), their paths relative to `root` (or absolute, inside
    it), any format and rate soundfile reads. Single-label, or multi-label when a cell holds ';' (multi-hot
    targets); classes in the order they first appear. Split: the split column, the fold column (make_split's
    fold), else random. Problems, one line each: a path outside root or listed twice, a label only in val /
    test rows (nothing to learn it from; skip_bad drops it from them), a malformed row, a bad file."""
    if csv is None:
        raise DataError(f"--data csv needs --csv FILE: {DATASETS['csv']['layout']}")
    root, issues, counts = Path(root), [], collections.Counter()
    top = Path(os.path.abspath(root))
    rows, facts = read_label_csv(csv, issues)
    kept, seen = [], {}
    for r in rows:
        full = Path(os.path.normpath(top / r['path']))  # an absolute path stays itself
        try:
            key = full.relative_to(top).as_posix()
        except ValueError:
            issues.append(Issue(f"{csv}:{r['lineno']}", f"path {r['path']!r} is outside the data folder {root}",
                                'move the file under it and give its path relative to it (or point --root at a folder '
                                'that holds every file)'))
            continue
        if key in seen:
            issues.append(Issue(f"{csv}:{r['lineno']}", f'{key} is already listed on line {seen[key]}', 'delete the '
                                'duplicate row (a clip with several labels takes them in one cell, separated by ;)'))
            continue
        seen[key] = r['lineno']
        kept.append(dict(r, key=key, full=full))
    if facts['split_column']:  # a label with no training row cannot be learned
        where = collections.defaultdict(list)
        for r in kept:
            for lab in r['labels']:
                where[lab].append((r['split'], r['lineno']))
        for lab, parts in where.items():
            if all(s != 'train' for s, _ in parts):
                issues.append(Issue(f'{csv}:{parts[0][1]}', f"label {lab!r} appears only in "
                                    f"{' and '.join(sorted({s for s, _ in parts}))} rows ({len(parts)}): nothing to "
                                    'learn it from', 'add training rows for it, or remove it from those rows',
                                    count=len(parts)))
                for r in kept:
                    r['labels'] = [x for x in r['labels'] if x != lab]
        counts['dropped_no_class'] += sum(not r['labels'] for r in kept)
        kept = [r for r in kept if r['labels']]
    classes = list(dict.fromkeys(lab for r in kept for lab in r['labels']))
    index = {c: i for i, c in enumerate(classes)}
    label = ((lambda r: np.isin(np.arange(len(classes)), [index[x] for x in r['labels']]).astype(np.uint8))
             if facts['multilabel'] else (lambda r: index[r['labels'][0]]))
    ds = dataset('csv', root, classes, [(r['key'], r['full'], label(r), r['split'] or 'train', r['key'], r['fold'])
                                        for r in kept], issues, counts, skip_bad, check_audio,
                 multilabel=facts['multilabel'], folds=facts['fold_column'])
    ds.info = dict(csv=str(csv), split_column=facts['split_column'], seconds=typical_seconds(ds.paths))
    return ds


def folder_classes(root, issues=None):
    """{class folder: [its audio files, sorted]} of a folder-per-class layout (hidden entries skipped); files at
    the top, non-audio files and folders without audio are notes."""
    out, issues = {}, [] if issues is None else issues
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith('.'):
            continue
        if not entry.is_dir():
            issues.append(Issue(str(Path(root) / entry.name), 'not in a class folder', 'ignored', fatal=False))
            continue
        files = sorted(p for p in Path(entry.path).rglob('*') if p.is_file()
                       and not any(part.startswith('.') for part in p.relative_to(entry.path).parts))
        issues += [Issue(str(p), 'stray non-audio file', 'ignored', fatal=False) for p in files
                   if p.suffix.lower() not in AUDIO_EXTENSIONS]
        audio = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
        if audio:
            out[entry.name] = audio
        else:
            issues.append(Issue(str(Path(root) / entry.name), 'folder without audio files', 'not a class (ignored)',
                                fatal=False))
    return out


def load_folder(root, skip_bad=False, check_audio=True):
    """A folder per class (single-label): every audio file under <root>/<class>/ (sub-folders too) is a clip of
    it; classes in sorted folder order; key '<class>/<path below it>'. No split information: random."""
    root, issues = Path(root), []
    tree = folder_classes(root, issues)
    if len(tree) < 2:
        raise DataError([Issue(str(root), f"{len(tree)} class folder{'s' * (len(tree) != 1)} with audio files "
                               f"({', '.join(tree) or 'none'}); classes to learn need at least 2",
                               f"the layout is {DATASETS['folder']['layout']}")], root, skippable=False)
    rows = [(p.relative_to(root).as_posix(), p, c, 'train', p.relative_to(root).as_posix())
            for c, name in enumerate(tree) for p in tree[name]]
    ds = dataset('folder', root, list(tree), rows, issues, collections.Counter(), skip_bad, check_audio)
    ds.info = dict(seconds=typical_seconds(ds.paths))
    return ds


def authors_file_names(n_phases):
    """[(train file, test file)] of phases 0 .. n-1: train_phase_<k>.txt, test_phase_0_1_.._k.txt."""
    return [(f'train_phase_{k}.txt', 'test_phase_' + '_'.join(map(str, range(k + 1))) + '.txt') for k in range(n_phases)]


def read_phase_file(path, issues):
    """One of the authors' phase files -> [(line, clip path, targets as 0 / 1)]. A record is '<path>_[0. 1. ...]':
    the target vector as numpy prints a float array, wrapped onto continuation lines; a record that does not
    close, or a value other than 0 or 1, is a problem of its line."""
    lines, out, i = read_text(path).splitlines(), [], 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        if not line.strip():
            continue
        cut = line.rfind('_[')
        if cut < 0:
            issues.append(Issue(f'{path}:{lineno}', f"expected '<path>_[0. 1. ...]', got {line.strip()[:60]!r}",
                                'fix or delete the line'))
            continue
        clip, vector = line[:cut].strip(), line[cut + 2:]
        while ']' not in vector and i < len(lines) and '_[' not in lines[i]:
            vector, i = vector + ' ' + lines[i], i + 1
        body, closed, rest = vector.partition(']')
        try:
            values = [float(v) for v in body.split()]
        except ValueError:
            values = None
        problem = ('the target vector does not close with ]' if not closed else
                   f'text after the vector: {rest.strip()[:30]!r}' if rest.strip() else
                   'the target vector is empty or not numbers' if not values else
                   'the target vector holds values other than 0 and 1' if any(v not in (0.0, 1.0) for v in values)
                   else 'no path before _[' if not clip else None)
        if problem:
            issues.append(Issue(f'{path}:{lineno}', problem, 'fix or delete the record'))
        else:
            out.append((lineno, clip, [int(v) for v in values]))
    return out


def authors_phase_sizes(root):
    """The phase sizes of the authors' files (the first record's vector length in each train_phase_<k>.txt)."""
    sizes = []
    while (Path(root) / f'train_phase_{len(sizes)}.txt').is_file():
        records = read_phase_file(Path(root) / f'train_phase_{len(sizes)}.txt', [])
        if not records:
            break
        sizes.append(len(records[0][2]))
    if not sizes:
        raise DataError([Issue(str(Path(root) / 'train_phase_0.txt'), 'not found or without a record', "point --root "
                               f"at the authors' data_txt folder ({DATASETS['authors-txt']['layout']})")], root,
                        skippable=False)
    return sizes


def load_authors_txt(root, path_map=(), skip_bad=False, check_audio=True):
    """The authors' phase files, exactly: phase k trains on the records of train_phase_<k>.txt (targets over its
    new classes) and is tested on those of test_phase_0_.._k.txt (over every class seen), in their class order
    and phase sizes. A clip's targets merge over its records; a test record that disagrees with an earlier one
    is a problem. path_map: (OLD, NEW) prefixes for clips that live elsewhere than the files say; every path
    missing here is ONE line (with the --path-map hint). Class names from classes.txt in root, else 'class k'."""
    root = Path(root)
    sizes = authors_phase_sizes(root)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n_classes, issues, items = int(bounds[-1]), [], {}  # clip -> dict(part, target, seen, train, test, where)
    for k, (train_name, test_name) in enumerate(authors_file_names(len(sizes))):
        for part, name, width, lo in (('train', train_name, sizes[k], int(bounds[k])),
                                      ('test', test_name, int(bounds[k + 1]), 0)):
            if not (root / name).is_file():
                raise missing(root / name, f'phase {k} needs both {train_name} and {test_name}', root)
            in_file = {}
            for lineno, clip, values in read_phase_file(root / name, issues):
                where = f'{root / name}:{lineno}'
                if len(values) != width or clip in in_file:
                    issues.append(Issue(where, f'{len(values)} target values; phase {k} has {width} in this file'
                                        if len(values) != width else f'{clip} is already on line {in_file[clip]}',
                                        'fix or delete the record' if len(values) != width else 'delete the duplicate'))
                    continue
                in_file[clip] = lineno
                it = items.setdefault(clip, dict(part=part, target=np.zeros(n_classes, np.uint8),
                                                 seen=np.zeros(n_classes, bool), train=np.zeros(len(sizes), bool),
                                                 test=np.zeros(len(sizes), bool), where=where))
                v, cols = np.array(values, np.uint8), slice(lo, lo + width)
                if it['part'] != part or (it['seen'][cols] & (it['target'][cols] != v)).any():
                    issues.append(Issue(where, f"{clip} is a {it['part']} clip in {it['where']} and a {part} clip here"
                                        if it['part'] != part else f"the targets of {clip} differ from its record in "
                                        f"{it['where']}", 'a clip is either trained or tested on; fix the files'
                                        if it['part'] != part else 'make the records of one clip agree'))
                    it['bad'] = True
                    continue
                it['target'][cols] |= v
                it['seen'][cols] = True
                it[part][k] = True
    clips = [(clip, it) for clip, it in items.items() if not it.get('bad')]
    paths = []
    for clip, _ in clips:  # the longest matching OLD prefix becomes NEW; relative paths from above data_txt/
        old = max((m for m in path_map or () if clip == m[0] or clip.startswith(m[0].rstrip('/') + '/')),
                  key=lambda m: len(m[0]), default=None)
        text = old[1].rstrip('/') + clip[len(old[0].rstrip('/')):] if old else clip
        paths.append(Path(text) if os.path.isabs(text) else root.parent / text)
    exists = np.array([p.is_file() for p in paths], bool)
    if not exists.all():
        gone = [clip for (clip, _), here in zip(clips, exists) if not here]
        prefix = os.path.commonpath(gone) if all(os.path.isabs(m) for m in gone) else ''
        prefix = os.path.dirname(prefix) if Path(prefix).suffix else prefix
        prefix = prefix if prefix not in ('', os.sep) else 'OLD'
        issues.append(Issue(str(root), f'{len(gone)} of the {len(clips)} clips of the phase files do not exist on this '
                            f'machine (e.g. {paths[int(np.flatnonzero(~exists)[0])]})', f'if they are elsewhere, map the '
                            f'folder: --path-map {prefix}=NEW (NEW: where this machine has what the files list under '
                            f'{prefix})', count=len(gone)))
    ok, rates, chans = exists.copy(), {}, {}
    if check_audio and exists.any():
        good, rates, chans, _ = check_files([p for p, here in zip(paths, exists) if here], issues)
        ok[np.flatnonzero(exists)] = good
    counts = dict(skipped_bad=raise_if_fatal(issues, skip_bad, root))
    names = [f'class {c}' for c in range(n_classes)]
    if (root / 'classes.txt').is_file():
        given = [line.strip() for line in read_text(root / 'classes.txt').splitlines() if line.strip()]
        if len(given) == n_classes:
            names = given
        else:
            issues.append(Issue(str(root / 'classes.txt'), f'{len(given)} names for the {n_classes} classes of the '
                                'phase files', 'generic names are used', fatal=False))
    member = {part: np.array([it[part] for _, it in clips], bool).reshape(-1, len(sizes)) for part in ('train', 'test')}
    ds = Dataset('authors-txt', root, names, [c for c, _ in clips], paths,
                 np.array([it['target'] for _, it in clips], np.uint8).reshape(-1, n_classes),
                 np.array([it['part'] for _, it in clips], dtype='<U5'), np.array([c for c, _ in clips], dtype=object),
                 None, issues, counts, rates, chans, read_synth_marker(root), phase_train=member['train'],
                 phase_test=member['test'], info=dict(phase_sizes=list(sizes), records={
                     f: int(member[part][:, k].sum()) for k, pair in enumerate(authors_file_names(len(sizes)))
                     for part, f in zip(('train', 'test'), pair)}))
    return ds.select(ok)


# One entry per layout: its loader, its phases (None: from the data), its split unless told otherwise, its
# front end (features), whether it is multi-label, and what the layout looks like (the line that says a
# folder is not one). csv / folder / authors-txt: their phases, classes and clip length come from the files.
DATASETS = {
    'audioset': dict(load=load_audioset, phases=(30, 5, 5, 5, 5), split='official', frontend='panns', multilabel=True,
                     layout='audioset_train_strong.tsv, audioset_eval_strong.tsv, mid_to_display_name.tsv and the '
                     'clips in train/ and eval/ as Y<segment_id>.wav'),
    'speechcommands': dict(load=load_speechcommands, phases=(5, 3, 3, 3, 3, 3), split='grouped',
                           frontend='speechcommands', multilabel=False, layout='the unpacked speech_commands_v0.02 '
                           'archive: <word>/<speaker>_nohash_<n>.wav, validation_list.txt, testing_list.txt'),
    'urbansound8k': dict(load=load_urbansound8k, phases=(4, 2, 2, 2), split='grouped', frontend='urbansound8k',
                         multilabel=False, layout='metadata/UrbanSound8K.csv and audio/fold1 .. fold10/'),
    'fsd50k': dict(load=load_fsd50k, phases=(30, 5, 5, 5, 5), split='official', frontend='panns', multilabel=True,
                   layout='FSD50K.ground_truth/ (dev.csv, eval.csv, vocabulary.csv), FSD50K.dev_audio/ and '
                   'FSD50K.eval_audio/ with <fname>.wav'),
    'esc50': dict(load=load_esc50, phases=(10, 10, 10, 10, 10), split='official', frontend='urbansound8k',
                  multilabel=False, layout='ESC-50-master/ with meta/esc50.csv and '
                  'audio/<fold>-<src_file>-<take>-<target>.wav (or those two folders directly)'),
    'csv': dict(load=load_csv, phases=None, split=None, frontend=None, multilabel=None,
                layout="a CSV with a path column and a label column (several labels joined by ';'), the paths "
                'relative to its folder or to --root'),
    'folder': dict(load=load_folder, phases=None, split='random', frontend=None, multilabel=False,
                   layout='one sub-folder per class, holding its audio files'),
    'authors-txt': dict(load=load_authors_txt, phases=None, split='official', frontend='panns', multilabel=True,
                        layout="the authors' data_txt folder: train_phase_<k>.txt and test_phase_0[_1 ..].txt"),
}
PHASE_SIZES = {name: d['phases'] for name, d in DATASETS.items() if d['phases']}
OFFICIAL_ONLY = ('audioset', 'fsd50k', 'authors-txt')  # their own train / test split is the only one


def load_dataset(name, root, skip_bad=False, check_audio=True, **options):
    """One of DATASETS from its download layout; options: the loader's own (csv=FILE; path_map=[(old, new)])."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not Path(root).is_dir():
        raise DataError([Issue(str(root), 'no such folder', f'point --root at the unpacked {name} dataset '
                               f"({DATASETS[name]['layout']})")], skippable=False)
    return DATASETS[name]['load'](root, skip_bad=skip_bad, check_audio=check_audio, **options)


# -----------------------------------------------------------------------------
# Train / val / test splits (kws_cil.md 2.4) and class-incremental phases

@dataclasses.dataclass
class Split:
    """Indices (into the Dataset) of the train / val / test clips, sorted, and a hash of their keys."""
    method: str
    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    hash: str = ''


def split_hash(ds, train, val, test):
    """sha1 over 'part<TAB>key' lines: equal on every machine for the same split."""
    h = hashlib.sha1()
    for part, idx in (('train', train), ('val', val), ('test', test)):
        for i in idx:
            h.update(f'{part}\t{ds.keys[i]}\n'.encode('utf-8'))
    return h.hexdigest()


def default_split(ds):
    """The official split where the dataset has one (a CSV: with a split or fold column), else DATASETS'."""
    if ds.name == 'csv':
        return 'official' if ds.info.get('split_column') or ds.folds is not None else 'random'
    return DATASETS[ds.name]['split']


def make_split(ds, method=None, seed=0, ratios=(0.7, 0.1, 0.2), fold=None):
    """Train / val / test split (kws_cil.md 2.4). grouped (GSC, US8K): sources never cross parts, per class (GSC: over
    every clip) its groups in a seeded order fill train to 70 %, then val to 80 %. official: the lists, folds or
    columns of the dataset; with folds (ESC-50, a CSV's) test on `fold`, validation on the fold before it.
    random: per class (multi-label: over clips) a seeded 70/10/20; a CSV or a folder gets every class in every
    part (a class with too few clips: one line). Groups and classes are sorted before shuffling."""
    method = method or default_split(ds)
    if ds.name in OFFICIAL_ONLY and method != 'official':
        raise DataError(f'{ds.name} has only its official split (--split official)')
    folded = ds.name == 'esc50' or (ds.name == 'csv' and ds.folds is not None)
    if fold is not None and not (folded and method == 'official'):
        raise DataError(f'--fold {fold}: a fold is chosen only in the official split of esc50 or of a CSV with a '
                        'fold column')
    if ds.name in ('csv', 'folder') and method == 'grouped':
        raise DataError(f'--split grouped: {ds.name} data names no source to group clips by; use --split random'
                        + (' or official' if ds.name == 'csv' else ''))
    rs, part = np.random.RandomState(seed), np.full(len(ds), -1, np.int64)
    by_class = [np.arange(len(ds))] if ds.multilabel else [np.flatnonzero(ds.labels == c) for c in range(len(ds.classes))]
    if method == 'official' and folded:
        present = sorted(set(int(f) for f in ds.folds))
        test = int(fold) if fold is not None else (ESC50_FOLD if ds.name == 'esc50' else present[-1])
        if test not in present:
            raise DataError(f"--fold {test}: {ds.root} has the folds {', '.join(map(str, present))}")
        val = present[present.index(test) - 1] if len(present) > 2 else None
        part[:] = np.where(ds.folds == test, 2, np.where(ds.folds == val, 1, 0))
    elif method == 'official':
        if ds.name == 'csv' and not ds.info.get('split_column'):
            raise DataError(f"--split official: {ds.info.get('csv', ds.root)} has no split or fold column; use "
                            '--split random')
        part[:] = [{'train': 0, 'val': 1, 'test': 2, 'eval': 2}[s] for s in ds.subset]
    elif method == 'grouped':
        groups, fixed = np.array([str(g) for g in ds.groups], dtype=object), {}
        for idx in [np.arange(len(ds))] if ds.name == 'speechcommands' else by_class:
            sizes = collections.Counter(groups[idx])
            names = sorted(sizes)
            order = [names[i] for i in rs.permutation(len(names))]
            assign, cum = {}, 0  # a group that spans classes (never in the real data) stays where it went first
            for g in [g for g in order if g in fixed] + [g for g in order if g not in fixed]:
                assign[g] = fixed.get(g, 0 if cum < ratios[0] * len(idx) else 1 if cum < (ratios[0] + ratios[1])
                                      * len(idx) else 2)
                cum += sizes[g]
            fixed.update(assign)
            part[idx] = [assign[g] for g in groups[idx]]
    elif method == 'random':
        guard = ds.name in ('csv', 'folder')  # at least one clip of each class in each part
        if guard:
            need = 2 if ds.multilabel else 3
            n = ds.labels.sum(axis=0) if ds.multilabel else np.bincount(ds.labels, minlength=len(ds.classes))
            few = [f'{ds.classes[c]!r} ({int(k)} clip{"s" * int(k != 1)})' for c, k in enumerate(n) if k < need]
            if few:
                raise DataError(f"class{'es' * (len(few) > 1)} {', '.join(few)} of {ds.root} "
                                f"ha{'ve' if len(few) > 1 else 's'} fewer clips than the random split needs ({need}: one "
                                f"each for {'train and test' if need == 2 else 'train, val and test'}); add clips, or "
                                'give the CSV a split column')
        for idx in by_class:
            idx = idx[rs.permutation(len(idx))]
            n_train, n_val = int(round(ratios[0] * len(idx))), int(round(ratios[1] * len(idx)))
            if guard and not ds.multilabel:
                n_val = max(1, n_val)
                n_train = len(idx) - n_val - max(1, len(idx) - n_train - n_val)
            part[idx[:n_train]], part[idx[n_train:n_train + n_val]], part[idx[n_train + n_val:]] = 0, 1, 2
    else:
        raise ValueError(f'unknown split method {method!r}; use grouped, official or random')
    train, val, test = (np.flatnonzero(part == p) for p in range(3))
    return Split(method, int(seed), train, val, test, split_hash(ds, train, val, test))


def save_split(split, ds, path):
    """The split as JSON (method, seed, hash, the clip keys of each part), written atomically."""
    doc = dict(dataset=ds.name, method=split.method, seed=split.seed, hash=split.hash,
               **{p: [ds.keys[i] for i in getattr(split, p)] for p in ('train', 'val', 'test')})
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(doc, indent=0))
    os.replace(tmp, path)


def load_split(path, ds):
    """A split saved by save_split (cil.py saves every single-label run's as split-*.json), for this Dataset,
    its hash checked: to evaluate or compare on exactly the same clips."""
    try:
        doc = json.loads(read_text(path))
        index = {k: i for i, k in enumerate(ds.keys)}
        absent = [k for p in ('train', 'val', 'test') for k in doc[p] if k not in index]
        parts = [np.array(sorted(index[k] for k in doc[p] if k in index), np.int64) for p in ('train', 'val', 'test')]
        split = Split(doc['method'], doc['seed'], *parts, split_hash(ds, *parts))
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f'{path}: not a split written by save_split ({type(e).__name__}: {e}); write it again') from None
    if absent or split.hash != doc['hash']:
        raise DataError(f'{path}: ' + (f'{len(absent)} clips of the saved split are not in the dataset (e.g. '
                        f'{absent[0]})' if absent else 'hash mismatch') + '; rebuild the split')
    return split


def class_order(n, how='default', seed=0):
    """Class indices in the order they are learned: 'default' the paper's (AudioSet: the authors' list; GSC:
    yes no up ... nine; US8K: classID); 'shuffle' RandomState(seed).permutation(n), as Mittal's
    np.random.seed + shuffle."""
    n = len(DATASETS_CLASSES[n]) if isinstance(n, str) else int(n)
    if how not in ('default', 'shuffle'):
        raise ValueError(f'unknown class order {how!r}; use default or shuffle')
    return list(range(n)) if how == 'default' else [int(c) for c in np.random.RandomState(seed).permutation(n)]


DATASETS_CLASSES = {'audioset': AUDIOSET_CLASSES, 'speechcommands': SPEECHCOMMANDS_WORDS,
                    'urbansound8k': URBANSOUND8K_CLASSES, 'fsd50k': FSD50K_CLASSES, 'esc50': ESC50_CLASSES}


@dataclasses.dataclass
class Phase:
    """Phase k. Learned label j (a target column, a logit) is class seen_classes[j]; the phase's classes are
    labels n_old .. n_seen - 1. Single-label: *_y learned labels (int64). Multi-label: float32 (n, n_seen)
    multi-hot, train_y with only phase-k columns set (the paper ignores the other labels), val_y / test_y /
    joint_y over every seen class. joint: AT's set, the train clips of any seen class."""
    k: int
    new_classes: list
    seen_classes: list
    train: np.ndarray
    train_y: np.ndarray
    val: np.ndarray
    val_y: np.ndarray
    test: np.ndarray
    test_y: np.ndarray
    joint: np.ndarray
    joint_y: np.ndarray
    n_old: int = 0
    n_new: int = 0
    n_seen: int = 0


def default_phase_sizes(n_classes, multilabel):
    """Phases of data without a protocol of its own (csv, folder): multi-label as the paper (60 % of the
    classes in the base phase, the rest in 4 equal phases: 30,5,5,5,5 for 50), single-label 5 equal tasks;
    earlier phases take the extra classes; fewer phases when there are too few classes."""
    n = int(n_classes)
    if multilabel:
        base = min(n, max(1, int(round(0.6 * n))))
        k = min(4, n - base)
        sizes = [base] + [(n - base) // k + (i < (n - base) % k) for i in range(k)] if k else [base]
    else:
        parts = max(0, min(5, n // 2) - 1) + 1
        sizes = [n // parts + (i < n % parts) for i in range(parts)]
    return [s for s in sizes if s > 0]


def make_phases(ds, split, order=None, sizes=None):
    """Per-phase train / val / test index sets and targets (multilabel_cil.md Protocol, kws_cil.md 1.1).
    Multi-label: phase k trains on the clips that carry a phase-k class and tests on those with a seen class.
    Single-label: train = clips of phase-k classes; val / test / joint = clips of every seen class. The
    authors' phase files say themselves which clips each phase trains and tests on: those sets are used."""
    order = list(range(len(ds.classes))) if order is None else [int(c) for c in order]
    sizes = list(sizes or PHASE_SIZES.get(ds.name) or ds.info.get('phase_sizes')
                 or default_phase_sizes(len(ds.classes), ds.multilabel))
    if sorted(order) != list(range(len(ds.classes))) or sum(sizes) > len(order) or min(sizes) < 1:
        raise ValueError(f'order must permute the {len(ds.classes)} classes and the phase sizes {sizes} must be '
                         'positive and sum to at most that')
    files = ds.phase_train is not None  # the authors' phase files
    if files and (order != list(range(len(ds.classes))) or sizes != list(ds.info['phase_sizes'])):
        fixed = ','.join(map(str, ds.info['phase_sizes']))
        raise ValueError(f"the authors' phase files fix the class order and the phases ({fixed}): use --phases {fixed} "
                         'and the default --class-order')
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    if ds.multilabel:
        Y = ds.labels[:, order].astype(np.float32)  # columns in learned order
        pick = lambda idx, lo, hi: idx[Y[idx, lo:hi].any(axis=1)]  # noqa: E731
    else:
        learned = np.full(len(ds.classes), -1, np.int64)
        learned[order] = np.arange(len(order))
        lab = learned[ds.labels]
        pick = lambda idx, lo, hi: idx[(lab[idx] >= lo) & (lab[idx] < hi)]  # noqa: E731
    phases = []
    for k in range(len(sizes)):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        train, val, test, joint = pick(split.train, lo, hi), pick(split.val, 0, hi), pick(split.test, 0, hi), pick(
            split.train, 0, hi)
        if files:  # the records of the phase's own files
            train, test = split.train[ds.phase_train[split.train, k]], split.test[ds.phase_test[split.test, k]]
            joint = split.train[ds.phase_train[split.train, :k + 1].any(axis=1)]
        if ds.multilabel:
            train_y = Y[train, :hi].copy()
            train_y[:, :lo] = 0.0
            ys = [train_y, Y[val, :hi], Y[test, :hi], Y[joint, :hi]]
        else:
            ys = [lab[train], lab[val], lab[test], lab[joint]]
        phases.append(Phase(k, order[lo:hi], order[:hi], train, ys[0], val, ys[1], test, ys[2], joint, ys[3],
                            n_old=lo, n_new=hi - lo, n_seen=hi))
    return phases


def check_phases(ds, phases):
    """One line (DataError) at the first phase that cannot be learned or measured: multi-label, a new class
    without a training clip; single-label, a part without a clip of a seen class (train: of a new class)."""
    for ph in phases:
        for part in ('train',) if ds.multilabel else ('train', 'val', 'test'):
            y = getattr(ph, part + '_y')
            have = set(np.flatnonzero(y.sum(axis=0))) if ds.multilabel else set(np.unique(y).tolist())
            absent = [ds.classes[c] for j, c in enumerate(ph.seen_classes) if j not in have and (part != 'train'
                                                                                                or j >= ph.n_old)]
            if absent and ds.multilabel:
                raise DataError(f"phase {ph.k} has no training clip of {', '.join(absent)} in {ds.root}; check the TSV "
                                'labels or choose another class order')
            if absent:
                raise DataError(f"the {part} split of phase {ph.k} has no clip of {', '.join(absent)} in {ds.root}; "
                                'use more data or another --split')


def check_classes(ds, order, n_classes):
    """One line (DataError) naming the classes among the first n_classes of `order` without a clip in ds
    (after skipped files), so a run does not learn a class it never sees."""
    empty = [ds.classes[c] for c in order[:n_classes]
             if not (ds.labels[:, c].any() if ds.multilabel else (ds.labels == c).any())]
    if empty:
        raise DataError(f"no clip of {', '.join(empty)} in {ds.root} (after skipped files); restore its clips, or "
                        'learn fewer classes with --phases')


def resample_note(ds):
    """Speech Commands only: a note when some clips are not at 16 kHz (they are resampled), else None."""
    other = {sr: n for sr, n in ds.sample_rates.items() if sr != 16000}
    if ds.name == 'speechcommands' and other:
        return (f'{sum(other.values())} clips in {ds.root} are not at 16 kHz ({other} Hz: files) and are resampled '
                'to 16 kHz; `python data.py stats` lists the rates')
    return None


# -----------------------------------------------------------------------------
# Folders shared by processes: a lock, and SIGTERM during long builds

class LockBusy(Exception):
    """FolderLock(wait=False) found the folder held by another process (a one-line message)."""


class FolderLock:
    """An exclusive lock on a folder several processes may work in (a generated dataset, a feature cache, a run
    folder): `with FolderLock(folder):` waits while another process holds it, saying so in ONE line (wait=False:
    LockBusy). A POSIX lock (fcntl.lockf) on <folder>/lock, released by the kernel when its holder ends in any
    way (kill -9 too) and not inherited by the processes it forks; the holder writes '<host> <pid>' for that
    line and deletes the file when it leaves."""

    def __init__(self, folder, wait=True, say=None):
        self.path, self.wait, self.fd = Path(folder) / 'lock', wait, None
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def __enter__(self):
        announced = False
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    os.close(fd)
                    raise
                who = os.pread(fd, 200, 0).decode('utf-8', 'replace').strip() or 'another process'
                if not self.wait:
                    os.close(fd)
                    raise LockBusy(f'{self.path} is held by {who}') from None
                if not announced:
                    self.say(f'waiting for {self.path} ({who}) ...')
                    announced = True
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                except BaseException:  # Ctrl-C, SIGTERM while waiting
                    os.close(fd)
                    raise
            try:  # the file this process locked may have been deleted by the holder that left: lock the new one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f'{socket.gethostname()} {os.getpid()}\n'.encode())
            except BaseException:  # a full disk: no lock file left behind
                self.fd = fd
                self.__exit__()
                raise
            self.fd = fd
        return self

    def __exit__(self, *exc):
        fd, self.fd = self.fd, None
        with contextlib.suppress(OSError):  # gone already, or the folder became read-only
            os.unlink(self.path)
        os.close(fd)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM (what schedulers and `kill` send) raises KeyboardInterrupt in the main
    thread, so a long build ends as Ctrl-C ends it: workers stopped, the work so far kept, locks released, one
    line. Only where SIGTERM has its default action (a caller's own handler, e.g. cil.py's, is left alone)."""
    install = threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGTERM) == signal.SIG_DFL
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if install else None
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, previous)


def usable_cores():
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def _loaded_blas():
    """(get, set) thread-count functions of each OpenBLAS loaded here: numpy's and scipy's wheels each ship one,
    under prefixed names (Linux: the shared objects of /proc/self/maps; elsewhere none)."""
    import ctypes
    calls = []
    with contextlib.suppress(OSError), open('/proc/self/maps') as f:
        for path in sorted({line.split()[-1] for line in f if 'openblas' in line.lower() and '.so' in line}):
            lib = ctypes.CDLL(path)
            calls += [(getattr(lib, f'{p}openblas_get_num_threads{x}'), getattr(lib, f'{p}openblas_set_num_threads{x}'))
                      for p in ('', 'scipy_') for x in ('', '64_') if hasattr(lib, f'{p}openblas_set_num_threads{x}')][:1]
    return calls


@contextlib.contextmanager
def blas_threads(n):
    """While the block runs, numpy's BLAS uses n threads here and in the processes forked (they inherit the
    setting) or spawned (the environment): the cache's workers are the parallelism, and a BLAS thread pool
    in each would oversubscribe the cores. Restored after."""
    env = {k: os.environ.get(k) for k in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    os.environ.update(dict.fromkeys(env, str(n)))
    calls = _loaded_blas()
    before = [get() for get, _ in calls]
    for _, set_threads in calls:
        set_threads(n)
    try:
        yield
    finally:
        for (_, set_threads), k in zip(calls, before):
            set_threads(k)
        for k, v in env.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def hms(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class Progress:
    """'label: done/total clips, rate, elapsed, ETA' on stderr (in place on a terminal, every 10 s otherwise)."""

    def __init__(self, total, label, enabled=True, unit='clips'):
        self.total, self.label, self.unit, self.done, self.t0 = total, label, unit, 0, time.time()
        self.last = self.t0  # the first line after a while (or at the end)
        self.enabled, self.tty = enabled and total > 0, sys.stderr.isatty()

    def update(self, n=1):
        self.done += n
        now, final = time.time(), self.done >= self.total
        if not self.enabled or not (final or now - self.last >= (0.5 if self.tty else 10.0)):
            return
        self.last, rate = now, self.done / max(now - self.t0, 1e-9)
        msg = (f'{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, elapsed '
               f'{hms(now - self.t0)}, ETA {hms((self.total - self.done) / max(rate, 1e-9))}')
        sys.stderr.write(('\r' + msg + '  ' + ('\n' if final else '')) if self.tty else msg + '\n')
        sys.stderr.flush()


# -----------------------------------------------------------------------------
# Front ends

FRONTENDS = {  # small dicts: hashed into the cache folder's name, kept in its manifest
    'panns': dict(fn='log_mel', sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50.0, fmax=14000.0,
                  seconds=10.0),  # AudioSet, CNN14 / PANNs (features.LOG_MEL_CONFIG): 1001 x 64
    'logmel16k': dict(fn='log_mel', sr=16000, n_fft=512, hop_length=320, n_mels=64, fmin=50.0, fmax=8000.0,
                      seconds=2.0),  # generated AudioSet-like clips at 16 kHz (seconds from synth.json)
    # the authors' code: torchaudio MelSpectrogram defaults (HTK mel, no filter norm) from 20 Hz, ln(mel + eps)
    'authors': dict(fn='log_mel_authors', sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=20.0, fmax=14000.0,
                    seconds=10.0),
    'urbansound8k': dict(fn='urbansound8k_features'),  # 128 x 85 (features.py, kws_cil.md 3.1)
    'speechcommands': dict(fn='speechcommands_features'),  # 32 x 32
}
_RECIPES = {'urbansound8k_features': 'URBANSOUND8K_CONFIG', 'speechcommands_features': 'SPEECHCOMMANDS_CONFIG'}


def frontend_seconds(clip_seconds):
    """The log-mel input length for clips of about `clip_seconds` (csv, folder): rounded up to a whole
    second, from 1 s to PANNs' 10 s (longer clips are cut)."""
    return float(min(10, max(1, math.ceil(float(clip_seconds) - 1e-6))))


def single_label_frontend(clip_seconds):
    """The small CNN's features for clips of about `clip_seconds`: keywords (up to 1.5 s) the Speech Commands
    recipe (32 x 32 of 1 s), longer ones the UrbanSound8K recipe (128 x 85 of the first 3 s)."""
    return 'speechcommands' if clip_seconds <= 1.5 else 'urbansound8k'


def frontend_config(ds, name=None, seconds=None):
    """The front end of a dataset (DATASETS'; a csv / folder by its label kind and clip length), as the dict
    hashed into its cache folder: AudioSet generated at 16 kHz (synth.json) gets 'logmel16k' over the
    generated clip length, generated at 32 kHz the real data's 'panns'; FSD50K 'panns' over its 1 s
    excerpts (101 x 64); csv / folder log-mel over `seconds` (default: frontend_seconds of the typical clip).
    The recipes' own parameter dicts are copied in (a recipe change makes a new cache); csv, folder and
    the authors' files record their folder, so two of them never share a cache folder."""
    generated_16k = bool(ds.synthetic) and ds.synthetic.get('sr', 16000) < 32000 and ds.name != 'fsd50k'
    if name is None:
        name = (('logmel16k' if generated_16k else 'panns') if ds.name in ('audioset', 'authors-txt') else
                DATASETS[ds.name]['frontend'] or ('panns' if ds.multilabel else
                                                  single_label_frontend(ds.info.get('seconds') or 1.0)))
    if name not in FRONTENDS:
        raise ValueError(f"unknown front end {name!r}; choose one of {', '.join(FRONTENDS)}")
    config = dict(FRONTENDS[name], name=name)
    if name == 'authors' and generated_16k:  # the authors' recipe at the generated 16 kHz
        config.update(sr=16000, n_fft=512, fmax=8000.0, seconds=FRONTENDS['logmel16k']['seconds'])
    if name in ('logmel16k', 'authors') and generated_16k and 'seconds' in ds.synthetic:
        config['seconds'] = float(ds.synthetic['seconds'])
    if 'seconds' in config:
        config['seconds'] = (EXCERPT_SECONDS if ds.name == 'fsd50k' else float(seconds) if seconds is not None else
                             frontend_seconds(ds.info['seconds']) if ds.name in ('csv', 'folder')
                             and ds.info.get('seconds') else config['seconds'])
    if ds.name in ('csv', 'folder', 'authors-txt'):
        config['source'] = str(Path(ds.root).resolve())
    if config['fn'] in _RECIPES:
        config['recipe'] = json.loads(json.dumps(getattr(features, _RECIPES[config['fn']])))
    return config


def compute_features(y, sr, config):
    """The features of one mono waveform -> float32 (frames, features)."""
    fn = config['fn']
    if fn in ('log_mel', 'log_mel_authors'):
        y = features.resample(y, sr, config['sr'])
        n = int(round(config['seconds'] * config['sr']))
        y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
        return getattr(features, fn)(y, config['sr'], config['n_fft'], config['hop_length'], config['n_mels'],
                                     config['fmin'], config['fmax'])
    if fn in ('urbansound8k_features', 'speechcommands_features'):
        return getattr(features, fn)(y, sr)
    raise ValueError(f'unknown feature function {fn!r}')


# -----------------------------------------------------------------------------
# The feature cache: computed once, memory-mapped, every row checked

MANIFEST_VERSION = 3  # 3: [row, size, mtime_ns, sha1 of the file, crc of the row, sample rate] per clip


def row_crc(key, row):
    """The checksum of a stored row: crc32 of the clip key, then of the row's float16 bytes (the key is part of
    it, so a manifest that points a clip at another clip's row fails the check as a damaged row does)."""
    return zlib.crc32(memoryview(row).cast('B'), zlib.crc32(key.encode('utf-8', 'surrogateescape')))


@dataclasses.dataclass
class FeatureCache:
    """The features of one Dataset under one front end: data (n_rows, T, F) float16, memory-mapped; rows[i] =
    the row of dataset clip i (-1: unusable, only with skip_bad); crcs[i] its checksum; stats: computed,
    reused, rehashed, failed, repaired, verified, seconds, bytes, sample_rates, note (the repair line)."""
    folder: Path
    config: dict
    shape: tuple
    rows: np.ndarray
    data: np.ndarray
    stats: dict
    issues: list
    keys: list = None
    crcs: list = None

    @property
    def valid(self):
        return self.rows >= 0

    def read(self, index, dtype=np.float16):
        """The features of dataset clips `index` as one (n, T, F) array (float16 as stored unless `dtype`),
        every row checked against its checksum: a row that changed since it was written (another process,
        the disk) is one line, and the next build recomputes it."""
        index = np.asarray(index, np.int64)
        rows = self.rows[index]
        if np.any(rows < 0):
            raise ValueError('some clips have no features (skipped as bad); use prepare() or select()')
        x = np.ascontiguousarray(self.data[rows])
        bad = sum(row_crc(self.keys[i], r) != self.crcs[i] for i, r in zip(index, x))
        if bad:
            raise DataError(f"{self.folder / 'features.f16'}: {bad} of the {len(index)} feature rows read changed "
                            'since they were written (checksum mismatch); run the command again, which recomputes them')
        return x if dtype == np.float16 else x.astype(dtype)

    def get(self, index):
        """read(index) as float32."""
        return self.read(index, np.float32)

    def select(self, index):
        """The cache seen through Dataset.select(index)."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)
        return dataclasses.replace(self, rows=self.rows[idx], keys=[self.keys[i] for i in idx],
                                   crcs=[self.crcs[i] for i in idx])

    def fingerprint(self):
        """One hash of what the features are (the front end, every clip's key and its row's checksum)."""
        h = hashlib.sha1(json.dumps(self.config, sort_keys=True).encode())
        for i in np.flatnonzero(self.valid):
            h.update(f'{self.keys[i]}\0{self.crcs[i]}\n'.encode('utf-8', 'surrogateescape'))
        return h.hexdigest()


def cache_folder(ds, cache_root, config=None):
    """<cache_root>/<dataset>-<hash of the front-end config>: the folder build_cache uses."""
    config = config or frontend_config(ds)
    return Path(cache_root) / f"{ds.name}-{hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]}"


def _cache_job(job):
    """Read one file and hash it, then (unless the hash equals `expected`: an unchanged, touched file) compute its
    features (of the excerpt `segment` when given) -> (i, float16 features or None, sha1, rate, problem)."""
    i, path, config, expected, segment = job
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        return i, None, None, None, f'cannot read the file ({e.strerror})'
    digest = hashlib.sha1(raw).hexdigest()
    if digest == expected:
        return i, None, digest, None, None
    try:
        y, sr = decode_audio(raw, segment)
        with warnings.catch_warnings():  # noise-only clips have no pitch to tune to: tuning 0, as librosa
            warnings.filterwarnings('ignore', 'Trying to estimate tuning from empty')
            x = compute_features(y, sr, config)
    except AudioProblem as e:
        return i, None, digest, None, str(e)
    except Exception as e:  # a feature function failing on odd audio: still one line
        return i, None, digest, None, f'feature computation failed ({type(e).__name__}: {e})'
    if not np.all(np.isfinite(x)):
        return i, None, digest, None, 'features contain NaN or Inf'
    return i, np.clip(x, -65000, 65000).astype(np.float16), digest, sr, None


def _quiet_worker():
    """A cache worker: Ctrl-C reaches the parent, which stops the pool; a worker whose parent is gone (even
    after kill -9) finds its queue closed and ends, without a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.stderr = open(os.devnull, 'w')


def _write_manifest(path, manifest):
    """The manifest, atomically (a temporary file, fsync, rename; the temporary file removed on any failure)."""
    tmp = path.with_suffix('.tmp')
    try:
        with open(tmp, 'w') as f:
            f.write(json.dumps(manifest))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_manifest(path, config):
    """(manifest, None) when `path` holds a usable manifest of `config`, else (None, why) (why None: no
    manifest at all, a new cache). Entries without a valid row are dropped (their clips get new rows)."""
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f'manifest.json cannot be read ({e.strerror})'
    except ValueError:
        return None, 'manifest.json is not valid JSON'
    if not isinstance(m, dict) or m.get('version') != MANIFEST_VERSION:
        return None, (f"manifest.json is of format version {m.get('version') if isinstance(m, dict) else None} (this "
                      f'data.py writes version {MANIFEST_VERSION})')
    if m.get('config') != config:
        return None, 'manifest.json is of another front-end config'
    try:
        if min(int(s) for s in m['shape']) < 1 or int(m['rows']) < 0 or not isinstance(m['clips'], dict):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        return None, 'manifest.json is malformed'
    m['clips'] = {k: e for k, e in m['clips'].items() if isinstance(e, list) and len(e) == 6
                  and isinstance(e[0], int) and 0 <= e[0] < m['rows']}
    return m, None


def build_cache(ds, cache_root, config=None, workers=None, skip_bad=False, progress=True, checkpoint_every=2000):
    """Compute (or reuse) the features of every clip of `ds` in <cache_root>/<dataset>-<config hash>/: features.f16 (raw
    float16 rows of T x F) and manifest.json (the config, the shape, and per clip key its row, its audio file's
    size, mtime_ns and sha1, the row's checksum row_crc, the sample rate). A clip whose file kept its size and
    mtime is reused; one only touched is re-hashed, not recomputed; any other is computed. Every stored row is
    checked when the cache is opened (and when read): a damaged row, a file cut short or a manifest pointing
    rows at other clips is recomputed with ONE line on stderr (stats['note']), never zero-filled and trusted.
    A clip about to be recomputed loses its checksum first, so a stopped build resumes without a damage line.
    `workers` processes (every usable core) with a one-thread BLAS; the manifest is checkpointed every
    `checkpoint_every` clips and when the build is stopped (Ctrl-C, SIGTERM). Undecodable clips are problems
    (DataError; skip_bad: row -1). A folder that cannot be written is one line; a complete read-only cache is used."""
    t0, config = time.time(), dict(config or frontend_config(ds))
    folder = cache_folder(ds, cache_root, config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            lock = FolderLock(folder).__enter__()
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            lock, read_only = None, e  # usable if nothing needs writing
        else:
            read_only = None
        try:
            with sigterm_as_interrupt(), blas_threads(1):
                return _build(ds, folder, config, workers, skip_bad, progress, checkpoint_every, read_only, t0)
        finally:
            if lock is not None:
                lock.__exit__()
    except OSError as e:
        what = f'{Path(e.filename).name}: ' if getattr(e, 'filename', None) else ''
        reason, todo = write_failure(e, folder)
        raise DataError(f'cannot write the feature cache in {folder} ({what}{reason}); {todo}, or point --cache at '
                        'another folder') from None


def _build(ds, folder, config, workers, skip_bad, progress, checkpoint_every, read_only, t0):
    mpath, dpath = folder / 'manifest.json', folder / 'features.f16'
    manifest, why = _read_manifest(mpath, config)
    size, fresh = dpath.stat().st_size if dpath.exists() else 0, manifest is None
    wrong = [why] if why else ['features.f16 has no manifest.json'] if fresh and size else []
    if fresh:
        probe = compute_features((0.01 * np.random.RandomState(0).standard_normal(16000)).astype(np.float32), 16000,
                                 config)
        manifest = dict(version=MANIFEST_VERSION, config=config, dataset=ds.name, shape=list(probe.shape), rows=0,
                        clips={})
    shape, clips, n_rows = tuple(manifest['shape']), manifest['clips'], manifest['rows']
    row_bytes = int(np.prod(shape)) * 2
    # every stored row against its checksum (a row past the end of the file fails)
    t_check, stored = time.time(), [(k, e) for k, e in clips.items() if e[4] is not None]
    data = np.memmap(dpath, np.float16, 'r', shape=(size // row_bytes,) + shape) if size >= row_bytes else []
    bad = {k for k, e in stored if e[0] >= len(data) or row_crc(k, data[e[0]]) != e[4]}
    del data
    good_rows, needed = {e[0] for k, e in stored if k not in bad}, max((e[0] + 1 for _, e in stored), default=0)
    if size < needed * row_bytes:
        wrong.append(f'the file is missing ({needed * row_bytes} bytes expected)' if not dpath.exists() else
                     f'the file is {size} bytes, {needed * row_bytes} expected (cut short)')
    elif size > n_rows * row_bytes and not fresh:
        wrong.append(f'the file is {size} bytes, longer than the {n_rows * row_bytes} recorded (cut back)')
    if bad:
        wrong.append(f'{len(bad)} of its {len(stored)} rows are missing or do not match their checksums')
    rows, jobs, pending, stats, issues = np.full(len(ds), -1, np.int64), [], {}, collections.Counter(), []
    for i, (key, path) in enumerate(zip(ds.keys, ds.paths)):
        try:
            st = os.stat(path)
        except OSError:
            issues.append(Issue(str(path), 'file not found', 'restore it, or remove its row / list entry'))
            continue
        e = clips.get(key)
        done = e is not None and e[4] is not None and key not in bad
        if done and e[1:3] == [st.st_size, st.st_mtime_ns]:
            rows[i] = e[0]
            stats['reused'] += 1
            continue
        if e is None or (not done and e[0] in good_rows):  # a new clip, or its row is another's: a new row
            clips[key] = e = [n_rows, None, None, None, None, None]
            n_rows += 1
        stats['repaired'] += key in bad or bool(fresh and wrong)
        pending[i] = [st.st_size, st.st_mtime_ns, e[4] if done else None]  # the checksum a touched file keeps
        jobs.append((i, str(path), config, e[3] if done and e[1] == st.st_size else None,
                     None if ds.segments is None else tuple(ds.segments[i])))
        e[4] = None  # recorded again once its row is written: a stopped build is not taken for damage
    note = ''
    if wrong:
        elsewhere = len(bad - set(ds.keys))
        note = (f"feature cache {dpath}: {'; '.join(wrong)}; recomputing {stats['repaired']} clips"
                + (f' ({elsewhere} more when their clips are used)' if elsewhere else ''))
    changed = bool(fresh or jobs or wrong or manifest['rows'] != n_rows)
    if changed and read_only is not None:
        raise DataError(f'cannot write the feature cache in {folder} ({read_only.strerror or read_only}), and '
                        f'{len(jobs)} clips need computing' + (f" ({'; '.join(wrong)})" if wrong else '')
                        + '; make it writable, or point --cache at another folder')
    if note:
        print(note, file=sys.stderr, flush=True)
    if changed:
        if fresh and dpath.exists():
            dpath.unlink()  # a process still reading the old rows keeps its memory map of them
        elif size > n_rows * row_bytes:
            os.truncate(dpath, n_rows * row_bytes)
        manifest['rows'] = n_rows
        _write_manifest(mpath, manifest)  # the new rows, and no checksum on a row about to be written
    fd = os.open(dpath, os.O_RDWR | os.O_CREAT, 0o644) if changed else None
    bar, failed, workers = Progress(len(jobs), f'cache {folder.name}', progress), set(), min(workers or usable_cores(),
                                                                                          len(jobs))
    pool = multiprocessing.get_context(
        'fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn').Pool(workers, _quiet_worker) if workers > 1 else None
    try:
        results = pool.imap_unordered(_cache_job, jobs, max(1, min(16, len(jobs) // (workers * 8)))) if pool else map(
            _cache_job, jobs)
        for n_done, (i, x, digest, sr, problem) in enumerate(results, 1):
            e = clips[ds.keys[i]]
            if not problem and x is not None and x.shape != shape:
                problem = f'features of shape {x.shape}, expected {shape}; report this as a bug'
            if problem:
                if str(ds.paths[i]) not in failed:  # one line per file, not per excerpt
                    failed.add(str(ds.paths[i]))
                    issues.append(Issue(str(ds.paths[i]), problem, 're-download or delete it'))
                stats['failed'] += 1
            elif x is None:  # only touched: the same bytes, the row as it was
                e[1:5] = pending[i][:2] + [digest, pending[i][2]]
                rows[i] = e[0]
                stats['rehashed'] += 1
            else:
                os.pwrite(fd, x.tobytes(), e[0] * row_bytes)
                e[1:] = pending[i][:2] + [digest, row_crc(ds.keys[i], x), sr]
                rows[i] = e[0]
                stats['computed'] += 1
            bar.update()
            if n_done % checkpoint_every == 0:
                os.fsync(fd)
                _write_manifest(mpath, manifest)
        if fd is not None and os.fstat(fd).st_size < n_rows * row_bytes:
            os.ftruncate(fd, n_rows * row_bytes)  # rows never written (failed clips): zeros, never trusted
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under sigterm_as_interrupt: keep what is done
        with contextlib.suppress(OSError):
            os.fsync(fd) if fd is not None else None
            _write_manifest(mpath, manifest)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if fd is not None:
            os.close(fd)
    sample_rates = {str(r): n for r, n in sorted(collections.Counter(
        clips[k][5] for k in ds.keys if k in clips and clips[k][4] is not None and clips[k][5]).items())}
    if changed:
        manifest['sample_rates'] = sample_rates
        _write_manifest(mpath, manifest)
    n_bad = raise_if_fatal(issues, skip_bad, folder)
    data = np.memmap(dpath, np.float16, 'r', shape=(n_rows,) + shape) if n_rows else np.zeros((0,) + shape, np.float16)
    stats = dict({k: stats.get(k, 0) for k in ('computed', 'reused', 'rehashed', 'failed', 'repaired')}, total=len(ds),
                 skipped_bad=n_bad, verified=len(stored), verify_seconds=round(time.time() - t_check, 3),
                 seconds=round(time.time() - t0, 3), bytes=n_rows * row_bytes, sample_rates=sample_rates, note=note)
    return FeatureCache(folder, config, shape, rows, data, stats, issues, list(ds.keys),
                        [clips[k][4] if rows[i] >= 0 else None for i, k in enumerate(ds.keys)])


def prepare(name, root, cache_root, frontend=None, skip_bad=False, workers=None, progress=True, seconds=None, ds=None,
            **options):
    """load_dataset (unless `ds` is that already) + build_cache, the clips that failed to decode (skip_bad) dropped
    from both (a file whose excerpts all failed counts once in ds.counts['skipped_bad']). frontend / seconds:
    see frontend_config."""
    ds = ds if ds is not None else load_dataset(name, root, skip_bad=skip_bad, **options)
    cache = build_cache(ds, cache_root, frontend_config(ds, frontend, seconds), workers=workers, skip_bad=skip_bad,
                        progress=progress)
    if not cache.valid.all():
        failed = len({str(ds.paths[i]) for i in np.flatnonzero(~cache.valid)})
        ds = dataclasses.replace(ds.select(cache.valid), issues=ds.issues + cache.issues)
        ds.counts = dict(ds.counts, skipped_bad=ds.counts.get('skipped_bad', 0) + failed)
        cache = cache.select(cache.valid)
    return ds, cache


# -----------------------------------------------------------------------------
# Command line: stats, cache (and synth, in synth.py)

def print_stats(ds, split=None, file=None):
    """Per-class clip counts per part of the split, problems and notes, sample rates and channels seen."""
    split = split or make_split(ds)
    p = lambda *a: print(*a, file=file or sys.stdout)  # noqa: E731
    p(f'dataset {ds.name} at {ds.root}' + (f' (generated: {json.dumps(ds.synthetic, sort_keys=True)})'
                                           if ds.synthetic else ''))
    parts = [('train', split.train), ('val', split.val), ('test', split.test)]
    p(f'clips: {len(ds)}  |  split {split.method} (seed {split.seed}): ' + ', '.join(f'{n} {len(i)}' for n, i in parts)
      + f'  |  split hash {split.hash[:12]}')
    width = max(len(c) for c in ds.classes) + 2
    p(f"{'class':<{width}}" + ''.join(f'{n:>8}' for n, _ in parts) + f"{'all':>8}")
    for c, name in enumerate(ds.classes):
        hit = ds.labels[:, c] > 0 if ds.multilabel else ds.labels == c
        p(f'{name:<{width}}' + ''.join(f'{int(hit[i].sum()):>8}' for _, i in parts) + f'{int(hit.sum()):>8}')
    if ds.multilabel and len(ds):
        per_clip = collections.Counter(ds.labels.sum(axis=1).tolist())
        p('classes per clip: ' + ', '.join(f'{k}: {v}' for k, v in sorted(per_clip.items())))
    if ds.segments is not None:  # fsd50k: the excerpt count, against the authors' and other rules
        p(f"excerpts of {ds.info['excerpt_seconds']:g} s, one per started second, the last kept when at least half an "
          'excerpt long (zero-padded), at least one per clip (counted before any file failed to decode):')
        for part, v in ds.info['parts'].items():
            p(f"  {part}: {v['clips']} clips, {v['seconds']:.1f} s of audio -> {v['excerpts']} excerpts "
              f"({v['excerpts'] / max(v['seconds'], 1e-9):.3f} per second; ceil would give {v['ceil']}, floor "
              f"{v['floor']})")
        p('  the authors (FSD50K): ' + '; '.join(f'{part} {n:,} excerpts from {FSD50K_HOURS[part]} h '
                                                 f'({n / (3600 * FSD50K_HOURS[part]):.3f} per second)'
                                                 for part, n in FSD50K_AUTHORS_EXCERPTS.items()))
    if ds.folds is not None:
        p('folds: ' + ', '.join(f'{f}: {n}' for f, n in sorted(collections.Counter(ds.folds.tolist()).items())))
    if ds.phase_train is not None:
        p('records per phase file: ' + ', '.join(f'{f} {n}' for f, n in ds.info['records'].items()))
    p('sample rates seen: ' + (', '.join(f'{r} Hz: {n}' for r, n in ds.sample_rates.items()) or 'not checked'))
    p('channels seen: ' + (', '.join(f'{c}: {n}' for c, n in ds.channels.items()) or 'not checked'))
    if ds.counts:
        p('counts: ' + ', '.join(f'{k} {v}' for k, v in sorted(ds.counts.items())))
    bad, notes = [i for i in ds.issues if i.fatal], [i for i in ds.issues if not i.fatal]
    p(f'problems (skipped): {len(bad)}' if bad else 'problems: none')
    for i in bad:
        p(f'  - {i}')
    p(f'notes: {len(notes)}')
    for i in notes[:30]:
        p(f'  - {i}')
    if len(notes) > 30:
        p(f'  ... and {len(notes) - 30} more notes')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['synth']:  # the generators live in synth.py, which data.py does not need
        import synth
        return synth.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog='data.py', formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Inspect a dataset, build its feature cache, or (synth) write a generated one in a real layout. "
                    "'data.py <command> --help' lists each command's flags.",
        epilog='examples (README: the data):\n'
               '  python data.py synth --kind audioset --out data/audioset_synth --seed 0\n'
               '  python data.py stats --data audioset --root data/audioset_synth\n'
               '  python data.py cache --data audioset --root data/audioset_synth --cache cache\n'
               'exit status: 0 ok, 2 data problems (listed on stderr, one line each)')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('synth', help='write a generated dataset in a real layout (data.py synth --help)')
    for name, text in (('stats', 'per-class clip counts per split, problems, sample rates'),
                       ('cache', 'compute the features of every clip once (parallel, resumable)')):
        sp = sub.add_parser(name, help=text)
        sp.add_argument('--data', required=True, choices=list(DATASETS), help='dataset layout to read')
        sp.add_argument('--root', required=True, help='dataset folder (as unpacked / downloaded, or made by synth)')
        sp.add_argument('--skip-bad', action='store_true',
                        help='skip and count bad files and rows instead of stopping with the list of problems')
        sp.add_argument('--csv', default=None, metavar='FILE', help='--data csv: the CSV of the clips')
        sp.add_argument('--path-map', action='append', default=None, metavar='OLD=NEW',
                        help="--data authors-txt: read the clips the phase files list under OLD from NEW")
    stats, cache = sub.choices['stats'], sub.choices['cache']
    stats.add_argument('--split', choices=['grouped', 'official', 'random'], default=None,
                       help="split to count (default: the dataset's, see make_split)")
    stats.add_argument('--split-seed', type=int, default=0, help='seed of the grouped / random split')
    stats.add_argument('--fold', type=int, default=None, help='esc50 or a CSV with a fold column: the test fold')
    stats.add_argument('--save-split', default=None, metavar='JSON', help='also write the split (keys + hash) here')
    stats.add_argument('--no-audio-check', action='store_true',
                       help="do not open every file's header (faster; bad files then show up when caching)")
    cache.add_argument('--cache', required=True, help='cache folder (one sub-folder per dataset and front end)')
    cache.add_argument('--frontend', choices=sorted(FRONTENDS), default=None, help="front end (default: the dataset's)")
    cache.add_argument('--workers', type=int, default=None, help='processes (default: every usable CPU core)')
    args = parser.parse_args(argv)
    options = (dict(csv=args.csv) if args.data == 'csv' else dict(path_map=[tuple(m.split('=', 1)) for m in
                                                                            args.path_map or ()])
               if args.data == 'authors-txt' else {})
    try:
        if args.command == 'stats':
            ds = load_dataset(args.data, args.root, skip_bad=args.skip_bad, check_audio=not args.no_audio_check,
                              **options)
            split = make_split(ds, args.split, args.split_seed, fold=args.fold)
            print_stats(ds, split)
            if args.save_split:
                save_split(split, ds, args.save_split)
                print(f'split written to {args.save_split}')
        else:
            ds, cache = prepare(args.data, args.root, args.cache, args.frontend, args.skip_bad, args.workers, **options)
            s = cache.stats
            print(f"cache {cache.folder}: {len(ds)} clips of {cache.shape[0]} x {cache.shape[1]} float16 "
                  f"({s['bytes'] / 2 ** 20:.1f} MiB); computed {s['computed']} (repaired {s['repaired']}), reused "
                  f"{s['reused']}, re-hashed {s['rehashed']}, skipped bad {ds.counts.get('skipped_bad', 0)}; "
                  f"{s['verified']} rows verified in {s['verify_seconds']:.1f} s; {s['seconds']:.1f} s")
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM while the cache is built (checkpointed)
        print('\ndata.py: interrupted; run the same command again to continue where it stopped', file=sys.stderr)
        return 130
    except OSError as e:  # --save-split to a full disk
        reason, todo = write_failure(e)
        print(f"error: {e.filename or 'a file'}: {reason}; {todo}, or choose another folder", file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
