"""Datasets for class-incremental audio classification: loaders, splits, phases, feature cache and
generated stand-ins, in one file.

The datasets, read from the layouts users actually download (notes: spec/data_formats.md):
  audioset ......... AudioSet strong labels: audioset_{train,eval}_strong.tsv, mid_to_display_name.tsv,
                     clips in train/ and eval/ as Y<segment_id>.wav (or <segment_id>.*), 50 classes,
                     multi-label (multi-hot clip targets), phases 30 + 4 x 5
  speechcommands ... Google Speech Commands v0.02: <word>/<speaker>_nohash_<n>.wav, validation_list.txt,
                     testing_list.txt; the 20 core words; phases 5 + 5 x 3
  urbansound8k ..... UrbanSound8K: metadata/UrbanSound8K.csv, audio/fold<k>/<slice>.wav; phases 4 + 3 x 2
  fsd50k ........... FSD50K: FSD50K.ground_truth/{dev,eval,vocabulary}.csv, FSD50K.{dev,eval}_audio/; the
                     authors' 50 classes, clips cut into 1 s excerpts (one item each); phases 30 + 4 x 5
  esc50 ............ ESC-50: meta/esc50.csv, audio/<fold>-<src>-<take>-<target>.wav; 5 folds; phases 5 x 10
  csv, folder ...... your own clips: a CSV of paths and labels (';' between labels: multi-label), or a
                     folder per class
  authors-txt ...... the authors' phase files (data_txt/train_phase_<k>.txt, test_phase_0_.._k.txt)

Pipeline (what a training script calls):
  ds = load_dataset(name, root)                  # metadata -> Dataset (keys, paths, labels, groups)
  cache = build_cache(ds, cache_root)            # features computed once, checked, memory-mapped float16
  split = make_split(ds, 'grouped', seed)        # train / val / test indices + a hash
  order = class_order(name, 'default' | 'shuffle', seed)
  phases = make_phases(ds, split, order)         # per phase: indices + targets in LEARNED order
  x = cache.read(phases[k].train)                # (n, T, F) float16; cache.get: float32
or prepare(...) for the first two steps. `python data.py synth ...` writes a generated dataset in
the same on-disk layout, so the project runs through the real loaders without a download;
ensure_synth(kind, root) makes one once, even when two commands start together (FolderLock).

Data problems (missing / empty / truncated / header-only / undecodable files, malformed rows,
unknown classes) are collected, never raised one by one: by default a DataError lists ALL of them
(one line each: file, problem, what to do); skip_bad=True skips and counts them instead
(ds.counts['skipped_bad']). Notes (Issue.fatal False) are reported and counted, never fatal:
AudioSet clips without an audio file (failed downloads), MIDs outside the 50 classes, clips with
none of the 50 classes (dropped), stray non-audio files, ignored GSC folders.

Choices where the specs are silent (README: the data.py sections and the Fidelity notes for the others):
  - AudioSet has no val part (train TSV -> train, eval TSV -> test), as the paper; group = video id.
  - Multi-label train targets are (n, n_seen) with the old-class columns 0 (IndL uses [:, n_old:]).
  - A WAV whose data chunk is shorter than its header says is a problem ("truncated"), although
    libsndfile would read it as a shorter clip.
  - Feature cache: reuse when size + mtime_ns match; otherwise sha1 of the whole file decides. Every
    stored row is checked against its checksum each time the cache is opened; a bad one is recomputed.
"""
import argparse
import collections
import concurrent.futures
import contextlib
import csv
import dataclasses
import errno
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
from pathlib import Path

import numpy as np
import soundfile as sf

import features

# =================================================================================================
# Class tables

# The 50 classes of the paper (mulimani/CIL-ML-Audio data/AudioSet_classes.txt), in the authors' order.
AUDIOSET_CLASSES = [
    ('Generic impact sounds', '/t/dd00099'), ('Male speech, man speaking', '/m/05zppz'),
    ('Tick', '/m/07qjznt'), ('Female speech, woman speaking', '/m/02zsn'), ('Breathing', '/m/0lyf6'),
    ('Music', '/m/04rlf'), ('Mechanisms', '/t/dd00077'), ('Background noise', '/m/093_4n'),
    ('Wind noise (microphone)', '/t/dd00092'), ('Bird vocalization, bird call, bird song', '/m/020bb7'),
    ('Human voice', '/m/09l8g'), ('Surface contact', '/t/dd00109'), ('Sound effect', '/m/0c1dj'),
    ('Walk, footsteps', '/m/07pbtc8'), ('Laughter', '/m/01j3sz'), ('Tap', '/m/07qcpgn'),
    ('Child speech, kid speaking', '/m/0ytgt'), ('Wind', '/m/03m9d0z'), ('Clapping', '/m/0l15bq'),
    ('Chirp, tweet', '/m/07pggtn'), ('Male singing', '/t/dd00003'), ('Human sounds', '/m/0dgw9r'),
    ('Clicking', '/m/07qc9xj'), ('Accelerating, revving, vroom', '/m/07q2z82'),
    ('Conversation', '/m/01h8n0'), ('Beep, bleep', '/m/02fs_r'), ('Bark', '/m/05tny_'),
    ('Shout', '/m/07p6fty'), ('Female singing', '/t/dd00004'), ('Heart sounds, heartbeat', '/m/01jg02'),
    ('Speech', '/m/09x0r'), ('Video game sound', '/m/0bzvm2'), ('Animal', '/m/0jbk'), ('Dog', '/m/0bt9lr'),
    ('Gunshot, gunfire', '/m/032s66'), ('Hubbub, speech noise, speech babble', '/m/07qfr4h'),
    ('Cricket', '/m/09xqv'), ('Squeal', '/m/07s02z0'), ('Crowd', '/m/03qtwd'), ('Water', '/m/0838f'),
    ('Computer keyboard', '/m/01m2v'), ('Whistling', '/m/01w250'), ('Crumpling, crinkling', '/t/dd00112'),
    ('Thump, thud', '/m/07qnq_y'), ('Speech synthesizer', '/m/0brhx'), ('Bell', '/m/0395lw'),
    ('Choir', '/m/0l14jd'), ('Hammer', '/m/03l9g'), ('Motor vehicle (road)', '/m/012f08'),
    ('Clickety-clack', '/m/07rwm0c'),
]
_AUDIOSET_MID_INDEX = {mid: i for i, (_, mid) in enumerate(AUDIOSET_CLASSES)}
AUDIOSET_TSV = {'train': 'audioset_train_strong.tsv', 'eval': 'audioset_eval_strong.tsv'}
AUDIOSET_HEADER = ['segment_id', 'start_time_seconds', 'end_time_seconds', 'label']

SPEECHCOMMANDS_WORDS = ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go',
                        'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
SPEECHCOMMANDS_OTHER_WORDS = ['backward', 'bed', 'bird', 'cat', 'dog', 'follow', 'forward', 'happy',
                              'house', 'learn', 'marvin', 'sheila', 'tree', 'visual', 'wow']

URBANSOUND8K_CLASSES = ['air_conditioner', 'car_horn', 'children_playing', 'dog_bark', 'drilling',
                        'engine_idling', 'gun_shot', 'jackhammer', 'siren', 'street_music']
URBANSOUND8K_HEADER = ['slice_file_name', 'fsID', 'start', 'end', 'salience', 'fold', 'classID', 'class']

# FSD50K: the authors' 50 classes (mulimani/CIL-ML-Audio data/FSD50K_classes.txt), in their order. FSD50K
# labels carry their ontology ancestors, so a class is on when its name is among a clip's labels.
FSD50K_CLASSES = [
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
# The authors' counts (data/FSD50K_sounds.txt, README) and FSD50K's own totals (its README: dev 40,966 clips,
# 80.4 h; eval 10,231 clips, 27.9 h), for the excerpt counting rule (see excerpt_count).
FSD50K_AUTHORS_EXCERPTS = {'dev': 284447, 'eval': 97798}
FSD50K_HOURS = {'dev': 80.4, 'eval': 27.9}

ESC50_CLASSES = ['dog', 'rooster', 'pig', 'cow', 'frog', 'cat', 'hen', 'insects', 'sheep', 'crow', 'rain',
                 'sea_waves', 'crackling_fire', 'crickets', 'chirping_birds', 'water_drops', 'wind',
                 'pouring_water', 'toilet_flush', 'thunderstorm', 'crying_baby', 'sneezing', 'clapping',
                 'breathing', 'coughing', 'footsteps', 'laughing', 'brushing_teeth', 'snoring',
                 'drinking_sipping', 'door_wood_knock', 'mouse_click', 'keyboard_typing', 'door_wood_creaks',
                 'can_opening', 'washing_machine', 'vacuum_cleaner', 'clock_alarm', 'clock_tick',
                 'glass_breaking', 'helicopter', 'chainsaw', 'siren', 'car_horn', 'engine', 'train',
                 'church_bells', 'airplane', 'fireworks', 'hand_saw']  # target 0..49
ESC50_HEADER = ['filename', 'fold', 'target', 'category', 'esc10', 'src_file', 'take']
ESC10 = ('dog', 'rooster', 'rain', 'sea_waves', 'crackling_fire', 'crying_baby', 'sneezing', 'clock_tick',
         'helicopter', 'chainsaw')
ESC50_FOLD = 5  # default test fold; validation on the fold before it (fold 4), training on the others

DATASETS = ('audioset', 'speechcommands', 'urbansound8k', 'fsd50k', 'esc50', 'csv', 'folder', 'authors-txt')
CLASS_NAMES = {'audioset': [n for n, _ in AUDIOSET_CLASSES], 'speechcommands': SPEECHCOMMANDS_WORDS,
               'urbansound8k': URBANSOUND8K_CLASSES, 'fsd50k': FSD50K_CLASSES, 'esc50': ESC50_CLASSES}
PHASE_SIZES = {'audioset': (30, 5, 5, 5, 5), 'speechcommands': (5, 3, 3, 3, 3, 3),
               'urbansound8k': (4, 2, 2, 2), 'fsd50k': (30, 5, 5, 5, 5), 'esc50': (10, 10, 10, 10, 10)}
OFFICIAL_ONLY = ('audioset', 'fsd50k', 'authors-txt')  # datasets whose own train / test split is the only one
# What each layout looks like, for the line that says a folder is not one.
LAYOUTS = {
    'audioset': 'audioset_train_strong.tsv, audioset_eval_strong.tsv, mid_to_display_name.tsv and the clips in '
                'train/ and eval/ as Y<segment_id>.wav',
    'speechcommands': 'the unpacked speech_commands_v0.02 archive: <word>/<speaker>_nohash_<n>.wav, '
                      'validation_list.txt, testing_list.txt',
    'urbansound8k': 'metadata/UrbanSound8K.csv and audio/fold1 .. fold10/',
    'fsd50k': 'FSD50K.ground_truth/ (dev.csv, eval.csv, vocabulary.csv), FSD50K.dev_audio/ and '
              'FSD50K.eval_audio/ with <fname>.wav',
    'esc50': 'ESC-50-master/ with meta/esc50.csv and audio/<fold>-<src_file>-<take>-<target>.wav (or those two '
             'folders directly)',
    'csv': "a CSV with a path column and a label column (several labels joined by ';'), the paths relative to "
           'its folder or to --root',
    'folder': 'one sub-folder per class, holding its audio files',
    'authors-txt': "the authors' data_txt folder: train_phase_<k>.txt and test_phase_0[_1 ..].txt",
}
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.oga', '.opus', '.mp3', '.aif', '.aiff', '.au', '.w64',
                    '.caf')  # suffixes looked at as audio (libsndfile reads them); preference order

# =================================================================================================
# Problems in the data: collected, reported one line each, fatal unless skip_bad


@dataclasses.dataclass
class Issue:
    """One problem found in the data: which file (and line), what is wrong, what to do.
    fatal=True stops the run unless skip_bad; fatal=False is a note (counted and reported)."""
    path: str
    problem: str
    action: str = ''
    kind: str = 'bad'
    fatal: bool = True
    count: int = 1  # items (clips) this one line stands for, e.g. every path of a phase file missing here

    def __str__(self):
        return f'{self.path}: {self.problem}' + (f'; {self.action}' if self.action else '')


def write_failure(e, folder=None):
    """Why writing under `folder` failed, as (what happened, what to do), or None when e is not a
    failed write. The OSError is e or what e was raised from (torch.save reports a full disk as a
    RuntimeError whose context is the OSError); libsndfile says only 'System error', read as a full
    disk when the folder has under 1 MiB free."""
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
    todo = {errno.ENOSPC: 'free space there', errno.EDQUOT: 'free space there', errno.EROFS: 'make it writable',
            errno.EACCES: 'make it writable', errno.EPERM: 'make it writable'}.get(code, 'check that folder')
    return what, todo


class DataError(Exception):
    """Data problems found before training; the message lists every one of them. Given a str instead
    of issues, the message is that one line (a problem of the data as a whole, e.g. a class without
    clips; issues is then empty)."""

    def __init__(self, issues, where='', skippable=True):
        if isinstance(issues, str):
            self.issues = []
            super().__init__(issues)
            return
        self.issues = list(issues)
        head = (f"{len(self.issues)} data problem(s){' in ' + str(where) if where else ''}, found before any "
                f"training. Fix them" + (', or skip and count the bad clips with --skip-bad (Python: '
                                         'skip_bad=True)' if skippable else '') + ':')
        super().__init__('\n'.join([head] + [f'  - {i}' for i in self.issues]))


def _raise_if_fatal(issues, skip_bad, where):
    """DataError listing the fatal issues, unless skip_bad; returns the number of items they skip."""
    fatal = [i for i in issues if i.fatal]
    if fatal and not skip_bad:
        raise DataError(fatal, where)
    return sum(i.count for i in fatal)


def read_text(path):
    """The text of a metadata file (TSV, CSV, list), decoded as UTF-8 (a leading BOM, as spreadsheet
    programs write, is dropped). A file that is not UTF-8 or cannot be read is a DataError of one line
    naming the file, the line of the first bad byte and what to do; every loader reads its metadata
    through here, so a new format (FSD-style CSVs) gets the same message."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f'{path}: cannot read it ({e.strerror or e}); check its permissions') from None
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        text = e.object  # the bytes after a BOM, which e.start counts in
        lineno = text.count(b'\n', 0, e.start) + 1
        column = e.start - (text.rfind(b'\n', 0, e.start) + 1) + 1
        raise DataError(f'{path}:{lineno}: not UTF-8 text (byte 0x{text[e.start]:02x} at column {column}); '
                        f'save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8) and run again') from None


def _sf_message(e):
    """libsndfile's reason without the "Error opening '<path>': " prefix."""
    return str(e).split("': ", 1)[-1].strip().rstrip('.') or type(e).__name__


def _wav_truncation(path, size):
    """(declared, present) bytes of a WAV 'data' chunk that is cut short, else None.
    libsndfile silently reads a truncated WAV as a shorter clip, so it is checked here."""
    with open(path, 'rb') as f:
        head = f.read(65536)
    if head[:4] != b'RIFF' or head[8:12] != b'WAVE':
        return None
    pos = 12
    while pos + 8 <= len(head):
        cid, csize = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], 'little')
        if cid == b'data':
            present = size - (pos + 8)
            streaming = csize in (0, 0xFFFFFFFF)  # size not written by a streaming writer
            return (csize, present) if (not streaming and csize > present) else None
        pos += 8 + csize + (csize & 1)
    return None


