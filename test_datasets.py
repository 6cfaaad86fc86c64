"""Tests of the datasets researchers hold (pytest): FSD50K, ESC-50, the authors' phase files, a CSV or a
folder of one's own, and the default data root. Each runs on its generated counterpart in the same
on-disk layout (data.py synth), kept small. To be folded into test_cil.py's data and cil sections."""
import csv
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import cil
import data

torch.set_num_threads(min(2, torch.get_num_threads()))


# =============================================================================
# fixtures: the generated sets (module scope: built once)

@pytest.fixture(scope='module')
def fsd_root(tmp_path_factory):
    return data.synth_fsd50k(tmp_path_factory.mktemp('fsd') / 'FSD50K', seed=0, n_dev=64, n_eval=30, max_seconds=3.0,
                             progress=False)


@pytest.fixture(scope='module')
def fsd(fsd_root):
    return data.load_dataset('fsd50k', fsd_root)


@pytest.fixture(scope='module')
def esc_root(tmp_path_factory):
    return data.synth_esc50(tmp_path_factory.mktemp('esc') / 'ESC-50-master', seed=0, clips_per_class=10,
                            seconds=0.5, sr=16000, n_classes=4, progress=False)


@pytest.fixture(scope='module')
def csv_root(tmp_path_factory):
    return data.synth_csv(tmp_path_factory.mktemp('csv'), seed=0, n_classes=3, clips_per_class=8, seconds=0.5,
                          progress=False)


@pytest.fixture(scope='module')
def csv_ml_root(tmp_path_factory):
    return data.synth_csv(tmp_path_factory.mktemp('csvml'), seed=1, n_classes=4, clips_per_class=8, seconds=0.5,
                          multilabel=True, progress=False)


@pytest.fixture(scope='module')
def authors_root(tmp_path_factory):
    return data.synth_authors_txt(tmp_path_factory.mktemp('authors') / 'data_txt', seed=0, n_train=100, n_eval=50,
                                  seconds=0.5, progress=False)


def authors_map(root):
    return [(data.AUTHORS_PREFIX, str(Path(root) / 'Audioset'))]


def problem_lines(err):
    return [line for line in str(err.value).splitlines() if line.startswith('  - ')]


def copy(root, tmp_path, name='copy'):
    shutil.copytree(root, tmp_path / name)
    return tmp_path / name


def run_cil(argv, tmp_path):
    """cil.main on a tiny job, with the folders under tmp_path (as test_cil.py's run_cil / run_kws)."""
    assert cil.main(argv + ['--quiet', '--workers', '1', '--checkpoint-minutes', '0', '--out', str(tmp_path / 'runs'),
                            '--cache', str(tmp_path / 'cache'), '--results', str(tmp_path / 'results')]) == 0
    return tmp_path / 'runs'


# =============================================================================
# FSD50K: the release layout, 1 s excerpts counted as the authors count them, the 50 classes

def test_excerpt_counting_rule():
    # one excerpt per started second, the last kept when at least half an excerpt long, at least one
    for seconds, n in ((0.3, 1), (0.99, 1), (1.0, 1), (1.49, 1), (1.5, 2), (2.4, 2), (2.5, 3), (2.6, 3), (30.0, 30)):
        assert data.excerpt_count(seconds) == n, seconds
    # the authors' totals against FSD50K's hours: this rule gives about one excerpt per second of audio;
    # floor (about 0.5 s fewer per clip) is below the authors' counts, ceil about 0.5 s more per clip
    clips = {'dev': 40966, 'eval': 10231}
    for part, n in data.FSD50K_AUTHORS_EXCERPTS.items():
        seconds = 3600 * data.FSD50K_HOURS[part]
        assert seconds - 0.5 * clips[part] < 0.95 * seconds < n < seconds < seconds + 0.5 * clips[part]


