"""Datasets for class-incremental audio classification, read from the layouts researchers download:

    ds = load_dataset('audioset', root)       # metadata -> Dataset (keys, paths, labels, groups), problems listed
    cache = build_cache(ds, cache_root)       # features once per clip and front end; cache.read(index) -> float16
    split = make_split(ds)                    # train / val / test indices + a hash
    phases = make_phases(ds, split, class_order(len(ds.classes)))   # per phase: indices + targets, learned order


Every problem of the data is one line 'file[:line]: problem; what to do', all collected before any training (a
DataError, or skip_bad=True: skipped and counted); notes are never fatal. Choices where the specs are silent: README.
"""
import argparse, collections, contextlib, dataclasses, errno, fcntl, functools, hashlib, io, json, math
import multiprocessing, os, re, shutil, signal, socket, sys, threading, time, warnings, zlib
from csv import reader as csv_reader
from pathlib import Path

import numpy as np
import soundfile as sf

import features

# --- Class tables ----------------------------------------------------------------------------------------------------
AUDIOSET_CLASSES = [tuple(c.split('|')) for c in (  # the paper's 50 (mulimani/CIL-ML-Audio data/AudioSet_classes.txt)
    'Generic impact sounds|/t/dd00099;Male speech, man speaking|/m/05zppz;Tick|/m/07qjznt;'
    'Female speech, woman speaking|/m/02zsn;Breathing|/m/0lyf6;Music|/m/04rlf;Mechanisms|/t/dd00077;'
    'Background noise|/m/093_4n;Wind noise (microphone)|/t/dd00092;Bird vocalization, bird call, bird song|/m/020bb7;'
    'Human voice|/m/09l8g;Surface contact|/t/dd00109;Sound effect|/m/0c1dj;Walk, footsteps|/m/07pbtc8;'
    'Laughter|/m/01j3sz;Tap|/m/07qcpgn;Child speech, kid speaking|/m/0ytgt;Wind|/m/03m9d0z;Clapping|/m/0l15bq;'
    'Chirp, tweet|/m/07pggtn;Male singing|/t/dd00003;Human sounds|/m/0dgw9r;Clicking|/m/07qc9xj;'
    'Accelerating, revving, vroom|/m/07q2z82;Conversation|/m/01h8n0;Beep, bleep|/m/02fs_r;Bark|/m/05tny_;'
    'Shout|/m/07p6fty;Female singing|/t/dd00004;Heart sounds, heartbeat|/m/01jg02;Speech|/m/09x0r;'
    'Video game sound|/m/0bzvm2;Animal|/m/0jbk;Dog|/m/0bt9lr;Gunshot, gunfire|/m/032s66;'
    'Hubbub, speech noise, speech babble|/m/07qfr4h;Cricket|/m/09xqv;Squeal|/m/07s02z0;Crowd|/m/03qtwd;'
    'Water|/m/0838f;Computer keyboard|/m/01m2v;Whistling|/m/01w250;Crumpling, crinkling|/t/dd00112;'
    'Thump, thud|/m/07qnq_y;Speech synthesizer|/m/0brhx;Bell|/m/0395lw;Choir|/m/0l14jd;Hammer|/m/03l9g;'
    'Motor vehicle (road)|/m/012f08;Clickety-clack|/m/07rwm0c').split(';')]
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
FSD50K_CLASSES = (  # the authors' 50 (data/FSD50K_classes.txt); FSD50K labels carry their ancestors
    'Music Domestic_sounds_and_home_sounds Vehicle Animal Human_voice Water Wild_animals Motor_vehicle_(road) '
    'Wind_instrument_and_woodwind_instrument Percussion Bird Alarm Plucked_string_instrument Keyboard_(musical) '
    'Mechanisms Guitar Engine Bowed_string_instrument Liquid Human_group_actions Rail_transport Thunder Thunderstorm '
    'Domestic_animals_and_pets Rain Speech Explosion Car Bird_vocalization_and_bird_call_and_bird_song Tools Bell '
    'Door Dog Piano Singing Livestock_and_farm_animals_and_working_animals Brass_instrument Drum Glass Laughter '
    'Respiratory_sounds Telephone Trumpet Acoustic_guitar Hands Cymbal Electric_guitar Snare_drum Fart Hi-hat').split()
_FSD50K_INDEX = {name: i for i, name in enumerate(FSD50K_CLASSES)}
FSD50K_GROUND_TRUTH = {'dev': 'dev.csv', 'eval': 'eval.csv'}
FSD50K_AUDIO = {'dev': 'FSD50K.dev_audio', 'eval': 'FSD50K.eval_audio'}
EXCERPT_SECONDS = 1.0  # fsd50k: clips cut into excerpts of this length (the authors' 1 s)
# the authors' excerpt counts (their README) and FSD50K's hours, for the counting rule (excerpt_count)
FSD50K_AUTHORS_EXCERPTS, FSD50K_HOURS = {'dev': 284447, 'eval': 97798}, {'dev': 80.4, 'eval': 27.9}
ESC50_CLASSES = (  # target 0..49
    'dog rooster pig cow frog cat hen insects sheep crow rain sea_waves crackling_fire crickets chirping_birds '
    'water_drops wind pouring_water toilet_flush thunderstorm crying_baby sneezing clapping breathing coughing '
    'footsteps laughing brushing_teeth snoring drinking_sipping door_wood_knock mouse_click keyboard_typing '
    'door_wood_creaks can_opening washing_machine vacuum_cleaner clock_alarm clock_tick glass_breaking helicopter '
    'chainsaw siren car_horn engine train church_bells airplane fireworks hand_saw').split()
ESC50_HEADER = ['filename', 'fold', 'target', 'category', 'esc10', 'src_file', 'take']
ESC10 = tuple('dog rooster rain sea_waves crackling_fire crying_baby sneezing clock_tick helicopter chainsaw'.split())
ESC50_FOLD = 5  # default test fold; validation on the fold before it, training on the others
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.oga', '.opus', '.mp3', '.aif', '.aiff', '.au', '.w64',
                    '.caf')  # suffixes looked at as audio (libsndfile reads them), in preference order


# --- Problems of the data: one line each, collected, fatal unless skip_bad -------------------------------------------
@dataclasses.dataclass
class Issue:
    """One problem: which file (and line), what is wrong, what to do; fatal=False: a note; count: its clips."""
    path: str; problem: str; action: str = ''; fatal: bool = True; count: int = 1
    def __str__(self):
        return f'{self.path}: {self.problem}' + (f'; {self.action}' if self.action else '')


def note(path, problem, action='ignored', **kw):
    return Issue(str(path), problem, action, False, **kw)


class DataError(Exception):
    """Problems found before training; the message lists every one. Given a str: that one line."""
    def __init__(self, issues, where='', skippable=True):
        self.issues = [] if isinstance(issues, str) else list(issues)
        super().__init__(issues if isinstance(issues, str) else '\n'.join(
            [f"{len(self.issues)} data problem(s){' in ' + str(where) if where else ''}, found before any training. "
             'Fix them' + (', or skip and count the bad clips with --skip-bad (Python: skip_bad=True)' if skippable
                           else '') + ':'] + [f'  - {i}' for i in self.issues]))

    @classmethod
    def one(cls, path, problem, todo, where=None):  # one problem that skipping does not help (a metadata file)
        return cls([Issue(str(path), problem, todo)], Path(path).parent if where is None else where, skippable=False)


class Bad(Exception):
    """Raised by a row parser of read_rows: the row is left out with one line 'file:line: problem; todo'."""
    def __init__(self, problem, todo='fix or delete the row', fatal=True):
        super().__init__(problem)
        self.todo, self.fatal = todo, fatal


def must_exist(path, todo, where=None):  # a metadata file, or the one line that it is not there
    if not Path(path).is_file(): raise DataError.one(path, 'not found', todo, where)
    return path


def raise_if_fatal(issues, skip_bad, where):
    """DataError listing the fatal issues, unless skip_bad; returns the number of clips they skip."""
    fatal = [i for i in issues if i.fatal]
    if fatal and not skip_bad: raise DataError(fatal, where)
    return sum(i.count for i in fatal)


def read_text(path):
    """A metadata file as UTF-8 text (a BOM dropped); else one line naming the file, the line of the first bad byte."""
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
    """parse(row, lineno) of every non-blank row (sep ',': CSV, '\\t': TSV, None: lines; `need`: a header with those
    columns, parse gets {column: value}) -> the items it returns; a Bad it raises becomes the Issue 'path:line: ...'."""
    text = io.StringIO(read_text(path), newline='')  # lines split as open(newline='') splits them
    reader = (csv_reader(text) if sep == ',' else
              ([line.rstrip('\r\n')] if sep is None else line.rstrip('\r\n').split(sep) for line in text))
    header, out = None, []
    for lineno, row in enumerate(reader, 1):
        if header is None and need:
            header = [h.strip() for h in row]
            if not all(h in header for h in need):
                raise DataError.one(f'{path}:1', f'header {header} lacks the columns {list(need)}', advice,
                                    Path(path).parent)
        elif row and any(c.strip() for c in row):
            try:
                if header is not None and len(row) != len(header):
                    raise Bad(f"expected {len(header)} {fields}, got {len(row)}: {','.join(row)[:80]!r}", todo)
                out.append(parse(dict(zip(header, (c.strip() for c in row))) if header else [c.strip() for c in row],
                                 lineno))
            except Bad as e:
                issues.append(Issue(f'{path}:{lineno}', str(e), e.todo, e.fatal))
    return [item for item in out if item is not None]