def check_audio_file(path):
    """Header-level check of one audio file, without decoding it.
    Returns (soundfile info or None, Issue or None)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return None, Issue(str(path), 'file not found', 'restore it, or remove its row / list entry',
                           'missing')
    if size == 0:
        return None, Issue(str(path), 'empty file (0 bytes)', 're-download or delete it', 'empty')
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile: unknown format, broken header, not audio
        return None, Issue(str(path), f'not a readable audio file ({_sf_message(e)})',
                           're-download it or convert it to WAV/FLAC', 'unreadable')
    if info.frames <= 0:
        return None, Issue(str(path), 'audio header but 0 samples (header-only file)',
                           're-download or delete it', 'header_only')
    if path.suffix.lower() == '.wav':
        cut = _wav_truncation(path, size)
        if cut:
            return None, Issue(str(path), f'truncated: its header declares {cut[0]} bytes of audio, '
                               f'the file holds {cut[1]}', 're-download it', 'truncated')
    return info, None


class AudioProblem(Exception):
    """An audio file that cannot be used (raised with a one-line message)."""


def decode_audio(source, segment=None):
    """Decode a file (path or bytes) with soundfile -> (float32 mono waveform, sample rate).
    Every bit depth comes back scaled to [-1, 1); channels are averaged (librosa's to_mono).
    segment=(start s, length s): only that excerpt, read by seeking (a WAV is not decoded whole);
    an excerpt running past the end of the file comes back shorter."""
    try:
        src = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
        if segment is None:
            y, sr = sf.read(src, dtype='float32', always_2d=True)
        else:
            with sf.SoundFile(src) as f:
                sr = f.samplerate
                start, n = int(round(segment[0] * sr)), int(round(segment[1] * sr))
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


# =================================================================================================
# Dataset: what the loaders return


@dataclasses.dataclass
class Dataset:
    """Clips of one dataset, one row per clip, in a deterministic order.
    labels: (N,) canonical class index (single-label) or (N, C) uint8 multi-hot (audioset).
    subset: the official split per clip: 'train'/'val'/'test' (GSC lists, US8K folds 1-7/8/9-10) or
    'train'/'eval' (audioset). groups: the source a clip comes from (speaker, fsID, YouTube id)."""
    name: str
    root: Path
    classes: list
    keys: list  # unique id per clip: 'word/basename', 'fold3/x.wav', 'train/<segment_id>'
    paths: list
    labels: np.ndarray
    subset: np.ndarray
    groups: np.ndarray
    folds: np.ndarray = None  # urbansound8k only
    issues: list = dataclasses.field(default_factory=list)
    counts: dict = dataclasses.field(default_factory=dict)  # what was skipped / ignored / dropped
    sample_rates: dict = dataclasses.field(default_factory=dict)  # {sr: files} (header check)
    channels: dict = dataclasses.field(default_factory=dict)  # {channels: files}
    synthetic: dict = None  # content of synth.json when the data was generated by this file
    # fsd50k: (N, 2) start and length in s of each item's excerpt of its file (one feature row per excerpt);
    # None: every item is its whole file
    segments: np.ndarray = None
    # authors-txt: (N, P) bool, the item is a record of phase k's training file / test file
    phase_train: np.ndarray = None
    phase_test: np.ndarray = None
    info: dict = dataclasses.field(default_factory=dict)  # per-dataset facts for stats and defaults

    @property
    def multilabel(self):
        return self.labels.ndim == 2

    def __len__(self):
        return len(self.keys)

    def select(self, index):
        """A Dataset of the clips at `index` (bool mask or integer indices), same order."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)
        rows = {f: None if getattr(self, f) is None else getattr(self, f)[idx]
                for f in ('folds', 'segments', 'phase_train', 'phase_test')}
        return dataclasses.replace(
            self, keys=[self.keys[i] for i in idx], paths=[self.paths[i] for i in idx],
            labels=self.labels[idx], subset=self.subset[idx], groups=self.groups[idx], **rows)


def _read_synth_marker(root):
    p = Path(root) / 'synth.json'
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None
    return None


def _check_files(paths, issues, check_audio, infos=None):
    """Header-check each file; returns (ok mask, sample-rate counts, channel counts). infos: a list that
    gets each file's soundfile info (None for a bad one), e.g. for the clip lengths."""
    ok = np.ones(len(paths), bool)
    rates, chans = collections.Counter(), collections.Counter()
    for i, p in enumerate(paths):
        if infos is not None:
            infos.append(None)
        if not check_audio:
            if not p.is_file():
                ok[i] = False
                issues.append(Issue(str(p), 'file not found', 'restore it, or remove its row / list entry',
                                    'missing'))
            continue
        info, issue = check_audio_file(p)
        if issue:
            ok[i] = False
            issues.append(issue)
        else:
            rates[int(info.samplerate)] += 1
            chans[int(info.channels)] += 1
            if infos is not None:
                infos[-1] = info
    return ok, dict(sorted(rates.items())), dict(sorted(chans.items()))


def load_dataset(name, root, skip_bad=False, check_audio=True, **options):
    """Load one of DATASETS from its download layout; see the load_* functions. options: the loader's
    own arguments (csv: csv=FILE; authors-txt: path_map=[(old, new)])."""
    loaders = {'audioset': load_audioset, 'speechcommands': load_speechcommands,
               'urbansound8k': load_urbansound8k, 'fsd50k': load_fsd50k, 'esc50': load_esc50, 'csv': load_csv,
               'folder': load_folder, 'authors-txt': load_authors_txt}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not Path(root).is_dir():
        raise DataError([Issue(str(root), 'no such folder', f'point --root at the unpacked {name} dataset '
                               f'({LAYOUTS[name]})', 'missing_metadata')], skippable=False)
    return loaders[name](root, skip_bad=skip_bad, check_audio=check_audio, **options)


# --- AudioSet (strong labels) ---------------------------------------------------------------------

_MID_RE = re.compile(r'/[mgt]/[0-9A-Za-z_]+')
_DESED_RE = re.compile(r'^Y?(.+)_(\d+\.\d{3})_(\d+\.\d{3})$')  # Y<ytid>_<start s>_<end s>


def _read_mid_names(path, issues):
    """mid_to_display_name.tsv: no header, MID<TAB>name (names contain commas: never CSV)."""
    names = {}
    if not path.is_file():
        issues.append(Issue(str(path), 'not found', 'download it with the strong labels; the names of '
                            'the 50 classes are built in, so this is only a note', 'missing_metadata',
                            fatal=False))
        return names
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split('\t')
        if len(fields) != 2 or not _MID_RE.fullmatch(fields[0]):
            issues.append(Issue(f'{path}:{lineno}', f"expected 'MID<TAB>display name', got {line[:60]!r}",
                                'fix or delete the line', 'malformed_row'))
            continue
        names[fields[0]] = fields[1]
    return names


def _read_strong_tsv(path, issues, counts, mid_names):
    """audioset_*_strong.tsv -> {segment_id: set of MIDs}; one event per row."""
    clips = collections.defaultdict(set)
    unknown = {}  # MID -> [rows, first line]
    with io.StringIO(read_text(path), newline='') as f:  # lines split as open(newline='')
        for lineno, line in enumerate(f, 1):
            line = line.rstrip('\r\n')
            if not line.strip():
                continue
            fields = line.split('\t')
            if lineno == 1 and fields[0] == 'segment_id':
                continue  # the header row
            where = f'{path}:{lineno}'
            if len(fields) != 4:
                issues.append(Issue(where, f'expected 4 tab-separated fields (segment_id, start, end, '
                                    f'label), got {len(fields)}: {line[:80]!r}', 'fix or delete the row',
                                    'malformed_row'))
                continue
            sid, t0, t1, mid = (s.strip() for s in fields)
            parts = sid.rsplit('_', 1)  # YouTube ids may contain '_': split on the LAST one
            if len(parts) != 2 or not parts[0] or not parts[1].isdigit():
                issues.append(Issue(where, f'segment_id {sid!r} is not <YouTubeID>_<start ms>',
                                    'fix or delete the row', 'malformed_row'))
                continue
            try:
                t0, t1 = float(t0), float(t1)
                if not (0.0 <= t0 <= t1):
                    raise ValueError
            except ValueError:
                issues.append(Issue(where, f'bad event times {fields[1]!r}..{fields[2]!r} (need numbers, '
                                    '0 <= start <= end)', 'fix or delete the row', 'malformed_row'))
                continue
            if not _MID_RE.fullmatch(mid):
                issues.append(Issue(where, f'label {mid!r} is not a MID like /m/09x0r',
                                    'fix or delete the row', 'malformed_row'))
                continue
            if mid_names and mid not in mid_names and mid not in _AUDIOSET_MID_INDEX:
                unknown.setdefault(mid, [0, lineno])[0] += 1
            clips[sid].add(mid)
            counts['events'] += 1
    for mid, (n, lineno) in sorted(unknown.items()):
        issues.append(Issue(f'{path}:{lineno}', f'MID {mid} ({n} rows) is not in mid_to_display_name.tsv',
                            'ignored for targets (not one of the 50 classes)', 'unknown_mid', fatal=False))
    return clips


def _index_audio_folder(folder, issues):
    """{segment_id: path} of the clips in one folder. Accepts Y<segment_id>.<ext>, <segment_id>.<ext>
    and Y<ytid>_<start>_<end>.<ext> (DESED). Non-audio files are reported as stray."""
    by_stem, desed = {}, {}
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file():
            continue
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() not in rank:
            issues.append(Issue(str(Path(folder) / entry.name), 'stray non-audio file', 'ignored',
                                'stray_file', fatal=False))
            continue
        old = by_stem.get(stem)
        if old is None or rank[ext.lower()] < rank[old.suffix.lower()]:
            by_stem[stem] = Path(folder) / entry.name
        m = _DESED_RE.match(stem)
        if m:
            desed[f'{m.group(1)}_{int(round(float(m.group(2)) * 1000))}'] = by_stem[stem]
    return by_stem, desed


def load_audioset(root, skip_bad=False, check_audio=True):
    """AudioSet strong: clip-level multi-hot targets over the 50 classes (a class is on if it has at
    least one event in the clip; no propagation up the ontology, as CIL-ML-Audio).
    Not errors (counted): rows whose clip has no audio file (real collections always have them),
    MIDs outside the 50 classes, clips with none of the 50 classes (dropped)."""
    root = Path(root)
    issues, counts = [], collections.Counter()
    mid_names = _read_mid_names(root / 'mid_to_display_name.tsv', issues)
    for name, mid in AUDIOSET_CLASSES:
        if mid_names and mid not in mid_names:
            issues.append(Issue(str(root / 'mid_to_display_name.tsv'), f'class {name!r} ({mid}) is not '
                                'listed', 'its built-in name is used', 'unknown_mid', fatal=False))
    absent = [root / name for name in AUDIOSET_TSV.values() if not (root / name).is_file()]
    if absent:  # both named at once
        raise DataError([Issue(str(tsv), 'not found', 'download the strong-label TSVs from '
                               'research.google.com/audioset/download_strong.html', 'missing_metadata')
                         for tsv in absent], root, skippable=False)
    keys, paths, labels, subset, groups = [], [], [], [], []
    for part, tsv_name in AUDIOSET_TSV.items():
        tsv, folder = root / tsv_name, root / part
        clips = _read_strong_tsv(tsv, issues, counts, mid_names)
        if not folder.is_dir():
            issues.append(Issue(str(folder), 'audio folder not found', f'put the clips of {tsv_name} '
                                f'there as Y<segment_id>.wav', 'missing'))
            continue
        by_stem, desed = _index_audio_folder(folder, issues)
        used, n_missing, missing_examples = set(), 0, []
        for sid in sorted(clips):
            mids = clips[sid]
            ignored = [m for m in mids if m not in _AUDIOSET_MID_INDEX]
            counts['ignored_label_mids'] += len(ignored)
            target = sorted(_AUDIOSET_MID_INDEX[m] for m in mids if m in _AUDIOSET_MID_INDEX)
            if not target:
                counts['dropped_no_class'] += 1
                continue
            path = by_stem.get('Y' + sid) or by_stem.get(sid) or desed.get(sid)
            if path is None:
                n_missing += 1
                missing_examples.append(sid)
                continue
            used.add(path)
            row = np.zeros(len(AUDIOSET_CLASSES), np.uint8)
            row[target] = 1
            keys.append(f'{part}/{sid}')
            paths.append(path)
            labels.append(row)
            subset.append(part)
            groups.append(sid.rsplit('_', 1)[0])  # the YouTube video
        counts['missing_audio'] += n_missing
        if n_missing:
            issues.append(Issue(str(folder), f"{n_missing} of the {n_missing + len(used)} clips with a "
                                f"selected class in {tsv_name} have no audio file (e.g. "
                                f"{', '.join(missing_examples[:3])})", 'skipped (not downloaded?)',
                                'missing_audio', fatal=False))
        unlisted = sorted(str(p.name) for p in by_stem.values() if p not in used)
        counts['unlisted_files'] += len(unlisted)
        if unlisted:
            issues.append(Issue(str(folder), f"{len(unlisted)} audio files are not clips of {tsv_name} with "
                                f"a selected class (e.g. {', '.join(unlisted[:3])})", 'ignored',
                                'unlisted_file', fatal=False))
    ok, rates, chans = _check_files(paths, issues, check_audio)
    n_bad = _raise_if_fatal(issues, skip_bad, root)
    counts['skipped_bad'] = n_bad
    ds = Dataset('audioset', root, CLASS_NAMES['audioset'], keys, paths,
                 np.array(labels, np.uint8).reshape(-1, len(AUDIOSET_CLASSES)),
                 np.array(subset, dtype='<U5'), np.array(groups, dtype=object), None, issues,
                 dict(counts), rates, chans, _read_synth_marker(root))
    return ds.select(ok)


# --- Google Speech Commands v0.02 ------------------------------------------------------------------

def _find_speechcommands_root(root):
    for cand in (root, root / 'SpeechCommands' / 'speech_commands_v0.02', root / 'speech_commands_v0.02'):
        if (cand / 'testing_list.txt').is_file() or (cand / 'yes').is_dir():
            return cand
    return root


def _read_list(path, issues):
    """validation_list.txt / testing_list.txt: one word/basename per line -> {key: line number}."""
    if not path.is_file():
        raise DataError([Issue(str(path), 'not found', 'it ships in speech_commands_v0.02.tar.gz; '
                               'restore it, or point --root at the folder that holds it and the word folders',
                               'missing_metadata')], path.parent, skippable=False)
    out = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key = os.path.normpath(line).replace(os.sep, '/')
        if key.count('/') != 1 or not key.endswith('.wav'):
            issues.append(Issue(f'{path}:{lineno}', f"expected 'word/<speaker>_nohash_<n>.wav', got "
                                f"{line[:60]!r}", 'fix or delete the line', 'malformed_row'))
            continue
        out[key] = lineno
    return out


def speaker_of(basename):
    """Speaker part of a GSC file name (the official rule: everything before '_nohash_')."""
    return re.sub(r'_nohash_.*$', '', basename)


def gsc_list_of(basename, validation_percentage=10, testing_percentage=10):
    """'validation' / 'testing' / 'training': the official SHA-1 rule of the GSC README."""
    h = hashlib.sha1(speaker_of(basename).encode('utf-8')).hexdigest()
    pct = (int(h, 16) % (2 ** 27)) * (100.0 / (2 ** 27 - 1))
    if pct < validation_percentage:
        return 'validation'
    if pct < validation_percentage + testing_percentage:
        return 'testing'
    return 'training'


def load_speechcommands(root, skip_bad=False, check_audio=True):
    """GSC v0.02, the 20 core words. Official split: validation_list / testing_list, training = every
    other <word>/*.wav. _background_noise_ and the 15 other words are ignored (counted)."""
    root = _find_speechcommands_root(Path(root))
    issues, counts = [], collections.Counter()
    lists = {'val': _read_list(root / 'validation_list.txt', issues),
             'test': _read_list(root / 'testing_list.txt', issues)}
    for key in sorted(set(lists['val']) & set(lists['test'])):
        issues.append(Issue(str(root / 'testing_list.txt'), f'{key} is also in validation_list.txt',
                            'counted as test', 'malformed_row', fatal=False))
    keys, paths, labels, subset, groups = [], [], [], [], []
    for c, word in enumerate(SPEECHCOMMANDS_WORDS):
        folder = root / word
        if not folder.is_dir():
            issues.append(Issue(str(folder), 'word folder not found (one of the 20 core words)',
                                'unpack the whole speech_commands_v0.02 archive', 'missing'))
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.is_file():
                continue
            if not entry.name.endswith('.wav'):
                issues.append(Issue(str(folder / entry.name), 'stray non-audio file', 'ignored',
                                    'stray_file', fatal=False))
                continue
            key = f'{word}/{entry.name}'
            keys.append(key)
            paths.append(folder / entry.name)
            labels.append(c)
            subset.append('test' if key in lists['test'] else 'val' if key in lists['val'] else 'train')
            groups.append(speaker_of(entry.name))
    present = set(keys)
    for part, listed in lists.items():
        list_name = 'validation_list.txt' if part == 'val' else 'testing_list.txt'
        for key, lineno in listed.items():
            if key.split('/')[0] in SPEECHCOMMANDS_WORDS and key not in present:
                issues.append(Issue(str(root / key), f'listed in {list_name} (line {lineno}) but not found',
                                    'restore the file or delete the line', 'missing'))
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and entry.name not in SPEECHCOMMANDS_WORDS:
            n = sum(1 for _ in os.scandir(entry.path))
            counts['ignored_files'] += n
            why = ('background noise, not a class' if entry.name == '_background_noise_' else
                   'not one of the 20 core words' if entry.name in SPEECHCOMMANDS_OTHER_WORDS
                   else 'unknown folder')
            issues.append(Issue(str(root / entry.name), f'{n} files ignored ({why})', 'nothing to do',
                                'ignored_folder', fatal=False))
    paths_ok, rates, chans = _check_files(paths, issues, check_audio)
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    ds = Dataset('speechcommands', root, SPEECHCOMMANDS_WORDS, keys, paths, np.array(labels, np.int64),
                 np.array(subset, dtype='<U5'), np.array(groups, dtype=object), None, issues, dict(counts),
                 rates, chans, _read_synth_marker(root))
    return ds.select(paths_ok)


# --- UrbanSound8K --------------------------------------------------------------------------------

def _note_unlisted(folders, paths, csv_name, counts, issues):
    """Notes (not errors) for the files in `folders` that the metadata CSV does not list: an audio file
    (counted as unlisted_files) or a stray non-audio one; both are ignored."""
    listed = set(paths)
    for folder in folders:
        for p in sorted(folder.iterdir()):
            if p.is_file() and p not in listed:
                is_audio = p.suffix.lower() in AUDIO_EXTENSIONS
                counts['unlisted_files'] += 1
                issues.append(Issue(str(p), f'audio file not in {csv_name}' if is_audio else 'stray non-audio file',
                                    'ignored', 'unlisted_file' if is_audio else 'stray_file', fatal=False))


def _metadata_rows(csv_path, root, need, advice, issues, fields='comma-separated fields'):
    """(line number, 'file:line', row, {column: index}) of each non-blank row of a metadata CSV. A header
    without the `need` columns is one fatal line (what to do: `advice`); a row of the wrong width is an
    issue, skipped."""
    with io.StringIO(read_text(csv_path), newline='') as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if any(h not in header for h in need):
            raise DataError([Issue(f'{csv_path}:1', f'header {header} lacks the columns {need}', advice,
                                   'malformed_row')], root, skippable=False)
        col = {h: i for i, h in enumerate(header)}
        for lineno, where, row in _rows_of_width(reader, csv_path, len(header), issues, fields):
            yield lineno, where, row, col


def _rows_of_width(reader, path, width, issues, fields='comma-separated fields', todo='fix or delete the row'):
    """(line number, 'file:line', row) of each non-blank row after a CSV's header; a row of another
    width than the header's is an issue (what to do: `todo`), skipped."""
    for lineno, row in enumerate(reader, 2):
        if not row or not any(c.strip() for c in row):
            continue
        where = f'{path}:{lineno}'
        if len(row) != width:
            issues.append(Issue(where, f"expected {width} {fields}, got {len(row)}: {','.join(row)[:80]!r}", todo,
                                'malformed_row'))
            continue
        yield lineno, where, row


def load_urbansound8k(root, skip_bad=False, check_audio=True):
    """UrbanSound8K: one clip per CSV row (never a directory listing), file audio/fold<fold>/<slice>,
    label = classID cross-checked with the class name. Official split: folds 1-7 / 8 / 9-10."""
    root = Path(root)
    if not (root / 'metadata').is_dir() and (root / 'UrbanSound8K' / 'metadata').is_dir():
        root = root / 'UrbanSound8K'
    csv_path = root / 'metadata' / 'UrbanSound8K.csv'
    if not csv_path.is_file():
        raise DataError([Issue(str(csv_path), 'not found', 'unpack UrbanSound8K.tar.gz; the loader '
                               'needs metadata/UrbanSound8K.csv', 'missing_metadata')], root, skippable=False)
    issues, counts = [], collections.Counter()
    keys, paths, labels, subset, groups, folds = [], [], [], [], [], []
    seen = {}
    for lineno, where, row, col in _metadata_rows(csv_path, root, ['slice_file_name', 'fsID', 'fold', 'classID'],
                                                  f"use the official CSV (header {','.join(URBANSOUND8K_HEADER)})",
                                                  issues):
        name, fs_id = row[col['slice_file_name']].strip(), row[col['fsID']].strip()
        try:
            fold, class_id = int(row[col['fold']]), int(row[col['classID']])
        except ValueError:
            issues.append(Issue(where, f"fold {row[col['fold']]!r} / classID {row[col['classID']]!r} "
                                "are not integers", 'fix or delete the row', 'malformed_row'))
            continue
        if not 1 <= fold <= 10 or not name or '/' in name:
            issues.append(Issue(where, f'bad fold {fold} or slice_file_name {name!r} (fold must be '
                                '1..10)', 'fix or delete the row', 'malformed_row'))
            continue
        if not 0 <= class_id < len(URBANSOUND8K_CLASSES):
            issues.append(Issue(where, f'unknown classID {class_id} (valid: 0..9)',
                                'fix or delete the row', 'unknown_class'))
            continue
        cname = row[col['class']].strip() if 'class' in col else URBANSOUND8K_CLASSES[class_id]
        if cname != URBANSOUND8K_CLASSES[class_id]:
            issues.append(Issue(where, f'classID {class_id} is {URBANSOUND8K_CLASSES[class_id]!r} but '
                                f'the class column says {cname!r}', 'fix the row', 'unknown_class'))
            continue
        key = f'fold{fold}/{name}'
        if key in seen:
            issues.append(Issue(where, f'{key} already listed on line {seen[key]}', 'delete the '
                                'duplicate row', 'malformed_row'))
            continue
        seen[key] = lineno
        keys.append(key)
        paths.append(root / 'audio' / f'fold{fold}' / name)
        labels.append(class_id)
        subset.append('train' if fold <= 7 else 'val' if fold == 8 else 'test')
        groups.append(fs_id)
        folds.append(fold)
    audio = root / 'audio'
    folds_found = sorted(p for p in audio.iterdir() if p.is_dir()) if audio.is_dir() else []
    _note_unlisted(folds_found, paths, 'metadata/UrbanSound8K.csv', counts, issues)
    ok, rates, chans = _check_files(paths, issues, check_audio)
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    ds = Dataset('urbansound8k', root, URBANSOUND8K_CLASSES, keys, paths, np.array(labels, np.int64),
                 np.array(subset, dtype='<U5'), np.array(groups, dtype=object), np.array(folds, np.int64),
                 issues, dict(counts), rates, chans, _read_synth_marker(root))
    return ds.select(ok)


# --- FSD50K ----------------------------------------------------------------------------------------

def excerpt_count(seconds):
    """Excerpts of EXCERPT_SECONDS (1 s) that a clip of `seconds` gives, as the authors count FSD50K: one
    per started second, the last one kept when it holds at least half an excerpt (its missing part
    zero-padded), and at least one (a clip shorter than 0.5 s is one padded excerpt): 0.3 s -> 1,
    2.4 s -> 2, 2.5 s -> 3. README (Fidelity notes) shows why this rule and not ceil or floor."""
    return max(1, int(math.floor(seconds / EXCERPT_SECONDS + 0.5)))


def _find_fsd50k_root(root):
    for cand in (root, root / 'FSD50K'):
        if (cand / 'FSD50K.ground_truth').is_dir():
            return cand
    return root


def _read_fsd50k_vocabulary(path, issues):
    """vocabulary.csv: no header, '<index>,<label>,<mid>' per line -> {label: mid}."""
    if not path.is_file():
        issues.append(Issue(str(path), 'not found', 'the labels of dev.csv and eval.csv are used without it',
                            'missing_metadata', fatal=False))
        return {}
    vocab = {}
    with io.StringIO(read_text(path), newline='') as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) != 3 or not row[0].strip().isdigit() or not _MID_RE.fullmatch(row[2].strip()):
                issues.append(Issue(f'{path}:{lineno}', f"expected '<index>,<label>,<mid>', got "
                                    f"{','.join(row)[:60]!r}", 'fix or delete the line', 'malformed_row'))
                continue
            vocab[row[1].strip()] = row[2].strip()
    return vocab


def _read_fsd50k_csv(path, part, issues, counts, vocab):
    """dev.csv (fname,labels,mids,split) or eval.csv (fname,labels,mids); labels and mids are comma lists
    (quoted), ancestors included -> [(fname, targets (indices of the 50 classes), split)], every fname."""
    rows, seen, unknown = [], {}, {}
    need = ['fname', 'labels', 'mids'] + (['split'] if part == 'dev' else [])
    for lineno, where, row, col in _metadata_rows(
            path, path.parent, need, 'use the file of the FSD50K release (FSD50K.ground_truth.zip)', issues,
            fields='comma-separated fields (labels and mids quoted)'):
        fname = row[col['fname']].strip()
        labels = [x.strip() for x in row[col['labels']].split(',') if x.strip()]
        mids = [x.strip() for x in row[col['mids']].split(',') if x.strip()]
        split = row[col['split']].strip() if part == 'dev' else 'test'
        problem = (f'fname {fname!r} is not a file name' if not fname or '/' in fname or '\\' in fname else
                   'no labels' if not labels else
                   f'{len(labels)} labels but {len(mids)} mids' if len(labels) != len(mids) else
                   f'split {split!r} is neither train nor val' if part == 'dev' and split not in (
                       'train', 'val') else
                   f'fname {fname} is already on line {seen[fname]}' if fname in seen else None)
        if problem is None:
            wrong = [(lab, mid) for lab, mid in zip(labels, mids) if lab in vocab and vocab[lab] != mid]
            if wrong:
                lab, mid = wrong[0]
                problem = f'label {lab} has the MID {vocab[lab]} in vocabulary.csv, not {mid}'
        if problem:
            issues.append(Issue(where, problem, 'fix or delete the row', 'malformed_row'))
            continue
        seen[fname] = lineno
        for lab in labels:
            if vocab and lab not in vocab:
                unknown.setdefault(lab, [0, lineno])[0] += 1
        counts['ignored_labels'] += sum(lab not in _FSD50K_INDEX for lab in labels)
        rows.append((fname, sorted({_FSD50K_INDEX[lab] for lab in labels if lab in _FSD50K_INDEX}), split))
    for lab, (n, lineno) in sorted(unknown.items()):
        issues.append(Issue(f'{path}:{lineno}', f'label {lab!r} ({n} rows) is not in vocabulary.csv',
                            'ignored (not one of the 50 classes)' if lab not in _FSD50K_INDEX else
                            'used: it is one of the 50 classes', 'unknown_label', fatal=False))
    return rows


def load_fsd50k(root, skip_bad=False, check_audio=True):
    """FSD50K (the release layout) for the multi-label learner, on the authors' 50 classes: each clip of
    dev.csv / eval.csv with at least one of them (labels include ancestors: a class is on when its name
    is among the clip's labels), cut into 1 s excerpts (excerpt_count), each an item with the clip's
    targets: key '<dev|eval>/<fname>#<k>', segment (k s, 1 s), group the clip. Official split: dev
    'train' rows train, dev 'val' rows validate, eval tests. Every header is read for the clip
    lengths, so check_audio=False does not apply. Not errors (counted): clips with none of the 50
    classes (dropped), labels outside them, audio files not listed."""
    root = _find_fsd50k_root(Path(root))
    gt = root / 'FSD50K.ground_truth'
    issues, counts = [], collections.Counter()
    for name in FSD50K_GROUND_TRUTH.values():
        if not (gt / name).is_file():
            raise DataError([Issue(str(gt / name), 'not found', 'unpack FSD50K.ground_truth.zip there (the loader '
                                   f"needs {LAYOUTS['fsd50k']})", 'missing_metadata')], root, skippable=False)
    vocab = _read_fsd50k_vocabulary(gt / 'vocabulary.csv', issues)
    missing_classes = [c for c in FSD50K_CLASSES if vocab and c not in vocab]
    if missing_classes:
        issues.append(Issue(str(gt / 'vocabulary.csv'), f"{len(missing_classes)} of the 50 classes are not listed "
                            f"({', '.join(missing_classes[:3])})", 'their names are matched in the labels anyway',
                            'unknown_label', fatal=False))
    clips = []  # (part, fname, targets, split, path)
    for part, csv_name in FSD50K_GROUND_TRUTH.items():
        rows = _read_fsd50k_csv(gt / csv_name, part, issues, counts, vocab)
        folder = root / FSD50K_AUDIO[part]
        if not folder.is_dir():
            issues.append(Issue(str(folder), 'audio folder not found', f'unpack FSD50K.{part}_audio.zip there',
                                'missing', count=sum(1 for r in rows if r[1])))
            continue
        for fname, targets, split in rows:
            if not targets:
                counts['dropped_no_class'] += 1
                continue
            clips.append((part, fname, targets, split, folder / f'{fname}.wav'))
        listed = {f'{r[0]}.wav' for r in rows}
        unlisted = sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name not in listed)
        counts['unlisted_files'] += len(unlisted)
        if unlisted:
            issues.append(Issue(str(folder), f"{len(unlisted)} files are not rows of {csv_name} (e.g. "
                                f"{', '.join(unlisted[:3])})", 'ignored', 'unlisted_file', fatal=False))
    infos = []
    ok, rates, chans = _check_files([c[4] for c in clips], issues, True, infos)
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    keys, paths, labels, subset, groups, segments = [], [], [], [], [], []
    info = {part: dict(clips=0, excerpts=0, seconds=0.0) for part in FSD50K_GROUND_TRUTH}
    for (part, fname, targets, split, path), good, header in zip(clips, ok, infos):
        if not good:
            continue
        seconds = header.frames / header.samplerate
        row = np.zeros(len(FSD50K_CLASSES), np.uint8)
        row[targets] = 1
        n = excerpt_count(seconds)
        info[part]['clips'] += 1
        info[part]['excerpts'] += n
        info[part]['seconds'] += seconds
        info[part]['ceil'] = info[part].get('ceil', 0) + max(1, math.ceil(seconds / EXCERPT_SECONDS - 1e-9))
        info[part]['floor'] = info[part].get('floor', 0) + max(1, int(seconds / EXCERPT_SECONDS))
        for k in range(n):
            keys.append(f'{part}/{fname}#{k}')
            paths.append(path)
            labels.append(row)
            subset.append(split)
            groups.append(f'{part}/{fname}')
            segments.append((k * EXCERPT_SECONDS, EXCERPT_SECONDS))
    counts['clips'] = sum(v['clips'] for v in info.values())
    counts['excerpts'] = len(keys)
    ds = Dataset('fsd50k', root, FSD50K_CLASSES, keys, paths,
                 np.array(labels, np.uint8).reshape(-1, len(FSD50K_CLASSES)), np.array(subset, dtype='<U5'),
                 np.array(groups, dtype=object), None, issues, dict(counts), rates, chans,
                 _read_synth_marker(root), segments=np.array(segments, np.float64).reshape(-1, 2))
    ds.info = dict(parts=info, excerpt_seconds=EXCERPT_SECONDS)
    return ds


# --- ESC-50 --------------------------------------------------------------------------------------

def _find_esc50_root(root):
    for cand in (root, root / 'ESC-50-master', root / 'ESC-50'):
        if (cand / 'meta' / 'esc50.csv').is_file():
            return cand
    return root


def load_esc50(root, skip_bad=False, check_audio=True):
    """ESC-50: one clip per row of meta/esc50.csv (filename, fold, target, category, esc10, src_file, take),
    the file audio/<filename>, label = target cross-checked with the category, group = src_file (its
    takes share a fold), 5 folds. Official split: test on one fold (make_split's fold, default 5),
    validate on the fold before it, train on the other three."""
    root = _find_esc50_root(Path(root))
    csv_path = root / 'meta' / 'esc50.csv'
    if not csv_path.is_file():
        raise DataError([Issue(str(csv_path), 'not found', "unpack ESC-50-master.zip; the loader needs "
                               f"{LAYOUTS['esc50']}", 'missing_metadata')], root, skippable=False)
    issues, counts = [], collections.Counter()
    keys, paths, labels, subset, groups, folds = [], [], [], [], [], []
    seen = {}
    for lineno, where, row, col in _metadata_rows(csv_path, root, ['filename', 'fold', 'target'],
                                                  f"use the official meta/esc50.csv (header {','.join(ESC50_HEADER)})",
                                                  issues):
        name = row[col['filename']].strip()
        try:
            fold, target = int(row[col['fold']]), int(row[col['target']])
        except ValueError:
            issues.append(Issue(where, f"fold {row[col['fold']]!r} / target {row[col['target']]!r} are not "
                                'integers', 'fix or delete the row', 'malformed_row'))
            continue
        category = row[col['category']].strip() if 'category' in col else None
        problem, kind = None, 'malformed_row'
        if not 1 <= fold <= 5 or not name or '/' in name:
            problem = f'bad fold {fold} or filename {name!r} (fold must be 1..5)'
        elif not 0 <= target < len(ESC50_CLASSES):
            problem, kind = f'unknown target {target} (valid: 0..49)', 'unknown_class'
        elif category is not None and category != ESC50_CLASSES[target]:
            problem, kind = (f'target {target} is {ESC50_CLASSES[target]!r} but the category column says '
                             f'{category!r}', 'unknown_class')
        elif name in seen:
            problem = f'{name} already listed on line {seen[name]}'
        if problem:
            issues.append(Issue(where, problem, 'fix or delete the row', kind))
            continue
        seen[name] = lineno
        keys.append(name)
        paths.append(root / 'audio' / name)
        labels.append(target)
        subset.append('test' if fold == ESC50_FOLD else 'val' if fold == ESC50_FOLD - 1 else 'train')
        groups.append(row[col['src_file']].strip() if 'src_file' in col else name)
        folds.append(fold)
    _note_unlisted([root / 'audio'] if (root / 'audio').is_dir() else [], paths, 'meta/esc50.csv', counts, issues)
    ok, rates, chans = _check_files(paths, issues, check_audio)
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    ds = Dataset('esc50', root, ESC50_CLASSES, keys, paths, np.array(labels, np.int64),
                 np.array(subset, dtype='<U5'), np.array(groups, dtype=object), np.array(folds, np.int64),
                 issues, dict(counts), rates, chans, _read_synth_marker(root))
    return ds.select(ok)


# --- Your own data: a CSV of paths and labels, or a folder per class --------------------------------

CSV_PATH_COLUMNS = ('path', 'file', 'filename', 'fname', 'filepath', 'audio', 'audio_path')
CSV_LABEL_COLUMNS = ('label', 'labels', 'class', 'category', 'classes')
CSV_SPLITS = {'train': 'train', 'training': 'train', 'val': 'val', 'valid': 'val', 'validation': 'val',
              'dev': 'val', 'test': 'test', 'testing': 'test', 'eval': 'test', 'evaluation': 'test'}
CSV_LABEL_SEP = ';'  # several labels in one cell make the CSV multi-label