def test_fsd50k_layout_counts_targets_and_split(fsd_root, fsd):
    gt = fsd_root / 'FSD50K.ground_truth'
    with open(gt / 'dev.csv', newline='') as f:
        dev = list(csv.reader(f))
    with open(gt / 'eval.csv', newline='') as f:
        ev = list(csv.reader(f))
    assert dev[0] == ['fname', 'labels', 'mids', 'split'] and ev[0] == ['fname', 'labels', 'mids']
    vocab = {row[1]: row[2] for row in csv.reader(open(gt / 'vocabulary.csv', newline=''))}
    assert set(data.FSD50K_CLASSES) <= set(vocab)
    # every excerpt of every clip with one of the 50 classes, with the clip's targets (ancestors included)
    expect, n_dropped = {}, 0
    for part, rows in (('dev', dev[1:]), ('eval', ev[1:])):
        for row in rows:
            labels = row[1].split(',')
            assert [vocab[x] for x in labels] == row[2].split(',')
            targets = sorted(data.FSD50K_CLASSES.index(x) for x in labels if x in data.FSD50K_CLASSES)
            if not targets:
                n_dropped += 1
                continue
            info = sf.info(str(fsd_root / data.FSD50K_AUDIO[part] / f'{row[0]}.wav'))
            split = row[3] if part == 'dev' else 'test'
            expect[f'{part}/{row[0]}'] = (data.excerpt_count(info.frames / info.samplerate), targets, split)
    assert n_dropped == fsd.counts['dropped_no_class'] > 0  # clips with none of the 50 classes are dropped
    assert len(fsd) == sum(n for n, _, _ in expect.values()) == fsd.counts['excerpts']
    assert len(fsd.keys) == len(set(fsd.keys))
    for i, (key, group) in enumerate(zip(fsd.keys, fsd.groups)):
        n, targets, split = expect[group]
        k = int(key.split('#')[1])
        assert key == f'{group}#{k}' and 0 <= k < n
        assert np.flatnonzero(fsd.labels[i]).tolist() == targets and fsd.subset[i] == split
        assert tuple(fsd.segments[i]) == (k * 1.0, 1.0)
    assert {s for _, _, s in expect.values()} == {'train', 'val', 'test'}
    # Thunder is a child of Thunderstorm: every Thunder excerpt is a Thunderstorm excerpt (label propagation)
    thunder, storm = data.FSD50K_CLASSES.index('Thunder'), data.FSD50K_CLASSES.index('Thunderstorm')
    assert fsd.labels[:, thunder].any() and (fsd.labels[:, storm] >= fsd.labels[:, thunder]).all()
    # the official split: dev train / dev val / eval, never a clip in two parts
    split = data.make_split(fsd)
    assert split.method == 'official' and len(split.val) > 0
    for part, name in ((split.train, 'train'), (split.val, 'val'), (split.test, 'test')):
        assert set(fsd.subset[part]) == {name}
    with pytest.raises(data.DataError, match='only its official split'):
        data.make_split(fsd, 'random')


def test_fsd50k_phases_and_the_excerpt_features(fsd, tmp_path):
    split = data.make_split(fsd)
    phases = data.make_phases(fsd, split)
    assert [p.n_new for p in phases] == [30, 5, 5, 5, 5]
    for ph in phases:
        lo, hi = ph.n_old, ph.n_seen
        expect_train = split.train[fsd.labels[split.train][:, lo:hi].any(axis=1)]
        np.testing.assert_array_equal(ph.train, expect_train)
        np.testing.assert_array_equal(ph.train_y[:, lo:], fsd.labels[ph.train][:, lo:hi])
        assert not ph.train_y[:, :lo].any()  # old columns 0: the paper ignores the other labels
        np.testing.assert_array_equal(ph.test, split.test[fsd.labels[split.test][:, :hi].any(axis=1)])
    # one cache row per excerpt: the features of the excerpt's second of its clip (the last one zero-padded)
    config = data.frontend_config(fsd)
    assert config['name'] == 'panns' and config['seconds'] == 1.0 and config['sr'] == 32000
    clip = next(g for g in fsd.groups if (fsd.groups == g).sum() >= 2)
    rows = np.flatnonzero(fsd.groups == clip)
    cache = data.build_cache(fsd.select(rows), tmp_path / 'cache', workers=1, progress=False)
    assert cache.shape == (101, 64) and cache.stats['computed'] == len(rows)
    y, sr = data.decode_audio(fsd.paths[rows[0]])
    for j in range(len(rows)):
        piece = y[j * sr:(j + 1) * sr]
        expect = data.compute_features(piece, sr, config).astype(np.float16)
        np.testing.assert_array_equal(cache.read([j]), expect[None])
    assert len(y) < len(rows) * sr  # the last excerpt was short: padded, the clip's own count kept