def write_failure(e, folder=None):
    """Why a write failed: (what happened, what to do), or None; libsndfile's 'System error' with < 1 MiB free: full."""
    err = e
    while err is not None and not isinstance(err, OSError): err = err.__cause__ or err.__context__
    if err is None and not isinstance(e, sf.SoundFileError): return None
    code, what = (err.errno, err.strerror or str(err)) if err is not None else (None, f'libsndfile: {e}')
    with contextlib.suppress(OSError):
        if err is None and folder is not None and shutil.disk_usage(folder).free < 2 ** 20:
            code, what = errno.ENOSPC, os.strerror(errno.ENOSPC)
    return what, {errno.ENOSPC: 'free space there', errno.EDQUOT: 'free space there', errno.EROFS: 'make it writable',
                  errno.EACCES: 'make it writable', errno.EPERM: 'make it writable'}.get(code, 'check that folder')


def write_atomic(path, content):
    """content (str, bytes, or a function writing to the open file) into a temporary file, fsync, rename: the file
    at `path` is whole or absent, never half written; the temporary file goes on any failure."""
    tmp = Path(f'{path}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            content(f) if callable(content) else f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError): tmp.unlink(missing_ok=True)  # the first error is the one to report
        raise


# --- Audio files -----------------------------------------------------------------------------------------------------
class AudioProblem(Exception):
    """An audio file that cannot be used (a one-line message)."""


def _sf_message(e):  # libsndfile's reason without the "Error opening '<path>': " prefix
    return str(e).split("': ", 1)[-1].strip().rstrip('.') or type(e).__name__


def _wav_truncation(path, size):
    """(declared, present) bytes of a WAV data chunk cut short (libsndfile would read a shorter clip), else None."""
    with open(path, 'rb') as f: head = f.read(65536)
    pos = 12 if head[:4] == b'RIFF' and head[8:12] == b'WAVE' else len(head)
    while pos + 8 <= len(head):
        cid, csize = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], 'little')
        if cid == b'data':  # a streaming writer leaves the size 0 or 0xFFFFFFFF
            return (csize, size - pos - 8) if csize not in (0, 0xFFFFFFFF) and csize > size - pos - 8 else None
        pos += 8 + csize + (csize & 1)
    return None


def _gone(path):
    return Issue(str(path), 'file not found', 'restore it, or remove its row / list entry')


def check_audio_file(path):
    """Header-level check of one audio file, without decoding it: (soundfile info or None, Issue or None)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return None, _gone(path)
    try:
        info = sf.info(str(path)) if size else None
    except Exception as e:  # libsndfile: unknown format, broken header, not audio
        return None, Issue(str(path), f'not a readable audio file ({_sf_message(e)})',
                           're-download it or convert it to WAV/FLAC')
    cut = _wav_truncation(path, size) if info and info.frames > 0 and path.suffix.lower() == '.wav' else None
    problem = ('empty file (0 bytes)' if not size else 'audio header but 0 samples (header-only file)'
               if info.frames <= 0 else f'truncated: its header declares {cut[0]} bytes of audio, the file holds '
               f'{cut[1]}' if cut else None)
    return (None, Issue(str(path), problem, 're-download it' if cut else 're-download or delete it')) if problem \
        else (info, None)


def check_files(paths, issues, check_audio=True):
    """Header-check each file (check_audio False: look for it): (ok mask, {rate: files}, {channels: files}, infos)."""
    checked = [check_audio_file(p) if check_audio else (None, None if Path(p).is_file() else _gone(p)) for p in paths]
    issues += [issue for _, issue in checked if issue]
    infos = [info for info, _ in checked]
    counts = [dict(sorted(collections.Counter(int(getattr(i, k)) for i in infos if i).items()))
              for k in ('samplerate', 'channels')]
    return np.array([issue is None for _, issue in checked], bool), counts[0], counts[1], infos


def decode_audio(source, segment=None):
    """A file (path or bytes) -> (float32 mono waveform, rate), channels averaged; segment=(start s, length s) only."""
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
    if not np.all(np.isfinite(y)): raise AudioProblem('audio contains NaN or Inf samples')
    return y, int(sr)


def typical_seconds(paths, n=16):
    """The median length (s) of up to n files spread over `paths`, from their headers; None if none reads."""
    paths, lengths = list(paths), []
    for i in sorted({int(i) for i in np.linspace(0, len(paths) - 1, min(n, len(paths)))}) if paths else []:
        with contextlib.suppress(Exception):
            info = sf.info(str(paths[i]))
            lengths += [info.frames / info.samplerate] if info.frames > 0 else []
    return float(np.median(lengths)) if lengths else None


# --- The Dataset every loader returns, and the loaders, one per layout (shared/spec/data_formats.md) -----------------
@dataclasses.dataclass
class Dataset:
    """Clips of one dataset in a deterministic order. labels: (N,) class or (N, C) uint8 multi-hot; subset: the official
    part; groups: the source (speaker, fsID, video); folds, segments (FSD50K excerpts), phase_train / test (authors)"""
    name: str; root: Path; classes: list
    keys: list  # unique id per clip: 'word/basename', 'fold3/x.wav', 'train/<segment_id>'
    paths: list; labels: np.ndarray; subset: np.ndarray; groups: np.ndarray; folds: np.ndarray = None
    issues: list = dataclasses.field(default_factory=list)
    counts: dict = dataclasses.field(default_factory=dict)  # what was skipped, ignored, dropped
    sample_rates: dict = dataclasses.field(default_factory=dict)  # {rate: files} of the header check
    channels: dict = dataclasses.field(default_factory=dict)
    synthetic: dict = None  # synth.json of a generated dataset
    segments: np.ndarray = None; phase_train: np.ndarray = None; phase_test: np.ndarray = None
    info: dict = dataclasses.field(default_factory=dict)  # per-dataset facts for stats and defaults

    @property
    def multilabel(self):
        return self.labels.ndim == 2

    def __len__(self):
        return len(self.keys)

    def select(self, index):  # the Dataset of the clips at `index` (bool mask or integer indices), in order
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)
        rows = {f: getattr(self, f)[idx] for f in ('labels', 'subset', 'groups', 'folds', 'segments', 'phase_train',
                                                   'phase_test') if getattr(self, f) is not None}
        return dataclasses.replace(self, keys=[self.keys[i] for i in idx], paths=[self.paths[i] for i in idx], **rows)


def read_synth_marker(root):
    """synth.json of a generated dataset (written last by synth.py), or None."""
    with contextlib.suppress(OSError, ValueError): return json.loads((Path(root) / 'synth.json').read_text())
    return None


def dataset(name, root, classes, rows, issues, counts, skip_bad, check_audio=True, multilabel=False, folds=False,
            checked=None, **extra):
    """The Dataset of rows (key, path, label or class indices, subset, group[, fold]), the bad files' rows dropped."""
    ok, rates, chans = checked or check_files([r[1] for r in rows], issues, check_audio)[:3]
    counts['skipped_bad'] = raise_if_fatal(issues, skip_bad, root)
    labels = np.zeros((len(rows), len(classes)), np.uint8) if multilabel else np.array([r[2] for r in rows], np.int64)
    for i, r in enumerate(rows if multilabel else ()): labels[i, list(r[2])] = 1
    ds = Dataset(name, Path(root), list(classes), [r[0] for r in rows], [Path(r[1]) for r in rows], labels,
                 np.array([r[3] for r in rows], dtype='<U5'), np.array([r[4] for r in rows], dtype=object),
                 np.array([r[5] for r in rows], np.int64) if folds else None, issues, dict(counts), rates, chans,
                 read_synth_marker(root), **extra)
    return ds.select(ok)


def _entries(folder):
    return sorted(os.scandir(folder), key=lambda e: e.name)


def _eg(names):
    return ', '.join(names[:3])


_MID_RE = re.compile(r'/[mgt]/[0-9A-Za-z_]+')
_DESED_RE = re.compile(r'^Y?(.+)_(\d+\.\d{3})_(\d+\.\d{3})$')  # Y<ytid>_<start s>_<end s>


def _strong_event(row, lineno):  # a row of audioset_*_strong.tsv -> (segment_id, MID, line), the header skipped
    if lineno == 1 and row[0] == 'segment_id': return None
    if len(row) != 4:
        raise Bad(f'expected 4 tab-separated fields (segment_id, start, end, label), got {len(row)}: '
                  f'{chr(9).join(row)[:80]!r}')
    sid, t0, t1, mid = row
    parts = sid.rsplit('_', 1)  # YouTube ids may contain '_': split on the LAST one
    try:
        times = 0.0 <= float(t0) <= float(t1)
    except ValueError:
        times = False
    problem = (f'segment_id {sid!r} is not <YouTubeID>_<start ms>' if len(parts) != 2 or not parts[0]
               or not parts[1].isdigit() else f'bad event times {t0!r}..{t1!r} (need numbers, 0 <= start <= end)'
               if not times else None if _MID_RE.fullmatch(mid) else f'label {mid!r} is not a MID like /m/09x0r')
    if problem: raise Bad(problem)
    return sid, mid, lineno


def _mid_name(row, lineno):
    if len(row) != 2 or not _MID_RE.fullmatch(row[0]):
        raise Bad(f"expected 'MID<TAB>display name', got {chr(9).join(row)[:60]!r}", 'fix or delete the line')
    return row[0]