def _read_label_csv(path, issues):
    """A CSV of audio paths and labels -> (rows, facts). Columns (header names, any case): a path column
    (one of CSV_PATH_COLUMNS), a label column (CSV_LABEL_COLUMNS: one label, or several separated by
    ';'), optionally 'split' (train / val / test) or 'fold' (a whole number). rows: dicts of lineno,
    path, labels, split, fold; facts: multilabel (any cell holds ';'), split_column, fold_column."""
    path = Path(path)
    if not path.is_file():
        raise DataError([Issue(str(path), 'not found', 'give --csv the CSV of your clips (a path and a label '
                               'column)', 'missing_metadata')], path.parent, skippable=False)
    with io.StringIO(read_text(path), newline='') as f:
        reader = csv.reader(f)
        raw_header = next(reader, [])
        header = [h.strip().lower() for h in raw_header]
        path_col = next((header.index(c) for c in CSV_PATH_COLUMNS if c in header), None)
        label_col = next((header.index(c) for c in CSV_LABEL_COLUMNS if c in header), None)
        if path_col is None or label_col is None:
            raise DataError([Issue(f'{path}:1', f'header {raw_header} has no '
                                   + ('path' if path_col is None else 'label') + ' column',
                                   'name the columns: a path '
                                   f"column ({', '.join(CSV_PATH_COLUMNS)}) and a label column "
                                   f"({', '.join(CSV_LABEL_COLUMNS)}); optional: split or fold", 'malformed_row')],
                            path.parent, skippable=False)
        split_col = header.index('split') if 'split' in header else None
        fold_col = header.index('fold') if 'fold' in header else None
        if split_col is not None and fold_col is not None:
            issues.append(Issue(f'{path}:1', 'both a split and a fold column', 'the split column is used',
                                'malformed_row', fatal=False))
            fold_col = None
        rows, multilabel = [], False
        for lineno, where, row in _rows_of_width(reader, path, len(header), issues,
                                                 todo='fix or delete the row (quote a field that holds a comma)'):
            cell = row[label_col].strip()
            labels = list(dict.fromkeys(x.strip() for x in cell.split(CSV_LABEL_SEP) if x.strip()))
            split = CSV_SPLITS.get(row[split_col].strip().lower()) if split_col is not None else None
            fold = row[fold_col].strip() if fold_col is not None else None
            problem = ('empty path' if not row[path_col].strip() else 'no label' if not labels else
                       f'split {row[split_col].strip()!r} is not train, val or test'
                       if split_col is not None and split is None else
                       f'fold {fold!r} is not a whole number >= 1' if fold is not None and not (
                           fold.isdigit() and int(fold) >= 1) else None)
            if problem:
                issues.append(Issue(where, problem, 'fix or delete the row', 'malformed_row'))
                continue
            multilabel |= CSV_LABEL_SEP in cell
            rows.append(dict(lineno=lineno, path=row[path_col].strip(), labels=labels, split=split,
                             fold=None if fold is None else int(fold)))
    return rows, dict(multilabel=multilabel, split_column=split_col is not None, fold_column=fold_col is not None)


def _typical_seconds(paths, n=16):
    """The median length in s of up to n files spread evenly over `paths` (their headers only), or None
    when none of them can be read: what the csv / folder defaults are chosen from."""
    paths = list(paths)
    pick = sorted({int(i) for i in np.linspace(0, len(paths) - 1, min(n, len(paths)))}) if paths else []
    lengths = []
    for i in pick:
        with contextlib.suppress(Exception):
            info = sf.info(str(paths[i]))
            if info.frames > 0:
                lengths.append(info.frames / info.samplerate)
    return float(np.median(lengths)) if lengths else None


def _under(path, root):
    """Whether the normalised `path` lies inside the folder `root` (both absolute)."""
    try:
        Path(path).relative_to(root)
        return True
    except ValueError:
        return False


def load_csv(root, csv=None, skip_bad=False, check_audio=True):
    """Your own clips, listed in a CSV (_read_label_csv): paths relative to `root` (or absolute, inside
    it), any format and sample rate soundfile reads. Single-label (a label per row) or multi-label
    (several labels joined by ';' anywhere in the file: multi-hot targets). Classes: the labels in the
    order they first appear. Split: the split column, or the fold column (make_split's fold), else
    random (make_split). Problems, one line each: a path outside root, a path listed twice, a label
    that appears only in test rows (nothing to learn it from; with skip_bad the label is dropped from
    those rows), malformed rows, and the audio checks of every loader."""
    if csv is None:
        raise DataError(f"--data csv needs --csv FILE: {LAYOUTS['csv']}")
    root = Path(root)
    root_abs = Path(os.path.abspath(root))
    issues, counts = [], collections.Counter()
    rows, facts = _read_label_csv(csv, issues)
    kept, seen = [], {}
    for r in rows:
        where = f"{csv}:{r['lineno']}"
        p = Path(r['path'])
        full = Path(os.path.normpath(p if p.is_absolute() else root_abs / p))
        if not _under(full, root_abs):
            issues.append(Issue(where, f"path {r['path']!r} is outside the data folder {root}",
                                'move the file under it and give its path relative to it (or point --root at a '
                                'folder that holds every file)', 'outside_root'))
            continue
        key = full.relative_to(root_abs).as_posix()
        if key in seen:
            issues.append(Issue(where, f'{key} is already listed on line {seen[key]}', 'delete the duplicate '
                                'row (a clip with several labels takes them in one cell, separated by ;)',
                                'duplicate'))
            continue
        seen[key] = r['lineno']
        kept.append(dict(r, key=key, full=full))
    if facts['split_column']:  # a label with no training row cannot be learned
        parts = collections.defaultdict(list)
        for r in kept:
            for lab in r['labels']:
                parts[lab].append((r['split'], r['lineno']))
        for lab, where in parts.items():
            if not any(s == 'train' for s, _ in where):
                only = sorted({s for s, _ in where})
                issues.append(Issue(f'{csv}:{where[0][1]}', f"label {lab!r} appears only in {' and '.join(only)} "
                                    f'rows ({len(where)}): nothing to learn it from',
                                    'add training rows for it, or remove it from those rows', 'test_only_label',
                                    count=len(where)))
                for r in kept:
                    r['labels'] = [x for x in r['labels'] if x != lab]
        dropped = [r for r in kept if not r['labels']]
        kept = [r for r in kept if r['labels']]
        counts['dropped_no_class'] += len(dropped)
    classes = list(dict.fromkeys(lab for r in kept for lab in r['labels']))
    index = {c: i for i, c in enumerate(classes)}
    multilabel = facts['multilabel']
    if multilabel:
        labels = np.zeros((len(kept), len(classes)), np.uint8)
        for i, r in enumerate(kept):
            labels[i, [index[x] for x in r['labels']]] = 1
    else:
        labels = np.array([index[r['labels'][0]] for r in kept], np.int64)
    paths = [r['full'] for r in kept]
    ok, rates, chans = _check_files(paths, issues, check_audio)
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    keys = [r['key'] for r in kept]
    ds = Dataset('csv', root, classes, keys, paths, labels,
                 np.array([r['split'] or 'train' for r in kept], dtype='<U5'), np.array(keys, dtype=object),
                 np.array([r['fold'] for r in kept], np.int64) if facts['fold_column'] else None, issues,
                 dict(counts), rates, chans, _read_synth_marker(root))
    ds.info = dict(csv=str(csv), split_column=facts['split_column'],
                   seconds=_typical_seconds([p for p, good in zip(paths, ok) if good]))
    return ds.select(ok)


def _folder_classes(root, issues=None):
    """{class folder name: [audio files under it, sorted]} of a folder-per-class layout; hidden entries are
    skipped; files at the top level, non-audio files and folders without audio are notes."""
    root = Path(root)
    out = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith('.'):
            continue
        if not entry.is_dir():
            if issues is not None:
                issues.append(Issue(str(root / entry.name), 'not in a class folder', 'ignored', 'stray_file',
                                    fatal=False))
            continue
        files = sorted(p for p in Path(entry.path).rglob('*') if p.is_file()
                       and not any(part.startswith('.') for part in p.relative_to(entry.path).parts))
        audio = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
        if issues is not None:
            for p in files:
                if p.suffix.lower() not in AUDIO_EXTENSIONS:
                    issues.append(Issue(str(p), 'stray non-audio file', 'ignored', 'stray_file', fatal=False))
            if not audio:
                issues.append(Issue(str(root / entry.name), 'folder without audio files', 'not a class (ignored)',
                                    'stray_file', fatal=False))
        if audio:
            out[entry.name] = audio
    return out


def load_folder(root, skip_bad=False, check_audio=True):
    """A folder per class (single-label): every audio file under <root>/<class>/ (sub-folders included)
    is a clip of that class; classes in sorted folder order; key '<class>/<path below it>'. No split
    information, so the split is random (make_split)."""
    root = Path(root)
    issues, counts = [], collections.Counter()
    tree = _folder_classes(root, issues)
    if len(tree) < 2:
        raise DataError([Issue(str(root), f"{len(tree)} class folder{'s' * (len(tree) != 1)} with audio files "
                               f"({', '.join(tree) or 'none'}); classes to learn need at least 2",
                               f"the layout is {LAYOUTS['folder']}", 'missing_metadata')], root, skippable=False)
    classes = list(tree)
    keys, paths, labels = [], [], []
    for c, name in enumerate(classes):
        for p in tree[name]:
            keys.append(p.relative_to(root).as_posix())
            paths.append(p)
            labels.append(c)
    ok, rates, chans = _check_files(paths, issues, check_audio)
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    ds = Dataset('folder', root, classes, keys, paths, np.array(labels, np.int64),
                 np.array(['train'] * len(keys), dtype='<U5'), np.array(keys, dtype=object), None, issues,
                 dict(counts), rates, chans, _read_synth_marker(root))
    ds.info = dict(seconds=_typical_seconds([p for p, good in zip(paths, ok) if good]))
    return ds.select(ok)


# --- The authors' phase files (mulimani/CIL-ML-Audio data_txt/) -------------------------------------

def authors_file_names(n_phases):
    """[(train file, test file)] of phases 0 .. n_phases - 1: train_phase_<k>.txt, test_phase_0_1_.._k.txt."""
    return [(f'train_phase_{k}.txt', 'test_phase_' + '_'.join(map(str, range(k + 1))) + '.txt')
            for k in range(n_phases)]


def read_phase_file(path, issues):
    """One of the authors' phase files -> [(line number, path, targets as a list of 0 / 1)]. A record is
    '<path>_[<0. or 1.> ...]': the clip path, '_[', then the target vector as numpy prints a float array,
    which wraps onto continuation lines (24 values on the first line for 30 classes or more). Lines
    are read until the ']' (any wrapping); a record that does not close, or a value other than 0 or 1,
    is a problem of its line."""
    lines = read_text(path).splitlines()
    out, i = [], 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        if not line.strip():
            continue
        cut = line.rfind('_[')
        if cut < 0:
            issues.append(Issue(f'{path}:{lineno}', f"expected '<path>_[0. 1. ...]', got {line.strip()[:60]!r}",
                                'fix or delete the line', 'malformed_row'))
            continue
        clip, vector = line[:cut].strip(), line[cut + 2:]
        while ']' not in vector and i < len(lines) and '_[' not in lines[i]:
            vector += ' ' + lines[i]
            i += 1
        body, closed, rest = vector.partition(']')
        try:
            values = [float(v) for v in body.split()]
        except ValueError:
            values = None
        problem = ('the target vector does not close with ]' if not closed else
                   f"text after the vector: {rest.strip()[:30]!r}" if rest.strip() else
                   'the target vector is empty or not numbers' if not values else
                   'the target vector holds values other than 0 and 1' if any(v not in (0.0, 1.0) for v in values)
                   else 'no path before _[' if not clip else None)
        if problem:
            issues.append(Issue(f'{path}:{lineno}', problem, 'fix or delete the record', 'malformed_row'))
            continue
        out.append((lineno, clip, [int(v) for v in values]))
    return out


def _map_path(text, path_map, base):
    """A path of a phase file on this machine: the longest matching OLD prefix of path_map replaced by
    NEW; a relative path is taken from `base` (the authors' code opens them from its repository root,
    the folder above data_txt/)."""
    for old, new in sorted(path_map or (), key=lambda m: -len(m[0])):
        if text == old or text.startswith(old.rstrip('/') + '/'):
            text = new.rstrip('/') + text[len(old.rstrip('/')):]
            break
    p = Path(text)
    return p if p.is_absolute() else Path(base) / p


def authors_phase_sizes(root):
    """The phase sizes of the authors' phase files in `root` (the length of the first record's vector in
    each train_phase_<k>.txt), without reading the rest; a DataError when there is none."""
    root = Path(root)
    sizes = []
    while (root / f'train_phase_{len(sizes)}.txt').is_file():
        records = read_phase_file(root / f'train_phase_{len(sizes)}.txt', [])
        if not records:
            break
        sizes.append(len(records[0][2]))
    if not sizes:
        raise DataError([Issue(str(root / 'train_phase_0.txt'), 'not found or without a record',
                               f"point --root at the authors' data_txt folder ({LAYOUTS['authors-txt']})",
                               'missing_metadata')], root, skippable=False)
    return sizes


def load_authors_txt(root, path_map=(), skip_bad=False, check_audio=True):
    """The authors' phase files, exactly: phase k trains on the records of train_phase_<k>.txt (targets
    over its new classes) and is tested on those of test_phase_0_.._k.txt (targets over every class seen),
    in their class order; the phase sizes are the vector lengths (30,5,5,5,5 in their repository). A
    clip's targets are merged over its records (a training clip of two phases gets both phases' labels);
    a test record that disagrees with an earlier one of the same clip is a problem. path_map: (OLD, NEW)
    prefixes, for clips that live elsewhere than the files say; every path missing here is ONE line
    (with the --path-map hint), not one per clip. Class names from classes.txt in root (one per line, as
    the authors' data/AudioSet_classes.txt), else 'class 0' .. . make_phases uses the files' sets."""
    root = Path(root)
    sizes = authors_phase_sizes(root)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n_classes = int(bounds[-1])
    issues, counts = [], collections.Counter()
    items = {}  # original path -> dict(part, target, train phases, test phases, where)
    for k, (train_name, test_name) in enumerate(authors_file_names(len(sizes))):
        for part, name, width, lo in (('train', train_name, sizes[k], int(bounds[k])),
                                      ('test', test_name, int(bounds[k + 1]), 0)):
            path = root / name
            if not path.is_file():
                raise DataError([Issue(str(path), 'not found', f'phase {k} needs both {train_name} and '
                                       f'{test_name}', 'missing_metadata')], root, skippable=False)
            in_file = {}
            for lineno, clip, values in read_phase_file(path, issues):
                where = f'{path}:{lineno}'
                if len(values) != width:
                    issues.append(Issue(where, f'{len(values)} target values; phase {k} has {width} in this file',
                                        'fix or delete the record', 'malformed_row'))
                    continue
                if clip in in_file:
                    issues.append(Issue(where, f'{clip} is already on line {in_file[clip]}',
                                        'delete the duplicate', 'duplicate'))
                    continue
                in_file[clip] = lineno
                it = items.setdefault(clip, dict(part=part, target=np.zeros(n_classes, np.uint8),
                                                 seen=np.zeros(n_classes, bool), train=np.zeros(len(sizes), bool),
                                                 test=np.zeros(len(sizes), bool), where=where))
                if it['part'] != part:
                    issues.append(Issue(where, f"{clip} is a {it['part']} clip in {it['where']} and a {part} "
                                        'clip here', 'a clip is either trained or tested on; fix the files',
                                        'duplicate'))
                    it['bad'] = True
                    continue
                v = np.array(values, np.uint8)
                cols = slice(lo, lo + width)
                if (it['seen'][cols] & (it['target'][cols] != v)).any():
                    issues.append(Issue(where, f"the targets of {clip} differ from its record in {it['where']}",
                                        'make the records of one clip agree', 'malformed_row'))
                    it['bad'] = True
                    continue
                it['target'][cols] |= v
                it['seen'][cols] = True
                it[part][k] = True
    base = root.parent
    clips = [(clip, it) for clip, it in items.items() if not it.get('bad')]
    paths = [_map_path(clip, path_map, base) for clip, _ in clips]
    exists = np.array([p.is_file() for p in paths], bool)
    if not exists.all():
        missing = [clip for (clip, _), here in zip(clips, exists) if not here]
        mapped = [str(p) for p, here in zip(paths, exists) if not here]
        prefix = os.path.commonpath(missing) if all(os.path.isabs(m) for m in missing) else ''
        prefix = os.path.dirname(prefix) if Path(prefix).suffix else prefix
        prefix = prefix if prefix not in ('', os.sep) else 'OLD'
        issues.append(Issue(str(root), f"{len(missing)} of the {len(clips)} clips of the phase files do not exist "
                            f'on this machine (e.g. {mapped[0]})', f'if they are elsewhere, map the folder: '
                            f'--path-map {prefix}=NEW (NEW: where this machine has what the files list under '
                            f'{prefix})', 'missing', count=len(missing)))
    ok, rates, chans = exists.copy(), {}, {}
    if check_audio and exists.any():
        good, rates, chans = _check_files([p for p, here in zip(paths, exists) if here], issues, True)
        ok[np.flatnonzero(exists)] = good
    counts['skipped_bad'] = _raise_if_fatal(issues, skip_bad, root)
    names = [f'class {c}' for c in range(n_classes)]
    listed = root / 'classes.txt'
    if listed.is_file():
        given = [line.strip() for line in read_text(listed).splitlines() if line.strip()]
        if len(given) == n_classes:
            names = given
        else:
            issues.append(Issue(str(listed), f'{len(given)} names for the {n_classes} classes of the phase files',
                                'generic names are used', 'malformed_row', fatal=False))
    member = {part: np.array([it[part] for _, it in clips], bool).reshape(-1, len(sizes))
              for part in ('train', 'test')}
    ds = Dataset('authors-txt', root, names, [clip for clip, _ in clips], paths,
                 np.array([it['target'] for _, it in clips], np.uint8).reshape(-1, n_classes),
                 np.array([it['part'] for _, it in clips], dtype='<U5'),
                 np.array([clip for clip, _ in clips], dtype=object), None, issues, dict(counts), rates, chans,
                 _read_synth_marker(root), phase_train=member['train'], phase_test=member['test'])
    ds.info = dict(phase_sizes=list(sizes),
                   records={f: int(member[part][:, k].sum())
                            for k, pair in enumerate(authors_file_names(len(sizes)))
                            for part, f in zip(('train', 'test'), pair)})
    return ds.select(ok)


def describe_source(name, root, csv=None):
    """What the command line needs to know about a csv / folder / authors-txt dataset before loading it
    (to choose the learner and the defaults), read cheaply: no audio is decoded, and only up to 16
    headers are read for the clip length. Returns dict(multilabel, classes (count), seconds (typical
    clip length or None), split_column, folds (sorted, or None), phase_sizes (authors-txt)); a missing
    file or folder is a DataError of one line."""
    root = Path(root)
    if name == 'csv':
        if csv is None:
            raise DataError(f"--data csv needs --csv FILE: {LAYOUTS['csv']}")
        rows, facts = _read_label_csv(csv, [])
        labels = {lab for r in rows for lab in r['labels']}
        if len(labels) < 2:
            raise DataError(f"{csv}: {len(labels)} label{'s' * (len(labels) != 1)} ({', '.join(labels) or 'none'}); "
                            'classes to learn need at least 2')
        folds = sorted({r['fold'] for r in rows}) if facts['fold_column'] else None
        files = [Path(r['path']) if Path(r['path']).is_absolute() else root / r['path'] for r in rows]
        return dict(multilabel=facts['multilabel'], classes=len(labels), seconds=_typical_seconds(files),
                    split_column=facts['split_column'], folds=folds)
    if name == 'folder':
        tree = _folder_classes(root)
        if len(tree) < 2:
            raise DataError(f"{root}: {len(tree)} class folder{'s' * (len(tree) != 1)} with audio files "
                            f"({', '.join(tree) or 'none'}); classes to learn need at least 2 (the layout is "
                            f"{LAYOUTS['folder']})")
        return dict(multilabel=False, classes=len(tree), split_column=False, folds=None,
                    seconds=_typical_seconds([p for files in tree.values() for p in files]))
    if name == 'authors-txt':
        sizes = authors_phase_sizes(root)
        return dict(multilabel=True, classes=sum(sizes), seconds=None, split_column=True, folds=None,
                    phase_sizes=sizes)
    raise ValueError(f'describe_source: {name!r} has a fixed protocol')


# =================================================================================================
# Train / val / test splits (kws_cil.md 2.4) and class-incremental phases


@dataclasses.dataclass
class Split:
    """Indices (into the Dataset) of the train / val / test clips, sorted, plus a hash of their keys."""
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


def _grouped_assign(sizes, order, n, ratios):
    """Walk groups in `order`, assigning each to train while fewer than ratios[0]*n clips are in
    train, then to val while fewer than (ratios[0]+ratios[1])*n, then to test."""
    part, cum = {}, 0
    for g in order:
        part[g] = 0 if cum < ratios[0] * n else 1 if cum < (ratios[0] + ratios[1]) * n else 2
        cum += sizes[g]
    return part


def default_split(ds):
    """The split a dataset uses unless told otherwise: its official one where it has one (AudioSet,
    FSD50K, the authors' phase files, ESC-50's folds, a CSV with a split or fold column), 'random' for
    a CSV without one and for a folder per class (no source to group by), 'grouped' for GSC and US8K."""
    if ds.name in OFFICIAL_ONLY or ds.name == 'esc50':
        return 'official'
    if ds.name == 'csv':
        return 'official' if ds.info.get('split_column') or ds.folds is not None else 'random'
    return 'random' if ds.name == 'folder' else 'grouped'


def _check_split_sizes(ds, need):
    """DataError (one line) naming the classes with fewer than `need` clips."""
    counts = ds.labels.sum(axis=0) if ds.multilabel else np.bincount(ds.labels, minlength=len(ds.classes))
    few = [f'{ds.classes[c]!r} ({int(n)} clip{"s" * int(n != 1)})' for c, n in enumerate(counts) if n < need]
    if few:
        parts = 'train and test' if need == 2 else 'train, val and test'
        raise DataError(f"class{'es' * (len(few) > 1)} {', '.join(few)} of {ds.root} "
                        f"ha{'ve' if len(few) > 1 else 's'} fewer clips than the random split needs ({need}: "
                        f'one each for {parts}); add clips, or give the CSV a split column')


def make_split(ds, method=None, seed=0, ratios=(0.7, 0.1, 0.2), fold=None):
    """Train / val / test split (kws_cil.md 2.4).
    grouped (default for GSC / US8K): sources never cross parts. US8K: per class, its fsIDs in a
      seeded random order go to train until >= 70 % of the class's clips, then val until >= 80 %,
      then test. GSC: the same over speakers, globally. ESC-50: per class over src_file.
    official: GSC lists; US8K folds 1-7 / 8 / 9-10; audioset train TSV / eval TSV (no val); FSD50K
      dev.csv's train / val and eval.csv; the authors' train / test phase files; ESC-50 and a CSV with
      a fold column: test on `fold` (ESC-50: 5, CSV: its last fold), validate on the fold before it
      (cyclically: fold 1 -> the last), train on the others; a CSV's split column.
    random: per class, a seeded random 70/10/20 split of the clips (sources may leak); a multi-label
      CSV: the same over clips. For a CSV or a folder every part gets at least one clip of each class,
      and a class with fewer clips than that is a DataError of one line.
    Group and class orders are sorted before shuffling, so no set or hash order is involved."""
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
    rs = np.random.RandomState(seed)
    part = np.full(len(ds), -1, np.int64)
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
        groups = np.array([str(g) for g in ds.groups], dtype=object)
        # a group that spans classes (never in the real data) stays on the side chosen first
        fixed = {}
        blocks = [np.arange(len(ds))] if ds.name == 'speechcommands' or ds.multilabel else [
            np.flatnonzero(ds.labels == c) for c in range(len(ds.classes))]
        for idx in blocks:
            sizes = collections.Counter(groups[idx])
            names = sorted(sizes)
            order = [names[i] for i in rs.permutation(len(names))]
            pre = [g for g in order if g in fixed]
            assign = _grouped_assign(sizes, pre + [g for g in order if g not in fixed], len(idx), ratios)
            for g in pre:
                assign[g] = fixed[g]
            fixed.update(assign)
            part[idx] = [assign[g] for g in groups[idx]]
    elif method == 'random':
        guard = ds.name in ('csv', 'folder')  # at least one clip of each class in each part
        if guard:
            _check_split_sizes(ds, 2 if ds.multilabel else 3)
        blocks = [np.arange(len(ds))] if ds.multilabel else [
            np.flatnonzero(ds.labels == c) for c in range(len(ds.classes))]
        for idx in blocks:
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
    """Write the split as JSON: method, seed, hash and the clip keys of each part (atomically:
    a temporary file, then a rename, so a concurrent or interrupted writer never leaves half a file)."""
    doc = dict(dataset=ds.name, method=split.method, seed=split.seed, hash=split.hash,
               **{p: [ds.keys[i] for i in getattr(split, p)] for p in ('train', 'val', 'test')})
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(doc, indent=0))
    os.replace(tmp, path)


def load_split(path, ds):
    """Read a split saved by save_split for this Dataset; checks that its hash still matches.
    API for users: reload the split of an earlier run (cil.py saves the split of every single-label
    run as split-*.json in its output folder) to evaluate or compare on exactly the same clips; only
    the tests call it here."""
    try:
        doc = json.loads(read_text(path))
        [doc[k] for k in ('method', 'seed', 'hash', 'train', 'val', 'test')]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f'{path}: not a split written by save_split ({type(e).__name__}: {e}); write it '
                        'again') from None
    index = {k: i for i, k in enumerate(ds.keys)}
    missing = [k for p in ('train', 'val', 'test') for k in doc[p] if k not in index]
    if missing:
        raise DataError([Issue(str(path), f'{len(missing)} clips of the saved split are not in the '
                               f'dataset (e.g. {missing[0]})', 'rebuild the split', 'missing')], skippable=False)
    parts = [np.array(sorted(index[k] for k in doc[p]), np.int64) for p in ('train', 'val', 'test')]
    split = Split(doc['method'], doc['seed'], *parts, split_hash(ds, *parts))
    if split.hash != doc['hash']:
        raise DataError([Issue(str(path), 'hash mismatch', 'rebuild the split', 'malformed_row')], skippable=False)
    return split