def test_fsd50k_bad_input(fsd_root, tmp_path):
    root = copy(fsd_root, tmp_path)
    gt = root / 'FSD50K.ground_truth'
    lines = (gt / 'dev.csv').read_text().splitlines()
    first = lines[1].split(',')[0]
    wav = sorted((root / 'FSD50K.dev_audio').glob('*.wav'))
    wav[0].write_bytes(b'')  # zero-byte
    wav[1].unlink()  # missing
    n = len(lines)
    with open(gt / 'dev.csv', 'a') as f:
        f.write('123,"Dog,Animal","/m/0bt9lr"\n')  # 3 fields in a file of 4
        f.write('124,"Dog,Animal","/m/0bt9lr",train\n')  # 2 labels, 1 mid
        f.write('125,Dog,/m/0bt9lr,test\n')  # split neither train nor val
        f.write(f'{first},Dog,/m/0bt9lr,train\n')  # a fname twice
        f.write('126,"Dog,Not_a_class","/m/0bt9lr,/m/zzz",train\n')  # a label outside vocabulary.csv: a note
    shutil.copy(wav[2], root / 'FSD50K.dev_audio' / '126.wav')
    with pytest.raises(data.DataError) as err:
        data.load_fsd50k(root)
    lines_ = problem_lines(err)
    assert len(lines_) == 6, lines_
    for lineno, word in ((n + 1, 'expected 4'), (n + 2, '2 labels but 1 mids'), (n + 3, "split 'test'"),
                         (n + 4, f'fname {first} is already on line 2')):
        assert any(f'dev.csv:{lineno}:' in line and word in line for line in lines_), (lineno, word)
    assert any(str(wav[0]) in line and 'empty' in line for line in lines_)
    assert any(str(wav[1]) in line and 'not found' in line for line in lines_)
    ds = data.load_fsd50k(root, skip_bad=True)
    assert ds.counts['skipped_bad'] == 6
    assert any(i.kind == 'unknown_label' and 'Not_a_class' in i.problem for i in ds.issues)
    assert not any(g.endswith(f'/{wav[0].stem}') for g in ds.groups)
    (gt / 'eval.csv').unlink()
    with pytest.raises(data.DataError, match='eval.csv: not found'):
        data.load_fsd50k(root)


# =============================================================================
# ESC-50: meta/esc50.csv, the official folds

def test_esc50_layout_and_folds(esc_root):
    rows = list(csv.reader(open(esc_root / 'meta' / 'esc50.csv', newline='')))
    assert rows[0] == data.ESC50_HEADER and rows[1:] == sorted(rows[1:])
    ds = data.load_dataset('esc50', esc_root.parent)  # the folder above ESC-50-master/ works too
    assert ds.root == esc_root and len(ds) == 40 and np.bincount(ds.labels).tolist() == [10] * 4
    for key, lab, fold, group in zip(ds.keys, ds.labels, ds.folds, ds.groups):
        f, src, take, target = re.fullmatch(r'(\d)-(\d+)-([A-H])-(\d+)\.wav', key).groups()
        assert int(f) == fold and int(target) == lab and src == group
    by_source = {}
    for group, fold in zip(ds.groups, ds.folds):
        by_source.setdefault(group, set()).add(int(fold))
    assert all(len(f) == 1 for f in by_source.values())  # the takes of one recording share a fold
    for fold, val in ((5, 4), (2, 1), (1, 5)):  # test on the fold, validate on the one before it
        split = data.make_split(ds, fold=fold if fold != 5 else None)
        assert set(ds.folds[split.test]) == {fold} and set(ds.folds[split.val]) == {val}
        assert set(ds.folds[split.train]) == {1, 2, 3, 4, 5} - {fold, val}
    with pytest.raises(data.DataError, match='--fold 6: .* has the folds 1, 2, 3, 4, 5'):
        data.make_split(ds, fold=6)
    grouped = data.make_split(ds, 'grouped')
    assert not set(ds.groups[grouped.train]) & set(ds.groups[grouped.test])
    assert data.frontend_config(ds)['name'] == 'urbansound8k'


