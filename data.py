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
    return bool(ds.synthetic) and ds.synthetic.get('sr', 16000) < FRONTENDS['panns']['sr']


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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['synth']:  # the generators live in synth.py, which data.py does not need
        import synth
        return synth.main(argv[1:])
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
        if args.command == 'stats':
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