def class_order(dataset, how='default', seed=0):
    """Canonical class indices in the order they are learned. 'default': the paper's order (audioset:
    the authors' list; GSC: yes no up ... nine; US8K: classID). 'shuffle': a seeded permutation,
    np.random.RandomState(seed).permutation(n), equal to Mittal's np.random.seed + shuffle."""
    n = len(CLASS_NAMES[dataset]) if isinstance(dataset, str) else int(dataset)
    if how == 'default':
        return list(range(n))
    if how == 'shuffle':
        return [int(c) for c in np.random.RandomState(seed).permutation(n)]
    raise ValueError(f'unknown class order {how!r}; use default or shuffle')


@dataclasses.dataclass
class Phase:
    """Phase k of a class-incremental run. Learned label j (a target column, a logit) is the class
    seen_classes[j]; phase k's classes are labels n_old .. n_seen-1.
    Single-label: *_y are learned labels (int64). Multi-label: *_y are float32 (n, n_seen) multi-hot;
    train_y has only phase-k columns set (old columns 0: the paper ignores the other labels), test_y /
    val_y / joint_y hold every seen class. joint = the AT (joint training) set: train clips of any
    seen class, targets over all seen classes."""
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

    @property
    def n_seen(self):
        return len(self.seen_classes)

    @property
    def n_new(self):
        return len(self.new_classes)

    @property
    def n_old(self):
        return self.n_seen - self.n_new