def test_esc50_bad_input(esc_root, tmp_path):
    root = copy(esc_root, tmp_path)
    meta = root / 'meta' / 'esc50.csv'
    rows = meta.read_text().splitlines()
    name = rows[1].split(',')[0]
    sf.write(root / 'audio' / rows[2].split(',')[0], np.zeros(0, np.float32), 16000)  # header only
    (root / 'audio' / rows[3].split(',')[0]).unlink()  # missing
    (root / 'audio' / 'notes.txt').write_text('stray')  # a note
    with open(meta, 'a') as f:
        f.write(f'{name},1,0,dog,True,1,A\n')  # listed twice
        f.write('9-1-A-0.wav,9,0,dog,True,1,A\n')  # fold 9
        f.write('1-2-A-0.wav,1,0,cat,False,2,A\n')  # target 0 is dog
        f.write('1-3-A-0.wav,1,77,dog,False,3,A\n')  # no class 77
    with pytest.raises(data.DataError) as err:
        data.load_esc50(root)
    lines = problem_lines(err)
    assert len(lines) == 6
    for word in ('already listed on line 2', 'bad fold 9', "the category column says 'cat'", 'unknown target 77',
                 '0 samples', 'not found'):
        assert sum(word in line for line in lines) == 1, word
    ds = data.load_esc50(root, skip_bad=True)
    assert ds.counts['skipped_bad'] == 6 and len(ds) == 38
    assert any(i.kind == 'stray_file' and i.path.endswith('notes.txt') for i in ds.issues)


# =============================================================================
# Your own data: a CSV (single- or multi-label) or a folder per class

def test_csv_single_label_counts_and_split(csv_root):
    ds = data.load_dataset('csv', csv_root, csv=csv_root / 'labels.csv')
    rows = list(csv.DictReader(open(csv_root / 'labels.csv', newline='')))
    assert not ds.multilabel and len(ds) == len(rows) == 24 and ds.keys == [r['path'] for r in rows]
    assert ds.classes == list(dict.fromkeys(r['label'] for r in rows))  # in order of first appearance
    assert [ds.classes[c] for c in ds.labels] == [r['label'] for r in rows]
    assert len(ds.sample_rates) >= 3  # any rate and format soundfile reads
    split = data.make_split(ds)  # the split column
    assert split.method == 'official'
    for part, name in ((split.train, 'train'), (split.val, 'val'), (split.test, 'test')):
        assert {r['split'] for r in np.array(rows)[part]} == {name}
    rnd = data.make_split(ds, 'random', seed=3)  # random: every part holds every class
    for part in (rnd.train, rnd.val, rnd.test):
        assert set(ds.labels[part]) == {0, 1, 2}
    assert data.frontend_config(ds)['name'] == 'speechcommands'  # clips under 1.5 s


def test_csv_multi_label_counts_targets_and_phases(csv_ml_root):
    ds = data.load_dataset('csv', csv_ml_root, csv=csv_ml_root / 'labels.csv')
    rows = list(csv.DictReader(open(csv_ml_root / 'labels.csv', newline='')))
    assert ds.multilabel and len(ds) == len(rows) and any(';' in r['label'] for r in rows)
    for i, r in enumerate(rows):
        assert sorted(ds.classes[c] for c in np.flatnonzero(ds.labels[i])) == sorted(r['label'].split(';'))
    split = data.make_split(ds)
    phases = data.make_phases(ds, split, sizes=[2, 1, 1])
    for ph in phases:
        lo, hi = ph.n_old, ph.n_seen
        np.testing.assert_array_equal(ph.train, split.train[ds.labels[split.train][:, lo:hi].any(axis=1)])
        np.testing.assert_array_equal(ph.train_y[:, lo:], ds.labels[ph.train][:, lo:hi])
        np.testing.assert_array_equal(ph.test_y, ds.labels[ph.test][:, :hi])
    cfg = data.frontend_config(ds)
    assert cfg['name'] == 'panns' and cfg['seconds'] == 1.0  # 0.5 s clips: a 1 s log-mel
    assert data.default_phase_sizes(50, True) == [30, 5, 5, 5, 5] and data.default_phase_sizes(50, False) == [10] * 5
    rnd = data.make_split(ds, 'random', seed=0)
    assert len(rnd.train) + len(rnd.val) + len(rnd.test) == len(ds)