def load_audioset(root, skip_bad=False, check_audio=True):
    """AudioSet strong labels over the 50 classes (a class is on when the clip has one of its events, no ontology
    propagation, as CIL-ML-Audio): the train TSV's clips from train/, the eval TSV's from eval/."""
    root, issues, counts, rows = Path(root), [], collections.Counter(), []
    mid_path = root / 'mid_to_display_name.tsv'
    mid_names = set(read_rows(mid_path, _mid_name, issues, sep='\t')) if mid_path.is_file() else set()
    issues += [note(mid_path, f'class {name!r} ({mid}) is not listed', 'its built-in name is used')
               for name, mid in AUDIOSET_CLASSES if mid_names and mid not in mid_names]
    if not mid_path.is_file():
        issues.append(note(mid_path, 'not found', 'download it with the strong labels; the names of the 50 classes '
                           'are built in, so this is only a note'))
    absent = [root / name for name in AUDIOSET_TSV.values() if not (root / name).is_file()]
    if absent:  # both named at once
        raise DataError([Issue(str(t), 'not found', 'download the strong-label TSVs from '
                               'research.google.com/audioset/download_strong.html') for t in absent], root, False)
    for part, tsv_name in AUDIOSET_TSV.items():
        clips, unknown, folder = collections.defaultdict(set), {}, root / part
        for sid, mid, lineno in read_rows(root / tsv_name, _strong_event, issues, sep='\t'):
            if mid_names and mid not in mid_names and mid not in _AUDIOSET_MID_INDEX:
                unknown.setdefault(mid, [0, lineno])[0] += 1
            clips[sid].add(mid)
            counts['events'] += 1
        issues += [note(f'{root / tsv_name}:{line}', f'MID {mid} ({n} rows) is not in mid_to_display_name.tsv',
                        'ignored for targets (not one of the 50 classes)')
                   for mid, (n, line) in sorted(unknown.items())]
        if not folder.is_dir():
            issues.append(Issue(str(folder), 'audio folder not found', f'put the clips of {tsv_name} there as '
                                'Y<segment_id>.wav'))
            continue
        by_stem, used, absent, rank = {}, set(), [], {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
        for entry in _entries(folder):  # clips as Y<segment_id>.<ext> or <segment_id>.<ext>, in AUDIO_EXTENSIONS' order
            stem, ext = os.path.splitext(entry.name)
            if entry.is_file() and ext.lower() not in rank:
                issues.append(note(folder / entry.name, 'stray non-audio file'))
            elif entry.is_file() and (stem not in by_stem or rank[ext.lower()] < rank[by_stem[stem].suffix.lower()]):
                by_stem[stem] = folder / entry.name
        desed = {f'{m.group(1)}_{int(round(float(m.group(2)) * 1000))}': p for s, p in by_stem.items()
                 if (m := _DESED_RE.match(s))}  # DESED's Y<ytid>_<start s>_<end s>.<ext>
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
                rows.append((f'{part}/{sid}', path, target, part, sid.rsplit('_', 1)[0]))  # group: the video
        unlisted = sorted(p.name for p in by_stem.values() if p not in used)
        counts['missing_audio'] += len(absent)
        counts['unlisted_files'] += len(unlisted)
        if absent:
            issues.append(note(folder, f'{len(absent)} of the {len(absent) + len(used)} clips with a selected class in '
                               f'{tsv_name} have no audio file (e.g. {_eg(absent)})', 'skipped (not downloaded?)'))
        if unlisted:
            issues.append(note(folder, f'{len(unlisted)} audio files are not clips of {tsv_name} with a selected '
                               f'class (e.g. {_eg(unlisted)})'))
    return dataset('audioset', root, [n for n, _ in AUDIOSET_CLASSES], rows, issues, counts, skip_bad, check_audio,
                   multilabel=True)


def speaker_of(basename):  # the speaker of a GSC file (the official rule: everything before '_nohash_')
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
    """GSC v0.02, the 20 core words; official split: validation_list / testing_list, training the other clips."""
    root = Path(root)
    root = next((c for c in (root, root / 'SpeechCommands' / 'speech_commands_v0.02', root / 'speech_commands_v0.02')
                 if (c / 'testing_list.txt').is_file() or (c / 'yes').is_dir()), root)
    issues, counts, lists, rows = [], collections.Counter(), {}, []
    names = {'val': 'validation_list.txt', 'test': 'testing_list.txt'}
    todo = ('it ships in speech_commands_v0.02.tar.gz; restore it, or point --root at the folder that holds it and the '
            'word folders')
    for part, name in names.items():
        lists[part] = dict(read_rows(must_exist(root / name, todo), _list_entry, issues, sep=None))
    issues += [note(root / 'testing_list.txt', f'{key} is also in validation_list.txt', 'counted as test')
               for key in sorted(set(lists['val']) & set(lists['test']))]
    for c, word in enumerate(SPEECHCOMMANDS_WORDS):
        if not (root / word).is_dir():
            issues.append(Issue(str(root / word), 'word folder not found (one of the 20 core words)',
                                'unpack the whole speech_commands_v0.02 archive'))
        for entry in _entries(root / word) if (root / word).is_dir() else ():
            key = f'{word}/{entry.name}'
            if entry.is_file() and not entry.name.endswith('.wav'):
                issues.append(note(root / key, 'stray non-audio file'))
            elif entry.is_file():
                part = 'test' if key in lists['test'] else 'val' if key in lists['val'] else 'train'
                rows.append((key, root / key, c, part, speaker_of(entry.name)))
    present = {r[0] for r in rows}
    issues += [Issue(str(root / key), f'listed in {name} (line {lineno}) but not found', 'restore the file or delete '
                     'the line') for part, name in names.items() for key, lineno in lists[part].items()
               if key.split('/')[0] in SPEECHCOMMANDS_WORDS and key not in present]
    for entry in _entries(root):
        if entry.is_dir() and entry.name not in SPEECHCOMMANDS_WORDS:
            n = sum(1 for _ in os.scandir(entry.path))
            counts['ignored_files'] += n
            why = ('background noise, not a class' if entry.name == '_background_noise_' else
                   'not one of the 20 core words' if entry.name in SPEECHCOMMANDS_OTHER_WORDS else 'unknown folder')
            issues.append(note(root / entry.name, f'{n} files ignored ({why})', 'nothing to do'))
    return dataset('speechcommands', root, SPEECHCOMMANDS_WORDS, rows, issues, counts, skip_bad, check_audio)


def _load_folded(name, root, skip_bad=False, check_audio=True):
    """UrbanSound8K / ESC-50: one clip per row of the official CSV (never a directory listing), its class checked."""
    us, root = name == 'urbansound8k', Path(root)
    names, n_folds, rel = ((URBANSOUND8K_CLASSES, 10, 'metadata/UrbanSound8K.csv') if us else
                           (ESC50_CLASSES, 5, 'meta/esc50.csv'))
    file_col, class_col, name_col = ('slice_file_name', 'classID', 'class') if us else ('filename', 'target',
                                                                                        'category')
    root = next((c for c in ((root, root / 'UrbanSound8K') if us else (root, root / 'ESC-50-master', root / 'ESC-50'))
                 if ((c / 'metadata').is_dir() if us else (c / rel).is_file())), root)
    todo = (f'unpack UrbanSound8K.tar.gz; the loader needs {rel}' if us else
            f"unpack ESC-50-master.zip; the loader needs {DATASETS['esc50']['layout']}")
    csv_path, issues, counts, seen = must_exist(root / rel, todo, root), [], collections.Counter(), {}
    def parse(row, lineno):
        file = row[file_col]
        try:
            fold, c = int(row['fold']), int(row[class_col])
        except ValueError:
            raise Bad(f"fold {row['fold']!r} / {class_col} {row[class_col]!r} are not integers") from None
        if not 1 <= fold <= n_folds or not file or '/' in file:
            raise Bad(f'bad fold {fold} or {file_col} {file!r} (fold must be 1..{n_folds})')
        if not 0 <= c < len(names): raise Bad(f'unknown {class_col} {c} (valid: 0..{len(names) - 1})')
        if row.get(name_col, names[c]) != names[c]:
            raise Bad(f'{class_col} {c} is {names[c]!r} but the {name_col} column says {row[name_col]!r}',
                      'fix the row')
        key = f'fold{fold}/{file}' if us else file
        if key in seen: raise Bad(f'{key} already listed on line {seen[key]}', 'delete the duplicate row')
        seen[key] = lineno
        part = (('train' if fold <= 7 else 'val' if fold == 8 else 'test') if us else
                'test' if fold == ESC50_FOLD else 'val' if fold == ESC50_FOLD - 1 else 'train')
        return key, root / 'audio' / key, c, part, row['fsID'] if us else row.get('src_file', file), fold
    rows = read_rows(csv_path, parse, issues, need=['slice_file_name', 'fsID', 'fold', 'classID'] if us else
                     ['filename', 'fold', 'target'], advice=f"use the official {'CSV' if us else rel} (header "
                     f"{','.join(URBANSOUND8K_HEADER if us else ESC50_HEADER)})")
    audio, listed = root / 'audio', {r[1] for r in rows}
    folders = (sorted(p for p in audio.iterdir() if p.is_dir()) if us else [audio]) if audio.is_dir() else []
    for p in sorted(p for folder in folders for p in folder.iterdir() if p.is_file() and p not in listed):
        counts['unlisted_files'] += 1
        issues.append(note(p, f'audio file not in {rel}' if p.suffix.lower() in AUDIO_EXTENSIONS else
                           'stray non-audio file'))
    return dataset(name, root, names, rows, issues, counts, skip_bad, check_audio, folds=True)


load_urbansound8k = functools.partial(_load_folded, 'urbansound8k')  # official split: folds 1-7 / 8 / 9-10
load_esc50 = functools.partial(_load_folded, 'esc50')  # official split: test fold ESC50_FOLD, val the fold before


def excerpt_count(seconds):
    """FSD50K excerpts as the authors count: the last kept when at least half long: 0.3 s -> 1, 2.5 s -> 3 (README)."""
    return max(1, int(math.floor(seconds / EXCERPT_SECONDS + 0.5)))


def _vocabulary_row(row, lineno):  # vocabulary.csv: no header, '<index>,<label>,<mid>'
    if len(row) != 3 or not row[0].isdigit() or not _MID_RE.fullmatch(row[2]):
        raise Bad(f"expected '<index>,<label>,<mid>', got {','.join(row)[:60]!r}", 'fix or delete the line')
    return row[1], row[2]


def load_fsd50k(root, skip_bad=False, check_audio=True):
    """FSD50K on the authors' 50 classes, each clip cut into 1 s excerpts (an item each, key '<part>/<fname>#<k>', group
    the clip); official split: dev's train / val rows, eval tests. Every header is read for the lengths."""
    root = Path(root)
    root = next((c for c in (root, root / 'FSD50K') if (c / 'FSD50K.ground_truth').is_dir()), root)
    gt, issues, counts, clips = root / 'FSD50K.ground_truth', [], collections.Counter(), []
    for name in FSD50K_GROUND_TRUTH.values():
        must_exist(gt / name, f"unpack FSD50K.ground_truth.zip there (the loader needs {DATASETS['fsd50k']['layout']})",
                   root)
    if not (gt / 'vocabulary.csv').is_file():
        issues.append(note(gt / 'vocabulary.csv', 'not found',
                           'the labels of dev.csv and eval.csv are used without it'))
    vocab = dict(read_rows(gt / 'vocabulary.csv', _vocabulary_row, issues)) if (gt / 'vocabulary.csv').is_file() else {}
    absent = [c for c in FSD50K_CLASSES if vocab and c not in vocab]
    issues += [note(gt / 'vocabulary.csv', f'{len(absent)} of the 50 classes are not listed ({_eg(absent)})',
                    'their names are matched in the labels anyway')] * bool(absent)
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
            if problem: raise Bad(problem)
            seen[fname] = lineno
            for lab in labels:
                if vocab and lab not in vocab: unknown.setdefault(lab, [0, f'{gt / csv_name}:{lineno}'])[0] += 1
            counts['ignored_labels'] += sum(lab not in _FSD50K_INDEX for lab in labels)
            return fname, sorted({_FSD50K_INDEX[lab] for lab in labels if lab in _FSD50K_INDEX}), split
        rows = read_rows(gt / csv_name, parse, issues, need=['fname', 'labels', 'mids'] + ['split'] * (part == 'dev'),
                         advice='use the file of the FSD50K release (FSD50K.ground_truth.zip)',
                         fields='comma-separated fields (labels and mids quoted)')
        issues += [note(where, f'label {lab!r} ({n} rows) is not in vocabulary.csv', 'ignored (not one of the 50 '
                        'classes)' if lab not in _FSD50K_INDEX else 'used: it is one of the 50 classes')
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
        issues += [note(folder, f'{len(unlisted)} files are not rows of {csv_name} (e.g. {_eg(unlisted)})')] * bool(
            unlisted)
    ok, rates, chans, infos = check_files([c[4] for c in clips], issues)
    counts['skipped_bad'] = raise_if_fatal(issues, skip_bad, root)
    info, rows, segments = {part: collections.Counter(clips=0, excerpts=0, seconds=0.0, ceil=0, floor=0)
                            for part in FSD50K_AUDIO}, [], []
    for (part, fname, targets, split, path), header in ((c, h) for c, h, good in zip(clips, infos, ok) if good):
        seconds = header.frames / header.samplerate
        n = excerpt_count(seconds)  # against ceil and floor, for stats
        info[part].update(clips=1, excerpts=n, seconds=seconds, floor=max(1, int(seconds / EXCERPT_SECONDS)),
                          ceil=max(1, math.ceil(seconds / EXCERPT_SECONDS - 1e-9)))
        rows += [(f'{part}/{fname}#{k}', path, targets, split, f'{part}/{fname}') for k in range(n)]
        segments += [(k * EXCERPT_SECONDS, EXCERPT_SECONDS) for k in range(n)]
    counts.update(clips=sum(v['clips'] for v in info.values()), excerpts=len(rows))
    return dataset('fsd50k', root, FSD50K_CLASSES, rows, issues, counts, skip_bad, multilabel=True,
                   checked=(np.ones(len(rows), bool), rates, chans), segments=np.array(segments, np.float64).reshape(
                       -1, 2), info=dict(parts={p: dict(v) for p, v in info.items()}, excerpt_seconds=EXCERPT_SECONDS))


CSV_PATH_COLUMNS = ('path', 'file', 'filename', 'fname', 'filepath', 'audio', 'audio_path')
CSV_LABEL_COLUMNS = ('label', 'labels', 'class', 'category', 'classes')
CSV_SPLITS = {'train': 'train', 'training': 'train', 'val': 'val', 'valid': 'val', 'validation': 'val', 'dev': 'val',
              'test': 'test', 'testing': 'test', 'eval': 'test', 'evaluation': 'test'}
CSV_LABEL_SEP = ';'  # several labels in one cell make the CSV multi-label


def load_csv(root, csv=None, skip_bad=False, check_audio=True):
    """Your own clips: a CSV of paths (under `root`) and labels (joined by ';': multi-label), maybe split or fold."""
    if csv is None: raise DataError(f"--data csv needs --csv FILE: {DATASETS['csv']['layout']}")
    root, issues, counts, kept, seen = Path(root), [], collections.Counter(), [], {}
    path = Path(must_exist(csv, 'give --csv the CSV of your clips (a path and a label column)'))
    header = [h.strip() for h in next(csv_reader(io.StringIO(read_text(path))), [])]
    lower = [h.lower() for h in header]
    col = {what: next((header[lower.index(c)] for c in names if c in lower), None)
           for what, names in (('path', CSV_PATH_COLUMNS), ('label', CSV_LABEL_COLUMNS), ('split', ('split',)),
                               ('fold', ('fold',)))}
    if col['path'] is None or col['label'] is None:
        raise DataError.one(f'{path}:1', f"header {header} has no {'path' if col['path'] is None else 'label'} column",
                            f"name the columns: a path column ({', '.join(CSV_PATH_COLUMNS)}) and a label column "
                            f"({', '.join(CSV_LABEL_COLUMNS)}); optional: split or fold", path.parent)
    if col['split'] and col['fold']:
        issues.append(note(f'{path}:1', 'both a split and a fold column', 'the split column is used'))
        col['fold'] = None
    def parse(row, lineno):
        labels = list(dict.fromkeys(x.strip() for x in row[col['label']].split(CSV_LABEL_SEP) if x.strip()))
        split, fold = CSV_SPLITS.get(row.get(col['split'], '').lower()), row.get(col['fold'])
        problem = ('empty path' if not row[col['path']] else 'no label' if not labels else
                   f"split {row[col['split']]!r} is not train, val or test" if col['split'] and split is None else
                   f'fold {fold!r} is not a whole number >= 1' if col['fold'] and not (
                       fold.isdigit() and int(fold) >= 1) else None)
        if problem: raise Bad(problem)
        return dict(lineno=lineno, path=row[col['path']], labels=labels, split=split, multi=CSV_LABEL_SEP in
                    row[col['label']], fold=int(fold) if col['fold'] else None)
    rows = read_rows(path, parse, issues, need=[col['path'], col['label']], todo='fix or delete the row (quote a '
                     'field that holds a comma)')
    multilabel, top = any(r['multi'] for r in rows), Path(os.path.abspath(root))
    for r in rows:
        full = Path(os.path.normpath(top / r['path']))  # an absolute path stays itself
        where, key = f"{csv}:{r['lineno']}", full.relative_to(top).as_posix() if full.is_relative_to(top) else None
        if key is None:
            issues.append(Issue(where, f"path {r['path']!r} is outside the data folder {root}", 'move the file under '
                                'it and give its path relative to it (or point --root at a folder that holds every '
                                'file)'))
        elif key in seen:
            issues.append(Issue(where, f'{key} is already listed on line {seen[key]}', 'delete the duplicate row (a '
                                'clip with several labels takes them in one cell, separated by ;)'))
        else:
            seen[key] = r['lineno']
            kept.append(dict(r, key=key, full=full))
    if col['split']:  # a label with no training row cannot be learned
        where = collections.defaultdict(list)
        for r in kept:
            for lab in r['labels']: where[lab].append((r['split'], r['lineno']))
        untaught = [lab for lab, parts in where.items() if all(s != 'train' for s, _ in parts)]
        issues += [Issue(f'{csv}:{where[lab][0][1]}', f"label {lab!r} appears only in "
                         f"{' and '.join(sorted({s for s, _ in where[lab]}))} rows ({len(where[lab])}): nothing to "
                         'learn it from', 'add training rows for it, or remove it from those rows',
                         count=len(where[lab]))
                   for lab in untaught]
        for r in kept: r['labels'] = [x for x in r['labels'] if x not in untaught]
        counts['dropped_no_class'] += sum(not r['labels'] for r in kept)
        kept = [r for r in kept if r['labels']]
    classes = list(dict.fromkeys(lab for r in kept for lab in r['labels']))
    index = {c: i for i, c in enumerate(classes)}
    ds = dataset('csv', root, classes, [(r['key'], r['full'], [index[x] for x in r['labels']] if multilabel else
                                         index[r['labels'][0]], r['split'] or 'train', r['key'], r['fold'])
                                        for r in kept], issues, counts, skip_bad, check_audio, multilabel=multilabel,
                 folds=bool(col['fold']))
    ds.info = dict(csv=str(csv), split_column=bool(col['split']), seconds=typical_seconds(ds.paths))
    return ds


def load_folder(root, skip_bad=False, check_audio=True):
    """A folder per class (single-label): every audio file under <root>/<class>/ is a clip of it; classes sorted."""
    root, issues, tree = Path(root), [], {}
    for entry in _entries(root):
        if entry.name.startswith('.'): continue
        if not entry.is_dir():
            issues.append(note(root / entry.name, 'not in a class folder'))
            continue
        files = sorted(p for p in Path(entry.path).rglob('*') if p.is_file()
                       and not any(part.startswith('.') for part in p.relative_to(entry.path).parts))
        issues += [note(p, 'stray non-audio file') for p in files if p.suffix.lower() not in AUDIO_EXTENSIONS]
        audio = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
        if audio:
            tree[entry.name] = audio
        else:
            issues.append(note(root / entry.name, 'folder without audio files', 'not a class (ignored)'))
    if len(tree) < 2:
        raise DataError.one(root, f"{len(tree)} class folder{'s' * (len(tree) != 1)} with audio files "
                            f"({', '.join(tree) or 'none'}); classes to learn need at least 2",
                            f"the layout is {DATASETS['folder']['layout']}", root)
    rows = [(p.relative_to(root).as_posix(), p, c, 'train', p.relative_to(root).as_posix())
            for c, name in enumerate(tree) for p in tree[name]]
    ds = dataset('folder', root, list(tree), rows, issues, collections.Counter(), skip_bad, check_audio)
    ds.info = dict(seconds=typical_seconds(ds.paths))
    return ds


def authors_file_names(n_phases):
    """[(train file, test file)] of phases 0 .. n-1: train_phase_<k>.txt, test_phase_0_1_.._k.txt."""
    return [(f'train_phase_{k}.txt', f"test_phase_{'_'.join(map(str, range(k + 1)))}.txt") for k in range(n_phases)]


def read_phase_file(path, issues):
    """An authors' phase file -> [(line, clip, 0/1 targets)]; a record '<path>_[0. 1. ...]' may wrap onto more lines."""
    lines, out, i = read_text(path).splitlines(), [], 0
    while i < len(lines):
        line, lineno, cut = lines[i], i + 1, lines[i].rfind('_[')
        i += 1
        if line.strip() and cut < 0:
            issues.append(Issue(f'{path}:{lineno}', f"expected '<path>_[0. 1. ...]', got {line.strip()[:60]!r}",
                                'fix or delete the line'))
        if not line.strip() or cut < 0: continue
        clip, vector = line[:cut].strip(), line[cut + 2:]
        while ']' not in vector and i < len(lines) and '_[' not in lines[i]: vector, i = vector + ' ' + lines[i], i + 1
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


def load_authors_txt(root, path_map=(), skip_bad=False, check_audio=True):
    """The authors' phase files, exactly: phase k trains on the records of train_phase_<k>.txt, tests on those of
    test_phase_0_.._k.txt, in their class order and sizes. path_map: (OLD, NEW) prefixes of clips kept elsewhere."""
    root, sizes = Path(root), []
    while (root / f'train_phase_{len(sizes)}.txt').is_file():
        records = read_phase_file(root / f'train_phase_{len(sizes)}.txt', [])
        if not records: break
        sizes.append(len(records[0][2]))
    if not sizes:
        raise DataError.one(root / 'train_phase_0.txt', 'not found or without a record', "point --root at the authors' "
                            f"data_txt folder ({DATASETS['authors-txt']['layout']})", root)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n_classes, issues, items = int(bounds[-1]), [], {}  # clip -> dict(part, target (-1: unseen), where, train, test)
    for k, (train_name, test_name) in enumerate(authors_file_names(len(sizes))):
        for part, name, width, lo in (('train', train_name, sizes[k], int(bounds[k])),
                                      ('test', test_name, int(bounds[k + 1]), 0)):
            in_file = {}
            todo = f'phase {k} needs both {train_name} and {test_name}'
            for lineno, clip, values in read_phase_file(must_exist(root / name, todo, root), issues):
                where = f'{root / name}:{lineno}'
                if len(values) != width or clip in in_file:
                    issues.append(Issue(where, f'{len(values)} target values; phase {k} has {width} in this file'
                                        if len(values) != width else f'{clip} is already on line {in_file[clip]}',
                                        'fix or delete the record' if len(values) != width else 'delete the duplicate'))
                    continue
                in_file[clip] = lineno
                it = items.setdefault(clip, dict(part=part, target=np.full(n_classes, -1, np.int8), where=where,
                                                 train=np.zeros(len(sizes), bool), test=np.zeros(len(sizes), bool)))
                v, cols = np.array(values, np.int8), slice(lo, lo + width)
                if it['part'] != part or ((it['target'][cols] >= 0) & (it['target'][cols] != v)).any():
                    issues.append(Issue(where, f"{clip} is a {it['part']} clip in {it['where']} and a {part} clip here"
                                        if it['part'] != part else f"the targets of {clip} differ from its record in "
                                        f"{it['where']}", 'a clip is either trained or tested on; fix the files'
                                        if it['part'] != part else 'make the records of one clip agree'))
                    it['bad'] = True
                    continue
                it['target'][cols], it[part][k] = v, True
    clips, paths = [(clip, it) for clip, it in items.items() if not it.get('bad')], []
    for clip, _ in clips:  # the longest matching OLD prefix becomes NEW; relative paths from above data_txt/
        old = max((m for m in path_map or () if clip == m[0] or clip.startswith(m[0].rstrip('/') + '/')),
                  key=lambda m: len(m[0]), default=None)
        text = old[1].rstrip('/') + clip[len(old[0].rstrip('/')):] if old else clip
        paths.append(Path(text) if os.path.isabs(text) else root.parent / text)
    exists = np.array([p.is_file() for p in paths], bool)
    if not exists.all():  # ONE line, with the --path-map hint
        gone = [clip for (clip, _), here in zip(clips, exists) if not here]
        prefix = os.path.commonpath(gone) if all(os.path.isabs(m) for m in gone) else ''
        prefix = os.path.dirname(prefix) if Path(prefix).suffix else prefix
        prefix = prefix if prefix not in ('', os.sep) else 'OLD'
        issues.append(Issue(str(root), f'{len(gone)} of the {len(clips)} clips of the phase files do not exist on this '
                            f'machine (e.g. {paths[int(np.flatnonzero(~exists)[0])]})',
                            'if they are elsewhere, map the '
                            f'folder: --path-map {prefix}=NEW (NEW: where this machine has what the files list under '
                            f'{prefix})', count=len(gone)))
    ok, rates, chans = exists.copy(), {}, {}
    if check_audio and exists.any():
        ok[np.flatnonzero(exists)], rates, chans, _ = check_files([p for p, here in zip(paths, exists) if here], issues)
    counts = dict(skipped_bad=raise_if_fatal(issues, skip_bad, root))
    names = [f'class {c}' for c in range(n_classes)]  # or classes.txt's
    given = [x.strip() for x in read_text(root / 'classes.txt').splitlines() if x.strip()] \
        if (root / 'classes.txt').is_file() else names
    if len(given) != n_classes:
        issues.append(note(root / 'classes.txt', f'{len(given)} names for the {n_classes} classes of the phase files',
                           'generic names are used'))
    member = {part: np.array([it[part] for _, it in clips], bool).reshape(-1, len(sizes)) for part in ('train', 'test')}
    records = {f: int(member[part][:, k].sum()) for k, pair in enumerate(authors_file_names(len(sizes)))
               for part, f in zip(('train', 'test'), pair)}
    return dataset('authors-txt', root, given if len(given) == n_classes else names, [
        (c, p, np.flatnonzero(it['target'] > 0), it['part'], c) for (c, it), p in zip(clips, paths)], issues, counts,
        skip_bad, multilabel=True, checked=(ok, rates, chans), phase_train=member['train'], phase_test=member['test'],
        info=dict(phase_sizes=list(sizes), records=records))

# Per layout: its loader, phases (None: from the files), split unless told otherwise, front end, multi-label, layout.
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
    if name not in DATASETS: raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not Path(root).is_dir():
        raise DataError.one(root, 'no such folder', f"point --root at the unpacked {name} dataset "
                            f"({DATASETS[name]['layout']})", '')
    return DATASETS[name]['load'](root, skip_bad=skip_bad, check_audio=check_audio, **options)


# --- Train / val / test splits (kws_cil.md 2.4) and class-incremental phases -----------------------------------------
@dataclasses.dataclass
class Split:
    """Indices (into the Dataset) of the train / val / test clips, sorted, and a hash of their keys."""
    method: str; seed: int; train: np.ndarray; val: np.ndarray; test: np.ndarray; hash: str = ''


def split_hash(ds, train, val, test):
    """sha1 over 'part<TAB>key' lines: equal on every machine for the same split."""
    parts = (('train', train), ('val', val), ('test', test))
    return hashlib.sha1(''.join(f'{p}\t{ds.keys[i]}\n' for p, idx in parts for i in idx).encode()).hexdigest()


def make_split(ds, method=None, seed=0, ratios=(0.7, 0.1, 0.2), fold=None):
    """Train / val / test (kws_cil.md 2.4). grouped: sources never cross parts, per class (GSC: all clips) groups in a
    seeded order fill 70 % then 80 %; official: the dataset's lists, folds or columns; random: per class 70/10/20."""
    method = method or (DATASETS[ds.name]['split'] if ds.name != 'csv' else  # a CSV: official with a split / fold
                        'official' if ds.info.get('split_column') or ds.folds is not None else 'random')
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
    by_class = [np.arange(len(ds))] if ds.multilabel else [np.flatnonzero(ds.labels == c) for c in
                                                           range(len(ds.classes))]
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
            sizes, assign, cum = collections.Counter(groups[idx]), {}, 0
            order = np.array(sorted(sizes), dtype=object)[rs.permutation(len(sizes))]
            for g in sorted(order, key=lambda g: g not in fixed):  # a group across classes stays where it went first
                assign[g] = fixed.get(g, 0 if cum < ratios[0] * len(idx) else 1 if cum < (ratios[0] + ratios[1])
                                      * len(idx) else 2)
                cum += sizes[g]
            fixed.update(assign)
            part[idx] = [assign[g] for g in groups[idx]]
    elif method == 'random':
        guard, need = ds.name in ('csv', 'folder'), 2 if ds.multilabel else 3  # a clip of each class in each part
        n = ds.labels.sum(axis=0) if ds.multilabel else np.bincount(ds.labels, minlength=len(ds.classes))
        few = [f'{ds.classes[c]!r} ({int(k)} clip{"s" * int(k != 1)})' for c, k in enumerate(n) if guard and k < need]
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
    write_atomic(path, json.dumps(doc, indent=0))


def load_split(path, ds):
    """A split saved by save_split (cil.py saves a run's as split-*.json) for this Dataset, its hash checked."""
    try:
        doc = json.loads(read_text(path))
        index = {k: i for i, k in enumerate(ds.keys)}
        absent = [k for p in ('train', 'val', 'test') for k in doc[p] if k not in index]
        parts = [np.array(sorted(index[k] for k in doc[p] if k in index), np.int64) for p in ('train', 'val', 'test')]
        split = Split(doc['method'], doc['seed'], *parts, split_hash(ds, *parts))
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f'{path}: not a split written by save_split ({type(e).__name__}: {e}); write it '
                        'again') from None
    if absent or split.hash != doc['hash']:
        raise DataError(f'{path}: ' + (f'{len(absent)} clips of the saved split are not in the dataset (e.g. '
                        f'{absent[0]})' if absent else 'hash mismatch') + '; rebuild the split')
    return split


def class_order(n, how='default', seed=0):
    """Class indices in learned order: 'default' the paper's, 'shuffle' RandomState(seed).permutation (Mittal's)."""
    n = len(DATASETS_CLASSES[n]) if isinstance(n, str) else int(n)
    if how not in ('default', 'shuffle'): raise ValueError(f'unknown class order {how!r}; use default or shuffle')
    return list(range(n)) if how == 'default' else [int(c) for c in np.random.RandomState(seed).permutation(n)]


DATASETS_CLASSES = {'audioset': AUDIOSET_CLASSES, 'speechcommands': SPEECHCOMMANDS_WORDS,
                    'urbansound8k': URBANSOUND8K_CLASSES, 'fsd50k': FSD50K_CLASSES, 'esc50': ESC50_CLASSES}


@dataclasses.dataclass
class Phase:
    """Phase k: learned label j is class seen_classes[j], the phase's are n_old .. n_seen - 1. *_y: learned labels, or
    float32 multi-hot over the seen classes (train_y: the phase's columns only, as the paper). joint: AT's set."""
    k: int; new_classes: list; seen_classes: list
    train: np.ndarray; train_y: np.ndarray; val: np.ndarray; val_y: np.ndarray
    test: np.ndarray; test_y: np.ndarray; joint: np.ndarray; joint_y: np.ndarray
    n_old: int = 0; n_new: int = 0; n_seen: int = 0


def default_phase_sizes(n_classes, multilabel):
    """Phases of csv / folder data: multi-label 60 % of the classes then 4 phases (as the paper), else 5 equal tasks."""
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
    """Per-phase indices and targets (multilabel_cil.md Protocol, kws_cil.md 1.1); the authors' files name their own."""
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
        lab = np.argsort(order)[ds.labels]  # the learned label of each clip
        pick = lambda idx, lo, hi: idx[(lab[idx] >= lo) & (lab[idx] < hi)]  # noqa: E731
    phases = []
    for k in range(len(sizes)):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        val = pick(split.val, 0, hi)
        train, test, joint = ((split.train[ds.phase_train[split.train, k]], split.test[ds.phase_test[split.test, k]],
                               split.train[ds.phase_train[split.train, :k + 1].any(axis=1)]) if files else  # theirs
                              (pick(split.train, lo, hi), pick(split.test, 0, hi), pick(split.train, 0, hi)))
        ys = [Y[idx, :hi] if ds.multilabel else lab[idx] for idx in (train, val, test, joint)]  # copies
        if ds.multilabel: ys[0][:, :lo] = 0.0  # training targets: the phase's classes only (as the paper)
        phases.append(Phase(k, order[lo:hi], order[:hi], train, ys[0], val, ys[1], test, ys[2], joint, ys[3],
                            n_old=lo, n_new=hi - lo, n_seen=hi))
    return phases


def check_phases(ds, phases):
    """One line (DataError) at the first phase that cannot be learned or measured (a class without a clip in a part)."""
    for ph in phases:
        for part in ('train',) if ds.multilabel else ('train', 'val', 'test'):
            y = getattr(ph, part + '_y')
            have = set(np.flatnonzero(y.sum(axis=0))) if ds.multilabel else set(np.unique(y).tolist())
            absent = [ds.classes[c] for j, c in enumerate(ph.seen_classes) if j not in have and (part != 'train'
                                                                                                or j >= ph.n_old)]
            if absent:
                raise DataError(f"phase {ph.k} has no training clip of {', '.join(absent)} in {ds.root}; check the TSV "
                                'labels or choose another class order' if ds.multilabel else f"the {part} split of "
                                f"phase {ph.k} has no clip of {', '.join(absent)} in {ds.root}; use more data or "
                                'another --split')


def check_classes(ds, order, n_classes):
    """One line (DataError) naming the classes to learn that have no clip (after skipped files)."""
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


# --- Folders shared by processes: a lock, and SIGTERM during long builds ---------------------------------------------
class LockBusy(Exception):
    """FolderLock(wait=False) found the folder held by another process (a one-line message)."""


class FolderLock:
    """`with FolderLock(folder):` an exclusive POSIX lock on <folder>/lock (released by the kernel however its holder
    ends, not inherited by forks), waited for with ONE line naming the holder ('<host> <pid>'); wait=False: LockBusy."""
    def __init__(self, folder, wait=True, say=None):
        self.path, self.wait, self.fd = Path(folder) / 'lock', wait, None
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def __enter__(self):
        announced = False
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno not in (errno.EACCES, errno.EAGAIN): raise
                    who = os.pread(fd, 200, 0).decode('utf-8', 'replace').strip() or 'another process'
                    if not self.wait: raise LockBusy(f'{self.path} is held by {who}') from None
                    if not announced: self.say(f'waiting for {self.path} ({who}) ...')
                    announced = True
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                try:  # the holder that left may have deleted the file this process locked: then lock the new one
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    self.fd = fd  # from here __exit__ removes the lock file, also when this write fails (a full disk)
                    os.ftruncate(fd, 0)
                    os.write(fd, f'{socket.gethostname()} {os.getpid()}\n'.encode())
                else:
                    os.close(fd)
            except BaseException:  # Ctrl-C or SIGTERM while waiting, LockBusy, a failed write
                os.close(fd) if self.fd is None else self.__exit__()
                raise
        return self

    def __exit__(self, *exc):
        fd, self.fd = self.fd, None
        with contextlib.suppress(OSError): os.unlink(self.path)  # gone already, or the folder became read-only
        os.close(fd)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM raises KeyboardInterrupt (work kept, locks released), unless it has a handler."""
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if install else None
    try:
        yield
    finally:
        if install: signal.signal(signal.SIGTERM, previous)


def usable_cores():  # the cores this process may run on (its affinity mask where the OS has one)
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def _loaded_blas():
    """(get, set) thread-count functions of each OpenBLAS loaded here (numpy's and scipy's), from /proc/self/maps."""
    import ctypes
    calls = []
    with contextlib.suppress(OSError), open('/proc/self/maps') as f:
        for path in sorted({line.split()[-1] for line in f if 'openblas' in line.lower() and '.so' in line}):
            lib = ctypes.CDLL(path)
            calls += [(getattr(lib, f'{p}openblas_get_num_threads{x}'), getattr(lib, f'{p}openblas_set_num_threads{x}'))
                      for p in ('', 'scipy_') for x in ('', '64_')
                      if hasattr(lib, f'{p}openblas_set_num_threads{x}')][:1]
    return calls


@contextlib.contextmanager
def blas_threads(n):
    """BLAS on n threads here and in forked or spawned workers while the block runs: the workers are the parallelism."""
    env = {k: os.environ.get(k) for k in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    calls = _loaded_blas()
    os.environ.update(dict.fromkeys(env, str(n)))
    before = [get() for get, _ in calls]
    for _, set_threads in calls: set_threads(n)
    try:
        yield
    finally:
        for (_, set_threads), k in zip(calls, before): set_threads(k)
        for k, v in env.items(): os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


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
        if not self.enabled or not (final or now - self.last >= (0.5 if self.tty else 10.0)): return
        self.last, rate = now, self.done / max(now - self.t0, 1e-9)
        msg = (f'{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, elapsed '
               f'{hms(now - self.t0)}, ETA {hms((self.total - self.done) / max(rate, 1e-9))}')
        end = ('  \n' if final else '  ') if self.tty else '\n'  # in place on a terminal
        print(('\r' if self.tty else '') + msg, end=end, file=sys.stderr, flush=True)

# --- Front ends, and the feature cache: computed once, memory-mapped, every row checked ------------------------------
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
    """The log-mel length for csv / folder clips: their length rounded up to a whole second, 1 s to PANNs' 10 s."""
    return float(min(10, max(1, math.ceil(float(clip_seconds) - 1e-6))))


def single_label_frontend(clip_seconds):
    """The small CNN's recipe for clips of that length: Speech Commands (32 x 32) up to 1.5 s, else UrbanSound8K."""
    return 'speechcommands' if clip_seconds <= 1.5 else 'urbansound8k'


def frontend_config(ds, name=None, seconds=None):
    """The front end of a dataset as the dict hashed into its cache folder (DATASETS'; generated 16 kHz AudioSet:
    logmel16k; csv / folder by labels and length); recipes copied in; csv, folder, authors-txt record their folder."""
    generated_16k = bool(ds.synthetic) and ds.synthetic.get('sr', 16000) < 32000 and ds.name != 'fsd50k'
    if name is None:
        name = (('logmel16k' if generated_16k else 'panns') if ds.name in ('audioset', 'authors-txt') else
                DATASETS[ds.name]['frontend'] or ('panns' if ds.multilabel else
                                                  single_label_frontend(ds.info.get('seconds') or 1.0)))
    if name not in FRONTENDS: raise ValueError(f"unknown front end {name!r}; choose one of {', '.join(FRONTENDS)}")
    config = dict(FRONTENDS[name], name=name)
    if name == 'authors' and generated_16k:  # the authors' recipe at the generated 16 kHz
        config.update(sr=16000, n_fft=512, fmax=8000.0, seconds=FRONTENDS['logmel16k']['seconds'])
    if name in ('logmel16k', 'authors') and generated_16k and 'seconds' in ds.synthetic:
        config['seconds'] = float(ds.synthetic['seconds'])
    if 'seconds' in config:
        config['seconds'] = (EXCERPT_SECONDS if ds.name == 'fsd50k' else float(seconds) if seconds is not None else
                             frontend_seconds(ds.info['seconds']) if ds.name in ('csv', 'folder')
                             and ds.info.get('seconds') else config['seconds'])
    if ds.name in ('csv', 'folder', 'authors-txt'): config['source'] = str(Path(ds.root).resolve())
    if config['fn'] in _RECIPES: config['recipe'] = json.loads(json.dumps(getattr(features, _RECIPES[config['fn']])))
    return config


def compute_features(y, sr, config):  # one mono waveform -> float32 (frames, features)
    fn = config['fn']
    if fn in _RECIPES: return getattr(features, fn)(y, sr)
    if fn not in ('log_mel', 'log_mel_authors'): raise ValueError(f'unknown feature function {fn!r}')
    y = features.resample(y, sr, config['sr'])
    n = int(round(config['seconds'] * config['sr']))
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    return getattr(features, fn)(y, config['sr'], *(config[k] for k in ('n_fft', 'hop_length', 'n_mels', 'fmin',
                                                                       'fmax')))


MANIFEST_VERSION = 3  # 3: [row, size, mtime_ns, sha1 of the file, crc of the row, sample rate] per clip


def row_crc(key, row):
    """crc32 of the clip key and the row's bytes: a clip pointed at another's row fails like a damaged row."""
    return zlib.crc32(memoryview(row).cast('B'), zlib.crc32(key.encode('utf-8', 'surrogateescape')))


@dataclasses.dataclass
class FeatureCache:
    """The features of a Dataset under one front end: data (n_rows, T, F) float16 memory-mapped; rows[i] the row of clip
    i (-1: skipped as bad), crcs[i] its checksum; stats: computed, reused, rehashed, repaired, note (its repair line)"""
    folder: Path; config: dict; shape: tuple; rows: np.ndarray; data: np.ndarray; stats: dict; issues: list
    keys: list = None; crcs: list = None

    @property
    def valid(self):
        return self.rows >= 0

    def read(self, index, dtype=np.float16):
        """The features of clips `index` (n, T, F), each row checked against its checksum (a changed row: one line)."""
        index = np.asarray(index, np.int64)
        if np.any(self.rows[index] < 0):
            raise ValueError('some clips have no features (skipped as bad); use prepare() or select()')
        x = np.ascontiguousarray(self.data[self.rows[index]])
        bad = sum(row_crc(self.keys[i], r) != self.crcs[i] for i, r in zip(index, x))
        if bad:
            raise DataError(f"{self.folder / 'features.f16'}: {bad} of the {len(index)} feature rows read changed "
                            'since they were written (checksum mismatch); run the command again, which recomputes them')
        return x if dtype == np.float16 else x.astype(dtype)

    def get(self, index):
        return self.read(index, np.float32)

    def select(self, index):  # the cache seen through Dataset.select(index)
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, int)
        keys, crcs = [self.keys[i] for i in idx], [self.crcs[i] for i in idx]
        return dataclasses.replace(self, rows=self.rows[idx], keys=keys, crcs=crcs)

    def fingerprint(self):
        """One hash of what the features are (the front end, every clip's key and its row's checksum)."""
        rows = ''.join(f'{self.keys[i]}\0{self.crcs[i]}\n' for i in np.flatnonzero(self.valid))
        h = hashlib.sha1(json.dumps(self.config, sort_keys=True).encode() + rows.encode('utf-8', 'surrogateescape'))
        return h.hexdigest()