def default_phase_sizes(n_classes, multilabel):
    """Phases of a dataset without a protocol of its own (csv, folder), in classes: multi-label as the
    multi-label paper (60 % of the classes in the base phase, the rest in 4 equal phases: 30,5,5,5,5
    for 50), single-label 5 equal tasks (as ESC-50's 10,10,10,10,10); earlier phases take the extra
    classes. Fewer phases when there are too few classes."""
    n = int(n_classes)
    if multilabel:
        base = min(n, max(1, int(round(0.6 * n))))
        k = min(4, n - base)
    else:
        base, k = None, max(0, min(5, n // 2) - 1)
    parts = k + 1
    if base is None:
        sizes = [n // parts + (i < n % parts) for i in range(parts)]
    else:
        rest = n - base
        sizes = [base] + [rest // k + (i < rest % k) for i in range(k)] if k else [base]
    return [s for s in sizes if s > 0]


def make_phases(ds, split, order=None, sizes=None):
    """Per-phase train / val / test index sets and targets (multilabel_cil.md Protocol, kws_cil.md 1.1).
    Multi-label: a clip is in phase k's train set iff it carries a phase-k class; test (and val)
    after phase k = clips with at least one seen class. Single-label: train = clips of phase-k
    classes; val / test / joint = clips of all seen classes. The authors' phase files (authors-txt)
    say themselves which clips each phase trains and tests on: those sets are used as they are, in
    their class order and phase sizes."""
    order = list(range(len(ds.classes))) if order is None else [int(c) for c in order]
    if sizes is None:
        sizes = PHASE_SIZES.get(ds.name) or ds.info.get('phase_sizes') or default_phase_sizes(
            len(ds.classes), ds.multilabel)
    sizes = list(sizes)
    if sorted(order) != list(range(len(ds.classes))) or sum(sizes) > len(order) or min(sizes) < 1:
        raise ValueError(f'order must permute the {len(ds.classes)} classes and the phase sizes {sizes} '
                         'must be positive and sum to at most that')
    files = ds.phase_train is not None  # the authors' phase files
    if files and (order != list(range(len(ds.classes))) or sizes != list(ds.info['phase_sizes'])):
        fixed = ','.join(map(str, ds.info['phase_sizes']))
        raise ValueError(f"the authors' phase files fix the class order and the phases ({fixed}): use --phases "
                         f'{fixed} and the default --class-order')
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    phases = []
    if ds.multilabel:
        Y = ds.labels[:, order].astype(np.float32)  # columns in learned order

        def pick(idx, lo, hi):
            return idx[Y[idx, lo:hi].any(axis=1)]
    else:
        learned = np.full(len(ds.classes), -1, np.int64)
        learned[order] = np.arange(len(order))
        lab = learned[ds.labels]

        def pick(idx, lo, hi):
            return idx[(lab[idx] >= lo) & (lab[idx] < hi)]
    for k in range(len(sizes)):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        train, val, test, joint = (pick(split.train, lo, hi), pick(split.val, 0, hi),
                                   pick(split.test, 0, hi), pick(split.train, 0, hi))
        if files:  # the records of the phase's own files
            train, test = split.train[ds.phase_train[split.train, k]], split.test[ds.phase_test[split.test, k]]
            joint = split.train[ds.phase_train[split.train, :k + 1].any(axis=1)]
        if ds.multilabel:
            train_y = Y[train, :hi].copy()
            train_y[:, :lo] = 0.0
            ys = [train_y, Y[val, :hi], Y[test, :hi], Y[joint, :hi]]
        else:
            ys = [lab[train], lab[val], lab[test], lab[joint]]
        phases.append(Phase(k, order[lo:hi], order[:hi], train, ys[0], val, ys[1], test, ys[2], joint,
                            ys[3]))
    return phases


def check_classes(ds, order, n_classes):
    """DataError (one line) naming the classes among the first n_classes of `order` that have no clip
    in ds (e.g. after skipped files), so a run does not learn a class it never sees."""
    empty = [ds.classes[c] for c in order[:n_classes]
             if not (ds.labels[:, c].any() if ds.multilabel else (ds.labels == c).any())]
    if empty:
        raise DataError(f"no clip of {', '.join(empty)} in {ds.root} (after skipped files); restore its clips, "
                        f"or learn fewer classes with --phases")


def check_phases(ds, phases):
    """DataError (one line) at the first phase that cannot be learned or measured from the data.
    Multi-label: each new class of a phase needs a training clip. Single-label: the train part of a
    phase needs a clip of each new class, its val and test parts a clip of each seen class."""
    for ph in phases:
        if ds.multilabel:
            empty = [ds.classes[c] for j, c in enumerate(ph.new_classes) if ph.train_y[:, ph.n_old + j].sum() == 0]
            if empty:
                raise DataError(f"phase {ph.k} has no training clip of {', '.join(empty)} in {ds.root}; "
                                f"check the TSV labels or choose another class order")
            continue
        for part in ('train', 'val', 'test'):
            have = set(np.unique(getattr(ph, part + '_y')).tolist())
            missing = [ds.classes[c] for j, c in enumerate(ph.seen_classes) if j not in have
                       and (part != 'train' or j >= ph.n_old)]
            if missing:
                raise DataError(f"the {part} split of phase {ph.k} has no clip of {', '.join(missing)} "
                                f"in {ds.root}; use more data or another --split")


def resample_note(ds):
    """Speech Commands only: a one-line note (without a 'note: ' prefix) when some clips are not at
    16 kHz and get resampled, else None."""
    other_rates = {sr: n for sr, n in ds.sample_rates.items() if sr != 16000}
    if ds.name != 'speechcommands' or not other_rates:
        return None
    return (f'{sum(other_rates.values())} clips in {ds.root} are not at 16 kHz ({other_rates} Hz: files) and are '
            f'resampled to 16 kHz; `python data.py stats` lists the rates')


# =================================================================================================
# Folders shared by processes: a lock file, and SIGTERM during long builds


class LockBusy(Exception):
    """FolderLock(wait=False) found the folder held by another process (a one-line message)."""


def _pid_alive(pid):
    """Whether a process with this id runs on this host (a zombie, dead but not yet reaped, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:  # Linux: '<pid> (<name>) <state> ...'
            return f.read().rsplit(b')', 1)[1].split()[0] != b'Z'
    except (OSError, IndexError):
        return True


class FolderLock:
    """An exclusive lock on a folder that several processes may work in at once (a generated dataset,
    a feature cache, a run folder). A context manager:

        with FolderLock(folder):        # waits while another process holds it
            ...                         # only this process works in `folder` here

    The lock is the file <folder>/<name> (default 'lock'), created with O_CREAT | O_EXCL and holding
    '<host> <pid>'. Leaving the block (normally, by an exception, by Ctrl-C, or by SIGTERM under
    sigterm_as_interrupt) deletes it. A holder that was killed (kill -9, a crash, a power cut) leaves
    the file behind; the next process then:
      - takes over at once a lock of a process that no longer runs on this host;
      - takes over an empty or unreadable lock file (its writer died between creating and writing
        it) once the file's mtime is `stale_after` seconds old (default 60 s);
      - waits for a lock of a process on another host (a shared file system): it cannot be checked,
        so the line says to delete the file if that process is gone.
    While it waits it says ONE line (`say`, default: stderr), 'waiting for <path> (process <pid> on
    <host>) ...', and polls, every 0.02 s at first and every `poll` seconds after a while; wait=False
    raises LockBusy with that information instead. Taking over goes through a second file,
    <name>.takeover, so two waiters never both delete a stale lock and both enter. The lock is
    released only if the file is still the one this process created. Errors creating the file (a
    read-only folder, a full disk) are raised as the OSError. Limits: a reused pid looks alive (the
    lock is then waited for; the line names the file to delete); hosts are told apart by name, so
    containers that share a host name and a folder but not a pid namespace should not share locks."""

    def __init__(self, folder, wait=True, stale_after=60.0, name='lock', poll=0.5, say=None):
        self.folder, self.wait = Path(folder), wait
        self.stale_after, self.poll = float(stale_after), float(poll)
        self.path = self.folder / name
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._held = None  # (st_dev, st_ino) of the file this process created

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    @property
    def held(self):
        return self._held is not None

    def acquire(self):
        announced, pause = False, min(self.poll, 0.02)
        while not self._create():
            state, who = self._holder()
            if state == 'stale':
                self._take_over()
            elif state == 'held':
                if not self.wait:
                    raise LockBusy(f'{self.path} is held by {who}')
                if not announced:
                    self.say(f'waiting for {self.path} ({who}) ...')
                    announced = True
                time.sleep(pause)
                pause = min(self.poll, 2 * pause)  # short waits end soon, long ones poll every `poll` s
        return self

    def release(self):
        held, self._held = self._held, None
        if held is None:
            return
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == held:
                os.unlink(self.path)
        except OSError:  # gone already, or the folder became read-only: a dead pid is taken over later
            pass

    def _create(self):
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, f'{socket.gethostname()} {os.getpid()}\n'.encode())
            st = os.fstat(fd)
        except BaseException:  # e.g. a full disk: leave no empty lock file behind
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise
        os.close(fd)
        self._held = (st.st_dev, st.st_ino)
        return True

    def _holder(self):
        """('free' | 'stale' | 'held', who) for the lock file as it is now."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 'free', ''
        try:
            with open(self.path, 'rb') as f:
                words = f.read(256).decode('utf-8', 'replace').split()
        except FileNotFoundError:
            return 'free', ''
        except OSError:
            words = []
        if len(words) == 2 and words[1].isdigit():
            host, pid = words[0], int(words[1])
            if host != socket.gethostname():
                return 'held', f'process {pid} on {host}; delete the file if that process no longer runs'
            if not _pid_alive(pid):
                return 'stale', f'process {pid} on {host}, which no longer runs'
            return 'held', (f'process {pid} on {host}; if no command of this project runs there, the pid was '
                            'reused: delete the file')
        if time.time() - st.st_mtime >= self.stale_after:
            return 'stale', 'an empty or unreadable lock file'
        return 'held', (f'an empty or unreadable lock file; taken over once it is {self.stale_after:g} s '
                        'old')

    def _take_over(self):
        guard = self.path.with_name(self.path.name + '.takeover')
        try:
            os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:  # another process is taking over; a guard left by a crash expires
            with contextlib.suppress(OSError):
                if time.time() - os.stat(guard).st_mtime >= max(self.stale_after, 10 * self.poll):
                    os.unlink(guard)
            time.sleep(min(self.poll, 0.05))
            return
        try:
            if self._holder()[0] == 'stale':  # checked again while holding the guard
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(guard)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM (what cluster schedulers and `kill` send) raises KeyboardInterrupt
    in the main thread, so a long build ends the way Ctrl-C ends it: workers stopped, the work done
    so far checkpointed, locks released, one line. Installed only in the main thread and only while
    SIGTERM has its default action: a handler installed by the caller (e.g. one of cil.py for the
    whole run) is left alone. The previous handler is restored after."""
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if install else None
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, previous)


# =================================================================================================
# Front ends and the feature cache

_LOG_MEL_ARGS = ('sr', 'n_fft', 'hop_length', 'n_mels', 'fmin', 'fmax')  # of features.log_mel
FRONTENDS = {  # small dicts: the whole dict is hashed into the cache folder name and kept in the manifest
    'panns': dict(fn='log_mel', **{k: features.LOG_MEL_CONFIG[k] for k in _LOG_MEL_ARGS},
                  seconds=10.0),  # AudioSet, CNN14 / PANNs (features.LOG_MEL_CONFIG): 1001 x 64
    'logmel16k': dict(fn='log_mel', sr=16000, n_fft=512, hop_length=320, n_mels=64, fmin=50.0,
                      fmax=8000.0, seconds=2.0),  # generated AudioSet-like clips (seconds from synth.json)
    # the authors' code (mulimani/CIL-ML-Audio): torchaudio MelSpectrogram defaults (HTK mel, no filter
    # norm, reflect padding) from 20 Hz, then ln(mel + float32 eps); generated data: 16 kHz values
    'authors': dict(fn='log_mel_authors', sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=20.0,
                    fmax=14000.0, seconds=10.0),
    'urbansound8k': dict(fn='urbansound8k_features'),  # 128 x 85 (features.py, kws_cil.md 3.1)
    'speechcommands': dict(fn='speechcommands_features'),  # 32 x 32
}
_RECIPES = {'urbansound8k_features': 'URBANSOUND8K_CONFIG',
            'speechcommands_features': 'SPEECHCOMMANDS_CONFIG'}


def frontend_seconds(clip_seconds):
    """Length of the log-mel input for clips of about `clip_seconds` (csv, folder): the clip length
    rounded up to a whole second, at least 1 s and at most PANNs' 10 s (longer clips are cut)."""
    return float(min(10, max(1, math.ceil(float(clip_seconds) - 1e-6))))


def single_label_frontend(clip_seconds):
    """The small CNN's features for clips of about `clip_seconds` (csv, folder): keyword-length clips
    (up to 1.5 s) the Speech Commands recipe (32 x 32 of 1 s), longer ones the UrbanSound8K recipe
    (128 x 85 of the first 3 s)."""
    return 'speechcommands' if clip_seconds <= 1.5 else 'urbansound8k'


def _generated_16k(ds):
    """True for data generated by this file at its 16 kHz (not at the paper's 32 kHz, synth --sr 32000)."""
    return bool(ds.synthetic) and ds.synthetic.get('sr', SYNTH_SR) < FRONTENDS['panns']['sr']


def default_frontend(ds):
    """The front end a dataset uses unless told otherwise (see frontend_config)."""
    if ds.name in ('audioset', 'authors-txt'):
        return 'logmel16k' if _generated_16k(ds) else 'panns'
    if ds.name == 'fsd50k':
        return 'panns'  # over the 1 s excerpt: 101 x 64
    if ds.name == 'esc50':
        return 'urbansound8k'
    if ds.name in ('csv', 'folder'):
        return 'panns' if ds.multilabel else single_label_frontend(ds.info.get('seconds', 1.0))
    return ds.name


def frontend_config(ds, name=None, seconds=None):
    """The front-end config of a dataset: AudioSet real = 'panns' (32 kHz, 10 s); AudioSet generated
    (synth.json present) at 16 kHz = 'logmel16k' cut / padded to the generated clip length, generated at
    32 kHz (the paper's format) = 'panns' as the real data; US8K and GSC =
    their recipes in features.py (whose own parameter dicts are copied in, so a recipe change
    invalidates the cache). FSD50K: 'panns' over its 1 s excerpts (101 x 64); ESC-50: the US8K recipe;
    the authors' phase files: as AudioSet; csv and folder: see default_frontend, log-mel over
    `seconds` (default: frontend_seconds of the typical clip length); these three also record their
    folder, so two such datasets never share a cache folder."""
    if name is None:
        name = default_frontend(ds)
    if name not in FRONTENDS:
        raise ValueError(f"unknown front end {name!r}; choose one of {', '.join(FRONTENDS)}")
    config = dict(FRONTENDS[name], name=name)
    generated_16k = _generated_16k(ds) and ds.name != 'fsd50k'
    if name == 'authors' and generated_16k:  # the authors' recipe at the generated 16 kHz
        config.update(sr=16000, n_fft=512, fmax=8000.0, seconds=FRONTENDS['logmel16k']['seconds'])
    if name in ('logmel16k', 'authors') and generated_16k and 'seconds' in ds.synthetic:
        config['seconds'] = float(ds.synthetic['seconds'])
    if 'seconds' in config:
        if ds.name == 'fsd50k':
            config['seconds'] = EXCERPT_SECONDS
        elif seconds is not None:
            config['seconds'] = float(seconds)
        elif ds.name in ('csv', 'folder') and ds.info.get('seconds'):
            config['seconds'] = frontend_seconds(ds.info['seconds'])
    if ds.name in ('csv', 'folder', 'authors-txt'):
        config['source'] = str(Path(ds.root).resolve())
    if config['fn'] in _RECIPES:
        recipe = getattr(features, _RECIPES[config['fn']], None)
        if recipe is not None:
            config['recipe'] = json.loads(json.dumps(recipe))
    return config


def frontend_hash(config):
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode('utf-8')).hexdigest()[:12]


def compute_features(y, sr, config):
    """Features of one mono waveform -> float32 (frames, features)."""
    fn = config['fn']
    if fn in ('log_mel', 'log_mel_authors'):
        y = features.resample(y, sr, config['sr'])
        n = int(round(config['seconds'] * config['sr']))
        y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
        if fn == 'log_mel':
            return features.log_mel(y, config['sr'], config['n_fft'], config['hop_length'], config['n_mels'],
                                    config['fmin'], config['fmax'])
        return features.log_mel_authors(y, config['sr'], config['n_fft'], config['hop_length'], config['n_mels'],
                                        config['fmin'], config['fmax'])
    if fn == 'urbansound8k_features':
        return features.urbansound8k_features(y, sr)
    if fn == 'speechcommands_features':
        return features.speechcommands_features(y, sr)
    raise ValueError(f'unknown feature function {fn!r}')


def file_digest(data):
    """Content hash of a file's bytes: sha1 of all of them (OpenSSL's sha1 ran 2x faster than
    blake2b here, ~0.5 ms for a 10 s 32 kHz clip)."""
    return hashlib.sha1(data).hexdigest()


_POOL_PARENT = None  # in a worker of build_cache's pool: the pid of the process that started the pool


def _worker_init(parent):
    """Initializer of build_cache's worker processes. Ctrl-C reaches only the parent, which stops the
    pool; SIGTERM (what pool.terminate sends) ends a worker quietly, whatever handler the parent had
    when it forked; and a worker dies with its parent (Linux: PR_SET_PDEATHSIG; elsewhere each job
    checks the parent first), so a parent killed with kill -9 leaves no orphans that print
    BrokenPipe tracebacks."""
    global _POOL_PARENT
    _POOL_PARENT = parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith('linux'):
        with contextlib.suppress(Exception):
            import ctypes
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


_LAST_FILE = [None, None, None]  # in a worker: (path, stat key, (bytes, digest)) of the file read last


def _read_hashed(path, remember):
    """(bytes, sha1) of a file; with remember, the last file is kept, so the excerpts of one clip (jobs
    that follow each other) read and hash it once."""
    if remember:
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if _LAST_FILE[0] == path and _LAST_FILE[1] == key:
            return _LAST_FILE[2]
    data = Path(path).read_bytes()
    out = (data, file_digest(data))
    if remember:
        _LAST_FILE[:] = [path, key, out]
    return out


def _cache_job(job):
    """Worker: read one file, hash it, and (unless the hash equals `expected`) compute its features
    (of the excerpt `segment` = (start s, length s) when given, else of the whole file).
    Returns (i, features float16 or None, digest, sample rate, problem message or None); features
    are always finite (NaN or Inf is a problem). The digest is the whole file's, excerpt or not."""
    if _POOL_PARENT is not None and os.getppid() != _POOL_PARENT:
        os._exit(0)  # the parent is gone: nobody reads the result
    i, path, config, expected, segment = job
    try:
        data, digest = _read_hashed(path, segment is not None)
    except OSError as e:
        return i, None, None, None, f'cannot read the file ({e.strerror})'
    if expected is not None and digest == expected:
        return i, None, digest, None, None
    try:
        y, sr = decode_audio(data, segment)
        with warnings.catch_warnings():  # noise-only clips (e.g. gun shots) have no pitch to tune to:
            warnings.filterwarnings('ignore', 'Trying to estimate tuning from empty')  # tuning 0, as librosa
            x = compute_features(y, sr, config)
    except AudioProblem as e:
        return i, None, digest, None, str(e)
    except Exception as e:  # a feature function failing on odd audio: still one clean line
        return i, None, digest, None, f'feature computation failed ({type(e).__name__}: {e})'
    if not np.all(np.isfinite(x)):
        return i, None, digest, None, 'features contain NaN or Inf'
    return i, np.clip(x, -65000, 65000).astype(np.float16), digest, sr, None


def usable_cores():
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def _loaded_blas():
    """(get, set) thread-count functions of each OpenBLAS loaded in this process: numpy's and scipy's
    wheels each ship one, under prefixed names (Linux: the shared objects of /proc/self/maps; elsewhere
    none are found)."""
    import ctypes
    try:
        with open('/proc/self/maps') as f:
            paths = sorted({line.split()[-1] for line in f if 'openblas' in line.lower() and '.so' in line})
    except OSError:
        return []
    calls = []
    for path in paths:
        with contextlib.suppress(OSError):
            lib = ctypes.CDLL(path)
            names = [(f'{p}openblas_get_num_threads{s}', f'{p}openblas_set_num_threads{s}')
                     for p in ('', 'scipy_') for s in ('', '64_')]
            calls += [(getattr(lib, g), getattr(lib, n)) for g, n in names if hasattr(lib, n)][:1]
    return calls


@contextlib.contextmanager
def blas_threads(n):
    """While the block runs, numpy's BLAS uses n threads in this process and in the processes it starts
    (forked ones inherit the setting, spawned ones the environment): the feature workers are the
    parallelism, and a BLAS thread pool in each of them oversubscribes the cores. Restored after."""
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
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hms(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class _Progress:
    """'label: done/total clips, rate, elapsed, ETA' on stderr (in place on a terminal)."""

    def __init__(self, total, label, enabled=True, unit='clips'):
        self.total, self.label, self.done, self.t0, self.last = total, label, 0, time.time(), 0.0
        self.unit = unit
        self.enabled, self.tty = enabled and total > 0, sys.stderr.isatty()

    def update(self, n=1):
        self.done += n
        now = time.time()
        final = self.done >= self.total
        if not self.enabled or not (final or now - self.last >= (0.5 if self.tty else 10.0)):
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / max(rate, 1e-9)
        msg = (f'{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, '
               f'elapsed {hms(now - self.t0)}, ETA {hms(eta)}')
        sys.stderr.write(('\r' + msg + '  ' + ('\n' if final else '')) if self.tty else msg + '\n')
        sys.stderr.flush()


@dataclasses.dataclass
class FeatureCache:
    """Features of one Dataset under one front-end config.
    data: memory-mapped float16 (n_rows, T, F); rows[i] = the row of dataset clip i (-1: unusable,
    only with skip_bad). keys[i] / row_hashes[i]: the clip's key and the checksum recorded with its
    row (see verify). stats: computed / reused / rehashed / failed / repaired / verified /
    verify_seconds / seconds / bytes / sample_rates, and note: the line printed about a repair ('' if
    none)."""
    folder: Path
    config: dict
    shape: tuple
    rows: np.ndarray
    data: np.ndarray
    stats: dict
    issues: list
    keys: list = None
    row_hashes: list = None

    @property
    def valid(self):
        return self.rows >= 0

    def read(self, index, dtype=np.float16):
        """Features of dataset clips `index` as one contiguous (n, T, F) array, read from the memory map
        in one go; in the stored float16 unless `dtype` asks for another."""
        rows = self.rows[np.asarray(index, np.int64)]
        if np.any(rows < 0):
            raise ValueError('some clips have no features (skipped as bad); use prepare() or select()')
        return np.ascontiguousarray(self.data[rows], dtype=dtype)

    def get(self, index):
        """Features of dataset clips `index` as float32 (n, T, F): read(index, np.float32)."""
        return self.read(index, np.float32)

    def select(self, index):
        """The cache seen through Dataset.select(index)."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)
        pick = (lambda v: None if v is None else [v[i] for i in idx])  # noqa: E731
        return dataclasses.replace(self, rows=self.rows[idx], keys=pick(self.keys),
                                   row_hashes=pick(self.row_hashes))

    def verify(self, index=None):
        """Check the stored rows of dataset clips `index` (default: every clip with features) against
        the checksums written with them (row_hash: the clip key and the row's bytes), reading the
        file again. For a caller that wants to know the features did not change since build_cache
        opened (and verified) the cache, e.g. before the final evaluation of a long run. Returns the
        number of rows checked; a difference is a DataError of one line naming features.f16 and the
        number of rows (the next build_cache recomputes them). Costs a read and a sha1 of those rows:
        see build_cache."""
        idx = np.flatnonzero(self.valid) if index is None else np.asarray(index, np.int64)
        todo = {(int(self.rows[i]), self.keys[i], self.row_hashes[i]) for i in idx if self.rows[i] >= 0}
        bad = _check_rows(self.folder / 'features.f16', todo, int(np.prod(self.shape)) * 2)
        if bad:
            raise DataError(f"{self.folder / 'features.f16'}: {len(bad)} of the {len(todo)} feature rows "
                            'checked changed since they were written (checksum mismatch); run the command '
                            'again, which recomputes them')
        return len(todo)

    def fingerprint(self):
        """One hash of what the features are: every clip's key and its row's checksum, in dataset order,
        and the front-end config. Equal fingerprints mean the same clips with the same features."""
        h = hashlib.sha1(json.dumps(self.config, sort_keys=True).encode())
        for i in np.flatnonzero(self.valid):
            h.update(f'{self.keys[i]}\0{self.row_hashes[i]}\n'.encode('utf-8', 'surrogateescape'))
        return h.hexdigest()


MANIFEST_VERSION = 2  # 2: per-row checksums (row_hash) and the file's size; a version-1 cache is rebuilt
CHECK_CHUNK_ROWS = 256  # rows read at once (one pread) by a checking thread


def row_hash(key, row):
    """Checksum of one stored feature row: sha1 over the clip key (UTF-8), a NUL byte and the row's
    float16 bytes. The key is part of it, so a row that holds another clip's features (a manifest
    whose rows were reordered) fails the check as a damaged row does. sha1 is OpenSSL's: 1.5 GB/s on
    one core here, against 1.0 for blake2b and 0.7 for md5; sha256 is as fast only with SHA-NI."""
    h = hashlib.sha1(key.encode('utf-8', 'surrogateescape') + b'\0')
    h.update(row)
    return h.hexdigest()


def _check_rows(path, todo, row_bytes, threads=None):
    """The keys of the items of `todo` ((row, key, checksum) triples) whose row in `path` does not
    match its checksum; a row past the end of the file (or a missing file) does not match. Rows are
    read in runs of up to CHECK_CHUNK_ROWS rows (one pread each) by a few threads (pread and sha1
    release the GIL)."""
    if not todo:
        return []
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return sorted(key for _, key, _ in todo)
    chunks = []  # runs of items within CHECK_CHUNK_ROWS rows of their first: never one long read
    for item in sorted(todo):
        if chunks and item[0] < chunks[-1][0][0] + CHECK_CHUNK_ROWS:
            chunks[-1].append(item)
        else:
            chunks.append([item])

    def check(chunk):
        lo = chunk[0][0]
        buf = memoryview(os.pread(fd, (chunk[-1][0] + 1 - lo) * row_bytes, lo * row_bytes))
        bad = []
        for r, key, expected in chunk:
            piece = buf[(r - lo) * row_bytes:(r - lo + 1) * row_bytes]
            if len(piece) < row_bytes or row_hash(key, piece) != expected:
                bad.append(key)
        return bad

    try:
        threads = max(1, min(threads or os.cpu_count() or 1, 8, len(chunks)))
        if threads == 1:
            return [key for chunk in chunks for key in check(chunk)]
        with concurrent.futures.ThreadPoolExecutor(threads) as ex:
            return [key for bad in ex.map(check, chunks) for key in bad]
    finally:
        os.close(fd)


def _read_manifest(path, config):
    """(manifest, None, dropped) when `path` holds a usable manifest of `config`, else (None, why, []),
    with why None when there is no manifest at all (a new cache). A manifest of another format
    version (version 1: no row checksums, so its rows cannot be checked) is not used: that cache is
    rebuilt once in the same folder. Entries without a valid row (not a number, out of range) are
    dropped, their keys listed in `dropped`: their clips get new rows. Two entries on one row are
    sorted out after the rows are checked (build_cache)."""
    def unusable(why):
        return None, why, []

    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        return unusable(None)
    except OSError as e:
        return unusable(f'manifest.json cannot be read ({e.strerror})')
    except ValueError:
        return unusable('manifest.json is not valid JSON')
    if not isinstance(m, dict):
        return unusable('manifest.json is not a manifest')
    if m.get('version') != MANIFEST_VERSION:
        return unusable(f"manifest.json is of format version {m.get('version')}, without row checksums "
                        f"(this data.py writes version {MANIFEST_VERSION})")
    if m.get('config') != config:
        return unusable('manifest.json is of another front-end config')
    try:
        shape, n_rows, entries = [int(s) for s in m['shape']], int(m['n_rows']), m['entries']
        if (m.get('bytes') != n_rows * int(np.prod(shape)) * 2 or n_rows < 0 or not isinstance(entries, dict)
                or min(shape) < 1):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        return unusable('manifest.json is malformed')
    dropped = [key for key, e in entries.items() if not isinstance(e, dict) or not isinstance(e.get('row'), int)
               or not 0 <= e['row'] < n_rows or not isinstance(e.get('fhash', ''), str)]
    for key in dropped:
        del entries[key]
    return m, None, dropped


def _write_manifest(path, manifest):
    """Write the manifest atomically: a temporary file (deleted again when anything fails, e.g. a full
    disk), fsync, rename."""
    tmp = path.with_suffix('.tmp')
    try:
        with open(tmp, 'w') as f:
            f.write(json.dumps(manifest, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _allocate(path, size):
    """Make the file `size` bytes long with its blocks allocated for real (posix_fallocate, or zeros
    written where that is missing), so that a full disk is an OSError here and not a SIGBUS later,
    when the memory map writes into a sparse file. Never shrinks; on failure the file is cut back to
    its old size."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        old = os.fstat(fd).st_size
        if size <= old:
            return
        try:
            fallocate = getattr(os, 'posix_fallocate', None)
            try:
                if fallocate is not None:
                    fallocate(fd, old, size - old)
                    return
            except OSError as e:  # a file system without fallocate: write the zeros
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
            block = bytes(1 << 20)
            os.lseek(fd, old, os.SEEK_SET)
            left = size - old
            while left:
                left -= os.write(fd, block[:min(left, len(block))])
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, old)
            if isinstance(e, OSError) and not e.filename:  # posix_fallocate names no file
                raise OSError(e.errno, e.strerror, str(path)) from None
            raise
    finally:
        os.close(fd)


def cache_folder(ds, cache_root, config=None):
    """<cache_root>/<dataset>-<front-end config hash>: the folder build_cache uses."""
    config = dict(config or frontend_config(ds))
    return Path(cache_root) / f'{ds.name}-{frontend_hash(config)}'


def build_cache(ds, cache_root, config=None, workers=None, skip_bad=False, progress=True,
                checkpoint_every=2000):
    """Compute (or reuse) the features of every clip of `ds`.

    Layout: <cache_root>/<dataset>-<config hash>/ with features.f16 (raw float16 rows of T x F),
    manifest.json (config, shape, the exact size of features.f16, and per clip key: row, relative
    path, size, mtime_ns, sha1 of the audio bytes, sample rate, and the row's checksum row_hash =
    sha1(key, NUL, row bytes)) and, while a process works in it, `lock` (FolderLock: a second process
    waits, saying so in one line, then finds the work done). A different config = a different folder.

    Reuse: a clip is reused when size and mtime_ns match; when only the mtime differs the audio is
    hashed again and an equal hash reuses it (a touched or copied file is not recomputed); otherwise
    it is recomputed into its old row. New clips get new rows at the end: the file grows only then,
    its blocks allocated for real (a full disk is one line, not a SIGBUS).

    Checks, every time the cache is opened (once per command): the size of features.f16 against the
    manifest, and every stored row against its checksum. A row that fails (damaged bytes, a file cut
    short, a manifest that points rows at other clips) is recomputed from its clip, with ONE line on
    stderr naming features.f16, what was wrong and how many clips are recomputed (also in
    stats['note']); a row is never zero-filled and trusted. Non-finite features are refused when
    computed, so they never reach the file. Rows being recomputed are marked in the manifest
    first, so an interrupted build is not taken for damage. A manifest that cannot be read, or one
    of format version 1 (no checksums: its rows cannot be checked), makes the cache be rebuilt in
    the same folder, with the same one line.
    Cost of the check: reading the file and a sha1 of each row (data._check_rows, 2 threads on this
    project's 2-core machine). For 1 GiB of PANNs rows (8,380 clips of 1001 x 64): 0.53 s with the
    file in the page cache; 0.6-0.7 s after dropping it from the cache (posix_fadvise DONTNEED),
    1.1-2.2 s with one thread. Real AudioSet (13 GiB) thus costs about 7-9 s per command, against
    7 to 20 minutes for building it and far more for training; the US8K and GSC caches take well
    under a second. Rows are read in chunks of CHECK_CHUNK_ROWS with pread, not through the memory
    map, so checking does not fault the whole file into this process's mapping.

    Runs over `workers` processes (default: every usable core), each with a one-thread BLAS, in chunks, with progress and ETA on stderr.
    The manifest is checkpointed every `checkpoint_every` clips and when the build is interrupted
    (Ctrl-C, or SIGTERM, which raises KeyboardInterrupt while the build runs unless the caller has
    its own handler), so the same command resumes; the workers end with it, without tracebacks.
    Clips that fail to decode are problems: DataError listing all of them, or with skip_bad rows -1.
    A cache folder that cannot be written (read-only, disk full) is a DataError of one line naming it
    and the cause, leaving no temporary file; a read-only cache that is complete and intact is used
    as it is."""
    t0 = time.time()
    config = dict(config or frontend_config(ds))
    folder = cache_folder(ds, cache_root, config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(folder)
        read_only = None
        try:
            lock.acquire()
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            read_only = e  # used if there is nothing to write
        try:
            with sigterm_as_interrupt(), blas_threads(1):
                return _build_cache(ds, folder, config, workers, skip_bad, progress, checkpoint_every,
                                    read_only, t0)
        finally:
            lock.release()
    except OSError as e:
        what = f'{Path(e.filename).name}: ' if getattr(e, 'filename', None) else ''
        reason, todo = write_failure(e, folder)
        raise DataError(f'cannot write the feature cache in {folder} ({what}{reason}); {todo}, or point --cache '
                        'at another folder') from None


def _build_cache(ds, folder, config, workers, skip_bad, progress, checkpoint_every, read_only, t0):
    mpath, dpath = folder / 'manifest.json', folder / 'features.f16'
    manifest, why, dropped = _read_manifest(mpath, config)
    size = dpath.stat().st_size if dpath.exists() else 0
    fresh = manifest is None
    wrong = [why] if why else []  # what was wrong with the cache, for the one line
    if fresh:
        if size and not why:
            wrong.append('features.f16 has no manifest.json')
        probe = (0.01 * np.random.RandomState(0).standard_normal(16000)).astype(np.float32)
        shape = tuple(compute_features(probe, 16000, config).shape)
        manifest = dict(version=MANIFEST_VERSION, config=config, config_hash=frontend_hash(config),
                        dataset=ds.name, shape=list(shape), dtype='float16', n_rows=0, bytes=0, entries={},
                        content_hash='sha1 of the whole file, checked when size or mtime_ns change',
                        row_hash='sha1 of the clip key, a NUL byte and the row (data.row_hash), checked '
                                 'whenever the cache is opened')
    shape = tuple(manifest['shape'])
    row_bytes = int(np.prod(shape)) * 2
    entries = manifest['entries']
    n_rows = manifest['n_rows']
    recorded = 0 if fresh else manifest['bytes']

    # every stored row against its checksum
    t_check = time.time()
    todo = [(e['row'], key, e['fhash']) for key, e in entries.items() if e.get('fhash')]
    bad = _check_rows(dpath, todo, row_bytes)
    mismatched = set()
    for key in bad:
        e = entries[key]
        if not e.pop('stale', False):  # a stale row was being recomputed when a build stopped: not damage
            mismatched.add(key)
        for field in ('fhash', 'digest'):
            e.pop(field, None)
    for e in entries.values():
        e.pop('stale', None)  # stale rows that passed still hold the features of their recorded digest
    owners = collections.defaultdict(list)
    for key, e in entries.items():
        owners[e['row']].append(key)
    rowless = set(dropped)
    for keys in owners.values():  # a row claimed twice stays with the clip whose checksum it matches
        keep = next((k for k in keys if entries[k].get('fhash')), keys[0]) if len(keys) > 1 else None
        for k in keys if keep else []:
            if k != keep:
                del entries[k]  # this clip gets a new row
                rowless.add(k)
    mismatched -= rowless  # said once, as rowless
    damaged = mismatched | rowless  # clips whose stored row cannot be used: recomputed, with the one line
    check_seconds = time.time() - t_check
    if size < recorded and not dpath.exists():
        wrong.append(f'the file is missing ({recorded} bytes expected)')
    elif size < recorded:
        wrong.append(f'the file is {size} bytes, {recorded} expected (cut short)')
    elif size > recorded and not fresh:
        wrong.append(f'the file is {size} bytes, longer than the {recorded} recorded (cut back)')
    if rowless:
        wrong.append(f'{len(rowless)} manifest entries had no valid row of their own')
    if mismatched:
        wrong.append(f'{len(mismatched)} of its {len(todo)} rows are missing or do not match their checksums')

    rows = np.full(len(ds), -1, np.int64)
    jobs, issues, stats, pending = [], [], collections.Counter(), {}
    for i, (key, path) in enumerate(zip(ds.keys, ds.paths)):
        try:
            st = os.stat(path)
        except OSError:
            issues.append(Issue(str(path), 'file not found', 'restore it, or remove its row / list entry',
                                'missing'))
            continue
        e = entries.get(key)
        done = bool(e and e.get('fhash') and e.get('digest'))  # a row checked above
        if done and e.get('size') == st.st_size and e.get('mtime_ns') == st.st_mtime_ns:
            rows[i] = e['row']
            stats['reused'] += 1
            continue
        expected = e['digest'] if done and e.get('size') == st.st_size else None
        if e is None:
            entries[key] = e = dict(row=n_rows)
            n_rows += 1
        elif done:
            e['stale'] = True  # its row may be overwritten before the next checkpoint
        if key in damaged or (fresh and wrong):
            stats['repaired'] += 1
        # size / mtime / digest are recorded only once the result is in (a checkpoint never
        # marks a clip as done before its row is written)
        pending[i] = dict(size=st.st_size, mtime_ns=st.st_mtime_ns, path=os.path.relpath(path, ds.root))
        jobs.append((i, str(path), config, expected, None if ds.segments is None else tuple(ds.segments[i])))
    note = ''
    if wrong:
        elsewhere = len(damaged - set(ds.keys))
        note = (f"feature cache {dpath}: {'; '.join(wrong)}; recomputing {stats['repaired']} clips"
                + (f' ({elsewhere} more when their clips are used)' if elsewhere else ''))
    changed = bool(fresh or jobs or bad or wrong or n_rows != manifest['n_rows'])
    if changed and read_only is not None:
        raise DataError(f'cannot write the feature cache in {folder} ({read_only.strerror or read_only}), and '
                        f'{len(jobs)} clips need computing' + (f" ({'; '.join(wrong)})" if wrong else '')
                        + '; make it writable, or point --cache at another folder')
    if note:
        print(note, file=sys.stderr, flush=True)

    n_bytes = n_rows * row_bytes
    data = None
    if changed:
        if fresh and dpath.exists():
            dpath.unlink()  # a process still reading the old rows keeps its memory map of them
        elif size > recorded:
            os.truncate(dpath, recorded)
        _allocate(dpath, n_bytes)
        manifest.update(n_rows=n_rows, bytes=n_bytes)
        _write_manifest(mpath, manifest)  # the size, new rows and stale marks, before any row is written
        if jobs:
            data = np.memmap(dpath, dtype=np.float16, mode='r+', shape=(n_rows,) + shape)
    workers = max(1, min(workers or usable_cores(), len(jobs)))
    bar = _Progress(len(jobs), f'cache {folder.name}', progress)
    failed_files = set()
    pool = None
    try:
        if workers == 1:
            results = map(_cache_job, jobs)
        else:
            ctx = multiprocessing.get_context('fork' if 'fork' in multiprocessing.get_all_start_methods()
                                              else 'spawn')
            chunk = max(1, min(16, len(jobs) // (workers * 8)))
            pool = ctx.Pool(workers, initializer=_worker_init, initargs=(os.getpid(),))
            results = pool.imap_unordered(_cache_job, jobs, chunksize=chunk)
        for n_done, (i, x, digest, sr, problem) in enumerate(results, 1):
            key = ds.keys[i]
            e = entries[key]
            action = 're-download or delete it'
            if not problem and x is not None and x.shape != shape:
                problem, action = f'features of shape {x.shape}, expected {shape}', 'report this as a bug'
            elif not problem and x is not None and not np.all(np.isfinite(x)):
                problem = 'features contain NaN or Inf'
            if problem:
                if str(ds.paths[i]) not in failed_files:  # one line per file, not per excerpt
                    failed_files.add(str(ds.paths[i]))
                    issues.append(Issue(str(ds.paths[i]), problem, action, 'unreadable'))
                for field in ('digest', 'fhash', 'stale'):
                    e.pop(field, None)  # recomputed next time
                stats['failed'] += 1
            elif x is None:  # only touched: same bytes, the row stays as it is
                e.update(pending[i], digest=digest)
                e.pop('stale', None)
                rows[i] = e['row']
                stats['rehashed'] += 1
            else:
                x = np.ascontiguousarray(x, dtype=np.float16)
                data[e['row']] = x
                e.update(pending[i], digest=digest, sr=sr, fhash=row_hash(key, x))
                e.pop('stale', None)
                rows[i] = e['row']
                stats['computed'] += 1
            bar.update()
            if n_done % checkpoint_every == 0:
                data.flush()
                _write_manifest(mpath, manifest)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under sigterm_as_interrupt: keep what is done
        if pool is not None:
            pool.terminate()
            pool = None
        if data is not None:
            with contextlib.suppress(OSError):
                data.flush()
                _write_manifest(mpath, manifest)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if data is not None:
        data.flush()
        del data
    used = [entries[k] for k in ds.keys if entries.get(k, {}).get('fhash')]
    sample_rates = {str(r): n for r, n in sorted(collections.Counter(e.get('sr') for e in used
                                                                     if e.get('sr')).items())}
    if changed:
        manifest['sample_rates'] = sample_rates
        _write_manifest(mpath, manifest)
    n_bad = _raise_if_fatal(issues, skip_bad, folder)
    data = (np.memmap(dpath, dtype=np.float16, mode='r', shape=(n_rows,) + shape) if n_rows
            else np.zeros((0,) + shape, np.float16))
    hashes = [entries[k].get('fhash') if rows[i] >= 0 else None for i, k in enumerate(ds.keys)]
    stats = dict({k: stats.get(k, 0) for k in ('computed', 'reused', 'rehashed', 'failed', 'repaired')},
                 total=len(ds), skipped_bad=n_bad, verified=len(todo), verify_seconds=round(check_seconds, 3),
                 seconds=round(time.time() - t0, 3), bytes=n_bytes, sample_rates=sample_rates, note=note)
    return FeatureCache(folder, config, shape, rows, data, stats, issues, list(ds.keys), hashes)


def prepare(name, root, cache_root, frontend=None, skip_bad=False, workers=None, progress=True, seconds=None,
            **options):
    """load_dataset + build_cache, with clips that failed to decode dropped (skip_bad) from both.
    frontend / seconds: see frontend_config; options: the loader's own (csv=..., path_map=...).
    Returns (Dataset, FeatureCache); ds.counts['skipped_bad'] counts every skipped item (a file whose
    excerpts all failed counts once)."""
    ds = load_dataset(name, root, skip_bad=skip_bad, **options)
    cache = build_cache(ds, cache_root, frontend_config(ds, frontend, seconds), workers=workers,
                        skip_bad=skip_bad, progress=progress)
    keep = cache.valid
    if not keep.all():
        failed = len({str(ds.paths[i]) for i in np.flatnonzero(~keep)})
        ds = ds.select(keep)
        ds.counts = dict(ds.counts, skipped_bad=ds.counts.get('skipped_bad', 0) + failed)
        ds.issues = ds.issues + cache.issues
        cache = cache.select(keep)
    return ds, cache


# =================================================================================================
# Generated datasets: the same on-disk layouts, synthetic sounds
#
# Each class is a family of sound events with its own spectro-temporal signature (its parameters
# are drawn once from a fixed seed, so every --seed gives the same task), and every event varies
# within the class (pitch, duration, level, timing). Clips mix events over background noise of
# varying level. Some classes share a family with nearby parameters, so they are confusable.

SYNTH_SR = 16000  # every event is rendered at 16 kHz (and resampled for US8K-like files)
_SIGNATURE_SEED = 1234  # class signatures: fixed for all dataset seeds


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y)))) + 1e-12


def _fade(n, sr, attack=0.01, release=0.03):
    t = np.arange(n) / sr
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.minimum(1.0, (n / sr - t) / max(release, 1e-4))


def _phase(freq, sr=SYNTH_SR):
    return 2 * np.pi * np.cumsum(freq) / sr


def _band_noise(n, rs, fc, bw, sr=SYNTH_SR):
    """White noise through a Gaussian band (centre fc, width bw Hz), unit RMS."""
    X = np.fft.rfft(rs.standard_normal(max(n, 2)))
    f = np.fft.rfftfreq(max(n, 2), 1.0 / sr)
    X *= np.exp(-0.5 * ((f - fc) / max(bw, 1.0)) ** 2)
    y = np.fft.irfft(X, max(n, 2))[:n]
    return y / _rms(y)


def _colored_noise(n, rs, slope):
    """Noise with power ~ 1/f^slope (0 white, 1 pink, 2 brown), unit RMS."""
    X = np.fft.rfft(rs.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SYNTH_SR)
    f[0] = f[1]
    y = np.fft.irfft(X / f ** (slope / 2), n)
    return y / _rms(y)


def _harmonic(f0, tilt_db=6.0, formants=None, odd_only=False, fmax=5000.0, sr=SYNTH_SR):
    """Harmonics of a (time-varying) f0 track up to fmax, -tilt_db per octave, optionally shaped by
    formants ((3, T) centre frequencies, 3 bandwidths). sin(k phi) via powers of exp(i phi)."""
    fmax = min(fmax, 0.45 * sr)
    z = np.exp(1j * _phase(f0, sr))
    zk = np.ones_like(z)
    y = np.zeros(len(f0))
    for k in range(1, 200):
        zk *= z
        fk = k * f0
        if fk.min() >= fmax:
            break
        if odd_only and k % 2 == 0:
            continue
        a = 10 ** (-tilt_db * math.log2(k) / 20) * (fk < fmax)
        if formants is not None:
            F, B = formants
            a = a * sum(1.0 / (1.0 + ((fk - F[i]) / B[i]) ** 2) for i in range(len(B)))
        y += a * zk.imag
    return y


def _decays(n, times, decay, sr=SYNTH_SR):
    """Sum of exponential decays starting at `times` (s): an envelope for clicks and strikes."""
    env = np.zeros(n)
    t = np.arange(n) / sr
    for t0 in times:
        i = int(t0 * sr)
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
    'b': ('stop', 800, 1000, .01), 'n': ('voiced', (250, 1400, 2500), .06),
    'm': ('voiced', (250, 1100, 2300), .06), 'l': ('voiced', (350, 1050, 2700), .05),
    'r': ('voiced', (420, 1250, 1650), .06), 'w': ('voiced', (300, 700, 2200), .05),
    'y': ('voiced', (270, 2300, 3000), .05),
}
# Keywords as rough phone sequences: (onset consonants, vowel start, vowel end, coda consonants).
_WORDS = {
    'yes': [('y', 'e', 'e', 's')], 'no': [('n', 'o', 'u', '')], 'up': [('', 'uh', 'uh', 'p')],
    'down': [('d', 'a', 'u', 'n')], 'left': [('l', 'e', 'e', 'f t')], 'right': [('r', 'a', 'i', 't')],
    'on': [('', 'o', 'o', 'n')], 'off': [('', 'o', 'o', 'f')], 'stop': [('s t', 'o', 'o', 'p')],
    'go': [('g', 'o', 'u', '')], 'zero': [('z', 'i', 'i', ''), ('r', 'o', 'u', '')],
    'one': [('w', 'uh', 'uh', 'n')], 'two': [('t', 'u', 'u', '')], 'three': [('th r', 'i', 'i', '')],
    'four': [('f', 'o', 'er', '')], 'five': [('f', 'a', 'i', 'v')], 'six': [('s', 'I', 'I', 'k s')],
    'seven': [('s', 'e', 'e', 'v'), ('', 'uh', 'uh', 'n')], 'eight': [('', 'e', 'i', 't')],
    'nine': [('n', 'a', 'i', 'n')], 'bed': [('b', 'e', 'e', 'd')], 'bird': [('b', 'er', 'er', 'd')],
}


def _consonant(c, f0, fscale, rs, coda=False):
    kind, *p = _CONSONANTS[c]
    if kind in ('fric', 'vfric'):
        n = int(p[2] * SYNTH_SR * math.exp(rs.normal(0, .15)))
        y = 0.35 * _band_noise(n, rs, p[0] * fscale, p[1])
        if kind == 'vfric':
            y += 0.3 * _harmonic(np.full(n, f0), 12.0)
    elif kind == 'stop':
        closure = np.zeros(int(0.03 * SYNTH_SR) if coda else 0)
        n = int(p[2] * SYNTH_SR) + 40
        burst = 0.6 * _band_noise(n, rs, p[0] * fscale, p[1]) * np.exp(-np.arange(n) / (0.3 * n))
        y = np.concatenate([closure, burst])
    else:
        n = int(p[1] * SYNTH_SR)
        F = np.array(p[0], float)[:, None] * fscale * np.ones(n)
        y = 0.4 * _harmonic(np.full(n, f0), 6.0, (F, (90.0, 110.0, 160.0)))
    return y * _fade(len(y), SYNTH_SR, 0.005, 0.005)