def test_csv_bad_input_one_line_each(csv_root, tmp_path):
    root = copy(csv_root, tmp_path, 'own')
    table = root / 'labels.csv'
    rows = table.read_text().splitlines()
    outside = tmp_path / 'elsewhere.wav'
    sf.write(outside, np.zeros(800, np.float32), 16000)
    first = rows[1].split(',')[0]
    n = len(rows)
    with open(table, 'a') as f:
        f.write(f'{first},dog,train\n')  # the same path twice
        f.write(f'../elsewhere.wav,dog,train\n')  # outside the data folder
        f.write(f'{outside},dog,train\n')  # absolute, outside too
        f.write(f'{rows[2].split(",")[0].replace("clips/", "clips/./")},dog,train\n')  # the same file, respelled
        f.write('clips/0000.wav,,train\n')  # no label
        f.write(f'{rows[3].split(",")[0]},frog,test\n')  # frog: only in test (and a duplicate path)
    shutil.copy(outside, root / 'clips' / 'frog1.wav')
    shutil.copy(outside, root / 'clips' / 'frog2.wav')
    with open(table, 'a') as f:
        f.write('clips/frog1.wav,frog,test\nclips/frog2.wav,frog,val\n')
    with pytest.raises(data.DataError) as err:
        data.load_csv(root, csv=table)
    lines = problem_lines(err)
    assert len(lines) == 7, lines
    for lineno, word in ((n + 1, 'is already listed on line 2'), (n + 2, 'is outside the data folder'),
                         (n + 3, 'is outside the data folder'), (n + 4, 'is already listed on line 3'),
                         (n + 5, 'no label'), (n + 6, 'is already listed on line 4')):
        assert any(f'labels.csv:{lineno}:' in line and word in line for line in lines), (lineno, word)
    assert any("label 'frog' appears only in test and val rows (2)" in line for line in lines)
    ds = data.load_csv(root, csv=table, skip_bad=True)
    assert ds.counts['skipped_bad'] == 8 and 'frog' not in ds.classes and len(ds) == 24
    # a class with fewer clips than the random split needs: one line
    few = root / 'few.csv'
    few.write_text('path,label\n' + ''.join(f'{r.split(",")[0]},{r.split(",")[1]}\n' for r in rows[1:])
                   + 'clips/frog1.wav,frog\nclips/frog2.wav,frog\n')
    ds = data.load_csv(root, csv=few)
    with pytest.raises(data.DataError) as err:
        data.make_split(ds)
    assert str(err.value).count('\n') == 0
    assert "class 'frog' (2 clips)" in str(err.value) and 'fewer clips than the random split needs (3' in str(err.value)
    with pytest.raises(data.DataError, match='no path column'):
        (root / 'bad.csv').write_text('file_name,label\nx.wav,dog\n')
        data.load_csv(root, csv=root / 'bad.csv')