def cache_folder(ds, cache_root, config=None):  # <cache_root>/<dataset>-<hash of the front-end config>
    config = config or frontend_config(ds)
    return Path(cache_root) / f"{ds.name}-{hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]}"


def _cache_job(job):
    """One file read and hashed; unless the hash is `expected` (only touched) -> (i, features, sha1, rate, problem)."""
    i, path, config, expected, segment = job
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        return i, None, None, None, f'cannot read the file ({e.strerror})'
    digest, x, sr, problem = hashlib.sha1(raw).hexdigest(), None, None, None
    try:
        if digest != expected:
            y, sr = decode_audio(raw, segment)
            with warnings.catch_warnings():  # noise-only clips have no pitch to tune to: tuning 0, as librosa
                warnings.filterwarnings('ignore', 'Trying to estimate tuning from empty')
                x = compute_features(y, sr, config)
    except AudioProblem as e:
        problem = str(e)
    except Exception as e:  # a feature function failing on odd audio: still one line
        problem = f'feature computation failed ({type(e).__name__}: {e})'
    if x is not None and not np.all(np.isfinite(x)): problem = 'features contain NaN or Inf'
    return (i, None, digest, None, problem) if problem or x is None else (
        i, np.clip(x, -65000, 65000).astype(np.float16), digest, sr, None)