def _syllable(onset, v1, v2, coda, f0, fscale, dur, rs, flat=False):
    parts = [_consonant(c, f0, fscale, rs) for c in onset.split()]
    n = int(dur * SYNTH_SR)
    w = np.linspace(0, 1, n)
    F = (np.outer(_VOWELS[v1], 1 - w) + np.outer(_VOWELS[v2], w)) * fscale
    contour = np.ones(n) if flat else np.linspace(1.06, 0.92, n) * (1 + 0.01 * np.sin(2 * np.pi * 5 * w))
    vowel = _harmonic(f0 * contour, 6.0, (F, (80.0, 100.0, 150.0))) * _fade(n, SYNTH_SR, 0.02, 0.04)
    parts += [vowel / _rms(vowel)] + [_consonant(c, f0, fscale, rs, coda=True) for c in coda.split()]
    return np.concatenate(parts)


def _speech(p, n, rs):
    """Speech-like: random syllables of the class's phones, or the class's fixed keyword."""
    out = np.zeros(n)
    for v in range(p.get('voices', 1)):
        f0 = p['f0'] * math.exp(rs.normal(0, p['jit'])) * (1 if v == 0 else math.exp(rs.normal(0, .3)))
        fscale = p.get('fscale', 1.0) * math.exp(rs.normal(0, .05))
        rate = p.get('rate', 1.0) * math.exp(rs.normal(0, .1))
        if 'word' in p:
            syl = [(*s, 0.2 / rate) for s in _WORDS[p['word']]]
        else:
            syl = []
            for _ in range(int(n / SYNTH_SR * 5 * rate) + 1):
                if p.get('pattern') == 'ha':
                    syl.append(('h', 'a', 'a', '', 0.09 * math.exp(rs.normal(0, .1))))
                else:
                    syl.append((' '.join(rs.choice(p['cons'], rs.randint(0, 2))), rs.choice(p['vowels']),
                                rs.choice(p['vowels']), ' '.join(rs.choice(p['cons'], rs.randint(0, 2))),
                                rs.uniform(0.08, 0.22) / rate))
        pos = int(rs.uniform(0, 0.1) * SYNTH_SR) if v else 0
        for onset, v1, v2, coda, dur in syl:
            s = _syllable(onset, v1, v2, coda, f0 * math.exp(rs.normal(0, .04)), fscale, dur, rs,
                          flat=p.get('mono', False))
            s = s[:max(0, n - pos)]
            out[pos:pos + len(s)] += s * (1.0 if v == 0 else 0.7)
            pos += len(s) + int(rs.uniform(0.01, 0.06) * SYNTH_SR)
            if pos >= n:
                break
    return out


# --- the other event families (p: class signature, n: samples, rs: within-class variation) --------

def _J(rs, sd):
    return math.exp(rs.normal(0, sd))


def _tone(p, n, rs):
    t = np.arange(n) / SYNTH_SR
    vib = p['vib_depth'] * np.sin(2 * np.pi * p['vib_rate'] * _J(rs, .1) * t + rs.uniform(0, 6.3))
    phi = _phase(p['f'] * _J(rs, p['jit']) * (1 + vib))
    y = np.sin(phi) + p['h2'] * np.sin(2 * phi)
    if p.get('pulse'):
        gate = ((t * p['pulse'] * _J(rs, .1)) % 1.0) < p.get('duty', 0.5)
        y *= np.convolve(gate, np.hanning(81) / 40.5, mode='same')
    return y


def _harmonic_event(p, n, rs):
    f0 = p['f0'] * _J(rs, p['jit'])
    t = np.arange(n) / SYNTH_SR
    env = np.ones(n)
    if p.get('notes'):
        note = int(p['note_dur'] * _J(rs, .15) * SYNTH_SR)
        steps = rs.choice([0, 2, 4, 5, 7, 9, 12], n // note + 1)
        track = f0 * 2.0 ** (np.repeat(steps, note)[:n] / 12)
        env = np.tile(np.exp(-np.arange(note) / (p['decay'] * SYNTH_SR)), n // note + 1)[:n]
    else:
        track = np.full(n, f0)
    track = track * (1 + p['vib_depth'] * np.sin(2 * np.pi * p['vib_rate'] * t))
    formants = None
    if p.get('vowel'):
        formants = (np.array(_VOWELS[p['vowel']], float)[:, None] * np.ones(n), (90.0, 110.0, 160.0))
    y = np.zeros(n)
    for v in range(p.get('voices', 1)):
        detune = 1.0 if v == 0 else math.exp(rs.normal(0, .01))
        y += _harmonic(track * detune, p['tilt'], formants, p.get('odd', False))
    return y * env


def _chirp(p, n, rs):
    y, pos = np.zeros(n), int(rs.uniform(0, 0.05) * SYNTH_SR)
    lo, hi = p['f_lo'] * _J(rs, p['jit']), p['f_hi'] * _J(rs, p['jit'])
    while pos < n:
        m = max(16, int(p['sweep'] * _J(rs, .15) * SYNTH_SR))
        up, down = np.geomspace(lo, hi, m), np.geomspace(hi, lo, m)
        f = {'up': up, 'down': down, 'updown': np.concatenate([up[::2], down[1::2]])}[p['dir']]
        seg = (np.sin(_phase(f)) * np.hanning(m))[:n - pos]
        y[pos:pos + len(seg)] += seg
        pos += m + int(p['gap'] * _J(rs, .3) * SYNTH_SR)
    return y


def _noise(p, n, rs):
    t = np.arange(n) / SYNTH_SR
    y = _band_noise(n, rs, p['fc'] * _J(rs, p['jit']), p['bw'] * _J(rs, .1))
    if p.get('am_rate'):
        y *= 1 + p['am_depth'] * np.sin(2 * np.pi * p['am_rate'] * _J(rs, .2) * t + rs.uniform(0, 6.3))
    if p.get('gusts'):
        g = _band_noise(n, rs, 0.0, p['gusts'])
        y *= np.exp(0.7 * g)
    if p.get('bubbles'):
        for t0 in rs.uniform(0, n / SYNTH_SR, int(n / SYNTH_SR * 12)):
            m = int(rs.uniform(0.01, 0.04) * SYNTH_SR)
            i = int(t0 * SYNTH_SR)
            f = np.geomspace(1, 1.6, m) * rs.uniform(500, 2500)
            seg = (2.0 * np.sin(_phase(f)) * np.hanning(m))[:n - i]
            y[i:i + len(seg)] += seg
    if p.get('hum'):
        y += 2.0 * _harmonic(np.full(n, p['hum'] * _J(rs, .02)), 9.0, fmax=2000.0)
    return y


def _clicks(p, n, rs):
    rate, times, t = p['rate'] * _J(rs, .15), [], rs.uniform(0, 0.1)
    while t < n / SYNTH_SR:
        times.append(t)
        if p.get('pairs'):
            times.append(t + p.get('pair_gap', 0.08))
        t += max(0.005, (1 + p['tj'] * rs.normal()) / rate)
    env = _decays(n, times, p['decay'] * _J(rs, .2))
    return _band_noise(n, rs, p['fc'] * _J(rs, p['jit']), p['bw']) * env


def _impulse(p, n, rs):
    count = rs.randint(p['count'][0], p['count'][1] + 1)
    times = np.cumsum(np.r_[rs.uniform(0, 0.05), rs.uniform(0.6, 1.4, count - 1) * p['spacing']])
    decay = p['decay'] * _J(rs, .2)
    y = _band_noise(n, rs, p['fc'] * _J(rs, p['jit']), p['bw']) * _decays(n, times, decay)
    if p['low_mix']:
        t = np.arange(n) / SYNTH_SR
        thump = np.sin(2 * np.pi * p['f_low'] * _J(rs, .1) * t) * _decays(n, times, decay * 1.5)
        y += p['low_mix'] * 3 * thump
    return y


def _fm(p, n, rs):
    t = np.arange(n) / SYNTH_SR
    x = 2 * np.pi * p['mod_rate'] * _J(rs, .1) * t + rs.uniform(0, 6.3)
    mod = {'sine': np.sin(x), 'square': np.sign(np.sin(x)), 'saw': (x / np.pi) % 2 - 1}[p['mod']]
    y = np.sin(_phase(p['fc'] * _J(rs, p['jit']) * 2.0 ** (p['dev'] * mod)))
    return np.tanh(4 * y) if p['wave'] == 'square' else y


def _bark(p, n, rs):
    y, pos = np.zeros(n), int(rs.uniform(0, 0.05) * SYNTH_SR)
    f0 = p['f0'] * _J(rs, p['jit'])
    for _ in range(rs.randint(p['count'][0], p['count'][1] + 1)):
        m = int(p['len'] * _J(rs, .2) * SYNTH_SR)
        if pos + m > n:
            break
        F = np.array([p['formant'], p['formant'] * 2.2, p['formant'] * 3.5])[:, None] * np.ones(m)
        b = _harmonic(f0 * np.linspace(1.15, 0.8, m), 4.0, (F, (300.0, 400.0, 500.0)))
        b = b / _rms(b) + p['noise'] * _band_noise(m, rs, p['formant'], 1500)
        y[pos:pos + m] += b * _fade(m, SYNTH_SR, 0.005, 0.04)
        pos += m + int(p['gap'] * _J(rs, .3) * SYNTH_SR)
    return y


def _am(p, n, rs):
    t = np.arange(n) / SYNTH_SR
    rate, group, period = p['rate'] * _J(rs, .1), p['group'], 1.0 / (p['group_rate'] * _J(rs, .1))
    in_group = (t % period) < group / rate
    gate = in_group * (np.sin(2 * np.pi * rate * t) > 0)
    tone = np.sin(_phase(np.full(n, p['f'] * _J(rs, p['jit']))))
    return tone * np.convolve(gate, np.hanning(17) / 8.5, 'same')


def _bell(p, n, rs):
    t = np.arange(n) / SYNTH_SR
    count = rs.randint(p['count'][0], p['count'][1] + 1)
    times = np.sort(rs.uniform(0, max(0.01, n / SYNTH_SR - 0.3), count))
    f = p['f'] * _J(rs, p['jit'])
    y = np.zeros(n)
    for r, ratio in enumerate(p['ratios']):
        y += np.sin(2 * np.pi * f * ratio * t) * _decays(n, times, p['decay'] / (1 + r)) / (1 + r)
    return y


def _pulse(p, n, rs):
    rate, times, t = p['rate'] * _J(rs, .1), [], rs.uniform(0, 0.2)
    while t < n / SYNTH_SR:
        times += [t, t + p['gap'] * _J(rs, .1)]
        t += 1.0 / rate
    tt = np.arange(n) / SYNTH_SR
    return np.sin(2 * np.pi * p['f_low'] * _J(rs, p['jit']) * tt) * _decays(n, times, 0.05)


def _engine(p, n, rs):
    t = np.arange(n) / SYNTH_SR
    f0 = p['f0'] * _J(rs, p['jit']) * np.linspace(1.0, p['rev'] * _J(rs, .1) if p['rev'] > 1 else 1.0, n)
    y = _harmonic(f0, p['tilt'], odd_only=p.get('odd', False), fmax=3000.0)
    y = y / _rms(y) * (1 + 0.5 * np.sin(_phase(f0 / 2))) + p['noise'] * _band_noise(n, rs, 400, 600)
    return y * (1 + p.get('am_depth', 0.0) * np.sin(2 * np.pi * p.get('am_rate', 8.0) * t))


_EVENTS = {'speech': _speech, 'tone': _tone, 'harmonic': _harmonic_event, 'chirp': _chirp, 'noise': _noise,
           'clicks': _clicks, 'impulse': _impulse, 'fm': _fm, 'bark': _bark, 'am': _am, 'bell': _bell,
           'pulse': _pulse, 'engine': _engine, 'word': _speech}
_DURATIONS = {'speech': (0.6, 1.8), 'tone': (0.2, 1.0), 'harmonic': (0.5, 2.0), 'chirp': (0.3, 1.2),
              'noise': (0.5, 2.0), 'clicks': (0.4, 1.5), 'impulse': (0.3, 1.0), 'fm': (0.4, 1.5),
              'bark': (0.3, 1.2), 'am': (0.5, 1.5), 'bell': (0.6, 1.8), 'pulse': (1.0, 2.0),
              'engine': (0.6, 2.0), 'word': (0.4, 0.9)}


def _draw_signature(family, rs, overrides):
    """Class-level parameters of one family, drawn from ranges; `overrides` pins some of them."""
    logu = lambda a, b: float(np.exp(rs.uniform(np.log(a), np.log(b))))  # noqa: E731
    u = lambda a, b: float(rs.uniform(a, b))  # noqa: E731
    p = {'speech': lambda: dict(f0=logu(100, 260), jit=.08, rate=u(.8, 1.2), fscale=u(.9, 1.1),
                                vowels=list(rs.choice(list(_VOWELS), 4, replace=False)),
                                cons=list(rs.choice(list(_CONSONANTS), 5, replace=False))),
         'word': lambda: dict(f0=150.0, jit=.05),
         'tone': lambda: dict(f=logu(500, 4000), vib_rate=u(0, 8), vib_depth=u(0, .02), h2=u(0, .5),
                              jit=.04),
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
                            mod=str(rs.choice(['sine', 'square', 'saw'])),
                            wave=str(rs.choice(['sine', 'square'])), jit=.05),
         'bark': lambda: dict(f0=logu(300, 900), formant=logu(800, 2500), len=u(.08, .2), gap=u(.1, .35),
                              count=(1, 4), noise=u(.2, .6), jit=.08),
         'am': lambda: dict(f=logu(3000, 6000), rate=u(20, 60), group=int(rs.randint(2, 6)),
                            group_rate=u(1.5, 4), jit=.03),
         'bell': lambda: dict(f=logu(400, 2000), ratios=[1.0] + sorted(rs.uniform(1.5, 6, 4).tolist()),
                              decay=u(.4, 1.5), count=(1, 3), jit=.03),
         'pulse': lambda: dict(rate=u(.9, 1.6), f_low=u(40, 90), gap=u(.12, .2), jit=.08),
         'engine': lambda: dict(f0=logu(25, 90), tilt=u(2, 6), noise=u(.2, .8), rev=1.0, jit=.08),
         }[family]()
    p.update(overrides)
    if family == 'chirp' and not p['f_hi']:
        p['f_hi'] = p['f_lo'] * u(1.3, 2.5)
    if family == 'noise' and not p['bw']:
        p['bw'] = p['fc'] * u(.2, 1.0)
    p['family'] = family
    return p


_AUDIOSET_FAMILIES = {  # display name -> (family, pinned parameters)
    'Generic impact sounds': ('impulse', {}), 'Male speech, man speaking': ('speech', dict(f0=115.0)),
    'Tick': ('clicks', dict(rate=2.0, decay=.003)),
    'Female speech, woman speaking': ('speech', dict(f0=210.0)),
    'Breathing': ('noise', dict(fc=900.0, bw=900.0, am_rate=.3, am_depth=.9)),
    'Music': ('harmonic', dict(notes=True)), 'Mechanisms': ('clicks', dict(rate=12.0)),
    'Background noise': ('noise', dict(fc=2000.0, bw=3000.0)),
    'Wind noise (microphone)': ('noise', dict(fc=150.0, bw=250.0, gusts=1.0)),
    'Bird vocalization, bird call, bird song': ('chirp', {}), 'Human voice': ('speech', {}),
    'Surface contact': ('clicks', dict(rate=6.0)), 'Sound effect': ('fm', {}),
    'Walk, footsteps': ('impulse', dict(count=(2, 5), spacing=.45, fc=600.0, decay=.05)),
    'Laughter': ('speech', dict(pattern='ha', f0=230.0)), 'Tap': ('clicks', dict(rate=3.0, decay=.01)),
    'Child speech, kid speaking': ('speech', dict(f0=290.0, fscale=1.2)),
    'Wind': ('noise', dict(fc=400.0, bw=500.0, gusts=.5)),
    'Clapping': ('clicks', dict(rate=4.0, fc=2000.0, bw=3000.0, decay=.01)),
    'Chirp, tweet': ('chirp', dict(sweep=.05)),
    'Male singing': ('harmonic', dict(f0=140.0, vowel='a', vib_depth=.02, notes=True)),
    'Human sounds': ('speech', dict(voices=2)), 'Clicking': ('clicks', {}),
    'Accelerating, revving, vroom': ('engine', dict(rev=2.0)), 'Conversation': ('speech', dict(voices=2)),
    'Beep, bleep': ('tone', dict(pulse=3.0, duty=.5)), 'Bark': ('bark', {}),
    'Shout': ('speech', dict(f0=260.0)),
    'Female singing': ('harmonic', dict(f0=300.0, vowel='o', vib_depth=.02, notes=True)),
    'Heart sounds, heartbeat': ('pulse', {}), 'Speech': ('speech', {}),
    'Video game sound': ('fm', dict(mod='square', wave='square')), 'Animal': ('bark', dict(f0=200.0)),
    'Dog': ('bark', {}), 'Gunshot, gunfire': ('impulse', dict(decay=.25, fc=1500.0, bw=4000.0)),
    'Hubbub, speech noise, speech babble': ('speech', dict(voices=4)), 'Cricket': ('am', {}),
    'Squeal': ('tone', dict(f=2500.0, vib_rate=6.0, vib_depth=.03)), 'Crowd': ('speech', dict(voices=6)),
    'Water': ('noise', dict(bubbles=True)), 'Computer keyboard': ('clicks', dict(rate=8.0, tj=.5)),
    'Whistling': ('tone', dict(vib_depth=.01)),
    'Crumpling, crinkling': ('clicks', dict(rate=30.0, tj=.6, decay=.003)),
    'Thump, thud': ('impulse', dict(fc=300.0, bw=400.0, low_mix=1.0)),
    'Speech synthesizer': ('speech', dict(mono=True)), 'Bell': ('bell', {}),
    'Choir': ('harmonic', dict(voices=4, vowel='a', notes=True)),
    'Hammer': ('impulse', dict(count=(2, 4), spacing=.4)), 'Motor vehicle (road)': ('engine', {}),
    'Clickety-clack': ('clicks', dict(pairs=True, rate=3.0)),
}
# Generated class frequencies: weight (rank + 1)^-0.9 by this guessed popularity (speech and music
# first, as in AudioSet), so frequencies are long-tailed (about 30:1 between the ends).
_AUDIOSET_FREQUENCY_RANK = [
    'Speech', 'Male speech, man speaking', 'Music', 'Female speech, woman speaking', 'Background noise',
    'Generic impact sounds', 'Human voice', 'Conversation', 'Mechanisms', 'Surface contact',
    'Wind noise (microphone)', 'Tick', 'Breathing', 'Child speech, kid speaking', 'Walk, footsteps',
    'Bird vocalization, bird call, bird song', 'Laughter', 'Tap', 'Sound effect', 'Wind', 'Human sounds',
    'Clapping', 'Chirp, tweet', 'Clicking', 'Male singing', 'Accelerating, revving, vroom', 'Beep, bleep',
    'Bark', 'Shout', 'Female singing', 'Heart sounds, heartbeat', 'Video game sound', 'Animal', 'Dog',
    'Gunshot, gunfire', 'Hubbub, speech noise, speech babble', 'Cricket', 'Squeal', 'Crowd', 'Water',
    'Computer keyboard', 'Whistling', 'Crumpling, crinkling', 'Thump, thud', 'Speech synthesizer', 'Bell',
    'Choir', 'Hammer', 'Motor vehicle (road)', 'Clickety-clack']
# A few real MIDs that are not among the 50 (the real mid_to_display_name.tsv has 456 labels).
AUDIOSET_EXTRA_MIDS = [('/m/01yrx', 'Cat', ('bark', dict(f0=600.0, formant=1800.0))),
                       ('/m/0k4j', 'Car', ('engine', {})),
                       ('/m/06mb1', 'Rain', ('clicks', dict(rate=40.0, tj=.8))),
                       ('/m/0342h', 'Guitar', ('harmonic', dict(notes=True, tilt=8.0))),
                       ('/m/05r5c', 'Piano', ('harmonic', dict(notes=True, tilt=10.0))),
                       ('/m/07yv9', 'Vehicle', ('engine', dict(noise=.8)))]
_URBANSOUND8K_FAMILIES = {
    'air_conditioner': ('noise', dict(fc=300.0, bw=500.0, hum=50.0)),
    'car_horn': ('harmonic', dict(f0=420.0, tilt=3.0, odd=True, vib_depth=0.0)),
    'children_playing': ('speech', dict(f0=300.0, fscale=1.2, voices=3)), 'dog_bark': ('bark', {}),
    'drilling': ('engine', dict(f0=180.0, tilt=2.0, am_depth=.3, am_rate=25.0)),
    'engine_idling': ('engine', dict(f0=35.0, am_depth=.3, am_rate=12.0)),
    'gun_shot': ('impulse', dict(decay=.25, count=(1, 3))),
    'jackhammer': ('clicks', dict(rate=18.0, fc=1500.0, bw=3000.0, decay=.02)),
    'siren': ('fm', dict(fc=900.0, mod_rate=.4, dev=.6, mod='sine', wave='sine')),
    'street_music': ('harmonic', dict(notes=True, voices=2)),
}


# Generated FSD50K: each class's MID, parents (FSD50K labels carry every ancestor: a Dog clip is also
# Domestic_animals_and_pets and Animal) and sound family. Four classes outside the 50 (Musical_instrument,
# which only ever comes as an ancestor, and three whose clips have none of the 50, so the loader drops them).
_FSD50K_TABLE = {  # name: (MID, parents, (family, pinned parameters))
    'Music': ('/m/04rlf', (), ('harmonic', dict(notes=True))),
    'Musical_instrument': ('/m/04szw', ('Music',), None),
    'Plucked_string_instrument': ('/m/0fx80y', ('Musical_instrument',), ('harmonic', dict(notes=True, decay=.3))),
    'Guitar': ('/m/0342h', ('Plucked_string_instrument',), ('harmonic', dict(notes=True, tilt=8.0))),
    'Electric_guitar': ('/m/02sgy', ('Guitar',), ('harmonic', dict(notes=True, tilt=4.0, odd=True))),
    'Acoustic_guitar': ('/m/042v_gx', ('Guitar',), ('harmonic', dict(notes=True, tilt=9.0, decay=.2))),
    'Keyboard_(musical)': ('/m/05148p4', ('Musical_instrument',), ('harmonic', dict(notes=True, tilt=10.0))),
    'Piano': ('/m/05r5c', ('Keyboard_(musical)',), ('harmonic', dict(notes=True, tilt=10.0, decay=.5))),
    'Percussion': ('/m/0l14md', ('Musical_instrument',), ('impulse', dict(count=(2, 5), spacing=.25))),
    'Drum': ('/m/026t6', ('Percussion',), ('impulse', dict(count=(2, 4), low_mix=1.0, fc=200.0))),
    'Snare_drum': ('/m/06rvn', ('Drum',), ('impulse', dict(count=(2, 4), fc=2000.0, bw=3000.0, decay=.08))),
    'Cymbal': ('/m/01qbl', ('Percussion',), ('noise', dict(fc=6000.0, bw=3000.0, am_rate=.5))),
    'Hi-hat': ('/m/03qtq', ('Cymbal',), ('clicks', dict(rate=8.0, fc=6500.0, bw=2000.0, decay=.02))),
    'Brass_instrument': ('/m/01kcd', ('Musical_instrument',), ('harmonic', dict(f0=300.0, tilt=3.0))),
    'Trumpet': ('/m/07gql', ('Brass_instrument',), ('harmonic', dict(f0=450.0, tilt=3.0, vib_depth=.01))),
    'Bowed_string_instrument': ('/m/0l14_3', ('Musical_instrument',), ('harmonic', dict(f0=300.0, vib_depth=.02))),
    'Wind_instrument_and_woodwind_instrument': ('/m/085jw', ('Musical_instrument',),
                                                ('harmonic', dict(f0=500.0, tilt=10.0, odd=True))),
    'Bell': ('/m/0395lw', (), ('bell', {})),
    'Singing': ('/m/015lz1', ('Human_voice', 'Music'), ('harmonic', dict(vowel='a', notes=True, vib_depth=.02))),
    'Animal': ('/m/0jbk', (), ('bark', dict(f0=200.0))),
    'Domestic_animals_and_pets': ('/m/068hy', ('Animal',), ('bark', dict(f0=600.0, formant=1800.0))),
    'Dog': ('/m/0bt9lr', ('Domestic_animals_and_pets',), ('bark', {})),
    'Livestock_and_farm_animals_and_working_animals': ('/m/0ch8v', ('Animal',),
                                                       ('bark', dict(f0=150.0, formant=900.0, noise=.6))),
    'Wild_animals': ('/m/01280g', ('Animal',), ('am', {})),
    'Bird': ('/m/015p6', ('Wild_animals',), ('chirp', {})),
    'Bird_vocalization_and_bird_call_and_bird_song': ('/m/020bb7', ('Bird',), ('chirp', dict(sweep=.05))),
    'Human_voice': ('/m/09l8g', (), ('speech', {})),
    'Speech': ('/m/09x0r', ('Human_voice',), ('speech', dict(f0=150.0))),
    'Laughter': ('/m/01j3sz', ('Human_voice',), ('speech', dict(pattern='ha', f0=230.0))),
    'Respiratory_sounds': ('/m/09hlz4', (), ('noise', dict(fc=900.0, bw=900.0, am_rate=.3, am_depth=.9))),
    'Fart': ('/m/02_nn', (), ('engine', dict(f0=70.0, noise=.4))),
    'Hands': ('/m/0k65p', (), ('clicks', dict(rate=4.0, fc=2000.0, bw=3000.0, decay=.01))),
    'Human_group_actions': ('/t/dd00012', (), ('speech', dict(voices=4))),
    'Vehicle': ('/m/07yv9', (), ('engine', dict(noise=.8))),
    'Motor_vehicle_(road)': ('/m/012f08', ('Vehicle',), ('engine', {})),
    'Car': ('/m/0k4j', ('Motor_vehicle_(road)',), ('engine', dict(f0=40.0, rev=1.5))),
    'Rail_transport': ('/m/06d_3', ('Vehicle',), ('clicks', dict(pairs=True, rate=3.0))),
    'Engine': ('/m/02mk9', (), ('engine', dict(f0=30.0, am_depth=.3, am_rate=12.0))),
    'Domestic_sounds_and_home_sounds': ('/t/dd00071', (), ('clicks', dict(rate=6.0))),
    'Door': ('/m/02dgv', ('Domestic_sounds_and_home_sounds',), ('impulse', dict(fc=300.0, bw=400.0, low_mix=.5))),
    'Water': ('/m/0838f', (), ('noise', dict(bubbles=True))),
    'Rain': ('/m/06mb1', ('Water',), ('clicks', dict(rate=40.0, tj=.8))),
    'Thunderstorm': ('/m/0jb2l', (), ('noise', dict(fc=300.0, bw=400.0, gusts=.5))),
    'Thunder': ('/m/0ngt1', ('Thunderstorm',), ('impulse', dict(decay=.3, fc=200.0, low_mix=1.0))),
    'Liquid': ('/m/04k94', (), ('noise', dict(bubbles=True, fc=800.0))),
    'Glass': ('/m/039jq', (), ('bell', dict(f=2000.0))),
    'Tools': ('/m/07k1x', (), ('clicks', dict(rate=8.0, tj=.3))),
    'Mechanisms': ('/t/dd00077', (), ('clicks', dict(rate=12.0))),
    'Alarm': ('/m/07pp_mv', (), ('tone', dict(pulse=3.0, duty=.5))),
    'Telephone': ('/m/07cx4', ('Alarm',), ('am', dict(f=1000.0))),
    'Explosion': ('/m/014zdl', (), ('impulse', dict(decay=.25, fc=1500.0, bw=4000.0))),
    'Crumpling_and_crinkling': ('/t/dd00112', (), ('clicks', dict(rate=30.0, tj=.6, decay=.003))),
    'Walk_and_footsteps': ('/m/07pbtc8', (), ('impulse', dict(count=(2, 5), spacing=.45, fc=600.0, decay=.05))),
    'Wind': ('/m/03m9d0z', (), ('noise', dict(fc=150.0, bw=250.0, gusts=1.0))),
}
FSD50K_EXTRA = [name for name in _FSD50K_TABLE if name not in _FSD50K_INDEX]
_ESC50_FAMILIES = {
    'dog': ('bark', {}), 'rooster': ('harmonic', dict(f0=550.0, vowel='a', vib_depth=.03)),
    'pig': ('bark', dict(f0=150.0, formant=700.0, noise=.6)), 'cow': ('harmonic', dict(f0=120.0, vowel='o')),
    'frog': ('am', dict(f=900.0, rate=25.0)), 'cat': ('bark', dict(f0=600.0, formant=1800.0, len=.4)),
    'hen': ('bark', dict(f0=400.0, formant=1500.0, len=.1)), 'insects': ('am', dict(f=4000.0)),
    'sheep': ('harmonic', dict(f0=250.0, vowel='e', vib_depth=.05)), 'crow': ('bark', dict(f0=500.0, noise=.8)),
    'rain': ('clicks', dict(rate=40.0, tj=.8)), 'sea_waves': ('noise', dict(fc=500.0, bw=800.0, am_rate=.2)),
    'crackling_fire': ('clicks', dict(rate=15.0, tj=.7, decay=.004)),
    'crickets': ('am', dict(f=4500.0, rate=40.0)),
    'chirping_birds': ('chirp', {}), 'water_drops': ('noise', dict(bubbles=True, fc=300.0)),
    'wind': ('noise', dict(fc=150.0, bw=250.0, gusts=1.0)),
    'pouring_water': ('noise', dict(bubbles=True, fc=2000.0)),
    'toilet_flush': ('noise', dict(fc=700.0, bw=900.0, gusts=.4)),
    'thunderstorm': ('impulse', dict(decay=.3, fc=200.0, low_mix=1.0)),
    'crying_baby': ('harmonic', dict(f0=420.0, vowel='ae', vib_depth=.03)), 'sneezing': ('noise', dict(fc=3000.0)),
    'clapping': ('clicks', dict(rate=4.0, fc=2000.0, bw=3000.0, decay=.01)),
    'breathing': ('noise', dict(fc=900.0, bw=900.0, am_rate=.3, am_depth=.9)),
    'coughing': ('impulse', dict(count=(1, 3), fc=800.0, bw=1500.0, decay=.12)),
    'footsteps': ('impulse', dict(count=(2, 5), spacing=.45, fc=600.0, decay=.05)),
    'laughing': ('speech', dict(pattern='ha', f0=230.0)),
    'brushing_teeth': ('noise', dict(fc=4000.0, am_rate=2.0)),
    'snoring': ('engine', dict(f0=60.0, noise=.6)), 'drinking_sipping': ('noise', dict(bubbles=True, fc=1200.0)),
    'door_wood_knock': ('impulse', dict(count=(2, 4), fc=500.0, decay=.04)),
    'mouse_click': ('clicks', dict(rate=2.0, decay=.003)), 'keyboard_typing': ('clicks', dict(rate=8.0, tj=.5)),
    'door_wood_creaks': ('fm', dict(fc=600.0, mod='saw')), 'can_opening': ('impulse', dict(fc=3000.0, decay=.05)),
    'washing_machine': ('engine', dict(f0=45.0, am_depth=.5, am_rate=1.0)),
    'vacuum_cleaner': ('noise', dict(fc=1500.0, bw=2000.0, hum=120.0)), 'clock_alarm': ('tone', dict(pulse=6.0)),
    'clock_tick': ('clicks', dict(rate=2.0, decay=.003, tj=.02)), 'glass_breaking': ('bell', dict(f=2500.0)),
    'helicopter': ('engine', dict(f0=25.0, am_depth=.8, am_rate=20.0)),
    'chainsaw': ('engine', dict(f0=110.0, rev=1.3)),
    'siren': ('fm', dict(fc=900.0, mod_rate=.4, dev=.6, mod='sine', wave='sine')),
    'car_horn': ('harmonic', dict(f0=420.0, tilt=3.0, odd=True)), 'engine': ('engine', {}),
    'train': ('clicks', dict(pairs=True, rate=3.0)), 'church_bells': ('bell', dict(f=500.0)),
    'airplane': ('noise', dict(fc=600.0, bw=1500.0, hum=90.0)),
    'fireworks': ('impulse', dict(decay=.25, count=(2, 4))),
    'hand_saw': ('noise', dict(fc=3000.0, am_rate=3.0, am_depth=.9)),
}


def class_signatures(kind):
    """The fixed event recipe of every class of a generated dataset (list, canonical class order)."""
    rs = np.random.RandomState(_SIGNATURE_SEED)
    if kind == 'audioset':
        table = ([_AUDIOSET_FAMILIES[name] for name, _ in AUDIOSET_CLASSES]
                 + [family for _, _, family in AUDIOSET_EXTRA_MIDS])
    elif kind == 'urbansound8k':
        table = [_URBANSOUND8K_FAMILIES[name] for name in URBANSOUND8K_CLASSES]
    elif kind == 'speechcommands':
        table = [('word', dict(word=w)) for w in SPEECHCOMMANDS_WORDS + ['bed', 'bird']]
    elif kind == 'fsd50k':  # the 50 classes, then FSD50K_EXTRA (Musical_instrument: never an event)
        table = [_FSD50K_TABLE[name][2] or ('harmonic', {}) for name in FSD50K_CLASSES + FSD50K_EXTRA]
    elif kind == 'esc50':
        table = [_ESC50_FAMILIES[name] for name in ESC50_CLASSES]
    else:
        raise ValueError(f'unknown kind {kind!r}')
    return [_draw_signature(fam, rs, pinned) for fam, pinned in table]


def render_event(sig, seconds, rs):
    """One event of a class: unit-RMS waveform (16 kHz) of about `seconds`, faded in and out."""
    n = max(64, int(seconds * SYNTH_SR))
    y = _EVENTS[sig['family']](sig, n, rs)[:n]
    y = np.pad(y, (0, n - len(y))) * _fade(n, SYNTH_SR, 0.005, 0.02)
    return y / _rms(y)


def _background(n, rs):
    """Background noise of random colour (white .. brown), sometimes with mains hum; unit RMS."""
    y = _colored_noise(n, rs, rs.uniform(0.3, 1.8))
    if rs.rand() < 0.3:
        y += rs.uniform(0.2, 1.0) * _harmonic(np.full(n, rs.choice([50.0, 60.0])), 10.0, fmax=1000.0)
    return y / _rms(y)


def _mix(events, n, rs, noise_db):
    """events: [(waveform, onset sample, level dB)] over background noise at noise_db (dBFS RMS)."""
    y = _background(n, rs) * 10 ** (noise_db / 20)
    for x, i, level in events:
        x = x[:max(0, n - i)]
        y[i:i + len(x)] += x * 10 ** (level / 20)
    peak = np.abs(y).max()
    return (y * (0.95 / peak if peak > 0.95 else 1.0)).astype(np.float32)


def _zero_peak_timestamp(path):
    """libsndfile writes a PEAK chunk with the current time into float WAVs; zero it so that the
    same seed gives byte-identical files."""
    b = bytearray(Path(path).read_bytes())
    i = b.find(b'PEAK', 12, 4096)
    if i >= 0:
        b[i + 12:i + 16] = bytes(4)  # 'PEAK', size, version, timestamp
        Path(path).write_bytes(bytes(b))


def _write_csv(path, rows, header=None):
    """A metadata CSV of a generated dataset: the header (if any), then the rows; Unix line ends."""
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        if header is not None:
            w.writerow(header)
        w.writerows(rows)


def _write_json(path, doc):
    """Write JSON atomically (a temporary file, then a rename): synth.json, written last by each
    generator, is then either absent or whole, never half a file."""
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    try:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + '\n')
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def synth_audioset(out, seed=0, n_train=1500, n_eval=500, seconds=2.0, missing=0.02, sr=SYNTH_SR, progress=True):
    """AudioSet-strong-like data: 50 classes (real MIDs) + 6 extra MIDs, 1-5 overlapping events per clip
    with long-tailed class frequencies, strong-label TSVs, mid_to_display_name.tsv, clips in
    train/ and eval/ (mostly Y<segment_id>.wav, some <segment_id>.wav and .flac); a fraction
    `missing` of the clips is not written (failed downloads). Files are mono PCM_16 at `sr`: the default
    16 kHz is the CPU-sized stand-in (front end 'logmel16k'); seconds=10, sr=32000 is the paper's clip
    format, read with the PANNs front end (1001 x 64). The sounds are rendered at 16 kHz and resampled,
    so nothing lies above 8 kHz."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)  # written last: the folder is complete only then
    rs = np.random.RandomState(seed)
    sigs = class_signatures('audioset')
    mids = [m for _, m in AUDIOSET_CLASSES] + [m for m, _, _ in AUDIOSET_EXTRA_MIDS]
    n50 = len(AUDIOSET_CLASSES)
    rank = np.array([_AUDIOSET_FREQUENCY_RANK.index(name) for name, _ in AUDIOSET_CLASSES])
    weights = (rank + 1.0) ** -0.9
    weights /= weights.sum()
    alphabet = np.array(list('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'))
    n = int(round(seconds * SYNTH_SR))
    used_ids = set()
    bar = _Progress(n_train + n_eval, f'synth audioset -> {out}', progress)
    for part, count in (('train', n_train), ('eval', n_eval)):
        (out / part).mkdir(parents=True, exist_ok=True)
        rows = ['\t'.join(AUDIOSET_HEADER)]
        cover = max(1, min(4, count // 100)) * n50  # the first clips cover every class
        for j in range(count):
            ytid = ''.join(rs.choice(alphabet, 11))
            if j == 0:
                ytid = '-' + ytid[1:5] + '_' + ytid[6:]  # ids may start with '-' and contain '_'
            sid = f'{ytid}_{rs.randint(0, 300) * 1000}'
            if sid in used_ids:
                continue
            used_ids.add(sid)
            n_ev = rs.choice([1, 2, 3, 4, 5], p=[.35, .3, .18, .11, .06])
            classes = list(rs.choice(n50, n_ev, p=weights))
            if j < cover:
                classes[0] = j % n50
            if rs.rand() < 0.1:
                classes.append(n50 + rs.randint(len(AUDIOSET_EXTRA_MIDS)))
            if j >= cover and rs.rand() < 0.02:
                classes = [n50 + rs.randint(len(AUDIOSET_EXTRA_MIDS))]  # none of the 50 classes
            events, tsv_rows = [], []
            for c in classes:
                dur = min(seconds, rs.uniform(*_DURATIONS[sigs[c]['family']]))
                t0 = rs.uniform(0, seconds - dur) if seconds > dur else 0.0
                x = render_event(sigs[c], dur, rs)
                events.append((x, int(t0 * SYNTH_SR), rs.uniform(-28, -12)))
                tsv_rows.append((round(t0, 3), round(min(t0 + dur, seconds), 3), mids[c]))
            y = _mix(events, n, rs, rs.uniform(-50, -25))
            for t0, t1, mid in sorted(tsv_rows):
                rows.append(f'{sid}\t{t0:.3f}\t{t1:.3f}\t{mid}')
            r = rs.rand()
            if j >= cover and r < missing:
                pass  # a clip that failed to download: rows, no file
            elif r < missing + 0.05:
                _write_audio(out / part / f'{sid}.wav', y, sr)
            elif r < missing + 0.10:
                _write_audio(out / part / f'Y{sid}.flac', y, sr, fmt='FLAC')
            else:
                _write_audio(out / part / f'Y{sid}.wav', y, sr)
            bar.update()
        (out / AUDIOSET_TSV[part]).write_text('\n'.join(rows) + '\n', encoding='utf-8')
    names = sorted([(m, name) for name, m in AUDIOSET_CLASSES]
                   + [(m, name) for m, name, _ in AUDIOSET_EXTRA_MIDS])  # sorted by MID, no header
    (out / 'mid_to_display_name.tsv').write_text(''.join(f'{m}\t{name}\n' for m, name in names),
                                                 encoding='utf-8')
    (out / 'README.md').write_text('Generated AudioSet-strong-like data (python data.py synth --kind '
                                   'audioset). Not real audio.\n')
    _write_json(out / 'synth.json', dict(kind='audioset', seed=seed, n_train=n_train, n_eval=n_eval,
                                         seconds=seconds, sr=sr, missing=missing,
                                         generator='data.py synth'))  # last: marks the folder complete
    return out


def synth_speechcommands(out, seed=0, speakers=30, max_reps=3, other_words=('bed', 'bird'),
                         noise_seconds=10.0, progress=True):
    """Speech-Commands-like data: <word>/<speaker>_nohash_<n>.wav (<= 1 s, 16 kHz, PCM_16) for the 20
    core words and a few other words (of bed, bird), validation / testing lists by the official SHA-1
    rule (speaker ids drawn so that 10 % / 10 % of the speakers fall in each), _background_noise_/.
    Each speaker (f0, vocal-tract scale, speaking rate) says each core word 1..max_reps times."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)  # written last: the folder is complete only then
    rs = np.random.RandomState(seed)
    sigs = dict(zip(SPEECHCOMMANDS_WORDS + ['bed', 'bird'], class_signatures('speechcommands')))
    n_val = n_test = max(int(speakers >= 3), int(round(0.1 * speakers)))
    want = ['validation'] * n_val + ['testing'] * n_test + ['training'] * (speakers - n_val - n_test)
    ids = []  # (speaker id, voice traits)
    for bucket in [want[i] for i in rs.permutation(speakers)]:
        while True:
            h = '%08x' % rs.randint(0, 2 ** 32, dtype=np.int64)
            if h not in [s for s, _ in ids] and gsc_list_of(h + '_nohash_0.wav') == bucket:
                break
        male = rs.rand() < 0.5
        ids.append((h, dict(f0=float(rs.uniform(85, 150) if male else rs.uniform(165, 260)),
                            fscale=float(rs.uniform(0.88, 1.0) if male else rs.uniform(1.0, 1.18)),
                            rate=float(rs.uniform(0.8, 1.25)))))
    words = SPEECHCOMMANDS_WORDS + list(other_words)
    lists = {'validation': [], 'testing': []}
    bar = _Progress(len(words) * speakers, f'synth speechcommands -> {out}', progress, 'word x speaker')
    for w in words:
        (out / w).mkdir(parents=True, exist_ok=True)
        for h, traits in ids:
            reps = rs.randint(1, max_reps + 1) if w in SPEECHCOMMANDS_WORDS else rs.randint(0, 2)
            for r in range(reps):
                sig = dict(sigs[w], **traits, jit=0.05)
                x = render_event(sig, 1.0, rs)
                voiced = np.flatnonzero(np.abs(x) > 0.05 * np.abs(x).max())
                x = x[voiced[0]:voiced[-1] + 1][:int(0.95 * SYNTH_SR)]  # trim silence, at most 0.95 s
                length = SYNTH_SR  # 20 % of the files are shorter than 1 s, as in GSC
                if rs.rand() >= 0.8:
                    length = min(SYNTH_SR, int(max(len(x) + 800, rs.uniform(0.45, 1.0) * SYNTH_SR)))
                onset = rs.randint(0, max(1, length - len(x)))
                y = _mix([(x, onset, rs.uniform(-26, -14))], length, rs, rs.uniform(-60, -28))
                name = f'{h}_nohash_{r}.wav'
                sf.write(out / w / name, y, SYNTH_SR, subtype='PCM_16')
                which = gsc_list_of(name)
                if which in lists:
                    lists[which].append(f'{w}/{name}')
            bar.update()
    (out / 'validation_list.txt').write_text(''.join(k + '\n' for k in lists['validation']))
    (out / 'testing_list.txt').write_text(''.join(k + '\n' for k in lists['testing']))
    bg = out / '_background_noise_'
    bg.mkdir(exist_ok=True)
    m = int(noise_seconds * SYNTH_SR)
    for name, slope in (('white_noise.wav', 0.0), ('pink_noise.wav', 1.0)):
        noise = (0.1 * _colored_noise(m, rs, slope)).astype(np.float32)
        sf.write(bg / name, noise, SYNTH_SR, subtype='PCM_16')
    (bg / 'README.md').write_text('Long noise recordings (generated). Not a class.\n')
    (out / 'README.md').write_text('Generated Speech-Commands-like data (python data.py synth --kind '
                                   'speechcommands). Not real speech.\n')
    _write_json(out / 'synth.json', dict(kind='speechcommands', seed=seed, speakers=speakers,
                                         max_reps=max_reps, other_words=list(other_words), sr=SYNTH_SR,
                                         generator='data.py synth'))
    return out