def test_csv_fold_column_and_folder_layout(csv_root, tmp_path):
    root = copy(csv_root, tmp_path, 'own')
    rows = list(csv.DictReader(open(root / 'labels.csv', newline='')))
    with open(root / 'folds.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['Path', 'Label', 'Fold'])  # header names in any case
        w.writerows([r['path'], r['label'], 1 + i % 4] for i, r in enumerate(rows))
    ds = data.load_csv(root, csv=root / 'folds.csv')
    split = data.make_split(ds)  # test on the last fold, validate on the one before
    assert set(ds.folds[split.test]) == {4} and set(ds.folds[split.val]) == {3}
    split = data.make_split(ds, fold=1)
    assert set(ds.folds[split.test]) == {1} and set(ds.folds[split.val]) == {4}
    # a folder per class
    tree = data.synth_folder(tmp_path / 'tree', seed=0, n_classes=3, clips_per_class=4, seconds=0.5, progress=False)
    (tree / 'README.txt').write_text('not a class')
    (tree / 'empty').mkdir()
    (tree / 'dog' / 'notes.txt').write_text('stray')
    ds = data.load_dataset('folder', tree)
    assert ds.classes == ['dog', 'pig', 'rooster'] and len(ds) == 12 and not ds.multilabel
    assert all(k.split('/')[0] == ds.classes[c] for k, c in zip(ds.keys, ds.labels))
    notes = {(Path(i.path).name, i.problem) for i in ds.issues if not i.fatal}
    assert {('README.txt', 'not in a class folder'), ('empty', 'folder without audio files'),
            ('notes.txt', 'stray non-audio file')} <= notes
    assert data.make_split(ds).method == 'random'
    with pytest.raises(data.DataError, match=r'0 class folders with audio files \(none\); classes to learn need at '
                       'least 2'):
        data.load_dataset('folder', tree / 'dog')  # audio files, but no class folders


# =============================================================================
# The authors' phase files: their record format, their phases, a path map

def test_phase_file_records_wrap_over_lines(tmp_path):
    v50 = np.zeros(50, int)
    v50[[1, 30, 49]] = 1
    numpy_style = data.format_target(v50)
    assert numpy_style == str(v50.astype(float))  # numpy's own print of a float array: 24 + 24 + 2 values
    assert [len(line.split()) for line in numpy_style.split('\n')] == [24, 24, 2]
    readme_style = numpy_style[:72] + '\n ' + ' '.join(f'{v}.' for v in v50[24:]) + ']'  # README: 24 + 26 values
    path = tmp_path / 'test_phase_0_1_2_3_4.txt'
    path.write_text(f'/x/a.wav_{numpy_style}\n/x/b_c.wav_{readme_style}\n/x/short.wav_[0. 1. 0. 0. 1.]\n'
                    '/x/open.wav_[0. 1.\n/x/two.wav_[0. 2. 0.]\n/x/nothing.wav\n')
    issues = []
    records = data.read_phase_file(path, issues)
    assert [(n, p) for n, p, _ in records] == [(1, '/x/a.wav'), (4, '/x/b_c.wav'), (6, '/x/short.wav')]
    assert records[0][2] == records[1][2] == v50.tolist() and records[2][2] == [0, 1, 0, 0, 1]
    assert [(Path(i.path).name, i.problem) for i in issues] == [
        (f'{path.name}:7', 'the target vector does not close with ]'),
        (f'{path.name}:8', 'the target vector holds values other than 0 and 1'),
        (f'{path.name}:9', "expected '<path>_[0. 1. ...]', got '/x/nothing.wav'")]


def test_authors_phase_files_give_exactly_their_phases(authors_root):
    ds = data.load_dataset('authors-txt', authors_root, path_map=authors_map(authors_root))
    assert ds.info['phase_sizes'] == [30, 5, 5, 5, 5] and ds.classes == [n for n, _ in data.AUDIOSET_CLASSES]
    split = data.make_split(ds)
    phases = data.make_phases(ds, split, sizes=[30, 5, 5, 5, 5])
    index = {k: i for i, k in enumerate(ds.keys)}
    for ph, (train_name, test_name) in zip(phases, data.authors_file_names(5)):
        train = data.read_phase_file(authors_root / train_name, [])
        test = data.read_phase_file(authors_root / test_name, [])
        assert sorted(index[p] for _, p, _ in train) == ph.train.tolist()
        assert sorted(index[p] for _, p, _ in test) == ph.test.tolist()
        by_row = dict(zip(ph.train.tolist(), ph.train_y[:, ph.n_old:].astype(int).tolist()))
        assert all(by_row[index[p]] == v for _, p, v in train)  # the file's targets over the phase's classes
        by_row = dict(zip(ph.test.tolist(), ph.test_y.astype(int).tolist()))
        assert all(by_row[index[p]] == v for _, p, v in test)  # over every class seen
    with pytest.raises(ValueError, match=r"fix the class order and the phases \(30,5,5,5,5\)"):
        data.make_phases(ds, split, sizes=[30, 10, 10])
    with pytest.raises(ValueError, match='fix the class order'):
        data.make_phases(ds, split, data.class_order(50, 'shuffle', 1), [30, 5, 5, 5, 5])


def test_authors_files_bad_input(authors_root, tmp_path):
    root = copy(authors_root, tmp_path, 'data_txt')
    with pytest.raises(data.DataError) as err:  # the clips live elsewhere than the files say: one line
        data.load_authors_txt(root)
    (line,) = problem_lines(err)
    assert re.search(r'(\d+) of the \1 clips of the phase files do not exist on this machine', line)
    assert f'--path-map {data.AUTHORS_PREFIX}=NEW' in line
    train0 = root / 'train_phase_0.txt'
    text = train0.read_text()
    with open(train0, 'a') as f:
        f.write(f'{data.AUTHORS_PREFIX}/train/Yextra_0.wav_[0. 1.]\n')  # 2 values, phase 0 has 30
        f.write(text.split('\n', 1)[0].rsplit('_[', 1)[0] + '_[0. 1. 0. 0. 0.]\n')  # 5 values
    n = len(text.splitlines()) // 2  # two lines per record of 30 values
    with pytest.raises(data.DataError) as err:
        data.load_authors_txt(root, path_map=authors_map(root))
    lines = problem_lines(err)
    assert len(lines) == 2
    assert any(f'train_phase_0.txt:{2 * n + 1}: 2 target values; phase 0 has 30' in line for line in lines)
    assert any(f'train_phase_0.txt:{2 * n + 2}: 5 target values' in line for line in lines)
    ds = data.load_authors_txt(root, path_map=authors_map(root), skip_bad=True)
    assert ds.counts['skipped_bad'] == 2
    (root / 'test_phase_0_1.txt').unlink()
    with pytest.raises(data.DataError, match='test_phase_0_1.txt: not found; phase 1 needs both'):
        data.load_authors_txt(root, path_map=authors_map(root))


# =============================================================================
# cil.py: the learner from the data, the default root, both learners on a CSV

def test_both_learners_run_two_phases_on_a_csv(csv_root, csv_ml_root, tmp_path, capsys):
    tiny = ['--phases', '2,1', '--batch-size', '8', '--epochs-base', '1']
    runs = run_cil(['--method', 'mittal', '--data', 'csv', '--csv', str(csv_root / 'labels.csv'), '--memory', '6',
                    '--heads', '2', '--epochs-a', '1', '--epochs-b', '1', '--patience', '1'] + tiny, tmp_path / 'sl')
    out = capsys.readouterr().out
    assert re.search(r'--data csv: 3 classes, clips of about 0\.5 s; single-label: the small CNN on the Speech '
                     r'Commands features .* split official', out)
    (run,) = (runs / 'csv-singlelabel').glob('mittal-*')
    metrics = json.loads((run / 'metrics.json').read_text())
    assert len(metrics['acc']) == 2 and metrics['class_order'] == data.load_csv(
        csv_root, csv=csv_root / 'labels.csv').classes
    runs = run_cil(['--method', 'iodfd', '--data', 'csv', '--csv', str(csv_ml_root / 'labels.csv'), '--width', '0.0625',
                    '--epochs', '1', '--phases', '3,1', '--batch-size', '8', '--epochs-base', '1'], tmp_path / 'ml')
    out = capsys.readouterr().out
    assert "multi-label (';' in the label column): CNN14 (width 0.0625) on a PANNs log-mel of 1 s" in out
    (run,) = (runs / 'csv-multilabel').glob('iodfd-*')
    config = json.loads((run / 'config.json').read_text())
    assert config['data'] == 'csv-multilabel' and config['frontend']['seconds'] == 1.0
    assert [r['n_classes'] for r in json.loads((run / 'metrics.json').read_text())['phases']] == [3, 4]


def test_csv_and_dataset_flags_stop_with_one_line(csv_root, csv_ml_root, authors_root, tmp_path):
    def stop(argv, message):
        with pytest.raises(SystemExit, match=re.escape(message)) as e:
            cil.main(argv + ['--out', str(tmp_path / 'runs'), '--cache', str(tmp_path / 'cache')])
        assert '\n' not in str(e.value.code) and not (tmp_path / 'runs').exists()
    ml, sl = ['--data', 'csv', '--csv', str(csv_ml_root / 'labels.csv')], ['--data', 'csv', '--csv',
                                                                          str(csv_root / 'labels.csv')]
    stop(['--data', 'csv'], '--data csv needs --csv FILE')
    stop(sl + ['--width', '0.5'], '--width applies only to multi-label')  # the learner follows the labels
    stop(ml + ['--losses', 'ce_n'], '--losses applies only to single-label')
    stop(ml + ['--fold', '2'], f"--fold 2: {csv_ml_root / 'labels.csv'} has no fold column")
    stop(['--data', 'synth-audioset', '--csv', 'x.csv'], '--csv applies only to --data csv')
    stop(['--data', 'synth-esc50', '--path-map', 'a=b'], '--path-map applies only to --data authors-txt')
    stop(['--data', 'synth-speechcommands', '--fold', '1'], '--fold applies only to --data csv / esc50')
    stop(['--data', 'synth-esc50', '--fold', '1', '--split', 'grouped'], '--fold 1: a fold is the test part of the '
         'official split, not of --split grouped')
    stop(['--data', 'authors-txt', '--root', str(authors_root), '--path-map', 'nothing'],
         "--path-map 'nothing': write OLD=NEW")
    cfg = cil.resolve_config(cil.build_parser().parse_args(ml + ['--split-seed', '3', '--split', 'random']))
    assert cfg['data'] == 'csv-multilabel' and cfg['split'] == 'random' and cfg['split_seed'] == 3
    cfg = cil.resolve_config(cil.build_parser().parse_args(['--data', 'synth-esc50']))
    assert cfg['split'] == 'official' and cfg['fold'] == 5 and cfg['phases'] == [10] * 5 and cfg['heads'] == '10,9,8,7'
    cfg = cil.resolve_config(cil.build_parser().parse_args(['--data', 'synth-esc50', '--split', 'grouped']))
    assert cfg['split'] == 'grouped' and cfg['fold'] is None
    for name in ('synth-audioset', 'synth-speechcommands'):  # unchanged for the first datasets
        cfg = cil.resolve_config(cil.build_parser().parse_args(['--data', name]))
        assert cfg['split'] == 'grouped' and cfg['fold'] is None


def test_default_data_root_and_its_error(as_tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('CIL_DATA', raising=False)
    with pytest.raises(SystemExit) as e:  # the design card's usage line, without the data
        cil.main(['--method', 'iodfd', '--data', 'audioset'])
    msg = str(e.value.code)
    assert '\n' not in msg and 'no dataset at data/audioset' in msg and 'audioset_train_strong.tsv' in msg
    assert 'CIL_DATA' in msg and not (tmp_path / 'runs').exists()
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'audioset').symlink_to(as_tiny)
    cfg = cil.resolve_config(cil.build_parser().parse_args(['--method', 'iodfd', '--data', 'audioset']))
    assert cfg['root'] == str(Path('data') / 'audioset')
    monkeypatch.setenv('CIL_DATA', str(tmp_path / 'elsewhere'))
    elsewhere = tmp_path / 'elsewhere' / 'esc50'
    with pytest.raises(SystemExit, match=re.escape(f'no dataset at {elsewhere} ($CIL_DATA/esc50')):
        cil.main(['--method', 'mittal', '--data', 'esc50'])
    monkeypatch.setenv('CIL_DATA', str(tmp_path / 'data'))
    cfg = cil.resolve_config(cil.build_parser().parse_args(['--data', 'audioset']))
    assert cfg['root'] == str(tmp_path / 'data' / 'audioset')
    assert len(data.load_dataset('audioset', cfg['root'])) > 0


@pytest.fixture(scope='module')
def as_tiny(tmp_path_factory):
    return data.synth_audioset(tmp_path_factory.mktemp('as'), seed=0, n_train=20, n_eval=10, seconds=0.5, missing=0.0,
                               progress=False)


# =============================================================================
# data.py: generation and stats of each new layout

def test_ensure_synth_and_the_command_line(tmp_path, capsys):
    root = data.ensure_synth('folder', tmp_path / 'tree', n_classes=2, clips_per_class=3, seconds=0.3, progress=False)
    assert json.loads((root / 'synth.json').read_text())['kind'] == 'folder'
    with pytest.raises(data.DataError, match='other settings'):
        data.ensure_synth('folder', root, n_classes=3, progress=False)
    assert data.main(['synth', '--kind', 'csv', '--out', str(tmp_path / 'own'), '--classes', '3', '--clips-per-class',
                      '6', '--seconds', '0.3', '--multilabel']) == 0
    assert data.main(['stats', '--data', 'csv', '--root', str(tmp_path / 'own'), '--csv',
                      str(tmp_path / 'own' / 'labels.csv')]) == 0
    out = capsys.readouterr().out
    assert 'dataset csv at' in out and 'split official' in out and 'classes per clip' in out
    assert data.main(['stats', '--data', 'folder', '--root', str(root)]) == 0
    assert 'split random' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        data.main(['synth', '--kind', 'folder', '--out', str(tmp_path / 'x'), '--n-train', '3'])
    assert '--kind folder does not take --n-train' in capsys.readouterr().err


def test_stats_rows_of_fsd50k_esc50_and_the_authors_files(fsd_root, esc_root, authors_root, capsys):
    assert data.main(['stats', '--data', 'fsd50k', '--root', str(fsd_root)]) == 0
    out = capsys.readouterr().out
    assert re.search(r'^  dev: \d+ clips, [\d.]+ s of audio -> \d+ excerpts \([\d.]+ per second; ceil would give \d+, '
                     r'floor \d+\)$', out, re.M)
    assert 'the authors (FSD50K): dev 284,447 excerpts from 80.4 h (0.983 per second)' in out
    assert data.main(['stats', '--data', 'esc50', '--root', str(esc_root), '--fold', '2']) == 0
    out = capsys.readouterr().out
    assert 'split official' in out and 'folds: 1: 8, 2: 8, 3: 8, 4: 8, 5: 8' in out
    assert re.search(r'^dog\s+6\s+2\s+2\s+10$', out, re.M)
    assert data.main(['stats', '--data', 'authors-txt', '--root', str(authors_root)]) == 2
    assert '--path-map' in capsys.readouterr().err
    assert data.main(['stats', '--data', 'authors-txt', '--root', str(authors_root), '--path-map',
                      f'{data.AUTHORS_PREFIX}={authors_root / "Audioset"}']) == 0
    assert 'records per phase file: train_phase_0.txt' in capsys.readouterr().out