def _quiet_worker():
    """A cache worker: Ctrl-C goes to the parent (which stops the pool); an orphan finds its queue closed, ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.stderr = open(os.devnull, 'w')


def _read_manifest(path, config):
    """(manifest, None) if `path` holds a usable manifest of `config`, else (None, why; None: a new cache)."""
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f'manifest.json cannot be read ({e.strerror})'
    except ValueError:
        return None, 'manifest.json is not valid JSON'
    version = m.get('version') if isinstance(m, dict) else None
    if version != MANIFEST_VERSION or m.get('config') != config:
        return None, (f'manifest.json is of format version {version} (this data.py writes version {MANIFEST_VERSION})'
                      if version != MANIFEST_VERSION else 'manifest.json is of another front-end config')
    try:
        if min(int(s) for s in m['shape']) < 1 or int(m['rows']) < 0 or not isinstance(m['clips'], dict):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        return None, 'manifest.json is malformed'
    m['clips'] = {k: e for k, e in m['clips'].items() if isinstance(e, list) and len(e) == 6
                  and isinstance(e[0], int) and 0 <= e[0] < m['rows']}
    return m, None


def build_cache(ds, cache_root, config=None, workers=None, skip_bad=False, progress=True, checkpoint_every=2000):
    """The features of every clip, computed once in <cache_root>/<dataset>-<config hash>/ (features.f16, manifest.json):
    a file that kept its size and mtime is reused; every stored row is checked on open and on read, damage recomputed
    with ONE line; a clip loses its checksum before it is recomputed, so a stopped build resumes without one."""
    t0, config = time.time(), dict(config or frontend_config(ds))
    folder = cache_folder(ds, cache_root, config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock, read_only = None, None
        try:
            lock = FolderLock(folder).__enter__()
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS): raise
            read_only = e  # usable if nothing needs writing
        try:
            with sigterm_as_interrupt(), blas_threads(1):  # the workers are the parallelism
                return _build(ds, folder, config, workers, skip_bad, progress, checkpoint_every, read_only, t0)
        finally:
            if lock is not None: lock.__exit__()
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
        noise = (0.01 * np.random.RandomState(0).standard_normal(16000)).astype(np.float32)  # a probe for the shape
        manifest = dict(version=MANIFEST_VERSION, config=config, dataset=ds.name,
                        shape=list(compute_features(noise, 16000, config).shape), rows=0, clips={})
    shape, clips, n_rows = tuple(manifest['shape']), manifest['clips'], manifest['rows']
    row_bytes = int(np.prod(shape)) * 2
    t_check, stored = time.time(), [(k, e) for k, e in clips.items() if e[4] is not None]
    data = np.memmap(dpath, np.float16, 'r', shape=(size // row_bytes,) + shape) if size >= row_bytes else []
    bad = {k for k, e in stored if e[0] >= len(data) or row_crc(k, data[e[0]]) != e[4]}  # a row past the end fails
    good_rows, needed = {e[0] for k, e in stored if k not in bad}, max((e[0] + 1 for _, e in stored), default=0)
    wrong += ([f'the file is missing ({needed * row_bytes} bytes expected)' if not dpath.exists() else
               f'the file is {size} bytes, {needed * row_bytes} expected (cut short)'] if size < needed * row_bytes else
              [f'the file is {size} bytes, longer than the {n_rows * row_bytes} recorded (cut back)']
              if size > n_rows * row_bytes and not fresh else [])
    wrong += [f'{len(bad)} of its {len(stored)} rows are missing or do not match their checksums'] if bad else []
    rows, jobs, pending, stats, issues = np.full(len(ds), -1, np.int64), [], {}, collections.Counter(), []
    for i, (key, path) in enumerate(zip(ds.keys, ds.paths)):
        try:
            st = os.stat(path)
        except OSError:
            issues.append(_gone(path))
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
    elsewhere = len(bad - set(ds.keys))
    repair = (f"feature cache {dpath}: {'; '.join(wrong)}; recomputing {stats['repaired']} clips"
              + (f' ({elsewhere} more when their clips are used)' if elsewhere else '')) if wrong else ''
    changed = bool(fresh or jobs or wrong or manifest['rows'] != n_rows)
    if changed and read_only is not None:
        raise DataError(f'cannot write the feature cache in {folder} ({read_only.strerror or read_only}), and '
                        f'{len(jobs)} clips need computing' + (f" ({'; '.join(wrong)})" if wrong else '')
                        + '; make it writable, or point --cache at another folder')
    if repair: print(repair, file=sys.stderr, flush=True)
    if changed:
        if fresh and dpath.exists():
            dpath.unlink()  # a process still reading the old rows keeps its memory map of them
        elif size > n_rows * row_bytes: os.truncate(dpath, n_rows * row_bytes)
        manifest['rows'] = n_rows
        write_atomic(mpath, json.dumps(manifest))  # the new rows, and no checksum on a row about to be written
    fd = os.open(dpath, os.O_RDWR | os.O_CREAT, 0o644) if changed else None
    bar, failed, workers = Progress(len(jobs), f'cache {folder.name}', progress), set(), min(workers or usable_cores(),
                                                                                          len(jobs))
    pool = multiprocessing.get_context('fork').Pool(workers, _quiet_worker) if workers > 1 else None  # fcntl: POSIX
    try:
        results = pool.imap_unordered(_cache_job, jobs, max(1, min(16, len(jobs) // (workers * 8)))) if pool else map(
            _cache_job, jobs)
        for n_done, (i, x, digest, sr, problem) in enumerate(results, 1):
            e, path = clips[ds.keys[i]], str(ds.paths[i])
            if not problem and x is not None and x.shape != shape:
                problem = f'features of shape {x.shape}, expected {shape}; report this as a bug'
            if problem:
                issues += [] if path in failed else [Issue(path, problem, 're-download or delete it')]  # once a file
                failed.add(path)
                stats['failed'] += 1
            else:  # x None: only touched, the same bytes, the row as it was
                if x is not None: os.pwrite(fd, x.tobytes(), e[0] * row_bytes)
                e[1:] = pending[i][:2] + ([digest, pending[i][2], e[5]] if x is None else
                                          [digest, row_crc(ds.keys[i], x), sr])
                rows[i] = e[0]
                stats['rehashed' if x is None else 'computed'] += 1
            bar.update()
            if n_done % checkpoint_every == 0:
                os.fsync(fd)
                write_atomic(mpath, json.dumps(manifest))
        if fd is not None and os.fstat(fd).st_size < n_rows * row_bytes:
            os.ftruncate(fd, n_rows * row_bytes)  # rows never written (failed clips): zeros, never trusted
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under sigterm_as_interrupt: keep what is done
        with contextlib.suppress(OSError):
            os.fsync(fd) if fd is not None else None
            write_atomic(mpath, json.dumps(manifest))
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if fd is not None: os.close(fd)
    sample_rates = {str(r): n for r, n in sorted(collections.Counter(
        clips[k][5] for k in ds.keys if k in clips and clips[k][4] is not None and clips[k][5]).items())}
    if changed:
        manifest['sample_rates'] = sample_rates
        write_atomic(mpath, json.dumps(manifest))
    n_bad = raise_if_fatal(issues, skip_bad, folder)
    data = np.memmap(dpath, np.float16, 'r', shape=(n_rows,) + shape) if n_rows else np.zeros((0,) + shape, np.float16)
    stats = dict({k: stats.get(k, 0) for k in ('computed', 'reused', 'rehashed', 'failed', 'repaired')}, total=len(ds),
                 skipped_bad=n_bad, verified=len(stored), verify_seconds=round(time.time() - t_check, 3),
                 seconds=round(time.time() - t0, 3), bytes=n_rows * row_bytes, sample_rates=sample_rates, note=repair)
    return FeatureCache(folder, config, shape, rows, data, stats, issues, list(ds.keys),
                        [clips[k][4] if rows[i] >= 0 else None for i, k in enumerate(ds.keys)])


def prepare(name, root, cache_root, frontend=None, skip_bad=False, workers=None, progress=True, seconds=None, ds=None,
            **options):
    """load_dataset + build_cache, the clips that failed to decode (skip_bad) dropped from both; see frontend_config."""
    ds = ds if ds is not None else load_dataset(name, root, skip_bad=skip_bad, **options)
    cache = build_cache(ds, cache_root, frontend_config(ds, frontend, seconds), workers=workers, skip_bad=skip_bad,
                        progress=progress)
    if not cache.valid.all():
        failed = len({str(ds.paths[i]) for i in np.flatnonzero(~cache.valid)})
        ds = dataclasses.replace(ds.select(cache.valid), issues=ds.issues + cache.issues)
        ds.counts = dict(ds.counts, skipped_bad=ds.counts.get('skipped_bad', 0) + failed)
        cache = cache.select(cache.valid)
    return ds, cache


# --- Command line: stats, cache (and synth, in synth.py) -------------------------------------------------------------
def print_stats(ds, split=None, file=None):
    """Per-class clip counts per part of the split, problems and notes, sample rates and channels seen."""
    split, out = split or make_split(ds), []
    parts = [('train', split.train), ('val', split.val), ('test', split.test)]
    width = max(len(c) for c in ds.classes) + 2
    out += [f'dataset {ds.name} at {ds.root}' + (f' (generated: {json.dumps(ds.synthetic, sort_keys=True)})'
                                                  if ds.synthetic else ''),
            f'clips: {len(ds)}  |  split {split.method} (seed {split.seed}): ' + ', '.join(
                f'{n} {len(i)}' for n, i in parts) + f'  |  split hash {split.hash[:12]}',
            f"{'class':<{width}}" + ''.join(f'{n:>8}' for n, _ in parts) + f"{'all':>8}"]
    for c, name in enumerate(ds.classes):
        hit = ds.labels[:, c] > 0 if ds.multilabel else ds.labels == c
        out.append(f'{name:<{width}}' + ''.join(f'{int(hit[i].sum()):>8}' for _, i in parts) + f'{int(hit.sum()):>8}')
    if ds.multilabel and len(ds):
        per_clip = collections.Counter(ds.labels.sum(axis=1).tolist())
        out.append('classes per clip: ' + ', '.join(f'{k}: {v}' for k, v in sorted(per_clip.items())))
    if ds.segments is not None:  # fsd50k: the excerpt count, against the authors' and other rules
        out.append(f"excerpts of {ds.info['excerpt_seconds']:g} s, one per started second, the last kept when at "
                   'least half an excerpt long (zero-padded), at least one per clip (counted before any file failed to '
                   'decode):')
        out += [f"  {part}: {v['clips']} clips, {v['seconds']:.1f} s of audio -> {v['excerpts']} excerpts "
                f"({v['excerpts'] / max(v['seconds'], 1e-9):.3f} per second; ceil would give {v['ceil']}, floor "
                f"{v['floor']})" for part, v in ds.info['parts'].items()]
        out.append('  the authors (FSD50K): ' + '; '.join(f'{part} {n:,} excerpts from {FSD50K_HOURS[part]} h '
                                                          f'({n / (3600 * FSD50K_HOURS[part]):.3f} per second)'
                                                          for part, n in FSD50K_AUTHORS_EXCERPTS.items()))
    if ds.folds is not None:
        folds = sorted(collections.Counter(ds.folds.tolist()).items())
        out.append('folds: ' + ', '.join(f'{f}: {n}' for f, n in folds))
    if ds.phase_train is not None:
        out.append('records per phase file: ' + ', '.join(f'{f} {n}' for f, n in ds.info['records'].items()))
    out.append('sample rates seen: ' + (', '.join(f'{r} Hz: {n}' for r, n in ds.sample_rates.items()) or 'not checked'))
    out.append('channels seen: ' + (', '.join(f'{c}: {n}' for c, n in ds.channels.items()) or 'not checked'))
    out += ['counts: ' + ', '.join(f'{k} {v}' for k, v in sorted(ds.counts.items()))] if ds.counts else []
    bad, notes = [i for i in ds.issues if i.fatal], [i for i in ds.issues if not i.fatal]
    out += [f'problems (skipped): {len(bad)}' if bad else 'problems: none'] + [f'  - {i}' for i in bad]
    out += [f'notes: {len(notes)}'] + [f'  - {i}' for i in notes[:30]]
    out += [f'  ... and {len(notes) - 30} more notes'] if len(notes) > 30 else []
    print('\n'.join(out), file=file or sys.stdout)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['synth']:  # the generators live in synth.py, which data.py does not need
        import synth
        return synth.main(argv[1:])
    parser = argparse.ArgumentParser(prog='data.py', formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Inspect a dataset, build its feature cache, or (synth) write a generated one in a real layout. 'data.py "
        "<command> --help' lists each command's flags."), epilog=(
        'examples (README: Datasets):\n  python data.py synth --kind audioset --out data/audioset_synth --seed 0\n'
        '  python data.py stats --data audioset --root data/audioset_synth\n'
        '  python data.py cache --data audioset --root data/audioset_synth --cache cache\n'
        'exit status: 0 ok, 2 data problems (listed on stderr, one line each)'))
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('synth', help='write a generated dataset in a real layout (data.py synth --help)')
    stats = sub.add_parser('stats', help='per-class clip counts per split, problems, sample rates').add_argument
    cache = sub.add_parser('cache', help='compute the features of every clip once (parallel, resumable)').add_argument
    for a in stats, cache:
        a('--data', required=True, choices=list(DATASETS), help='dataset layout to read')
        a('--root', required=True, help='dataset folder (as unpacked / downloaded, or made by synth)')
        a('--skip-bad', action='store_true', help='skip and count bad files and rows instead of stopping')
        a('--csv', metavar='FILE', help='--data csv: the CSV of the clips')
        a('--path-map', action='append', metavar='OLD=NEW', help='--data authors-txt: the clips listed under OLD are '
          'under NEW')
    stats('--split', choices=['grouped', 'official', 'random'], help="split to count (default: the dataset's)")
    stats('--split-seed', type=int, default=0, help='seed of the grouped / random split')
    stats('--fold', type=int, help='esc50 or a CSV with a fold column: the test fold')
    stats('--save-split', metavar='JSON', help='also write the split (keys + hash) here')
    stats('--no-audio-check', action='store_true', help="do not open every file's header (bad files then show up "
          'when caching)')
    cache('--cache', required=True, help='cache folder (one sub-folder per dataset and front end)')
    cache('--frontend', choices=sorted(FRONTENDS), help="front end (default: the dataset's)")
    cache('--workers', type=int, help='processes (default: every usable CPU core)')
    args = parser.parse_args(argv)
    options = {'csv': dict(csv=args.csv), 'authors-txt': dict(path_map=[tuple(m.split('=', 1)) for m in args.path_map
                                                                           or ()])}.get(args.data, {})
    try:
        if args.command == 'stats':
            ds = load_dataset(args.data, args.root, args.skip_bad, not args.no_audio_check, **options)
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


if __name__ == '__main__': sys.exit(main())