def synth_urbansound8k(out, seed=0, clips_per_class=60, progress=True):
    """UrbanSound8K-like data: metadata/UrbanSound8K.csv + audio/fold1..10/<fsID>-<classID>-<occ>-<slice>.wav.
    Slices of one fsID (a 'recording') share its fold, sample rate, channels, subtype and source
    variation. Rates 8-96 kHz, mono / stereo, PCM_16 / PCM_24 / FLOAT / PCM_U8 / IMA_ADPCM; 0.3-4 s."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)  # written last: the folder is complete only then
    rs = np.random.RandomState(seed)
    sigs = class_signatures('urbansound8k')
    for k in range(1, 11):
        (out / 'audio' / f'fold{k}').mkdir(parents=True, exist_ok=True)
    (out / 'metadata').mkdir(parents=True, exist_ok=True)
    rates, rate_p = [44100, 48000, 22050, 16000, 11025, 96000, 8000], [.35, .12, .2, .15, .08, .05, .05]
    subtypes, sub_p = ['PCM_16', 'PCM_24', 'FLOAT', 'PCM_U8', 'IMA_ADPCM'], [.55, .3, .08, .04, .03]
    rows, fs_ids = [], set()
    bar = _Progress(clips_per_class * len(URBANSOUND8K_CLASSES), f'synth urbansound8k -> {out}', progress)
    for c, cname in enumerate(URBANSOUND8K_CLASSES):
        folds = list(rs.permutation(10) + 1)
        made = 0
        while made < clips_per_class:
            fs_id = int(rs.randint(1000, 200000))
            if fs_id in fs_ids:
                continue
            fs_ids.add(fs_id)
            fold = folds.pop(0)
            folds.append(fold)
            sr, subtype = int(rs.choice(rates, p=rate_p)), str(rs.choice(subtypes, p=sub_p))
            channels = 2 if rs.rand() < 0.35 else 1
            source = dict(sigs[c])  # one recording: its own version of the class sound
            for key in ('f0', 'f', 'fc', 'f_lo', 'f_hi', 'formant', 'rate'):
                if key in source:
                    source[key] = source[key] * _J(rs, 0.08)
            occ, noise_db = rs.randint(0, 3), rs.uniform(-50, -30)
            for s in range(min(rs.randint(1, 7), clips_per_class - made)):
                dur = rs.uniform(1.0, 4.0) if rs.rand() < 0.85 else rs.uniform(0.3, 1.0)
                salience = 1 if rs.rand() < 0.7 else 2
                n = int(dur * SYNTH_SR)
                events = []
                for _ in range(rs.randint(1, 3)):
                    ev = min(dur, rs.uniform(*_DURATIONS[source['family']]) * 1.5)
                    i = rs.randint(0, max(1, n - int(ev * SYNTH_SR)))
                    level = rs.uniform(-24, -12) - (12 if salience == 2 else 0)
                    events.append((render_event(source, ev, rs), i, level))
                y = _mix(events, n, rs, noise_db + rs.uniform(-3, 3))
                y = features.resample(y, SYNTH_SR, sr)
                if channels == 2:
                    right = (np.roll(y, rs.randint(1, 20)) * rs.uniform(0.7, 1.0)
                             + 0.003 * rs.standard_normal(len(y)))
                    y = np.stack([y, right.astype(np.float32)], axis=1)
                name = f'{fs_id}-{c}-{occ}-{s}.wav'
                path = out / 'audio' / f'fold{fold}' / name
                sf.write(path, np.clip(y, -1, 1), sr, subtype=subtype)
                if subtype == 'FLOAT':
                    _zero_peak_timestamp(path)
                start = round(s * 4.0 + rs.uniform(0, 0.5), 6)
                rows.append([name, str(fs_id), f'{start}', f'{round(start + dur, 6)}', str(salience),
                             str(fold), str(c), cname])
                made += 1
                bar.update()
    _write_csv(out / 'metadata' / 'UrbanSound8K.csv', sorted(rows), URBANSOUND8K_HEADER)
    (out / 'UrbanSound8K_README.txt').write_text('Generated UrbanSound8K-like data (python data.py synth '
                                                 '--kind urbansound8k). Not real recordings.\n')
    _write_json(out / 'synth.json', dict(kind='urbansound8k', seed=seed, clips_per_class=clips_per_class,
                                         generator='data.py synth'))
    return out


def _ancestors(name):
    """A generated FSD50K class and its ancestors, the class first (FSD50K's label propagation)."""
    out, todo = [], [name]
    while todo:
        c = todo.pop(0)
        if c not in out:
            out.append(c)
            todo += list(_FSD50K_TABLE[c][1])
    return out


def _write_audio(path, y, sr, subtype='PCM_16', fmt=None):
    """Write a 16 kHz waveform at `sr` (resampled) with soundfile."""
    if sr != SYNTH_SR:
        y = features.resample(np.asarray(y, np.float32), SYNTH_SR, sr)
    sf.write(path, np.clip(y, -1, 1), sr, subtype=subtype, format=fmt)


def synth_fsd50k(out, seed=0, n_dev=600, n_eval=200, max_seconds=6.0, sr=16000, progress=True):
    """FSD50K-like data in the release layout: FSD50K.ground_truth/{dev,eval,vocabulary}.csv and
    FSD50K.dev_audio/, FSD50K.eval_audio/ with <fname>.wav (mono PCM_16 at `sr`; the release is 44.1 kHz).
    Clips of 0.3 .. max_seconds s (log-uniform; FSD50K's run to 30 s), 1-2 events each of the 50 classes
    and three outside them, labelled with the events' classes and all their ancestors, as FSD50K
    (labels and MIDs comma lists, quoted). Every 10th dev clip after the first ones is 'val'; about 3 % of
    the clips, and the last of each part, have none of the 50 classes. The first clips of each part (up
    to 80 %) cover every class (dev: twice, in 'train')."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)  # written last: the folder is complete only then
    rs = np.random.RandomState(seed)
    names = FSD50K_CLASSES + FSD50K_EXTRA
    sigs = dict(zip(names, class_signatures('fsd50k')))
    events = [n for n in names if _FSD50K_TABLE[n][2] is not None]
    inside = [n for n in events if n in _FSD50K_INDEX]
    outside = [n for n in events if n not in _FSD50K_INDEX]
    weights = (np.arange(len(inside)) + 1.0) ** -0.5
    weights = weights[np.random.RandomState(_SIGNATURE_SEED).permutation(len(inside))]
    weights /= weights.sum()
    gt = out / 'FSD50K.ground_truth'
    gt.mkdir(parents=True, exist_ok=True)
    used = set()
    bar = _Progress(n_dev + n_eval, f'synth fsd50k -> {out}', progress)
    for part, count in (('dev', n_dev), ('eval', n_eval)):
        folder = out / FSD50K_AUDIO[part]
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        cover = min(int(0.8 * count), (2 if part == 'dev' else 1) * len(inside))
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
            n = max(64, int(round(seconds * SYNTH_SR)))
            mix = []
            for c in chosen:
                dur = min(seconds, rs.uniform(*_DURATIONS[sigs[c]['family']]))
                onset = rs.uniform(0, seconds - dur) if seconds > dur else 0.0
                mix.append((render_event(sigs[c], dur, rs), int(onset * SYNTH_SR), rs.uniform(-24, -12)))
            _write_audio(folder / f'{fname}.wav', _mix(mix, n, rs, rs.uniform(-55, -35)), sr)
            labels = list(dict.fromkeys(a for c in chosen for a in _ancestors(c)))
            row = [str(fname), ','.join(labels), ','.join(_FSD50K_TABLE[x][0] for x in labels)]
            if part == 'dev':
                row.append('val' if j >= cover and (j - cover) % 10 == 0 else 'train')  # every 10th, after cover
            rows.append(row)
            bar.update()
        _write_csv(gt / FSD50K_GROUND_TRUTH[part], rows,
                   ['fname', 'labels', 'mids'] + (['split'] if part == 'dev' else []))
    _write_csv(gt / 'vocabulary.csv', [[i, name, _FSD50K_TABLE[name][0]] for i, name in enumerate(names)])  # no header
    (out / 'README.md').write_text('Generated FSD50K-like data (python data.py synth --kind fsd50k). Not real '
                                   'audio.\n')
    _write_json(out / 'synth.json', dict(kind='fsd50k', seed=seed, n_dev=n_dev, n_eval=n_eval,
                                         max_seconds=max_seconds, sr=sr, generator='data.py synth'))
    return out


def synth_esc50(out, seed=0, clips_per_class=20, seconds=5.0, sr=22050, n_classes=50, progress=True):
    """ESC-50-like data, the content of ESC-50-master/: meta/esc50.csv (the official header and columns,
    rows sorted by filename) and audio/<fold>-<src_file>-<take>-<target>.wav, `seconds` long (ESC-50: 5 s,
    events padded with silence) mono PCM_16 at `sr` (ESC-50: 44.1 kHz; the default 22.05 kHz is the
    rate of the US8K recipe, half the size). clips_per_class spread over the 5 folds; the takes of one
    src_file share its fold. n_classes: only the first classes (small test sets)."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)
    rs = np.random.RandomState(seed)
    sigs = class_signatures('esc50')
    (out / 'audio').mkdir(parents=True, exist_ok=True)
    (out / 'meta').mkdir(parents=True, exist_ok=True)
    rows, used = [], set()
    n = int(round(seconds * SYNTH_SR))
    bar = _Progress(clips_per_class * n_classes, f'synth esc50 -> {out}', progress)
    for c, cname in enumerate(ESC50_CLASSES[:n_classes]):
        for fold in range(1, 6):
            want = clips_per_class // 5 + (fold <= clips_per_class % 5)
            made = 0
            while made < want:
                src = int(rs.randint(1000, 260000))
                if src in used:
                    continue
                used.add(src)
                source = dict(sigs[c])  # one recording: its own version of the class sound
                for key in ('f0', 'f', 'fc', 'f_lo', 'f_hi', 'formant', 'rate'):
                    if key in source:
                        source[key] = source[key] * _J(rs, 0.08)
                for t in range(min(rs.randint(1, 3), want - made)):
                    mix = []
                    for _ in range(rs.randint(1, 3)):
                        dur = min(seconds, rs.uniform(*_DURATIONS[source['family']]) * 1.5)
                        onset = rs.uniform(0, min(seconds - dur, 1.0)) if seconds > dur else 0.0
                        mix.append((render_event(source, dur, rs), int(onset * SYNTH_SR), rs.uniform(-22, -10)))
                    y = _mix(mix, n, rs, rs.uniform(-70, -40))
                    take = 'ABCDEFGH'[t]
                    name = f'{fold}-{src}-{take}-{c}.wav'
                    _write_audio(out / 'audio' / name, y, sr)
                    rows.append([name, str(fold), str(c), cname, str(cname in ESC10), str(src), take])
                    made += 1
                    bar.update()
    _write_csv(out / 'meta' / 'esc50.csv', sorted(rows), ESC50_HEADER)
    (out / 'README.md').write_text('Generated ESC-50-like data (python data.py synth --kind esc50). Not real '
                                   'audio.\n')
    _write_json(out / 'synth.json', dict(kind='esc50', seed=seed, clips_per_class=clips_per_class, seconds=seconds,
                                         sr=sr, n_classes=n_classes, generator='data.py synth'))
    return out


_OWN_FORMATS = [(16000, 'WAV', 'PCM_16', 1), (22050, 'FLAC', 'PCM_16', 1), (44100, 'WAV', 'PCM_24', 2),
                (8000, 'WAV', 'FLOAT', 1), (48000, 'FLAC', 'PCM_24', 1)]


def _own_clip(path_stem, classes, sigs, seconds, rs):
    """One clip of 'your own data': events of `classes` (ESC-50 sounds), in a format, rate and channel
    count drawn from _OWN_FORMATS; returns the file's path."""
    n = int(round(seconds * SYNTH_SR))
    mix = []
    for c in classes:
        dur = min(seconds, rs.uniform(*_DURATIONS[sigs[c]['family']]))
        onset = rs.uniform(0, seconds - dur) if seconds > dur else 0.0
        mix.append((render_event(sigs[c], dur, rs), int(onset * SYNTH_SR), rs.uniform(-22, -10)))
    y = _mix(mix, n, rs, rs.uniform(-60, -35))
    sr, fmt, subtype, channels = _OWN_FORMATS[rs.randint(len(_OWN_FORMATS))]
    y = features.resample(y, SYNTH_SR, sr) if sr != SYNTH_SR else y
    if channels == 2:
        y = np.stack([y, np.roll(y, 7) * 0.8], axis=1)
    path = Path(f'{path_stem}.{fmt.lower()}')
    sf.write(path, np.clip(y, -1, 1), sr, subtype=subtype, format=fmt)
    if subtype == 'FLOAT':
        _zero_peak_timestamp(path)
    return path


def synth_csv(out, seed=0, n_classes=6, clips_per_class=12, seconds=1.0, multilabel=False, progress=True):
    """'Your own data' as a CSV: clips/<n>.<wav|flac> (mixed rates, subtypes, channels) and labels.csv with
    the columns path, label, split (train / val / test, 70/10/20 per class with at least one of each).
    Classes: the first n_classes ESC-50 sounds. multilabel: each clip mixes 1-3 classes and lists them
    joined by ';' (clips_per_class: the clips per class on average)."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)
    rs = np.random.RandomState(seed)
    sigs = class_signatures('esc50')
    (out / 'clips').mkdir(parents=True, exist_ok=True)
    rows = []
    if multilabel:
        n = n_classes * clips_per_class // 2
        parts = ['train'] * 2 * n_classes + ['test'] * n_classes + ['val'] * n_classes
        parts += list(rs.choice(['train', 'val', 'test'], max(0, n - len(parts)), p=[.7, .1, .2]))
        todo = [(sorted({j % n_classes} | set(rs.choice(n_classes, rs.randint(0, 3)).tolist())), parts[j])
                for j in range(max(n, len(parts)))]
    else:
        todo = []
        for c in range(n_classes):
            k = clips_per_class
            n_val, n_test = max(1, round(0.1 * k)), max(1, round(0.2 * k))
            todo += [([c], p) for p in ['train'] * (k - n_val - n_test) + ['val'] * n_val + ['test'] * n_test]
        todo = [todo[i] for i in rs.permutation(len(todo))]
    bar = _Progress(len(todo), f'synth csv -> {out}', progress)
    for j, (classes, split) in enumerate(todo):
        path = _own_clip(out / 'clips' / f'{j:04d}', classes, sigs, seconds, rs)
        rows.append([path.relative_to(out).as_posix(), ';'.join(ESC50_CLASSES[c] for c in classes), split])
        bar.update()
    _write_csv(out / 'labels.csv', rows, ['path', 'label', 'split'])
    _write_json(out / 'synth.json', dict(kind='csv', seed=seed, n_classes=n_classes,
                                         clips_per_class=clips_per_class, seconds=seconds, multilabel=multilabel,
                                         generator='data.py synth'))
    return out


def synth_folder(out, seed=0, n_classes=6, clips_per_class=12, seconds=1.0, progress=True):
    """'Your own data' as a folder per class: <class>/<n>.<wav|flac> (mixed rates, subtypes, channels);
    classes: the first n_classes ESC-50 sounds."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)
    rs = np.random.RandomState(seed)
    sigs = class_signatures('esc50')
    bar = _Progress(n_classes * clips_per_class, f'synth folder -> {out}', progress)
    for c in range(n_classes):
        (out / ESC50_CLASSES[c]).mkdir(parents=True, exist_ok=True)
        for j in range(clips_per_class):
            _own_clip(out / ESC50_CLASSES[c] / f'{j:03d}', [c], sigs, seconds, rs)
            bar.update()
    _write_json(out / 'synth.json', dict(kind='folder', seed=seed, n_classes=n_classes,
                                         clips_per_class=clips_per_class, seconds=seconds,
                                         generator='data.py synth'))
    return out


AUTHORS_PREFIX = '/scratch/project_2003370/alex/Audioset'  # where the authors' phase files say the clips are


def format_target(values):
    """A target vector as the authors' files hold it: numpy's str() of a float array, '[0. 1. 0. ...]',
    24 values to a line and continuation lines starting with a space (numpy's 75-character lines)."""
    cells = [f'{int(v)}.' for v in values]
    lines = [' '.join(cells[i:i + 24]) for i in range(0, len(cells), 24)]
    return '[' + '\n '.join(lines) + ']'


def synth_authors_txt(out, seed=0, n_train=150, n_eval=70, seconds=1.0, progress=True):
    """The authors' phase files (data_txt/) over a generated AudioSet-like set: `out` is the data_txt
    folder, with train_phase_<k>.txt, test_phase_0_.._k.txt (30,5,5,5,5 phases of the 50 classes, the
    records made by make_phases), classes.txt (the 50 names, as the authors' data/AudioSet_classes.txt)
    and the clips in out/Audioset/{train,eval}/. The files name the clips as the authors' do, under
    AUTHORS_PREFIX, so reading them takes --path-map AUTHORS_PREFIX=<out>/Audioset."""
    out = Path(out)
    (out / 'synth.json').unlink(missing_ok=True)
    audio = synth_audioset(out / 'Audioset', seed, n_train, n_eval, seconds, missing=0.0, progress=progress)
    ds = load_audioset(audio)
    phases = make_phases(ds, make_split(ds), sizes=PHASE_SIZES['audioset'])

    def name(i):
        return AUTHORS_PREFIX + '/' + Path(ds.paths[i]).relative_to(audio).as_posix()

    for ph, (train_name, test_name) in zip(phases, authors_file_names(len(phases))):
        (out / train_name).write_text(''.join(f'{name(i)}_{format_target(y[ph.n_old:])}\n'
                                              for i, y in zip(ph.train, ph.train_y)))
        (out / test_name).write_text(''.join(f'{name(i)}_{format_target(y)}\n'
                                             for i, y in zip(ph.test, ph.test_y)))
    (out / 'classes.txt').write_text(''.join(f'{n}\n' for n in ds.classes))
    _write_json(out / 'synth.json', dict(kind='authors-txt', seed=seed, n_train=n_train, n_eval=n_eval,
                                         seconds=seconds, sr=SYNTH_SR, generator='data.py synth'))
    return out


SYNTH_KINDS = {'audioset': synth_audioset, 'speechcommands': synth_speechcommands,
               'urbansound8k': synth_urbansound8k, 'fsd50k': synth_fsd50k, 'esc50': synth_esc50,
               'csv': synth_csv, 'folder': synth_folder, 'authors-txt': synth_authors_txt}


def ensure_synth(kind, root, seed=0, progress=True, **sizes):
    """The generated `kind` dataset in `root`, made once: when root/synth.json exists (the generators
    write it last) the folder is used as it is; otherwise it is generated under a FolderLock of
    `root`, so two commands started together generate it once (the second waits, saying so in one
    line, and then finds synth.json). A generation that was killed left no synth.json and is redone
    over the partial folder (the same seed writes the same files). `sizes` are the generator's other
    arguments (n_train, speakers, clips_per_class, ...). A synth.json of another kind or seed, or
    with other sizes than those given here (of those it records), is a DataError of one line.
    Prints one line when it generates (progress). Returns root as a Path."""
    if kind not in SYNTH_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(SYNTH_KINDS)}")
    root = Path(root)

    def made():
        marker = _read_synth_marker(root)
        if marker is None:
            return False
        want = dict(sizes, kind=kind, seed=seed)
        other = {k: marker[k] for k, v in want.items()  # sizes synth.json does not record are not checked
                 if k in marker and json.loads(json.dumps(v)) != marker[k]}  # tuples compare as JSON lists
        if other:
            raise DataError(f'{root} holds a generated dataset with other settings ({other} instead of '
                            f"{ {k: want[k] for k in other} }); delete it or choose another folder")
        return True

    if made():
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FolderLock(root), sigterm_as_interrupt():
            if not made():  # another process may have made it while this one waited
                if progress:
                    print(f'generating the synthetic {kind} dataset in {root} (once) ...', file=sys.stderr,
                          flush=True)
                SYNTH_KINDS[kind](root, seed=seed, progress=progress, **sizes)
    except (OSError, sf.SoundFileError) as e:  # a full disk, a read-only folder
        reason, todo = write_failure(e, root)
        raise DataError(f'cannot write the generated {kind} dataset in {root} ({reason}); {todo}, or choose '
                        'another folder (a rerun redoes the generation)') from None
    return root


# =================================================================================================
# Command line: stats, synth, cache


def print_stats(ds, split=None, file=None):
    """Per-class clip counts per split part, problems and notes, sample rates and channels seen."""
    split = split or make_split(ds)
    p = lambda *a: print(*a, file=file or sys.stdout)  # noqa: E731
    gen = f' (generated: {json.dumps(ds.synthetic, sort_keys=True)})' if ds.synthetic else ''
    p(f'dataset {ds.name} at {ds.root}{gen}')
    parts = [('train', split.train), ('val', split.val), ('test', split.test)]
    p(f'clips: {len(ds)}  |  split {split.method} (seed {split.seed}): '
      + ', '.join(f'{n} {len(i)}' for n, i in parts) + f'  |  split hash {split.hash[:12]}')
    width = max(len(c) for c in ds.classes) + 2
    p(f"{'class':<{width}}" + ''.join(f'{n:>8}' for n, _ in parts) + f"{'all':>8}")
    for c, name in enumerate(ds.classes):
        hit = ds.labels[:, c] > 0 if ds.multilabel else ds.labels == c
        counts = [int(hit[i].sum()) for _, i in parts]
        p(f'{name:<{width}}' + ''.join(f'{n:>8}' for n in counts) + f'{int(hit.sum()):>8}')
    if ds.multilabel and len(ds):
        per_clip = collections.Counter(ds.labels.sum(axis=1).tolist())
        p('classes per clip: ' + ', '.join(f'{k}: {v}' for k, v in sorted(per_clip.items())))
    if ds.segments is not None:  # fsd50k: the excerpt count, against the authors' and other rules
        p(f"excerpts of {ds.info['excerpt_seconds']:g} s, one per started second, the last kept when at least "
          'half an excerpt long (zero-padded), at least one per clip (counted before any file failed to decode):')
        for part, v in ds.info['parts'].items():
            rate = v['excerpts'] / max(v['seconds'], 1e-9)
            p(f"  {part}: {v['clips']} clips, {v['seconds']:.1f} s of audio -> {v['excerpts']} excerpts "
              f"({rate:.3f} per second; ceil would give {v.get('ceil', 0)}, floor {v.get('floor', 0)})")
        p('  the authors (FSD50K): ' + '; '.join(
            f'{part} {n:,} excerpts from {FSD50K_HOURS[part]} h ({n / (3600 * FSD50K_HOURS[part]):.3f} per second)'
            for part, n in FSD50K_AUTHORS_EXCERPTS.items()))
    if ds.folds is not None:
        p('folds: ' + ', '.join(f'{f}: {n}' for f, n in sorted(collections.Counter(ds.folds.tolist()).items())))
    if ds.phase_train is not None:
        p('records per phase file: ' + ', '.join(f'{f} {n}' for f, n in ds.info['records'].items()))
    rates = ', '.join(f'{r} Hz: {n}' for r, n in ds.sample_rates.items())
    p('sample rates seen: ' + (rates or 'not checked'))
    p('channels seen: ' + (', '.join(f'{c}: {n}' for c, n in ds.channels.items()) or 'not checked'))
    if ds.counts:
        p('counts: ' + ', '.join(f'{k} {v}' for k, v in sorted(ds.counts.items())))
    bad = [i for i in ds.issues if i.fatal]
    notes = [i for i in ds.issues if not i.fatal]
    p(f'problems (skipped): {len(bad)}' if bad else 'problems: none')
    for i in bad:
        p(f'  - {i}')
    p(f'notes: {len(notes)}')
    for i in notes[:30]:
        p(f'  - {i}')
    if len(notes) > 30:
        p(f'  ... and {len(notes) - 30} more notes')


def _options(args):
    """The loader options of the command line (csv, authors-txt)."""
    if args.data == 'csv':
        return dict(csv=args.csv)
    if args.data == 'authors-txt':
        return dict(path_map=[tuple(m.split('=', 1)) for m in args.path_map or ()])
    return {}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='data.py', formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Datasets for class-incremental audio classification: inspect a dataset, generate a "
        "synthetic one in the real layout, or build the feature cache. 'data.py <command> --help' "
        "lists each command's flags.",
        epilog='examples:\n'
        '  python data.py synth --kind audioset --out data/audioset_synth --seed 0\n'
        '  python data.py stats --data audioset --root data/audioset_synth\n'
        '  python data.py cache --data audioset --root data/audioset_synth --cache cache\n'
        '  python data.py stats --data urbansound8k --root ~/UrbanSound8K --split official --skip-bad\n'
        '  python data.py stats --data fsd50k --root ~/FSD50K\n'
        '  python data.py stats --data esc50 --root ~/ESC-50-master --fold 1\n'
        '  python data.py stats --data csv --root ~/my_sounds --csv ~/my_sounds/labels.csv\n'
        '  python data.py stats --data authors-txt --root data_txt \\\n'
        '      --path-map /scratch/project_2003370/alex/Audioset=/data/audioset\n'
        'exit status: 0 ok, 2 data problems (listed on stderr, one line each)')
    sub = parser.add_subparsers(dest='command', required=True)

    def common(sp):
        sp.add_argument('--data', required=True, choices=DATASETS, help='dataset layout to read')
        sp.add_argument('--root', required=True,
                        help='dataset folder (as unpacked / downloaded, or made by synth)')
        sp.add_argument('--skip-bad', action='store_true',
                        help='skip and count bad files and rows instead of stopping with the list of '
                             'problems')
        sp.add_argument('--csv', default=None, metavar='FILE', help='--data csv: the CSV of the clips')
        sp.add_argument('--path-map', action='append', default=None, metavar='OLD=NEW',
                        help="--data authors-txt: read the clips the phase files list under OLD from NEW")

    sp = sub.add_parser('stats', help='per-class clip counts per split, problems, sample rates')
    common(sp)
    sp.add_argument('--split', choices=['grouped', 'official', 'random'], default=None,
                    help='split to count (default: grouped; official for audioset, fsd50k, authors-txt, esc50 and '
                         'a CSV with a split or fold column; random for a folder or another CSV)')
    sp.add_argument('--split-seed', type=int, default=0,
                    help='seed of the grouped / random split (default 0)')
    sp.add_argument('--fold', type=int, default=None,
                    help='esc50 or a CSV with a fold column: the test fold (default: esc50 5, a CSV its last)')
    sp.add_argument('--save-split', default=None, metavar='JSON',
                    help='also write the split (keys + hash) here')
    sp.add_argument('--no-audio-check', action='store_true',
                    help="do not open every file's header (faster; bad files then show up when caching)")

    sp = sub.add_parser('synth', help='write a generated dataset in the real on-disk layout')
    sp.add_argument('--kind', required=True, choices=list(SYNTH_KINDS), help='which layout to imitate')
    sp.add_argument('--out', required=True, help='output folder (created)')
    sp.add_argument('--seed', type=int, default=0, help='random seed of the clips (default 0)')
    sp.add_argument('--n-train', type=int, default=None,
                    help='audioset, authors-txt: training clips (default 1500 / 150); fsd50k: dev clips (600)')
    sp.add_argument('--n-eval', type=int, default=None,
                    help='audioset, authors-txt: eval clips (default 500 / 70); fsd50k: eval clips (200)')
    sp.add_argument('--seconds', type=float, default=None,
                    help='clip length in s (audioset 2.0, esc50 5.0, csv / folder / authors-txt 1.0); fsd50k: the '
                         'longest clip (6.0; lengths are log-uniform from 0.3 s)')
    sp.add_argument('--missing', type=float, default=0.02,
                    help='audioset: fraction of clips left without audio, as failed downloads (default 0.02)')
    sp.add_argument('--speakers', type=int, default=30, help='speechcommands: speakers (default 30)')
    sp.add_argument('--max-reps', type=int, default=3,
                    help='speechcommands: each speaker says each word 1..max-reps times (default 3)')
    sp.add_argument('--clips-per-class', type=int, default=None,
                    help='urbansound8k: clips per class (default 60); esc50 (20), csv, folder (12)')
    sp.add_argument('--classes', type=int, default=None,
                    help='esc50: only the first N of the 50 classes; csv, folder: N classes (default 6)')
    sp.add_argument('--multilabel', action='store_true',
                    help="csv: clips of 1-3 classes, labels joined by ';' (default: one label per clip)")
    sp.add_argument('--sr', type=int, default=None,
                    help='audioset, fsd50k, esc50: sample rate of the files (default 16000 / 16000 / 22050); '
                         'audioset --seconds 10 --sr 32000 is the paper\'s clip format, read with the PANNs front '
                         'end (1001 x 64) as the real data')

    sp = sub.add_parser('cache', help='compute the features of every clip once (parallel, resumable)')
    common(sp)
    sp.add_argument('--cache', required=True,
                    help='cache folder (one sub-folder per dataset and front-end config)')
    sp.add_argument('--frontend', choices=sorted(FRONTENDS), default=None,
                    help='front end (default: panns for real audioset, logmel16k for generated audioset, '
                         'urbansound8k / speechcommands for those)')
    sp.add_argument('--workers', type=int, default=None, help='processes (default: every usable CPU core)')

    args = parser.parse_args(argv)
    try:
        if args.command == 'synth':
            given = dict(n_train=args.n_train, n_eval=args.n_eval, seconds=args.seconds,
                         clips_per_class=args.clips_per_class, n_classes=args.classes, sr=args.sr)
            accepts = {'audioset': ('n_train', 'n_eval', 'seconds', 'sr'), 'speechcommands': (),
                       'urbansound8k': ('clips_per_class',),
                       'esc50': ('clips_per_class', 'seconds', 'sr', 'n_classes'),
                       'fsd50k': ('n_train', 'n_eval', 'seconds', 'sr'),
                       'csv': ('n_classes', 'clips_per_class', 'seconds'),
                       'folder': ('n_classes', 'clips_per_class', 'seconds'),
                       'authors-txt': ('n_train', 'n_eval', 'seconds')}[args.kind]
            flag = lambda k: '--' + {'n_classes': 'classes'}.get(k, k).replace('_', '-')  # noqa: E731
            unused = [k for k, v in given.items() if v is not None and k not in accepts]
            if unused:
                parser.error(f'--kind {args.kind} does not take {flag(unused[0])}')
            kwargs = {k: v for k, v in given.items() if v is not None}
            bad = [k for k, v in kwargs.items() if not (math.isfinite(v) and v > 0)]
            if bad:
                parser.error(f'{flag(bad[0])} must be a positive number, not {kwargs[bad[0]]}')
            if args.sr is not None and args.sr < 8000:
                parser.error(f'--sr {args.sr}: write at 8000 Hz or more (the sounds are rendered at 16 kHz)')
            if not 0 <= args.missing < 1:
                parser.error(f'--missing is a fraction in [0, 1), not {args.missing}')
            if args.kind == 'fsd50k':
                kwargs = {dict(n_train='n_dev', seconds='max_seconds').get(k, k): v for k, v in kwargs.items()}
            if args.kind == 'audioset':
                kwargs['missing'] = args.missing
            elif args.kind == 'speechcommands':
                kwargs.update(speakers=args.speakers, max_reps=args.max_reps)
            elif args.kind == 'csv':
                kwargs['multilabel'] = args.multilabel
            out = SYNTH_KINDS[args.kind](args.out, seed=args.seed, **kwargs)
            n_files = sum(1 for _ in Path(out).rglob('*') if _.is_file())
            print(f'wrote {n_files} files to {out}')
        elif args.command == 'stats':
            ds = load_dataset(args.data, args.root, skip_bad=args.skip_bad, check_audio=not args.no_audio_check,
                              **_options(args))
            split = make_split(ds, args.split, args.split_seed, fold=args.fold)
            print_stats(ds, split)
            if args.save_split:
                save_split(split, ds, args.save_split)
                print(f'split written to {args.save_split}')
        elif args.command == 'cache':
            ds, cache = prepare(args.data, args.root, args.cache, args.frontend, args.skip_bad, args.workers,
                                **_options(args))
            s = cache.stats
            print(f"cache {cache.folder}: {len(ds)} clips of {cache.shape[0]} x {cache.shape[1]} float16 "
                  f"({s['bytes'] / 2 ** 20:.1f} MiB); computed {s['computed']} (repaired {s['repaired']}), "
                  f"reused {s['reused']}, re-hashed {s['rehashed']}, skipped bad "
                  f"{ds.counts.get('skipped_bad', 0)}; {s['verified']} rows verified in "
                  f"{s['verify_seconds']:.1f} s; {s['seconds']:.1f} s")
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM while the cache is built (checkpointed)
        print('\ndata.py: interrupted; run the same command again to continue where it stopped', file=sys.stderr)
        return 130
    except (OSError, sf.SoundFileError) as e:  # e.g. synth --out in a read-only folder, --save-split to a full disk
        where = getattr(e, 'filename', None) or getattr(args, 'out', None)
        where = f'{where}: ' if where else ''
        reason, todo = write_failure(e, getattr(args, 'out', None))
        print(f'error: {where}{reason}; {todo}, or choose another folder', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
