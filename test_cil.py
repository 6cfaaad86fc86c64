"""Tests of the whole project (pytest), in module order: shared fixtures and helpers, then features, models,
methods, evaluate, data, synth, cil, and each module copied alone. Reference values computed once with
librosa 0.11, PANNs' own Cnn14 and scikit-learn are stored under testdata/ (the scripts there say how);
none of those packages is needed to run the tests."""
import collections, copy, csv, dataclasses, datetime, errno, hashlib, json, math, multiprocessing, os, re, runpy, shutil
import signal, socket, subprocess, sys, time, types, warnings
from pathlib import Path

import numpy as np, pytest, scipy.signal, soundfile as sf, torch, torch.nn.functional as F

import cil, data, evaluate as ev, features, methods, models, synth

HERE = Path(__file__).parent
CPU = torch.device('cpu')
torch.set_num_threads(min(2, torch.get_num_threads()))


# ===== Fixtures (module scope: each generated dataset, and each reference run, is made once) and helpers
def panns_like_state_dict(bn_stats=None, n_classes=527, seed=1234):
    """PANNs-layout Cnn14 weights from a seeded RandomState, the front end from its formulas and librosa's melW."""
    rs = np.random.RandomState(seed)
    n_fft, n = 1024, np.arange(1024)
    k = np.arange(n_fft // 2 + 1)[:, None]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    sd = {'spectrogram_extractor.stft.conv_real.weight': (np.cos(2 * np.pi * k * n / n_fft) * hann)[:, None, :],
          'spectrogram_extractor.stft.conv_imag.weight': (-np.sin(2 * np.pi * k * n / n_fft) * hann)[:, None, :],
          'logmel_extractor.melW': np.load(HERE / 'testdata' / 'panns_golden.npz')['librosa_melW']}
    def xavier(shape):
        bound = math.sqrt(6.0 / ((shape[0] + shape[1]) * int(np.prod(shape[2:]))))  # fan_in + fan_out
        return rs.uniform(-bound, bound, size=shape)
    def bn(prefix, c):
        sd[prefix + '.weight'] = 1.0 + 0.1 * rs.standard_normal(c)
        sd[prefix + '.bias'] = 0.1 * rs.standard_normal(c)
        for stat, default in (('.running_mean', np.zeros(c)), ('.running_var', np.ones(c))):
            sd[prefix + stat] = default if bn_stats is None else bn_stats[prefix + stat]
        sd[prefix + '.num_batches_tracked'] = np.array(1, dtype=np.int64)
    bn('bn0', 64)
    for i, (cin, cout) in enumerate(zip((1, 64, 128, 256, 512, 1024), (64, 128, 256, 512, 1024, 2048)), 1):
        sd[f'conv_block{i}.conv1.weight'] = xavier((cout, cin, 3, 3))
        sd[f'conv_block{i}.conv2.weight'] = xavier((cout, cout, 3, 3))
        bn(f'conv_block{i}.bn1', cout)
        bn(f'conv_block{i}.bn2', cout)
    sd['fc1.weight'], sd['fc1.bias'] = xavier((2048, 2048)), 0.01 * rs.standard_normal(2048)
    sd['fc_audioset.weight'], sd['fc_audioset.bias'] = xavier((n_classes, 2048)), 0.01 * rs.standard_normal(n_classes)
    return {key: torch.from_numpy(np.asarray(v, None if v.dtype == np.int64 else np.float32)) for key, v in sd.items()}

@pytest.fixture(scope='module')
def panns_golden():
    return dict(np.load(HERE / 'testdata' / 'panns_golden.npz'))

@pytest.fixture(scope='module')
def panns_state(panns_golden):
    return panns_like_state_dict({k[9:]: v for k, v in panns_golden.items() if k.startswith('bn_stats/')})

@pytest.fixture(scope='module')
def panns_checkpoint(tmp_path_factory, panns_state):
    path = tmp_path_factory.mktemp('panns') / 'Cnn14_random.pth'
    torch.save({'iteration': 0, 'model': panns_state}, path)  # the released checkpoints' layout
    return path

def generated(make, folder, **kw):
    """A module-scope fixture: the dataset synth's `make` writes once, under folder in a fresh temporary folder."""
    def fixture(tmp_path_factory):
        base, *sub = folder.split('/')
        return make(tmp_path_factory.mktemp(base).joinpath(*sub), progress=False, **kw)
    return pytest.fixture(scope='module')(fixture)

def loaded(name, root):  # a module-scope fixture: data.load_dataset(name) on the dataset of the fixture `root`
    return pytest.fixture(scope='module')(lambda request: data.load_dataset(name, request.getfixturevalue(root)))

gsc_root = generated(synth.synth_speechcommands, 'gsc', seed=0, speakers=10, max_reps=1, noise_seconds=2.0)
us8k_root = generated(synth.synth_urbansound8k, 'us8k', seed=0, clips_per_class=8)
as_root = generated(synth.synth_audioset, 'as', seed=0, n_train=150, n_eval=70, seconds=1.0, missing=0.05)
as_tiny = generated(synth.synth_audioset, 'as', seed=0, n_train=20, n_eval=10, seconds=0.5, missing=0.0)
fsd_root = generated(synth.synth_fsd50k, 'fsd/FSD50K', seed=0, n_dev=64, n_eval=30, max_seconds=3.0)
esc_root = generated(synth.synth_esc50, 'esc/ESC-50-master', seed=0, clips_per_class=10, seconds=0.5, sr=16000,
                     n_classes=4)
csv_root = generated(synth.synth_csv, 'csv', seed=0, n_classes=3, clips_per_class=8, seconds=0.5)
csv_ml_root = generated(synth.synth_csv, 'csvml', seed=1, n_classes=4, clips_per_class=8, seconds=0.5, multilabel=True)
authors_root = generated(synth.synth_authors_txt, 'authors/data_txt', seed=0, n_train=100, n_eval=50, seconds=0.5)
gsc, us8k = loaded('speechcommands', 'gsc_root'), loaded('urbansound8k', 'us8k_root')
audioset, fsd = loaded('audioset', 'as_root'), loaded('fsd50k', 'fsd_root')

@pytest.fixture(scope='module')
def few(gsc):  # the first 48 clips: a cache small enough to rebuild in every test
    return gsc.select(np.arange(48))

@pytest.fixture(scope='module')
def clean(few, tmp_path_factory):  # a cache built once from scratch, and every clip's features read from it
    root = tmp_path_factory.mktemp('clean_cache')
    return root, data.build_cache(few, root, workers=1, progress=False).read(np.arange(len(few)))

def reference(root, *args, kws=False):
    """A module-scope fixture: a tiny job on the fixture root's data, never stopped: what a stopped one must equal."""
    def fixture(request, tmp_path_factory):
        out = tmp_path_factory.mktemp('ref') / 'runs'
        return (run_kws if kws else run_cil)(request.getfixturevalue(root), out, *args)
    return pytest.fixture(scope='module')(fixture)

ref_iodfd, ref_iod = reference('as_root', '--method', 'iodfd'), reference('as_root', '--method', 'iod')
ref_kws = reference('gsc_root', kws=True)  # read only; its base is the base of every loss set

RUNNING = ['--quiet', '--workers', '1', '--checkpoint-minutes', '0', '--device', 'cpu']
TINY = ['--data', 'audioset', '--phases', '4,2,2', '--width', '0.0625', '--batch-size', '16', '--epochs-base', '2',
        '--epochs', '2'] + RUNNING
KWS_TINY = ['--data', 'speechcommands', '--phases', '3,2,2', '--memory', '14', '--heads', '3,2', '--batch-size', '16',
            '--epochs-base', '3', '--epochs-a', '2', '--epochs-b', '2', '--patience', '5'] + RUNNING

def run_cil(root, out, *extra, argv=TINY):
    """cil.main on a tiny job (argv TINY, KWS_TINY or RUNNING), its feature cache beside out; root None: no --root."""
    root = [] if root is None else ['--root', str(root)]
    assert cil.main(argv + root + ['--cache', str(Path(out).parent / 'cache'), '--out', str(out), '--results',
                                   str(Path(out) / 'results'), *extra]) == 0
    return Path(out)

def run_kws(root, out, *extra):
    return run_cil(root, out, *extra, argv=KWS_TINY)

def run_dir(out, method):
    (d,) = (Path(out) / 'audioset').glob(f'{method}-s0-*')
    return d

def metrics(out, method):
    return json.loads((run_dir(out, method) / 'metrics.json').read_text())

def kws_metrics(out):
    (d,) = (Path(out) / 'speechcommands').glob('mittal-*')
    return json.loads((d / 'metrics.json').read_text()), d

def stopped(monkeypatch, call, run, *args, name='train_epoch', sigterm=False):
    """run(*args), stopped (Ctrl-C or SIGTERM) at methods.<name>'s call-th call: its SystemExit; monkeypatch undone."""
    real, calls = getattr(methods, name), []
    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == call and not sigterm:
            raise KeyboardInterrupt
        if len(calls) == call:  # what a cluster scheduler sends before preemption
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **kw)
    monkeypatch.setattr(methods, name, flaky)
    e = pytest.raises(SystemExit, run, *args)
    monkeypatch.undo()
    assert e.match('run the same command again')
    return e

SC, AS, ESC = (['--data', f'synth-{name}'] for name in ('speechcommands', 'audioset', 'esc50'))

def configure(*argv):
    return cil.configure(cil.PARSER.parse_args(list(argv)))[0]

def stops_before_any_folder(argv, message, tmp_path):
    """cil.main(argv) stops with one line holding message, before it makes a run folder."""
    with pytest.raises(SystemExit, match=re.escape(message)) as e:
        cil.main(argv + ['--out', str(tmp_path / 'runs'), '--cache', str(tmp_path / 'cache')])
    assert '\n' not in str(e.value.code) and not (tmp_path / 'runs').exists()

def authors_map(root):
    return [(synth.AUTHORS_PREFIX, str(Path(root) / 'Audioset'))]

def bad_input(load, root, n, *expected, skipped=None, **kw):
    """load(root) stops with n problems, one line each, each tuple of words of expected in one: (lines, error); with
    skipped, load(root, skip_bad=True) then counts that many skipped files, and is returned third."""
    with pytest.raises(data.DataError) as err:
        load(root, **kw)
    lines = [line for line in str(err.value).splitlines() if line.startswith('  - ')]
    assert len(lines) == n, lines
    for words in expected:
        assert any(all(w in line for w in words) for line in lines), words
    ds = None if skipped is None else load(root, skip_bad=True, **kw)
    assert skipped is None or ds.counts['skipped_bad'] == skipped
    return lines, err.value, ds

def append(path, *rows):
    with open(path, 'a') as f:
        f.write(''.join(rows))

def copy_root(root, tmp_path, name='copy'):
    shutil.copytree(root, tmp_path / name)
    return tmp_path / name

def one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]

def copy_cache(clean, tmp_path):
    root = copy_root(clean[0], tmp_path, 'cache')
    folder = next(root.iterdir())
    return root, folder, folder / 'features.f16', folder / 'manifest.json'

def rebuild(few, root, capsys, **kw):
    capsys.readouterr()
    cache = data.build_cache(few, root, workers=1, progress=False, **kw)
    return cache, capsys.readouterr().err

def tree_hashes(root):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob('*')) if p.is_file()}

def read_strong_tsv(path):  # an independent reader: {segment_id: set of MIDs}
    clips = collections.defaultdict(set)
    lines = Path(path).read_text().splitlines()
    assert lines[0] == 'segment_id\tstart_time_seconds\tend_time_seconds\tlabel'
    for line in lines[1:]:
        sid, t0, t1, mid = line.split('\t')
        assert 0 <= float(t0) <= float(t1)
        clips[sid].add(mid)
    return clips

def corrupt_header_only(path):
    sf.write(path, np.zeros(0, np.float32), 16000, subtype='PCM_16')
    assert sf.info(str(path)).frames == 0

def no_leftovers(folder):
    return sorted(p.name for p in Path(folder).rglob('*') if p.name.endswith(('.tmp', 'lock', '.takeover')))

def read_only_folder(monkeypatch, under):
    """What a read-only folder does to os.open, for a test that runs as root (root ignores chmod)."""
    real = os.open
    def fake(path, flags, *a, **kw):
        if str(path).startswith(str(under)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *a, **kw)
    monkeypatch.setattr(os, 'open', fake)

def fork(fn, err_path):
    """fn() in a forked process, its output (and its children's) to err_path, fn's return value its exit status."""
    def child():
        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = open(2, 'w', buffering=1, closefd=False)
        sys.exit(fn())
    p = multiprocessing.get_context('fork').Process(target=child)
    p.start()
    return p

def gone(pids, timeout=10):
    """Whether the processes have ended (a zombie left to a slow init counts as ended; Linux /proc)."""
    def alive(pid):
        try:
            return Path(f'/proc/{pid}/stat').read_bytes().rsplit(b')', 1)[1].split()[0] != b'Z'
        except (OSError, IndexError):
            return False
    deadline = time.time() + timeout
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


# ===== features.py against librosa 0.11 (testdata/features_golden.npz, made by testdata/make_golden_features.py)
with np.load(HERE / 'testdata' / 'features_golden.npz') as _npz:
    G = {k: _npz[k] for k in _npz.files}
CLIP_SR = {str(n): int(sr) for n, sr in zip(G['clips'], G['clip_sr'])}
SPECTRAL_CLIPS = [n for n in CLIP_SR if n != 'panns']  # analysed at n_fft 2048 / hop 512
DB_TOL, CHROMA_TOL, CONTRAST_TOL, FB_TOL = 0.05, 1e-5, 1e-3, 1e-6  # dB (log-mel, mel); chroma, tonnetz; dB; weights

def clip(name):
    return G[f'{name}__y'], CLIP_SR[name]

def quiet(fn, *args, **kwargs):  # fn called with the expected warnings (short clip, empty tuning set) silenced
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*args, **kwargs)

def assert_close(actual, expected, atol, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    assert np.all(np.isfinite(actual)), f'{what}: non-finite values'
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
    assert err <= atol, f'{what}: max abs error {err:.3g} > {atol:g}'

def test_goldens_are_from_librosa_0_11():
    assert str(G['versions'][0]).startswith('librosa 0.11'), G['versions']

def test_mel_scale_values_and_roundtrip():
    assert features.hz_to_mel(1000.0) == pytest.approx(15.0)  # Slaney: linear part ends at 15
    assert features.hz_to_mel(500.0) == pytest.approx(7.5)
    assert features.hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4
    assert features.hz_to_mel(1000.0, htk=True) == pytest.approx(2595 * np.log10(1 + 1000 / 700))
    f = np.array([0.0, 50.0, 999.0, 1000.0, 4000.0, 14000.0])
    for htk in (False, True):
        np.testing.assert_allclose(features.mel_to_hz(features.hz_to_mel(f, htk=htk), htk=htk), f, 1e-12, 1e-9)

@pytest.mark.parametrize('key, make, shape', [
    ('fb_panns', lambda: features.mel_filterbank(32000, 1024, n_mels=64, fmin=50.0, fmax=14000.0), (64, 513)),
    ('fb_us8k', lambda: features.mel_filterbank(22050, 2048, n_mels=60), (60, 1025)),
    ('fb_htk', lambda: features.mel_filterbank(16000, 512, n_mels=40, fmin=20.0, fmax=7600.0, htk=True, norm=None),
     (40, 257)),
    ('chroma_fb_tuned', lambda: features.chroma_filterbank(22050, 2048, tuning=0.23), (12, 1025))])
def test_mel_and_chroma_filterbanks_match_librosa(key, make, shape):
    fb = make()
    assert fb.dtype == np.float32 and fb.shape == shape
    assert_close(fb, G[key], FB_TOL, key)

def test_mel_filterbank_norms():
    slaney = features.mel_filterbank(32000, 1024, n_mels=64, fmin=50.0, fmax=14000.0)
    plain = features.mel_filterbank(32000, 1024, n_mels=64, fmin=50.0, fmax=14000.0, norm=None)
    assert plain.max() <= 1.0 and plain.max() > 0.9  # unnormalised triangles peak near 1
    assert slaney[:, 0].max() == 0.0 and slaney[:, 448:].max() == 0.0  # DC and > 14 kHz unused
    pytest.raises(ValueError, features.mel_filterbank, 16000, 512, norm='l2')

def test_stft_complex_matches_librosa_short_clip():
    y, _ = clip('short')  # 1500 samples < n_fft: librosa warns but still pads and frames
    with pytest.warns(UserWarning, match='too large'):
        D = features.stft(y, n_fft=2048, hop_length=512)
    assert D.dtype == np.complex64 and D.shape == (1025, 1 + 1500 // 512)  # float32 in, complex64 out, as librosa
    assert np.abs(D - G['short__stft']).max() <= 1e-6 * np.abs(G['short__stft']).max()

def test_stft_win_length_no_center_matches_librosa_and_a_too_short_clip_raises():
    D = features.stft(clip('noise')[0][:4000], n_fft=512, hop_length=128, win_length=400, center=False)
    assert D.shape == (257, 1 + (4000 - 512) // 128)
    assert np.abs(np.abs(D) - G['noise__stft_mag_nocenter']).max() <= 1e-6 * G['noise__stft_mag_nocenter'].max()
    pytest.raises(ValueError, features.stft, np.zeros(1000, dtype=np.float32), n_fft=2048, center=False).match('n_fft')

def test_stft_framing_and_dtypes():
    y = np.random.RandomState(0).randn(5000)  # float64
    D = features.stft(y, n_fft=1024)  # hop defaults to 1024 // 4
    assert D.dtype == np.complex128 and D.shape == (513, 1 + 5000 // 256)
    # frame t is centred on y[t*hop]: frame 3 equals the rfft of the windowed centred slice
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    np.testing.assert_allclose(D[:, 3], np.fft.rfft(y[3 * 256 - 512: 3 * 256 + 512] * win), atol=1e-9)
    pytest.raises(ValueError, features.stft, np.zeros(4096, dtype=np.int16))

@pytest.mark.parametrize('name', SPECTRAL_CLIPS)
def test_melspectrogram_db_matches_librosa(name):
    y, sr = clip(name)
    mel = quiet(features.melspectrogram, y=y, sr=sr)
    assert mel.shape == (128, 1 + len(y) // 512) and mel.dtype == np.float32
    assert_close(features.power_to_db(mel), G[f'{name}__mel_db'], DB_TOL, name)
    if f'{name}__mel_db_reflect' in G:
        mel_r = quiet(features.melspectrogram, y=y, sr=sr, pad_mode='reflect')
        assert_close(features.power_to_db(mel_r), G[f'{name}__mel_db_reflect'], DB_TOL, name + ' reflect')

def test_melspectrogram_power_htk_and_S_input():
    y, sr = clip('tones')
    mel = features.melspectrogram(y=y, sr=sr)
    assert np.abs(mel - G['tones__mel_power']).max() <= 1e-5 * G['tones__mel_power'].max()
    S = np.abs(features.stft(y, n_fft=2048, hop_length=512)) ** 2
    np.testing.assert_array_equal(features.melspectrogram(S=S, sr=sr), mel)
    y, sr = clip('harmonic')
    htk = features.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=256, n_mels=40, htk=True, norm=None, fmin=30.0,
                                  fmax=8000.0)
    assert_close(features.power_to_db(htk), G['harmonic__mel_db_htk'], DB_TOL, 'htk')

def test_power_to_db_is_per_array():
    rs = np.random.RandomState(1)
    loud = rs.rand(8, 10).astype(np.float32) + 1.0  # ~0..3 dB
    quiet_clip = (rs.rand(8, 10).astype(np.float32) + 1.0) * 1e-5  # ~-50 dB, spread < 80 dB
    per_clip = features.power_to_db(quiet_clip)
    np.testing.assert_allclose(per_clip, 10 * np.log10(quiet_clip), atol=1e-4)  # not clipped
    # in a batch the floor is max(loud) - 80 dB, so nothing is clipped here either ...
    np.testing.assert_allclose(features.power_to_db(np.stack([loud, quiet_clip]))[1], per_clip, atol=1e-4)
    very_quiet = quiet_clip * 1e-4  # ~-87..-90 dB: below the loud clip's max - 80
    batched = features.power_to_db(np.stack([loud, very_quiet]))[1]
    np.testing.assert_allclose(features.power_to_db(very_quiet), 10 * np.log10(very_quiet), atol=1e-4)  # alone: intact
    assert np.all(batched == np.float32(features.power_to_db(loud).max() - 80.0))  # batched: the loud clip's floor
    S = np.array([1.0, 1e-3, 1e-12], dtype=np.float32)  # floor, ref, top_db=None
    np.testing.assert_allclose(features.power_to_db(S, top_db=None), [0.0, -30.0, -100.0], atol=1e-4)
    np.testing.assert_allclose(features.power_to_db(S, top_db=20.0), [0.0, -20.0, -20.0], atol=1e-4)
    np.testing.assert_allclose(features.power_to_db(S * 10, ref=np.max, top_db=None), [0.0, -30.0, -110.0], atol=1e-4)

@pytest.mark.parametrize('name', SPECTRAL_CLIPS)
def test_estimated_tuning_equals_librosa(name):
    y, sr = clip(name)
    S = np.abs(quiet(features.stft, y, n_fft=2048, hop_length=512)) ** 2
    assert quiet(features.estimate_tuning, S, sr, n_fft=2048) == float(G[f'{name}__tuning'])

def test_pitch_tuning_and_piptrack():
    f = 440.0 * 2 ** (np.array([0.255, 0.256, 0.257, -0.1]) / 12)
    assert features.pitch_tuning(f) == pytest.approx(0.25)  # left edge of the fullest bin
    assert features.pitch_tuning(440.0 * 2 ** (0.605 / 12)) == pytest.approx(-0.4)  # folded
    with pytest.warns(UserWarning, match='empty'):
        assert features.pitch_tuning(np.array([0.0, -5.0])) == 0.0
    # hand-made plateau: localmax is strict on the left, >= on the right, so only bin 100
    # counts; parabola through (0, 1, 1) peaks half a bin up; mag = 1 + 0.5 * 0.5 * 0.5
    S = np.zeros((1025, 2), dtype=np.float32)
    S[100:102, 0] = 1.0
    S[300, 1] = 1.0  # 3230 Hz: inside [150, 4000)
    S[500, 1] = 2.0  # 5383 Hz: above fmax, never a candidate
    pitches, mags = features.piptrack(S, 22050, n_fft=2048)
    assert np.count_nonzero(pitches[:, 0]) == 1 and np.count_nonzero(pitches[:, 1]) == 1
    assert pitches[100, 0] == pytest.approx(100.5 * 22050 / 2048) and mags[100, 0] == pytest.approx(1.125)
    assert pitches[300, 1] == pytest.approx(300 * 22050 / 2048) and mags[300, 1] == 1.0
    y, sr = clip('tones')
    S = np.abs(features.stft(y)) ** 2
    pitches, mags = features.piptrack(S, sr, n_fft=2048)
    found = pitches[pitches > 0]
    assert pitches.shape == S.shape and mags.shape == S.shape and found.min() >= 150.0 and found.max() < 4000.0
    assert np.any(np.abs(found - 446.2) < 3.0)  # the 446.2 Hz tone is found

@pytest.mark.parametrize('name', SPECTRAL_CLIPS)
def test_chroma_and_tonnetz_match_librosa(name):
    y, sr = clip(name)
    chroma = quiet(features.chroma_stft, y=y, sr=sr)  # tuning=None: estimated, as librosa
    assert chroma.shape == (12, 1 + len(y) // 512) and chroma.dtype == np.float32
    assert_close(chroma, G[f'{name}__chroma'], CHROMA_TOL, name + ' chroma')
    ton = features.tonnetz(chroma=chroma)
    assert ton.shape == (6, chroma.shape[1])
    assert_close(ton, G[f'{name}__tonnetz'], CHROMA_TOL, name + ' tonnetz')

def test_chroma_tuning_argument_and_tonnetz_from_y():
    y, sr = clip('harmonic')
    est = features.chroma_stft(y=y, sr=sr)
    tuning = features.estimate_tuning(np.abs(features.stft(y)) ** 2, sr, n_fft=2048)
    np.testing.assert_array_equal(features.chroma_stft(y=y, sr=sr, tuning=tuning), est)
    assert np.abs(features.chroma_stft(y=y, sr=sr, tuning=0.0) - est).max() > 1e-3
    np.testing.assert_allclose(est.max(axis=0), 1.0, rtol=1e-6)  # inf-norm per frame
    # tonnetz(y=...) is tonnetz of chroma_stft (not librosa's chroma_cqt default)
    np.testing.assert_array_equal(features.tonnetz(y=y, sr=sr), features.tonnetz(chroma=est))

@pytest.mark.parametrize('name', SPECTRAL_CLIPS)
def test_spectral_contrast_matches_librosa(name):
    y, sr = clip(name)
    contrast = quiet(features.spectral_contrast, y=y, sr=sr)
    assert contrast.shape == (7, 1 + len(y) // 512)
    assert_close(contrast, G[f'{name}__contrast'], CONTRAST_TOL, name + ' contrast')

def test_spectral_contrast_empty_bands_after_upsampling():
    # up8k has (almost) nothing above 4 kHz: the top bands are set by rounding and top_db,
    # which only an exact (float64-FFT, whole-array top_db) implementation reproduces
    y, sr = clip('up8k')
    contrast = features.spectral_contrast(y=y, sr=sr)
    assert_close(contrast[5:], G['up8k__contrast'][5:], CONTRAST_TOL, 'empty bands')
    np.testing.assert_array_equal(features.spectral_contrast(S=np.abs(features.stft(y)), sr=sr), contrast)

@pytest.mark.parametrize('sr', [8000, 11025, 12800])
def test_spectral_contrast_above_nyquist_raises(sr):
    y = np.random.RandomState(0).randn(sr).astype(np.float32)
    pytest.raises(ValueError, features.spectral_contrast, y=y, sr=sr).match('Nyquist')

def test_silent_clip_gives_zeros_and_no_nan():
    y, sr = clip('silent')
    chroma = quiet(features.chroma_stft, y=y, sr=sr)
    ton, contrast = features.tonnetz(chroma=chroma), features.spectral_contrast(y=y, sr=sr)
    assert all(not np.isnan(x).any() and np.all(x == 0.0) for x in (chroma, ton, contrast))
    mel_db = features.power_to_db(features.melspectrogram(y=y, sr=sr))
    np.testing.assert_allclose(mel_db, -100.0, atol=1e-3)  # 10 log10(amin = 1e-10)
    np.testing.assert_allclose(features.log_mel(np.zeros(32000, dtype=np.float32)), -100.0, atol=1e-3)
    assert not np.isnan(quiet(features.urbansound8k_features, y, sr)).any()

def test_log_mel_matches_librosa_panns_config():
    y, sr = clip('panns')
    lm = features.log_mel(y, sr)
    assert lm.dtype == np.float32 and lm.shape == (1 + len(y) // 320, 64)  # (frames, mels)
    assert_close(lm, G['panns__log_mel'], DB_TOL, 'log_mel')
    assert lm.min() == pytest.approx(-100.0, abs=1e-3)  # digital silence, no top_db

def test_log_mel_batch_equals_per_clip():
    y, sr = clip('panns')
    batch = np.stack([y, y[::-1].copy() * 0.1])
    out = features.log_mel(batch, sr)
    assert out.shape == (2, 1 + len(y) // 320, 64) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], features.log_mel(y, sr))
    np.testing.assert_array_equal(out[1], features.log_mel(batch[1], sr))
    assert features.log_mel(np.zeros(320000, dtype=np.float32)).shape == (1001, 64)

def test_log_mel_authors_is_the_authors_front_end_of_the_cache():
    y = (0.1 * np.random.RandomState(5).randn(32000)).astype(np.float32)
    lm = features.log_mel_authors(y)
    assert lm.dtype == np.float32 and lm.shape == (101, 64)
    np.testing.assert_array_equal(lm, data.compute_features(y, 32000, dict(data.FRONTENDS['authors'], seconds=1.0)))

def test_authors_log_mel_front_end():
    # the authors' torchaudio front end: HTK mel from 20 Hz without norm (cnn14_spec.md 3b: centres
    # 54.20 .. 13333.43 Hz), natural log with an additive float32 eps (silence -> ln(eps))
    mel_f = features.mel_to_hz(np.linspace(features.hz_to_mel(20.0, htk=True), features.hz_to_mel(14000.0, htk=True),
                                           66), htk=True)
    assert mel_f[1] == pytest.approx(54.20, abs=0.01) and mel_f[-2] == pytest.approx(13333.43, abs=0.01)
    config = dict(data.FRONTENDS['authors'], seconds=1.0)
    silent = data.compute_features(np.zeros(32000, np.float32), 32000, config)
    assert silent.shape == (101, 64) and np.allclose(silent, np.log(np.finfo(np.float32).eps))
    tone = data.compute_features(np.sin(2 * np.pi * 1000 * np.arange(32000) / 32000).astype(np.float32), 32000, config)
    fb = features.mel_filterbank(32000, 1024, 64, 20.0, 14000.0, htk=True, norm=None)
    assert np.argmax(tone[50]) == np.argmax(fb[:, 32])  # the band whose triangle holds the 1 kHz bin
    assert fb.max() == pytest.approx(1.0, abs=0.05)  # no area normalisation: peaks near 1

def test_resample():
    y = np.sin(2 * np.pi * 440.0 * np.arange(44100) / 44100).astype(np.float32)
    out = features.resample(y, 44100, 22050)
    assert out.dtype == np.float32 and len(out) == 22050 and features.resample(y, 44100, 44100) is y
    z = features.resample(y[:1001], 44100, 32000)  # up 320 / down 441
    assert len(z) == math.ceil(1001 * 320 / 441)
    np.testing.assert_allclose(z, scipy.signal.resample_poly(y[:1001], 320, 441), atol=1e-6)
    assert abs(np.argmax(np.abs(np.fft.rfft(out))) * 22050 / len(out) - 440.0) < 2.0  # pitch preserved

@pytest.mark.parametrize('name', ['bursts', 'harmonic'])
def test_urbansound8k_features_match_librosa(name):
    y, sr = clip(name)
    feats, ref = features.urbansound8k_features(y, sr), G[f'{name}__us8k']
    assert feats.shape == (128, 85) and feats.dtype == np.float32
    assert_close(feats[:, :60], ref[:, :60], DB_TOL, 'log-mel')
    assert_close(feats[:, 60:78], ref[:, 60:78], CHROMA_TOL, 'chroma + tonnetz')
    assert_close(feats[:, 78:], ref[:, 78:], CONTRAST_TOL, 'contrast')

def test_urbansound8k_features_resample_and_crop():
    rs = np.random.RandomState(3)
    y44 = (0.1 * rs.randn(4 * 44100)).astype(np.float32)  # 4 s at 44.1 kHz: resample + crop
    feats = features.urbansound8k_features(y44, 44100)
    assert feats.shape == (128, 85) and feats.dtype == np.float32
    y22 = features.resample(y44, 44100, 22050)
    np.testing.assert_array_equal(feats, features.urbansound8k_features(y22[:66150], 22050))
    y8 = (0.1 * rs.randn(8000)).astype(np.float32)  # 1 s at 8 kHz would fail contrast unresampled
    assert features.urbansound8k_features(y8, 8000).shape == (128, 85)

def test_speechcommands_features():
    y, sr = clip('sr16k')
    feats = features.speechcommands_features(y, sr)
    assert feats.shape == (32, 32) and feats.dtype == np.float32  # (frames, mels)
    assert_close(feats, G['sr16k__speechcommands'], DB_TOL, 'speechcommands')
    short = features.speechcommands_features(y[:12000].astype(np.float64), sr)  # zero-padded
    assert short.shape == (32, 32) and short.dtype == np.float32
    assert features.speechcommands_features(features.resample(y, 16000, 8000), 8000).shape == (32, 32)
    np.testing.assert_array_equal(features.speechcommands_features(np.concatenate([y, y]), sr), feats)  # first second
    pytest.raises(ValueError, features.speechcommands_features, np.stack([y, y]), sr)  # mono only

def test_recipe_configs_are_hashable_json():
    for cfg in (features.LOG_MEL_CONFIG, features.URBANSOUND8K_CONFIG, features.SPEECHCOMMANDS_CONFIG):
        assert json.loads(json.dumps(cfg, sort_keys=True)) == cfg
    assert features.URBANSOUND8K_CONFIG['n_samples'] == 3 * features.URBANSOUND8K_CONFIG['sr']


# ===== models.py: CNN14 against PANNs' own model (testdata/panns_golden.npz), the growing classifier, the small CNN
def test_cnn14_parameter_counts_match_panns():
    assert models.count_parameters(models.Cnn14(527, head='panns')) == 80_753_615
    cil_model = models.Cnn14(30)
    assert models.count_parameters(cil_model) == 75_538_910
    for expected in (75_549_155, 75_559_400, 75_569_645, 75_579_890):
        cil_model.grow(5)
        assert models.count_parameters(cil_model) == expected

def test_cnn14_state_dict_keys_are_panns_keys(panns_state):
    ours = models.Cnn14(527, head='panns').state_dict()
    ref = [k for k in panns_state if k not in models.PANNS_FRONT_END_KEYS]
    assert list(ours) == ref  # same names, same order, same count (81 = 84 - 3 front-end tensors)
    assert all(ours[k].shape == panns_state[k].shape and ours[k].dtype == panns_state[k].dtype for k in ref)
    cil_keys = list(models.Cnn14(30).state_dict())
    assert cil_keys == ref[:-4] + ['fc.weight', 'fc.bias'] and len(cil_keys) == 79

def test_panns_checkpoint_loads_and_matches_panns_logits(panns_checkpoint, panns_golden):
    model = models.load_panns_checkpoint(models.Cnn14(527, head='panns'), str(panns_checkpoint)).eval()
    with torch.no_grad():
        # fed PANNs' own log-mel: equal up to float32 summation order
        logits, _ = model(torch.from_numpy(panns_golden['panns_logmel']))
        assert np.abs(logits.numpy() - panns_golden['panns_logits']).max() < 1e-5
        emb, fmap = model.embed(torch.from_numpy(panns_golden['panns_logmel']))
        assert fmap.shape == (2, 2048, 3, 2)
        assert np.abs(torch.relu(model.fc1(emb)).numpy() - panns_golden['panns_embedding']).max() < 1e-5
        logmel = models.LogMel()(torch.from_numpy(panns_golden['wave']))  # our own front end on the same waveform
        assert np.abs(logmel.numpy() - panns_golden['panns_logmel'][:, 0]).max() < 0.05
        assert np.abs(model(logmel)[0].numpy() - panns_golden['panns_logits']).max() < 2e-3
    assert np.abs(panns_golden['panns_logits']).max() > 1.0  # the logits are not trivially small

def test_panns_checkpoint_backbone_loads_into_cil_learner(panns_checkpoint, panns_golden):
    fresh = models.Cnn14(30)
    torch.manual_seed(0)
    model = models.load_panns_checkpoint(models.Cnn14(30), str(panns_checkpoint))
    sd = torch.load(panns_checkpoint, weights_only=True)['model']
    for key, value in model.state_dict().items():
        if key.startswith(('bn0', 'conv_block')):
            assert torch.equal(value, sd[key]), key
    bound = 1 / math.sqrt(2048)  # nn.Linear default init, as the authors' code
    assert model.fc.weight.shape == (30, 2048) and model.fc.weight.abs().max() <= bound
    assert model.fc.weight.std() > bound / 3 and not torch.equal(model.conv_block1.conv1.weight,
                                                                 fresh.conv_block1.conv1.weight)

def test_panns_checkpoint_front_end_mismatch_is_a_clear_error(panns_state):
    ckpt = {'model': dict(panns_state, **{'logmel_extractor.melW': panns_state['logmel_extractor.melW'] * 1.01})}
    pytest.raises(ValueError, models.load_panns_checkpoint, models.Cnn14(30), ckpt).match(
        'logmel_extractor.melW differs')
    front_end = models.LogMel(sample_rate=16000, n_fft=1024, hop_length=160, fmax=8000)  # 32 kHz checkpoint, 16 kHz
    pytest.raises(ValueError, models.load_panns_checkpoint, models.Cnn14(30), {'model': dict(panns_state)},
                  front_end=front_end).match('differs')

def test_truncated_checkpoint_is_reported(tmp_path, panns_checkpoint):
    bad = tmp_path / 'truncated.pth'
    bad.write_bytes(Path(panns_checkpoint).read_bytes()[:10000])
    pytest.raises(ValueError, models.load_panns_checkpoint, models.Cnn14(30), str(bad)).match('cannot read')

def test_logmel_torch_agrees_with_librosa_and_numpy_log_mel(panns_golden):
    fe = models.LogMel()
    assert np.abs(fe.melW.numpy() - panns_golden['librosa_melW']).max() < 1e-6
    out, ref = fe(torch.from_numpy(panns_golden['wave'])), features.log_mel(panns_golden['wave'])
    assert out.shape == ref.shape == (2, 101, 64) and out.dtype == torch.float32
    assert np.abs(out.numpy() - panns_golden['librosa_logmel']).max() < 0.05
    assert np.abs(out.numpy() - ref).max() < 0.05  # dB (measured: float32 rounding only)

def test_classifier_growth_keeps_old_rows_bit_exact():
    torch.manual_seed(0)
    model = models.Cnn14(6, width=1 / 32)
    old_w, old_b = model.fc.weight.detach().clone(), model.fc.bias.detach().clone()
    model.grow(3)
    assert model.fc.weight.shape == (9, 64) and not torch.equal(model.fc.weight[6:], torch.zeros(3, 64))
    assert torch.equal(model.fc.weight[:6], old_w) and torch.equal(model.fc.bias[:6], old_b)
    other = models.Cnn14(6, width=1 / 32)  # a state dict round trip restores every row into a model grown the same way
    other.grow(3)
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.fc.weight, model.fc.weight)
    pytest.raises(RuntimeError, models.Cnn14(6, width=1 / 32).load_state_dict, model.state_dict()).match(
        'grow the model')

def test_cosine_classifier_is_sigma_times_cosine_and_grows_like_split_cosine_linear():
    torch.manual_seed(0)
    fc = models.IncrementalLinear(8, 3, cosine=True)
    assert fc.bias is None and fc.sigma.item() == 1.0 and fc.blocks[0].weight.abs().max() <= 1 / np.sqrt(8)
    x = torch.randn(5, 8)
    with torch.no_grad():
        fc.sigma.fill_(4.0)
    w = fc.weight.detach().clone()
    ref = 4.0 * np.array([[np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) for b in w.numpy()] for a in x.numpy()])
    assert np.allclose(fc(x).detach().numpy(), ref, atol=1e-5)
    fc.grow(2)  # SplitCosineLinear: old rows and the shared sigma carried over, new rows added
    z = fc(x)
    assert z.shape == (5, 5) and torch.allclose(z[:, :3], torch.as_tensor(ref, dtype=torch.float32), atol=1e-5)
    assert (z.abs() <= 4.0 + 1e-5).all() and len(list(fc.parameters())) == 3  # sigma, two blocks
    sd = fc.state_dict()
    assert sorted(sd) == ['sigma', 'weight'] and sd['weight'].shape == (5, 8)
    other = models.IncrementalLinear(8, 3, cosine=True)
    other.grow(2)
    other.load_state_dict(sd)
    assert torch.equal(other(x), z)
    z.sum().backward()
    assert fc.sigma.grad is not None  # sigma is learned
    fc.freeze_old()  # FE: old rows and sigma fixed, so old logits cannot move
    assert not fc.sigma.requires_grad and [p.requires_grad for p in fc.blocks.parameters()] == [False, True]

def test_cosine_classifier_on_both_learners_and_their_auxiliary_heads():
    small = models.SmallCNN(5, classifier='cosine')
    small.add_head(3)
    small.eval()
    for head in (0, 1):
        assert (small(torch.randn(2, 32, 32), head=head)[0].abs() <= 1 + 1e-5).all()  # sigma starts at 1
    assert small.aux_heads[0].sigma is not small.fc.sigma  # every head has its own scale
    big = models.Cnn14(4, width=1 / 32, classifier='cosine')
    big.grow(2)
    assert big(torch.randn(2, 64, 64))[0].shape == (2, 6) and 'fc.sigma' in big.state_dict()
    pytest.raises(ValueError, models.SmallCNN, 5, classifier='arcface').match('cosine')

def test_frozen_old_rows_and_backbone_stay_bit_exact_under_sgd():
    torch.manual_seed(0)
    model = models.Cnn14(4, width=1 / 32)
    model.grow(2)
    model.fc.freeze_old()
    model.freeze_backbone()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _ in range(3):
        logits, _ = model(torch.randn(4, 64, 64))
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(logits, torch.rand(4, 6).round()).backward()
        opt.step()
    after = model.state_dict()
    for key in before:
        if key.startswith(('bn0', 'conv_block')):  # weights and BN running statistics
            assert torch.equal(before[key], after[key]), key
    assert torch.equal(before['fc.weight'][:4], after['fc.weight'][:4])
    assert not torch.equal(before['fc.weight'][4:], after['fc.weight'][4:])

def test_auxiliary_heads_share_the_backbone():
    model = models.SmallCNN(5)
    assert model.add_head(4) == 1 and model.add_head(3) == 2
    x = torch.randn(2, 32, 32)
    model.eval()
    emb, _ = model.embed(x)
    for head, n in ((0, 5), (1, 4), (2, 3)):
        logits, _ = model(x, head=head)
        assert logits.shape == (2, n) and torch.allclose(logits, model.classify(emb, head))
    model.drop_aux_heads()
    assert len(model.aux_heads) == 0

@pytest.mark.parametrize('shape', [(128, 85), (32, 32)])
def test_model_shapes_on_both_input_sizes(shape):
    small = models.SmallCNN(4)
    logits, emb = small(torch.randn(3, *shape))
    assert logits.shape == (3, 4) and emb.shape == (3, 64) and small(torch.randn(3, 1, *shape))[0].shape == (3, 4)
    assert models.count_parameters(small) == 65_376 + 65 * 4
    logits, fmap = models.Cnn14(4, mel_bins=shape[1], width=1 / 16).eval()(torch.randn(2, *shape))
    assert logits.shape == (2, 4) and fmap.shape[:2] == (2, 128)
    authors = models.Cnn14(4, width=1 / 16, block6_pool=(2, 2)).eval()
    assert authors(torch.randn(2, 1001, 64))[1].shape == (2, 128, 15, 1)  # the authors' block-6 pooling
    panns = models.Cnn14(4, width=1 / 16).eval()
    assert panns(torch.randn(2, 1001, 64))[1].shape == (2, 128, 31, 2)  # PANNs: no pooling at block 6

def test_small_cnn_layer_order_and_no_stride_option():
    model = models.SmallCNN(3, downsample='none')
    kinds = [type(m).__name__ for m in model.convs]
    assert kinds == ['Conv2d', 'ReLU', 'BatchNorm2d'] * 4  # Conv -> ReLU -> BN, as the paper writes it
    assert all(m.stride == (1, 1) for m in model.convs if isinstance(m, torch.nn.Conv2d))
    assert len(models.SmallCNN(3).conv_layers(3)) == 9

def test_channels_last_gives_the_same_logits_on_the_cpu():
    torch.manual_seed(0)
    model = models.Cnn14(7, width=1 / 8)
    x = torch.randn(3, 60, 64)
    nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
    for mode in (True, False):
        model.dropout = nhwc.dropout = 0.0  # train mode: BatchNorm on the batch, no dropout
        (z, f), (z_cl, f_cl) = model.train(mode)(x), nhwc.train(mode)(x)
        assert f_cl.is_contiguous(memory_format=torch.channels_last)  # NHWC all the way to block 6
        assert torch.allclose(z, z_cl, atol=1e-5, rtol=0)
        # the block-6 map: float32 rounding, magnified a little by train-mode BatchNorm on 3 clips
        assert torch.allclose(f, f_cl, atol=1e-4, rtol=1e-4)
    nhwc.dropout = 0.2  # dropout draws its mask in the stored layout: no copy to NCHW and back
    _, kept = nhwc.train()(x)
    assert kept.is_contiguous(memory_format=torch.channels_last)
    assert (kept == 0).float().mean() > (f_cl == 0).float().mean() + 0.05  # ReLU's zeros, and 20 % of the rest

@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_cnn14_compiles_without_graph_breaks_in_both_layouts():
    """One graph for the learner's training forward (plain and channels_last): --compile fuses the whole step."""
    model = models.Cnn14(30, width=1 / 16)
    model.grow(5)
    for m in (model, copy.deepcopy(model).to(memory_format=torch.channels_last)):
        torch._dynamo.reset()
        explained = torch._dynamo.explain(m.train())(torch.randn(4, 101, 64))
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    torch._dynamo.reset()


# ===== methods.py: every loss against values computed by hand, the training loops, the speed paths
# ---------------- losses, on a fixed tiny batch, against numpy in float64
Z = np.array([[2.0, -1.0, 0.5, 1.5, -0.5], [-1.0, 0.0, 3.0, -2.0, 0.5], [0.3, 0.2, -0.4, 1.0, 2.0]])
Z_TEACHER = np.array([[1.5, -0.5, 1.0], [0.0, 0.5, 2.0], [1.0, -1.0, 0.0]])
Y_NEW = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
FEAT = np.arange(24, dtype=np.float64).reshape(3, 2, 2, 2) % 5 - 2.0
FEAT_TEACHER = np.cos(np.arange(24, dtype=np.float64)).reshape(3, 2, 2, 2)

def _np_bce(z, y, pw):
    return np.mean(-(pw * y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z)))))

def _np_kd(s, t, T):
    p = np.exp(s / T) / np.exp(s / T).sum(1, keepdims=True)
    q = np.exp(t / T) / np.exp(t / T).sum(1, keepdims=True)
    return np.mean(q * (np.log(q) - np.log(p))) * T * T

def _np_cos_loss(a, b):
    a, b = a.ravel(), b.ravel()
    return 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)

def _t(a):
    return torch.tensor(a, dtype=torch.float64)

def test_multilabel_losses_equal_hand_computed_values():
    pw, lam, T = 2.5, methods.adaptive_lambda(35, 5), 2.0
    assert lam == pytest.approx(5 * 7 ** 0.66)
    bce_new, bce_all = _np_bce(Z[:, 3:], Y_NEW, pw), _np_bce(Z, np.hstack([np.zeros((3, 3)), Y_NEW]), pw)
    od, fd = _np_kd(Z[:, :3], Z_TEACHER, T), _np_cos_loss(FEAT, FEAT_TEACHER)
    expected = {'ft': bce_all, 'fe': bce_all, 'indl': bce_new, 'od': bce_all + lam * od,
                'iod': bce_new + lam * od, 'ifd': bce_new + fd, 'iodfd': bce_new + lam * od + fd}
    for name, value in expected.items():
        total, terms = methods.multilabel_loss(methods.METHODS[name], _t(Z), _t(Y_NEW), n_new=2, feats=_t(FEAT),
                                               teacher_logits=_t(Z_TEACHER), teacher_feats=_t(FEAT_TEACHER),
                                               pos_weight=pw, lam=lam, T=T)
        assert total.item() == pytest.approx(value, rel=1e-12), name
    # phase 0: only BCE over all (new) logits, whatever the method
    total, terms = methods.multilabel_loss(methods.METHODS['iodfd'], _t(Z[:, 3:]), _t(Y_NEW), n_new=2)
    assert list(terms) == ['bce'] and total.item() == pytest.approx(_np_bce(Z[:, 3:], Y_NEW, 1.0), rel=1e-12)

def test_fd_loss_per_sample_option_and_pos_weight():
    per_sample = np.mean([_np_cos_loss(x, y) for x, y in zip(FEAT.reshape(3, -1), FEAT_TEACHER.reshape(3, -1))])
    assert methods.fd_loss(_t(FEAT), _t(FEAT_TEACHER), per_sample=True).item() == pytest.approx(per_sample, rel=1e-12)
    assert methods.fd_loss(_t(FEAT), _t(FEAT), per_sample=False).item() == pytest.approx(0.0, abs=1e-12)
    assert methods.pos_weight_of(torch.tensor([[1, 0, 0], [0, 0, 1]])) == pytest.approx(2.0)
    pytest.raises(ValueError, methods.pos_weight_of, torch.zeros(4, 3)).match('no positive')

def test_kws_loss_terms_equal_hand_computed_values():
    y_n, y_o, n_old, lam, T = np.array([3, 4, 3]), np.array([0, 2, 4]), 3, 9.55, 2.0
    z_o = Z[::-1].copy()
    def ce(z, y):
        return np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])
    expected = {'ce_n': ce(Z[:, 3:], y_n - 3), 'ce_o': ce(z_o, y_o),
                'kd_n': lam * _np_kd(Z[:, :3], Z_TEACHER, T), 'kd_o': lam * _np_kd(z_o[:, :3], Z_TEACHER[::-1], T)}
    total, terms = methods.mittal_loss(methods.MITTAL_TERMS, _t(Z), torch.tensor(y_n), n_old, logits_o=_t(z_o),
                                       y_o=torch.tensor(y_o), teacher_n=_t(Z_TEACHER),
                                       teacher_o=_t(Z_TEACHER[::-1].copy()), lam=lam, T=T)
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-12), name
    assert total.item() == pytest.approx(sum(expected.values()), rel=1e-12)
    _, terms = methods.mittal_loss(('ce_n',), _t(Z), torch.tensor(y_n), n_old, ce_new_logits='all')
    assert list(terms) == ['ce_n'] and terms['ce_n'].item() == pytest.approx(ce(Z, y_n), rel=1e-12)

def test_replay_bce_counts_only_known_labels():
    z, t = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]]), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    known = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    ref = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log1p(np.exp(-3.0)), np.log1p(np.exp(-2.0))])
    assert methods.replay_bce(z, t, known).item() == pytest.approx(ref, rel=1e-6)

def test_losses_reduce_in_float32_and_keep_float64():
    z, t = torch.randn(4, 6, dtype=torch.float64), (torch.rand(4, 6) < 0.5).double()
    assert methods.bce_loss(z, t, 2.5).dtype == torch.float64  # the hand-computed tests run in float64
    for dtype in (torch.bfloat16, torch.float16):
        zd = z.to(dtype)
        assert methods.bce_loss(zd, t, torch.tensor(2.5)).dtype == methods.kd_loss(zd, zd).dtype == torch.float32
        assert methods.fd_loss(zd, zd).dtype == torch.float32
        assert methods.replay_bce(zd, t.float(), torch.ones(4, 6)).dtype == torch.float32
        _, terms = methods.mittal_loss(('ce_n', 'ce_o'), zd, torch.tensor([3, 4, 5, 3]), 3, logits_o=zd,
                                       y_o=torch.tensor([0, 1, 2, 5]))
        assert all(v.dtype == torch.float32 for v in terms.values())
    # a tensor pos_weight (made once per phase) gives exactly the float's loss
    assert torch.equal(methods.bce_loss(z.float(), t, 2.5), methods.bce_loss(z.float(), t, torch.tensor(2.5)))
    pytest.raises(KeyError, methods.autocast, CPU, 'fp8').match('fp8')

# ---------------- the multi-label loop
def _phase0(seed=0, n=24, frames=40):
    """A phase-0 learner (30 classes, width 1/16) after one epoch, and phase-1 data (5 new classes)."""
    torch.manual_seed(seed)
    x = torch.randn(n, frames, 64).half()
    y0, y1 = (torch.rand(n, 30) < 0.2).float(), (torch.rand(n, 5) < 0.3).float()
    y0[0] = y1[0] = 1
    model = methods.train_multilabel(models.Cnn14(30, width=1 / 16), methods.METHODS['ft'], x, y0.numpy(), phase=0,
                                     epochs=1, lr=0.01, seed=0, device=CPU, batch_size=8)
    return model, x, y1.numpy()

def _iodfd_phase(model, x, y, epochs=1, method='iodfd', **kw):
    states = []
    model = methods.train_multilabel(copy.deepcopy(model), methods.METHODS[method], x, y, phase=1, epochs=epochs,
                                     lr=0.001, seed=0, device=CPU, batch_size=8, **kw,
                                     on_epoch=lambda state: states.append(copy.deepcopy(state)))  # as saved
    return model, states

def test_indl_gives_old_rows_no_gradient_from_bce():
    torch.manual_seed(0)
    model = models.Cnn14(4, width=1 / 16)
    model.grow(2)
    y = torch.tensor([[1., 0], [0, 1], [1, 1]])
    loss, terms = methods.multilabel_loss(methods.METHODS['indl'], model(torch.randn(3, 50, 64))[0], y, 2)
    loss.backward()
    assert list(terms) == ['bce'] and torch.count_nonzero(model.fc.blocks[0].weight.grad) == 0
    assert torch.count_nonzero(model.fc.blocks[1].weight.grad) > 0
    model.zero_grad()
    methods.multilabel_loss(methods.METHODS['ft'], model(torch.randn(3, 50, 64))[0], y, 2)[0].backward()
    assert torch.count_nonzero(model.fc.blocks[0].weight.grad) > 0  # without IndL the BCE pushes the old rows to 0

def test_fd_forward_authors_runs_the_learner_a_second_time_for_the_feature_term():
    torch.manual_seed(0)
    base = models.Cnn14(4, width=1 / 16)
    teacher, x, y, stats = methods.frozen_copy(base), torch.randn(8, 50, 64), (torch.rand(8, 2) < 0.5).float(), {}
    for how, bn0_momentum in (('single', 0.1), ('authors', 0.1), ('single', 0.19)):
        model = copy.deepcopy(base)
        model.grow(2)
        model.bn0.momentum = bn0_momentum  # lr 0, no update: only the BatchNorm statistics move
        methods.train_epoch(model, methods.METHODS['iodfd'], x, y, [np.arange(8)], methods.sgd(model, 0.0), CPU,
                            n_new=2, teacher=teacher, fd_forward=how)
        stats[how, bn0_momentum] = (int(model.bn0.num_batches_tracked), model.bn0.running_mean.clone())
    assert stats['single', 0.1][0] == 1 and stats['authors', 0.1][0] == 2
    # bn0 sees the same batch twice (before any dropout): two updates at 0.1 = one at 1 - 0.9^2 = 0.19
    assert torch.allclose(stats['authors', 0.1][1], stats['single', 0.19][1], atol=1e-6)
    assert not torch.allclose(stats['authors', 0.1][1], stats['single', 0.1][1], atol=1e-4)

def _previous_train_epoch(model, method, x, y, batches, optimizer, device, *, n_new, teacher=None, teacher_cache=None,
                          pos_weight=None, lam=1.0, T=2.0, fd_per_sample=False, fd_forward='single', memory=None):
    """train_epoch before AMP and the device batch plan: float pos_weight, per-step indices, cache on its device."""
    model.train()
    sums = {}
    for step, idx in enumerate(batches):
        idx_t = torch.as_tensor(idx)
        xb, yb = x[idx_t].to(device, non_blocking=True).float(), y[idx_t].to(device, non_blocking=True)
        logits, feats = model(xb)
        t_logits = t_feats = None
        if (method.od or method.fd) and logits.shape[1] > n_new:
            if teacher_cache is not None:
                t_logits, t_feats = (t[idx_t.to(t.device)].to(device) for t in teacher_cache)
            else:
                with torch.no_grad():
                    t_logits, t_feats = teacher(xb)
            if method.fd and fd_forward == 'authors':
                _, feats = model(xb)
        loss, terms = methods.multilabel_loss(method, logits, yb, n_new, feats=feats, teacher_logits=t_logits,
                                              teacher_feats=t_feats, pos_weight=pos_weight, lam=lam, T=T,
                                              fd_per_sample=fd_per_sample)
        if memory is not None:
            mx, my, mknown, mbatches = memory
            m = torch.as_tensor(mbatches[step])
            z_mem, _ = model(mx[m].to(device).float())
            terms['replay'] = methods.replay_bce(z_mem[:, :my.shape[1]], my[m].to(device), mknown[m].to(device),
                                                 pos_weight)
            loss = loss + terms['replay']
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v.detach()
    return {k: (v / max(len(batches), 1)).item() for k, v in sums.items()}

@pytest.mark.parametrize('variant', ['live', 'cache', 'authors+memory'])
def test_fp32_epoch_is_bit_identical_to_the_previous_loop(variant):
    torch.manual_seed(1)
    base = models.Cnn14(4, width=1 / 16)
    teacher = methods.frozen_copy(base)
    base.grow(2)
    x, y = torch.randn(20, 40, 64).half(), (torch.rand(20, 2) < 0.4).float()
    batches, pw = methods.index_batches(20, 8, seed=3), methods.pos_weight_of(y)
    cache = methods.teacher_outputs(teacher, x, 16, CPU) if variant == 'cache' else None
    memory = None
    if variant == 'authors+memory':
        mx, my, mk = torch.randn(6, 40, 64), (torch.rand(6, 4) < 0.5).float(), torch.ones(6, 4)
        memory = (mx, my, mk, methods.memory_batches(6, len(batches), 8, seed=5))
    kw = dict(n_new=2, teacher=teacher, teacher_cache=cache, lam=methods.adaptive_lambda(6, 2),
              fd_forward='authors' if variant == 'authors+memory' else 'single', memory=memory)
    out = []
    for loop, pos_weight in ((_previous_train_epoch, pw), (methods.train_epoch, torch.tensor(pw))):
        model = copy.deepcopy(base)
        opt = methods.sgd(model, 0.01)
        torch.manual_seed(7)
        out.append((loop(model, methods.METHODS['iodfd'], x, y, batches, opt, CPU, pos_weight=pos_weight, **kw),
                    model.state_dict()))
    (terms_a, state_a), (terms_b, state_b) = out
    assert terms_a == terms_b and all(torch.equal(state_a[k], state_b[k]) for k in state_a)

DDP_STEP = '''
import os, sys, numpy as np, torch, methods, models
rank, size, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(1)
if size > 1:
    torch.distributed.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=size)
# BatchNorm frozen and no dropout: only then do one process and two compute the same step on the CPU
# (SyncBatchNorm, which makes the statistics the global batch's, needs CUDA)
models.Cnn14.train = lambda self, mode=True: torch.nn.Module.train(self, False)
torch.manual_seed(0)
model, x, seen = models.Cnn14(4, width=1 / 16), torch.randn(24, 40, 64), []
y = (torch.rand(24, 2) < 0.4).float().numpy()
y[0] = 1
model = methods.train_multilabel(model, methods.METHODS['iodfd'], x, y, phase=1, epochs=2, lr=0.05, seed=0,
                                 device=torch.device('cpu'), batch_size=7, on_epoch=seen.append)
if rank == 0:
    torch.save({'model': model.state_dict(), 'terms': [s['terms'] for s in seen]}, out)
if size > 1:
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
os._exit(0)  # no interpreter teardown racing gloo's threads
'''

def test_one_ddp_run_on_two_processes_equals_one_process_on_the_same_global_batches(tmp_path):
    """Two gloo processes (batches of 7: unequal halves, a last of 3) give one process's weights, to float rounding."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(HERE), OMP_NUM_THREADS='1')
    single = subprocess.run([sys.executable, '-c', DDP_STEP, '0', '1', '0', str(tmp_path / 'one.pt')], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    procs = [subprocess.Popen([sys.executable, '-c', DDP_STEP, str(r), '2', str(port), str(tmp_path / 'ddp.pt')],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    one, ddp = (torch.load(tmp_path / f, weights_only=True) for f in ('one.pt', 'ddp.pt'))
    torch.manual_seed(0)
    start = models.Cnn14(4, width=1 / 16).state_dict()
    for key, value in one['model'].items():
        if value.is_floating_point():
            moved = (value - start[key]).abs().max() if start[key].shape == value.shape else value.abs().max()
            assert (value - ddp['model'][key]).abs().max() <= 1e-3 * moved, key  # float rounding, not a wrong step
    assert (one['model']['conv_block1.conv1.weight'] != start['conv_block1.conv1.weight']).any()
    for a, b in zip(one['terms'], ddp['terms']):  # the logged epoch means: the ranks' average
        assert a.keys() == b.keys() == {'bce', 'od', 'fd'} and all(b[k] == pytest.approx(a[k], rel=1e-4) for k in a)

# ---------------- the single-label pieces
def test_memory_quota_and_reduction_keep_prefixes():
    assert [methods.memory_quota(200, n) for n in (5, 8, 11, 14, 17, 20)] == [40, 25, 18, 14, 11, 10]
    assert [methods.memory_quota(100, n) for n in (4, 6, 8, 10)] == [25, 16, 12, 10]
    pytest.raises(ValueError, methods.memory_quota, 10, 11).match('cannot hold one per class')
    mem = methods.ExemplarMemory(12)
    full = methods.select_random(np.arange(100, 140), 6, seed=3, class_id=1)
    assert len(set(full)) == 6 and np.array_equal(methods.select_random(np.arange(100, 140), 4, 3, 1), full[:4])
    mem.set(0, np.arange(6))
    mem.set(1, full)
    assert mem.reduce(3) == 4 and len(mem) == 8
    assert np.array_equal(mem.per_class[1], full[:4])  # truncation keeps the highest-priority prefix
    idx, labels = mem.items()
    assert labels.tolist() == [0] * 4 + [1] * 4 and idx[:4].tolist() == [0, 1, 2, 3]
    other = methods.ExemplarMemory(0)
    other.load_state_dict(json.loads(json.dumps(mem.state_dict())))
    assert other.K == 12 and all(np.array_equal(other.per_class[c], mem.per_class[c]) for c in (0, 1))

def _herding_by_definition(emb, m, normalize_mean, check_ties=True):
    """numpy, a pick at a time: argmin_i ||mu - (sum of picked + phi_i) / k||, mu the unit phi's mean (normalised?)."""
    phi = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    mu = phi.mean(0) / (np.linalg.norm(phi.mean(0)) if normalize_mean else 1.0)
    chosen = []
    for k in range(1, m + 1):
        dist = {i: np.linalg.norm(mu - (phi[chosen].sum(0) + phi[i]) / k) for i in range(len(phi)) if i not in chosen}
        best = sorted(dist, key=dist.get)
        assert not check_ties or len(best) == 1 or dist[best[1]] - dist[best[0]] > 1e-2  # no near tie decides
        chosen.append(best[0])
    return chosen

HERDING_EMB = np.array([[1.0, 0.2], [0.2, 1.0], [3.0, 3.0], [1.0, -0.9], [-0.5, 1.0]])

def test_herding_picks_the_known_best_exemplars():
    # class mean direction (1, 1)/sqrt2; item 2 lies on it, then items 0 and 1 balance each other
    order = methods.select_herding(HERDING_EMB, 3)
    assert order[0] == 2 and sorted(order[1:]) == [0, 1]
    # brute force over every unselected candidate agrees with the greedy definition at each step
    assert order.tolist() == _herding_by_definition(HERDING_EMB, 3, True, check_ties=False)

def test_herding_mean_normalized_by_default_and_icarls_plain_mean_on_request():
    # the default is the order select_herding gave before the keyword existed
    assert methods.select_herding(HERDING_EMB, 5).tolist() == [2, 0, 1, 4, 3]
    assert np.array_equal(methods.select_herding(HERDING_EMB, 5, normalize_mean=True),
                          methods.select_herding(HERDING_EMB, 5))
    # five directions at 0, 30, -40, 150 and -140 degrees (lengths 2, 0.5, 1, 3, 1.5): they spread around the circle, so
    # the plain mean of the unit vectors is short (|mu| = 0.21). Both pick item 0 first. Then the unit-length target
    # asks for a running mean that stays long, so its neighbour at -40 degrees (item 2) comes next; the short plain mean
    # asks for one near the origin, so an item on the far side of the circle (item 4, -140 degrees) comes next.
    emb = np.array([[2.0, 0.0], [0.433, 0.25], [0.766, -0.643], [-2.598, 1.5], [-1.149, -0.964]])
    normalized, plain = methods.select_herding(emb, 5), methods.select_herding(emb, 5, normalize_mean=False)
    assert normalized.tolist() == _herding_by_definition(emb, 5, True) == [0, 2, 1, 4, 3]
    assert plain.tolist() == _herding_by_definition(emb, 5, False) == [0, 4, 1, 3, 2]
    assert plain.dtype == normalized.dtype == np.int64
    # iCaRL's released form of the plain-mean variant: w = mu, pick argmax <w, phi_i> over every
    # item, w += mu - phi_pick. Its first three steps are our first three picks; its fourth lands on
    # item 4 again (iCaRL records nothing then and walks on), which our rule, choosing among the
    # unselected items only, does not reproduce (README, Fidelity notes)
    phi = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    w, steps = phi.mean(0), []
    for _ in range(4):
        steps.append(int(np.argmax(phi @ w)))
        w = w + phi.mean(0) - phi[steps[-1]]
    assert steps == plain[:3].tolist() + [4]

def test_memory_batches_cycle_without_dropping():
    mb = methods.memory_batches(10, 5, 64, seed=0)
    assert all(len(b) == 10 for b in mb) and all(sorted(b) == list(range(10)) for b in mb)
    mb = methods.memory_batches(25, 4, 10, seed=1)  # one permutation of the epoch, read cyclically
    assert sorted(np.concatenate(mb[:2]).tolist() + mb[2][:5].tolist()) == list(range(25))
    assert mb[2][5:].tolist() == mb[0][:5].tolist() and mb[3].tolist() == mb[0][5:].tolist() + mb[1][:5].tolist()
    assert all(len(set(b.tolist())) == len(b) for b in mb)  # never the same exemplar twice in a batch

def test_head_subsets_are_deterministic_and_distinct():
    a = methods.head_subsets(5, [5, 4, 4, 4], 'random', seed=0)
    assert a == methods.head_subsets(5, [5, 4, 4, 4], 'random', seed=0)
    assert a[0] == [0, 1, 2, 3, 4] and len({tuple(s) for s in a}) == 4 and all(s == sorted(s) for s in a)
    assert a != methods.head_subsets(5, [5, 4, 4, 4], 'random', seed=1)
    assert methods.head_subsets(5, [5, 3, 2], 'cyclic') == [[0, 1, 2, 3, 4], [0, 1, 2], [1, 2]]
    assert methods.head_subsets(4, [4, 3, 2], '0-1-3/2-3') == [[0, 1, 2, 3], [0, 1, 3], [2, 3]]
    for bad in ([4, 3], [5, 1], [5, 5]):
        pytest.raises(ValueError, methods.head_subsets, 5, bad)
    pytest.raises(ValueError, methods.head_subsets, 4, [4, 3, 3, 3, 3, 3]).match('no distinct')
    for how, msg in (('0-0-1/0-1-2', 'distinct class ids'), ('0-1-7/0-1-2', 'distinct class ids'),
                     ('0-1-2/0-1-2', 'same classes'), ('0-1-x/0-1', 'write class ids')):
        pytest.raises(ValueError, methods.head_subsets, 5, [5, 3, 3], how).match(msg)

@pytest.mark.parametrize('batching', ['per-task', 'shared'])
def test_multitask_epoch_trains_every_head(batching):
    torch.manual_seed(0)
    model = models.SmallCNN(5)
    subsets = methods.head_subsets(5, [5, 4, 3], 'random', 0)
    for s in subsets[1:]:
        model.add_head(len(s))
    before = [copy.deepcopy(h.state_dict()) for h in [model.fc] + list(model.aux_heads)]
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = methods.multitask_epoch(model, subsets, torch.randn(40, 32, 32), torch.arange(40) % 5, 16, opt, CPU, 0,
                                     batching=batching)
    assert set(losses) == {'ce_head0', 'ce_head1', 'ce_head2'} and all(v > 0 for v in losses.values())
    after = [h.state_dict() for h in [model.fc] + list(model.aux_heads)]
    assert all(not torch.equal(b['weight'], a['weight']) for b, a in zip(before, after))

def test_early_stopping_restores_the_best_epoch(tmp_path):
    model = torch.nn.Linear(1, 1, bias=False)
    accs = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    def epoch_fn(epoch):
        with torch.no_grad():
            model.weight.fill_(epoch + 1.0)
        return {'ce_n': 1.0}
    best, epochs = methods.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), None, epoch_fn, lambda: next(accs),
                               max_epochs=5, patience=2, tag='step1A')
    assert best == 0.7 and epochs == 4  # stopped after two epochs without improvement
    assert model.weight.item() == 2.0  # the weights of epoch 2 are back

# ---------------- speed: precision, the device-side batch plan, channels_last, fused SGD, compile, the bench
def _cpu_autocast_works(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            z, _ = models.Cnn14(2, width=1 / 16)(torch.randn(2, 64, 64))
        z.float().sum().backward()
        return True
    except RuntimeError:
        return False

def test_device_batches_on_the_cpu_are_plain_indexing():
    x, y = torch.randn(10, 3, 2), torch.arange(10)
    batches = methods.index_batches(10, 4, seed=0)
    got = list(methods.device_batches([x, y], batches, CPU))
    assert len(got) == 3 and list(methods.device_batches([x], [], CPU)) == []
    for (xb, yb), idx in zip(got, batches):
        assert torch.equal(xb, x[torch.as_tensor(idx)]) and torch.equal(yb, y[torch.as_tensor(idx)])

@pytest.mark.skipif(not torch.cuda.is_available(), reason='the pinned prefetch runs with a CUDA device')
def test_device_batches_prefetch_host_rows_to_cuda_exactly():
    dev = torch.device('cuda')
    x, y_dev = torch.randn(50, 7, 3).half(), torch.arange(50, device=dev)
    batches = methods.index_batches(50, 8, seed=2)
    got = list(methods.device_batches([x, y_dev], batches, dev))
    assert len(got) == len(batches)
    for (xb, yb), idx in zip(got, batches):
        assert xb.device.type == 'cuda' and xb.dtype == torch.float16
        assert torch.equal(xb.cpu(), x[torch.as_tensor(idx)]) and yb.tolist() == idx.tolist()

@pytest.mark.skipif(not _cpu_autocast_works(torch.bfloat16), reason='no bf16 autocast on this CPU')
def test_bf16_autocast_runs_an_iodfd_phase_with_finite_losses_close_to_fp32():
    model, x, y = _phase0()
    a = _iodfd_phase(model, x, y)[1][0]['terms']
    state = _iodfd_phase(model, x, y, precision='bf16', cache_teacher=True)[1][0]
    b = state['terms']
    assert 'scaler' not in state  # bf16 needs no loss scaling
    assert set(a) == set(b) == {'bce', 'od', 'fd'} and all(math.isfinite(v) for v in b.values())
    for k in a:  # same seeds, same data: only the rounding of the forwards differs
        assert abs(a[k] - b[k]) <= 0.05 * abs(a[k]) + 1e-3, (k, a[k], b[k])

@pytest.mark.skipif(not _cpu_autocast_works(torch.float16), reason='no fp16 autocast on this CPU')
def test_fp16_grad_scaler_state_is_saved_and_restored_on_resume():
    model, x, y = _phase0()
    full, states = _iodfd_phase(model, x, y, epochs=2, precision='fp16')
    assert all('scaler' in s and s['scaler']['scale'] > 0 for s in states)
    resumed, rest = _iodfd_phase(model, x, y, epochs=2, precision='fp16', resume=states[0])
    assert [s['epoch'] for s in rest] == [2] and rest[0]['scaler'] == states[1]['scaler']
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))
    # the restored scale is the checkpoint's, not a fresh GradScaler's 65536
    odd = dict(states[0], scaler=dict(states[0]['scaler'], scale=1024.0))
    assert _iodfd_phase(model, x, y, epochs=2, precision='fp16', resume=odd)[1][0]['scaler']['scale'] == 1024.0

class _FakeScaler:
    """GradScaler's interface, recording what fit and sgd_step do with it."""
    def __init__(self):
        self.state, self.calls = {'scale': 8.0}, []
    def scale(self, loss):
        self.calls.append('scale')
        return loss * self.state['scale']
    def step(self, optimizer):
        self.calls.append('step')
        for p in (p for group in optimizer.param_groups for p in group['params']):
            p.grad /= self.state['scale']
        optimizer.step()
    def update(self):
        self.calls.append('update')
        self.state = dict(self.state, updates=self.state.get('updates', 0) + 1)
    def state_dict(self):
        return dict(self.state)
    def load_state_dict(self, state):
        self.state = dict(state)

def test_fit_carries_the_scaler_state_through_on_epoch_and_resume():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    def run(scaler, resume=None, epochs=2):
        opt, states = torch.optim.SGD(model.parameters(), lr=0.1), []
        def epoch_fn(epoch):
            sums = {}
            methods.sgd_step(opt, F.cross_entropy(model(x), y), {'ce': F.cross_entropy(model(x), y)}, sums, scaler)
            return {k: v.item() for k, v in sums.items()}
        methods.fit(model, opt, None, epoch_fn, lambda: 0.5, max_epochs=epochs, patience=None, tag='t', resume=resume,
                    on_epoch=states.append, scaler=scaler)
        return states
    scaler = _FakeScaler()
    states = run(scaler)
    assert scaler.calls == ['scale', 'step', 'update'] * 2
    assert [s['scaler'] for s in states] == [{'scale': 8.0, 'updates': 1}, {'scale': 8.0, 'updates': 2}]
    later = _FakeScaler()
    run(later, resume=dict(states[0], scaler={'scale': 4.0, 'updates': 7}), epochs=2)
    assert later.state == {'scale': 4.0, 'updates': 8}  # restored, then one more epoch
    assert 'scaler' not in run(None)[0]  # fp32 / bf16 states are as before

def test_channels_last_phase_trains_like_the_default_layout():
    model, x, y = _phase0()
    model.dropout = 0.0  # the layouts draw other dropout masks; without dropout the same arithmetic
    _, a = _iodfd_phase(model, x, y)
    trained, b = _iodfd_phase(model, x, y, channels_last=True)
    assert trained.conv_block3.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(abs(a[0]['terms'][k] - b[0]['terms'][k]) < 1e-4 for k in a[0]['terms'])

def test_teacher_cache_equals_the_online_teacher_in_the_precisions_dtype(monkeypatch):
    torch.manual_seed(0)
    teacher, x = models.Cnn14(4, width=1 / 16).eval(), torch.randn(10, 40, 64).half()
    assert methods.PRECISIONS['fp32'] == torch.float32 and methods.PRECISIONS['bf16'] == torch.bfloat16
    z, f = methods.teacher_outputs(teacher, x, 4, CPU)
    with torch.no_grad():
        ref_z, ref_f = teacher(x[3:7].float())
    assert z.dtype == f.dtype == torch.float32  # fp32: the online teacher's outputs
    assert torch.allclose(z[3:7], ref_z, atol=1e-6) and torch.allclose(f[3:7], ref_f, atol=1e-6)
    z16, f16 = methods.teacher_outputs(teacher, x, 4, CPU, precision='bf16')
    assert z16.dtype == f16.dtype == torch.bfloat16
    with torch.no_grad(), methods.autocast(CPU, 'bf16'):
        live_z, live_f = teacher(x[4:8].float())  # what a live teacher gives under bf16 autocast
    assert live_z.dtype == torch.bfloat16 and torch.allclose(z16[4:8].float(), live_z.float(), atol=2e-2)
    assert torch.allclose(f16[4:8].float(), live_f.float(), atol=2e-2)
    seen, real = [], methods.teacher_outputs
    def spy(*args, **kw):
        out = real(*args, **kw)
        seen.append(tuple(t.dtype for t in out))
        return out
    monkeypatch.setattr(methods, 'teacher_outputs', spy)
    model, xs, y = _phase0()
    for precision in ('fp32', 'bf16'):
        _iodfd_phase(model, xs, y, method='iod', cache_teacher=True, precision=precision)
    assert seen == [(torch.float32,) * 2, (torch.bfloat16,) * 2]

def test_sgd_is_plain_on_the_cpu_fused_on_request_and_a_resumed_optimizer_keeps_its_kernel():
    model = torch.nn.Linear(3, 2)
    assert not methods.sgd(model, 0.1).defaults.get('fused')
    if not methods._SGD_FUSED:
        pytest.skip('this torch has no fused SGD')
    fused, plain = methods.sgd(model, 0.1, fused=True), methods.sgd(model, 0.1)
    assert fused.defaults['fused'] is True
    methods.load_optimizer_state(plain, fused.state_dict())  # a CUDA checkpoint resumed on the CPU
    assert not plain.param_groups[0]['fused']
    methods.load_optimizer_state(fused, plain.state_dict())
    assert fused.param_groups[0]['fused'] is True

@pytest.mark.skipif(not torch.cuda.is_available(), reason='fused SGD runs on CUDA')
def test_fused_sgd_equals_plain_sgd_on_cuda():
    torch.manual_seed(0)
    dev = torch.device('cuda')
    model = models.Cnn14(4, width=1 / 16).to(dev)
    copies = [copy.deepcopy(model) for _ in range(2)]
    opts = [methods.sgd(copies[0], 0.01, fused=False), methods.sgd(copies[1], 0.01)]
    assert opts[1].defaults.get('fused') is True  # the default on CUDA
    x, y = torch.randn(4, 40, 64, device=dev), (torch.rand(4, 4, device=dev) < 0.5).float()
    for _ in range(3):
        for m, opt in zip(copies, opts):
            torch.manual_seed(1)
            methods.sgd_step(opt, methods.bce_loss(m(x)[0], y), {}, {})
    for a, b in zip(copies[0].parameters(), copies[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)

@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # raised inside torch by importing dynamo
def test_compile_wraps_the_module_and_keeps_its_parameters():
    model = models.Cnn14(4, width=1 / 16)
    assert methods.compiled(model) is model
    wrapped = methods.compiled(model, True)  # not run here: inductor's first build takes minutes on a small CPU
    assert wrapped._orig_mod is model and list(wrapped.parameters())[0] is list(model.parameters())[0]

def test_fast_cuda_sets_the_process_switches():
    flags = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        methods.fast_cuda()
        assert torch.backends.cudnn.benchmark and torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32
        methods.fast_cuda(tf32=False)  # --precision fp32: true float32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags

def test_bench_train_quick_prints_every_row():
    out = subprocess.run([sys.executable, str(HERE / 'bench' / 'bench_train.py'), '--quick', '--device', 'cpu'],
                         capture_output=True, text=True, timeout=300, cwd=HERE)
    assert out.returncode == 0, out.stderr
    names = ('authors-defaults', 'authors', 'fp32', 'bf16', 'bf16+CL', 'bf16+CL+cache', 'bf16+CL+cache+compile')
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.split()
            and line.split()[0] in names}
    assert set(rows) == set(names)
    for name in names[:-1]:  # clips/s, x authors-defaults, GFLOP/clip, TFLOP/s, '-', 'not measured on a GPU'
        assert float(rows[name][1]) > 0 and rows[name][5] == '-' and ' '.join(rows[name][6:]) == 'not measured on a GPU'
    assert float(rows['authors-defaults'][2]) == 1.0  # the baseline of the ratios: the authors' step, torch's switches
    assert float(rows['authors'][3]) == pytest.approx(2 * float(rows['fp32'][3]), rel=0.02)  # two of each forward
    assert float(rows['authors-defaults'][3]) == float(rows['authors'][3])
    assert float(rows['bf16+CL+cache'][3]) < float(rows['bf16+CL'][3])  # no teacher forward
    assert 'not measured' in ' '.join(rows['bf16+CL+cache+compile'])  # compile: CUDA, or --compile-cpu
    assert sum(line.startswith('round ') for line in out.stdout.splitlines()) == 3  # each round printed as measured
    assert 'runs the bf16+CL row' in out.stdout  # the projection of what make table1 runs by default
    assert '83,419,440 clip-epochs' in out.stdout  # 120 x (63,700 + 7 x 4 x 10,600 + AT 334,662)


# ===== evaluate.py: metrics against scikit-learn (testdata/metrics_golden.npz) and by hand; the reports
TOL = 1e-12

def _golden_cases():
    d = np.load(HERE / 'testdata' / 'metrics_golden.npz')
    return [pytest.param({name[len(f'c{i}_'):]: d[name] for name in d.files if name.startswith(f'c{i}_')},
                         id=str(d['case_names'][i])) for i in range(int(d['n_cases']))]

@pytest.mark.parametrize('case', _golden_cases())
def test_multilabel_metrics_match_sklearn_golden(case):
    y = case['y_true']
    s = case['y_score'].astype(np.float64)
    thr = float(case['threshold'])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert abs(ev.f1_macro(y, s, thr) - case['f1_macro']) <= TOL
        np.testing.assert_allclose(ev.f1_per_class(y, s, thr), case['f1_per_class'], rtol=0, atol=TOL)
        ap = ev.average_precision_per_class(y, s)
        np.testing.assert_allclose(ap, case['ap_per_class'], rtol=0, atol=TOL)
        ap_cols = [ev.average_precision(y[:, c], s[:, c]) for c in range(y.shape[1])]
        np.testing.assert_allclose(ap_cols, case['ap_per_class'], rtol=0, atol=TOL)
        assert abs(ev.mean_average_precision(y, s) - case['ap_macro']) <= TOL
        assert abs(ev.map_binary(y, s, thr) - case['map_binary']) <= TOL
        # bool targets and 0/1 prediction "scores" are accepted too
        pred = ev.binarize(s, thr)
        assert abs(ev.f1_macro(y.astype(bool), pred) - case['f1_macro']) <= TOL
        assert abs(ev.mean_average_precision(y, pred) - case['map_binary']) <= TOL

def test_average_precision_hand_values():
    assert ev.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)  # (1/1 + 2/3) / 2
    # a tie block is one threshold: both positives get precision 2/3 at the block end
    assert ev.average_precision([1, 0, 1], [0.5, 0.5, 0.5]) == pytest.approx(2 / 3)
    assert ev.average_precision([0, 1, 1, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(2 / 3)
    assert ev.average_precision([1, 1], [0.2, 0.3]) == 1.0
    assert ev.average_precision([1, 0, 0, 1], [0.5, 0.5, 0.4, 0.4]) == \
        ev.average_precision([0, 1, 1, 0], [0.5, 0.5, 0.4, 0.4])  # the order of tied samples does not matter

def test_average_precision_no_positive_and_empty():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert ev.average_precision([0, 0, 0], [0.9, 0.1, 0.5]) == 0.0 and ev.average_precision([], []) == 0.0
        np.testing.assert_array_equal(ev.average_precision_per_class(np.zeros((0, 3)), np.zeros((0, 3))), np.zeros(3))
        assert math.isnan(ev.mean_average_precision(np.zeros((5, 0)), np.zeros((5, 0))))
        assert math.isnan(ev.f1_macro(np.zeros((5, 0)), np.zeros((5, 0))))
        np.testing.assert_array_equal(ev.f1_per_class(np.zeros((0, 2)), np.zeros((0, 2))), [0.0, 0.0])

def test_threshold_is_strict_like_authors_code():
    y, s = np.array([[1], [1], [0]]), np.array([[0.5], [0.6], [0.4]])  # 0.5 is NOT a positive (torch.gt)
    assert ev.f1_per_class(y, s)[0] == pytest.approx(2 * 1 / (2 + 1))
    assert ev.binarize(s).ravel().tolist() == [False, True, False] and ev.f1_per_class(y, s, threshold=0.45)[0] == 1.0

def test_f1_zero_division_and_simple_counts():
    y = np.array([[0, 1, 1, 0], [0, 0, 1, 1], [0, 1, 0, 0]])
    s = np.array([[0.1, 0.9, 0.2, 0.7], [0.2, 0.1, 0.9, 0.8], [0.3, 0.8, 0.1, 0.9]])
    # class0: no pos, no pred -> 0; class1: tp2 -> 1; class2: tp1 fn1 -> 2/3; class3: tp1 fp2 -> 2/4
    np.testing.assert_allclose(ev.f1_per_class(y, s), [0.0, 1.0, 2 / 3, 0.5])
    assert ev.f1_macro(y, s) == pytest.approx((1 + 2 / 3 + 0.5) / 4)

def test_map_binary_never_predicted_class_gets_prevalence():
    y = np.array([[1], [0], [0], [1], [0]])
    assert ev.map_binary(y, np.array([[0.4], [0.3], [0.2], [0.1], [0.0]])) == pytest.approx(2 / 5)
    # R1 * P1 + (1 - R1) * prevalence: one of two positives predicted, one false positive
    assert ev.map_binary(y, np.array([[0.9], [0.8], [0.2], [0.1], [0.0]])) == pytest.approx(0.5 * 0.5 + 0.5 * 0.4)

def test_input_validation():
    pytest.raises(ValueError, ev.f1_macro, np.ones((2, 2)), np.full((2, 2), np.nan))
    pytest.raises(ValueError, ev.average_precision, [1, 0], [np.nan, 0.1])
    pytest.raises(ValueError, ev.mean_average_precision, np.array([[2, 0]]), np.array([[0.1, 0.2]]))
    pytest.raises(ValueError, ev.f1_macro, np.ones((2, 3)), np.ones((2, 2)))

def test_weight_norms():
    W = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(ev.weight_norms(W), [5.0, 0.0, math.sqrt(2)])
    assert ev.weight_norms(np.zeros((0, 4))).shape == (0,)

def test_multilabel_phase_record_groups():
    # 4 seen classes: base = first 2, the phase added the last 1
    y = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]])
    s = np.array([[0.9, 0.1, 0.2, 0.8], [0.1, 0.1, 0.9, 0.1], [0.9, 0.9, 0.1, 0.1]])
    per = ev.f1_per_class(y, s)  # [1, 2/3, 1, 1]
    r = ev.multilabel_phase_record(y, s, n_base=2, n_new=1)
    assert r['n_classes'] == 4 and r['f1'] == pytest.approx(per.mean())
    assert r['f1_base'] == pytest.approx(per[:2].mean()) and r['f1_old'] == pytest.approx(per[:3].mean())
    assert r['f1_new'] == pytest.approx(per[3]) and r['map'] == pytest.approx(ev.mean_average_precision(y, s))
    assert r['map_binary'] == pytest.approx(ev.map_binary(y, s))
    r0 = ev.multilabel_phase_record(y, s, n_base=4)  # phase 0: all classes new
    assert math.isnan(r0['f1_old']) and r0['f1_new'] == pytest.approx(r0['f1'])
    assert r0['f1_base'] == pytest.approx(r0['f1'])

def test_forgetting_and_table1_averages():
    assert ev.forgetting_f1([0.452, 0.40, 0.35]) == pytest.approx([0.0, 0.052, 0.102]) and ev.forgetting_f1([]) == []
    # FT forgetting everything: its average Fr equals its phase-0 F1
    recs = [{'f1': 0.452, 'f1_base': 0.452, 'map': 0.297, 'map_binary': 0.2}]
    recs += [{'f1': f, 'f1_base': 0.0, 'map': m, 'map_binary': 0.1}
             for f, m in [(0.06, 0.1), (0.04, 0.09), (0.03, 0.08), (0.021, 0.07)]]
    t = ev.table1_averages(recs)
    assert t['fr'] == pytest.approx(0.452) and t['f1'] == pytest.approx((0.452 + 0.06 + 0.04 + 0.03 + 0.021) / 5)
    assert t['map'] == pytest.approx((0.297 + 0.1 + 0.09 + 0.08 + 0.07) / 5)
    assert t['map_binary'] == pytest.approx((0.2 + 4 * 0.1) / 5)
    assert t['fr_per_phase'] == pytest.approx([0.0, 0.452, 0.452, 0.452, 0.452])
    one = ev.table1_averages(recs[:1])
    assert math.isnan(one['fr']) and one['f1'] == pytest.approx(0.452)
    assert 'map_binary' not in ev.table1_averages([{'f1': 1, 'f1_base': 1, 'map': 1}])

def test_accuracy_logits_and_predictions():
    y = np.array([0, 1, 2, 2])
    assert ev.accuracy(y, np.array([[2.0, 1, 0], [0, 3, 1], [0, 5, 1], [0, 0, 9]])) == 0.75
    assert ev.accuracy(y, [0, 1, 1, 2]) == 0.75
    assert math.isnan(ev.accuracy([], [])) and math.isnan(ev.accuracy(np.zeros(0, int), np.zeros((0, 3))))
    pytest.raises(ValueError, ev.accuracy, [0, 1], [0])

def test_group_and_old_new_accuracy():
    groups, y, pred = [[0, 1], [2], [3]], np.array([0, 1, 1, 2, 2, 3]), np.array([0, 1, 0, 2, 3, 3])
    assert ev.group_accuracies(y, pred, groups) == pytest.approx([2 / 3, 1 / 2, 1.0])
    old, new = ev.old_new_accuracy(y, pred, groups, 2)
    assert old == pytest.approx(3 / 5) and new == 1.0
    old0, new0 = ev.old_new_accuracy(y, pred, groups, 0)
    assert math.isnan(old0) and new0 == pytest.approx(2 / 3) and math.isnan(ev.group_accuracies(y, pred, [[7]])[0])

def test_paper_table2_avg():
    acc = [60.23, 43.79, 35.73, 29.46, 26.22]  # paper Avg excludes the base step
    assert ev.avg_incremental([90.0] + acc) == pytest.approx(39.086)
    assert ev.avg_including_base(acc) == pytest.approx(sum(acc) / 5) and math.isnan(ev.avg_incremental([50.0]))

def test_forgetting_and_bwt_hand_matrix():
    ragged = [[0.9], [0.7, 0.8], [0.75, 0.6, 0.85], [0.5, 0.65, 0.7, 0.9]]
    # forgetting: j0 max(.9,.7,.75)-.5=.4; j1 max(.8,.6)-.65=.15; j2 .85-.7=.15 -> .7/3
    assert ev.forgetting(ragged) == pytest.approx(0.7 / 3)
    assert ev.forgetting_per_group(ragged) == pytest.approx([0.4, 0.15, 0.15])
    assert ev.bwt(ragged) == pytest.approx(-0.7 / 3)  # (.5-.9) + (.65-.8) + (.7-.85) = -.7 -> -.7/3
    square = np.full((4, 4), np.nan)
    for t, row in enumerate(ragged):
        square[t, :t + 1] = row
    assert ev.forgetting(square) == pytest.approx(0.7 / 3) and ev.bwt(square) == pytest.approx(-0.7 / 3)
    s = ev.kws_summary([0.9, 0.8, 0.7, 0.6], ragged)
    assert s['avg_excl_base'] == pytest.approx(0.7) and s['avg_incl_base'] == pytest.approx(0.75)
    assert s['forgetting'] == pytest.approx(0.7 / 3) and s['bwt'] == pytest.approx(-0.7 / 3)
    # forgetting uses the max over earlier steps, not the diagonal: it can exceed -bwt
    m = [[0.5], [0.9, 0.8], [0.6, 0.7, 0.9]]
    assert ev.forgetting(m) == pytest.approx(((0.9 - 0.6) + (0.8 - 0.7)) / 2)
    assert ev.bwt(m) == pytest.approx(((0.6 - 0.5) + (0.7 - 0.8)) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert math.isnan(ev.forgetting([[0.9]])) and math.isnan(ev.bwt([[0.9]]))

def test_pct_one_value_seeds_and_missing():
    assert ev.pct(0.1234) == '12.3' and ev.pct([0.1234], 2) == '12.34'
    assert ev.pct([0.1, 0.3]) == '20.0 +- 10.0'  # population std (numpy's default)
    assert ev.pct([None, 0.5, float('nan'), 0.7], 2) == '60.00 +- 10.00'  # missing seeds left out
    assert ev.pct([None]) == ev.pct([None, float('nan')]) == '-'

def _ml_run(f1, fr, mAP, map_b, last):
    """A multi-label run's metrics: summary and per-phase records (only the keys the reports read)."""
    return {'summary': {'f1': f1, 'fr': fr, 'map': mAP, 'map_binary': map_b, 'fr_per_phase': [0.0, fr, fr]},
            'phases': [{'f1': f1, 'map': mAP, 'f1_old': float('nan'), 'f1_new': f1, 'weight_norms': [1.0] * 4},
                       {'f1': f1, 'map': mAP, 'f1_old': f1, 'f1_new': f1, 'weight_norms': [1.0] * 6},
                       dict(last, map=mAP, weight_norms=[1.0, 1.2, 0.9, 1.1, 1.5, 1.6, 1.4, 1.7])]}

ML_RESULTS = {
    'iod': [_ml_run(0.5, 0.1, 0.6, 0.4, {'f1': 0.5, 'f1_old': 0.4, 'f1_new': 0.8}),
            _ml_run(0.7, 0.3, 0.8, 0.6, {'f1': 0.7, 'f1_old': 0.6, 'f1_new': 0.9})],
    'ft': [_ml_run(0.25, 0.5, 0.35, 0.3, {'f1': 0.25, 'f1_old': 0.1, 'f1_new': 0.75})],
    'at': [_ml_run(0.9, float('nan'), 0.95, 0.85, {'f1': 0.9, 'f1_old': 0.9, 'f1_new': 0.9})],
}

def test_table1_ticks_seeds_and_no_forgetting_for_joint_training():
    flags = {'iod': {'indl': True, 'od': True, 'fd': False, 'joint': False}, 'ft': {},
             'at': {'indl': True, 'joint': True}}  # a joint method gets no ticks whatever its flags
    assert ev.table1(ML_RESULTS, flags) == '\n'.join([
        '| Method | IndL | L_OD | L_FD | F1 | Fr | mAP | mAP (binary, authors) |',
        '|---|---|---|---|---|---|---|---|',
        '| IOD | yes | yes | - | 60.0 +- 10.0 | 20.0 +- 10.0 | 70.0 +- 10.0 | 50.0 +- 10.0 |',
        '| FT | - | - | - | 25.0 | 50.0 | 35.0 | 30.0 |',
        '| AT | - | - | - | 90.0 | - | 95.0 | 85.0 |'])
    # the flags cil.py passes: methods.METHODS as dicts (extra keys such as 'freeze' are ignored)
    asdict = {n: {k: getattr(methods.METHODS[n], k) for k in ('indl', 'od', 'fd', 'freeze', 'joint')}
              for n in ML_RESULTS}
    assert ev.table1(ML_RESULTS, asdict) == ev.table1(ML_RESULTS, flags)

def test_table2_header_ranges_and_last_phase():
    assert ev.table2(ML_RESULTS, [4, 2, 2]) == '\n'.join([
        '| Method | old (0-5) | new (6-7) | overall (0-7) |',
        '|---|---|---|---|',
        '| IOD | 50.0 +- 10.0 | 85.0 +- 5.0 | 60.0 +- 10.0 |',
        '| FT | 10.0 | 75.0 | 25.0 |',
        '| AT | 90.0 | 90.0 | 90.0 |'])
    assert ev.table2(ML_RESULTS, [30, 5]).splitlines()[0] == '| Method | old (0-29) | new (30-34) | overall (0-34) |'

def test_kws_table1_text():
    text = ev.kws_table1([('[3]', 1.23456, 0.01), ('[3, 2]', 2.5, 0.1236)], epochs_timed=2, batching='mixed',
                         device_text='cpu, 4 threads')
    assert text == ('| Heads | Training time per epoch (s) |\n|---|---|\n| [3] | 1.235 +- 0.010 |\n'
                    '| [3, 2] | 2.500 +- 0.124 |\n\n'
                    '2 timed epochs per row (first epoch dropped), --mt-batching mixed, device cpu, 4 threads.')

def _kws_run(acc, acc_matrix, old_acc):
    return {'acc': acc, 'acc_matrix': acc_matrix, 'summary': ev.kws_summary(acc, acc_matrix),
            'steps': [{'old_acc': None, 'new_acc': acc[0]}, {'old_acc': 0.5, 'new_acc': 0.7},
                      {'old_acc': old_acc, 'new_acc': 0.6}]}

def test_kws_table2_rows_note_and_scalars():
    runs_a = [_kws_run([0.9, 0.7, 0.5], [[0.9], [0.6, 0.8], [0.4, 0.5, 0.6]], 0.45),
              _kws_run([0.8, 0.6, 0.4], [[0.8], [0.7, 0.5], [0.3, 0.4, 0.5]], None)]
    runs_b = [_kws_run([0.9, 0.8, 0.7], [[0.9], [0.8, 0.8], [0.7, 0.7, 0.7]], 0.7)]
    results = {('3,2', 14, 'ce_n,kd_o'): runs_a, ('3', 20, 'ce_n'): runs_b}
    text, scalars = ev.kws_table2(results, [3, 2, 2], [0, 1])
    assert text == '\n'.join([
        '| Losses | 3 | 5 | 7 | Avg |',
        '|---|---|---|---|---|',
        '| CE N + KD O | 85.00 +- 5.00 | 65.00 +- 5.00 | 45.00 +- 5.00 | 55.00 +- 5.00 |',
        '| CE N | 90.00 | 80.00 | 70.00 | 75.00 |',
        '',
        'heads 3, 3,2, memory [14, 20], seeds [0, 1]; Avg = mean over the incremental steps.',
        '',
        '| Losses | Avg incl. base | Forgetting | BWT | old acc (last step) | new acc (last step) |',
        '|---|---|---|---|---|---|',
        '| CE N + KD O | 65.00 +- 5.00 | 35.00 +- 5.00 | -35.00 +- 5.00 | 45.00 +- 0.00 | 60.00 +- 0.00 |',
        '| CE N | 80.00 | 15.00 | -15.00 | 70.00 | 60.00 |'])
    assert list(scalars) == ['3,2 K14 ce_n,kd_o', '3 K20 ce_n']
    row = scalars['3,2 K14 ce_n,kd_o']
    assert set(row) == {'avg_excl_base', 'avg_incl_base', 'forgetting', 'bwt', 'old_acc', 'new_acc',
                        'acc_step0', 'acc_step1', 'acc_step2', 'forgetting_group0', 'forgetting_group1'}
    per_seed = {'avg_excl_base': [0.6, 0.5], 'forgetting': [0.4, 0.3], 'bwt': [-0.4, -0.3], 'acc_step1': [0.7, 0.6],
                'forgetting_group0': [0.5, 0.5], 'forgetting_group1': [0.3, 0.1]}
    for key, values in per_seed.items():
        assert row[key]['values'] == pytest.approx(values), key
        assert row[key]['mean'] == np.mean(row[key]['values']) and row[key]['std'] == np.std(row[key]['values']), key
    # a missing seed is None, left out of the mean and std (the table prints such a row as "45.00 +- 0.00")
    assert row['old_acc'] == {'values': [0.45, None], 'mean': 0.45, 'std': 0.0}
    json.dumps(scalars, allow_nan=False)  # strict JSON
    with_path, _ = ev.kws_table2(results, [3, 2, 2], [0, 1], json_path=Path('res') / 'kws-table2.json')
    assert with_path == text + f"\n\nEvery scalar per row, mean and std: {Path('res') / 'kws-table2.json'}."
    assert ev.loss_name('ce_n,ce_o,kd_n,kd_o') == 'CE N + CE O + KD N + KD O'

def test_report_figures_write_pngs(tmp_path):
    pytest.importorskip('matplotlib')
    paths = ev.figures(ML_RESULTS, [4, 2, 2], tmp_path, joint={'at'})
    assert [p.name for p in paths] == ['figure3.png']  # Figure 4 needs IFD or IODFD
    paths = ev.figures(dict(ML_RESULTS, ifd=ML_RESULTS['ft']), [4, 2, 2], str(tmp_path), joint={'at'})
    assert [p.name for p in paths] == ['figure3.png', 'figure4.png']
    runs = lambda *avgs: [{'summary': {'avg_excl_base': a}} for a in avgs]
    kws = {('3', 4, 'ce_n'): runs(0.5, 0.6), ('3', 14, 'ce_n'): runs(0.7, 0.72), ('3,2', 14, 'ce_n'): runs(0.75, 0.8)}
    (tmp_path / 'kws').mkdir()
    kpaths = ev.kws_figures(kws, tmp_path / 'kws')
    assert [p.name for p in kpaths] == ['figure5.png', 'figure4.png']
    for p in paths + kpaths:
        assert p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and p.parent in (tmp_path, tmp_path / 'kws')


# ===== data.py: the layouts researchers download, splits, phases, the feature cache, locks, the command line
# ---------------- Speech Commands, UrbanSound8K, AudioSet (generated in their layouts)
def test_speechcommands_layout_and_loader(gsc_root, gsc):
    root = Path(gsc_root)
    for name in ('validation_list.txt', 'testing_list.txt', '_background_noise_/README.md'):
        assert (root / name).is_file()
    assert len(list((root / '_background_noise_').glob('*.wav'))) == 2
    files = sorted(root.glob('*/*.wav'))
    words = [p for p in files if p.parent.name != '_background_noise_']
    assert all(re.fullmatch(r'[0-9a-f]{8}_nohash_\d+\.wav', p.name) for p in words)
    # lists follow the official SHA-1 rule, over every word folder (core and other words)
    for list_name, which in (('validation_list.txt', 'validation'), ('testing_list.txt', 'testing')):
        listed = set((root / list_name).read_text().split())
        assert listed == {f'{p.parent.name}/{p.name}' for p in words if data.gsc_list_of(p.name) == which} and listed
    # loader: 20 core words, keys word/basename, background and other words ignored
    core = [p for p in files if p.parent.name in data.SPEECHCOMMANDS_WORDS]
    assert len(gsc) == len(core) and len(set(gsc.keys)) == len(gsc) and set(np.unique(gsc.labels)) == set(range(20))
    assert sorted(gsc.keys) == sorted(f'{p.parent.name}/{p.name}' for p in core)
    for key, lab, sub, grp in zip(gsc.keys, gsc.labels, gsc.subset, gsc.groups):
        word, base = key.split('/')
        assert data.SPEECHCOMMANDS_WORDS[lab] == word and grp == base.split('_nohash_')[0]
        assert sub == {'validation': 'val', 'testing': 'test', 'training': 'train'}[data.gsc_list_of(base)]
    assert gsc.counts['ignored_files'] == sum(1 for p in root.glob('*/*') if p.parent.name not in
                                              data.SPEECHCOMMANDS_WORDS)
    assert gsc.sample_rates == {16000: len(gsc)} and not [i for i in gsc.issues if i.fatal]
    lengths = {sf.info(str(p)).frames for p in core}
    assert max(lengths) == 16000 and min(lengths) < 16000  # some clips shorter than 1 s, as in GSC

def test_urbansound8k_layout_and_loader(us8k_root, us8k):
    root = Path(us8k_root)
    with open(root / 'metadata' / 'UrbanSound8K.csv', newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == data.URBANSOUND8K_HEADER and len(rows) - 1 == 80 == len(us8k)
    infos = [sf.info(str(root / 'audio' / f'fold{r[5]}' / r[0])) for r in rows[1:]]
    assert len({i.samplerate for i in infos}) >= 3 and {i.channels for i in infos} == {1, 2}
    assert len({i.subtype for i in infos}) >= 2
    folds = collections.defaultdict(set)
    for r in rows[1:]:
        fs_id, class_id = r[0].split('-')[:2]
        assert fs_id == r[1] and class_id == r[6] and data.URBANSOUND8K_CLASSES[int(r[6])] == r[7]
        assert 0 < float(r[3]) - float(r[2]) <= 4.0 and r[4] in ('1', '2')
        folds[r[1]].add((r[5], r[6]))
    assert all(len(v) == 1 for v in folds.values())  # one fsID = one fold and one class
    assert np.bincount(us8k.labels, minlength=10).tolist() == [8] * 10
    assert us8k.sample_rates == dict(sorted(collections.Counter(i.samplerate for i in infos).items()))
    assert set(us8k.subset[us8k.folds <= 7]) == {'train'} and set(us8k.subset[us8k.folds == 8]) <= {'val'}
    # loader decodes every rate / depth / channel count to mono float32
    y, sr = data.decode_audio(us8k.paths[int(np.argmax([i.channels for i in infos]))])
    assert y.ndim == 1 and y.dtype == np.float32 and np.abs(y).max() <= 1.0

def test_audioset_layout_and_loader(as_root, audioset):
    root = Path(as_root)
    mid_lines = (root / 'mid_to_display_name.tsv').read_text().splitlines()
    assert not mid_lines[0].startswith('mid') and mid_lines == sorted(mid_lines)
    mids = dict(line.split('\t') for line in mid_lines)
    assert len(mids) == 56 and all(mids[m] == n for n, m in data.AUDIOSET_CLASSES)
    selected = {m: i for i, (_, m) in enumerate(data.AUDIOSET_CLASSES)}
    n_dropped = n_missing = 0
    for part in ('train', 'eval'):
        clips = read_strong_tsv(root / data.AUDIOSET_TSV[part])
        files = {p.stem[1:] if len(p.stem.rsplit('_', 1)[0]) == 12 else p.stem: p  # Y + 11-char YouTube id
                 for p in (root / part).iterdir()}
        assert any(sid.startswith('-') and '_' in sid.rsplit('_', 1)[0] for sid in clips) or part == 'eval'
        assert {p.suffix for p in files.values()} == {'.wav', '.flac'}
        for sid, clip_mids in clips.items():
            ytid, ms = sid.rsplit('_', 1)
            assert ms.isdigit() and len(ytid) == 11
            target = sorted(selected[m] for m in clip_mids if m in selected)
            key = f'{part}/{sid}'
            n_dropped, n_missing = n_dropped + (not target), n_missing + bool(target and sid not in files)
            if not target or sid not in files:
                assert key not in audioset.keys
            else:
                i = audioset.keys.index(key)
                assert np.flatnonzero(audioset.labels[i]).tolist() == target
                assert audioset.subset[i] == part and audioset.paths[i] == files[sid]
    assert audioset.counts['dropped_no_class'] == n_dropped and audioset.counts['missing_audio'] == n_missing > 0
    assert audioset.counts['ignored_label_mids'] > 0  # the 6 extra MIDs: ignored, not an error
    assert not [i for i in audioset.issues if i.fatal]
    assert audioset.labels.sum(axis=0).min() >= 1 and audioset.labels.sum(axis=1).max() <= 5
    freq = np.sort(audioset.labels.sum(axis=0))
    assert freq[-1] >= 4 * freq[:10].mean()  # long-tailed class frequencies

def test_audioset_accepts_other_names_and_lengths(tmp_path):
    root = tmp_path / 'as'
    for part in ('train', 'eval'):
        (root / part).mkdir(parents=True)
    rows = ['segment_id\tstart_time_seconds\tend_time_seconds\tlabel',
            '-ab_cd-efgh_30000\t0.000\t1.000\t/m/09x0r',  # '-' start and '_' inside the YouTube id
            'plainname01_0\t0.5\t0.8\t/m/05tny_',  # no Y prefix, .flac
            'desedstyle1_30000\t0.0\t1.0\t/m/04rlf']  # Y<ytid>_<start s>_<end s>.wav
    (root / 'audioset_train_strong.tsv').write_text('\n'.join(rows) + '\n')
    (root / 'audioset_eval_strong.tsv').write_text(rows[0] + '\n' + rows[1] + '\n')
    y = np.zeros(8000, np.float32) + 0.01
    sf.write(root / 'train' / 'Y-ab_cd-efgh_30000.wav', y, 16000)
    sf.write(root / 'train' / 'plainname01_0.flac', y[:3000], 48000, format='FLAC')
    sf.write(root / 'train' / 'Ydesedstyle1_30.000_40.000.wav', y, 44100)
    sf.write(root / 'eval' / '-ab_cd-efgh_30000.wav', y, 16000)
    ds = data.load_audioset(root)
    assert sorted(ds.keys) == ['eval/-ab_cd-efgh_30000', 'train/-ab_cd-efgh_30000', 'train/desedstyle1_30000',
                               'train/plainname01_0']
    assert ds.groups[ds.keys.index('train/-ab_cd-efgh_30000')] == '-ab_cd-efgh'
    assert ds.sample_rates == {16000: 2, 44100: 1, 48000: 1} and not (root / 'mid_to_display_name.tsv').exists()
    assert any(i.path.endswith('mid_to_display_name.tsv') and not i.fatal for i in ds.issues)  # a note only
    cache = data.build_cache(ds, tmp_path / 'cache', workers=1, progress=False)
    assert cache.shape == (1001, 64) and cache.config['name'] == 'panns'  # real data: PANNs front end
    assert np.isfinite(cache.get(np.arange(len(ds)))).all()

# ---------------- FSD50K: the release layout, 1 s excerpts counted as the authors count them
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
    dev, ev_rows = (list(csv.reader(open(gt / name, newline=''))) for name in ('dev.csv', 'eval.csv'))
    assert dev[0] == ['fname', 'labels', 'mids', 'split'] and ev_rows[0] == ['fname', 'labels', 'mids']
    vocab = {row[1]: row[2] for row in csv.reader(open(gt / 'vocabulary.csv', newline=''))}
    assert set(data.FSD50K_CLASSES) <= set(vocab)
    # every excerpt of every clip with one of the 50 classes, with the clip's targets (ancestors included)
    expect, n_dropped = {}, 0
    for part, rows in (('dev', dev[1:]), ('eval', ev_rows[1:])):
        for row in rows:
            labels = row[1].split(',')
            assert [vocab[x] for x in labels] == row[2].split(',')
            targets = sorted(data.FSD50K_CLASSES.index(x) for x in labels if x in data.FSD50K_CLASSES)
            n_dropped += not targets
            if targets:
                info = sf.info(str(fsd_root / data.FSD50K_AUDIO[part] / f'{row[0]}.wav'))
                expect[f'{part}/{row[0]}'] = (data.excerpt_count(info.frames / info.samplerate), targets,
                                              row[3] if part == 'dev' else 'test')
    assert n_dropped == fsd.counts['dropped_no_class'] > 0  # clips with none of the 50 classes are dropped
    assert len(fsd) == sum(n for n, _, _ in expect.values()) == fsd.counts['excerpts']
    assert len(fsd.keys) == len(set(fsd.keys))
    for i, (key, group) in enumerate(zip(fsd.keys, fsd.groups)):
        n, targets, split = expect[group]
        k = int(key.split('#')[1])
        assert key == f'{group}#{k}' and 0 <= k < n and tuple(fsd.segments[i]) == (k * 1.0, 1.0)
        assert np.flatnonzero(fsd.labels[i]).tolist() == targets and fsd.subset[i] == split
    assert {s for _, _, s in expect.values()} == {'train', 'val', 'test'}
    # Thunder is a child of Thunderstorm: every Thunder excerpt is a Thunderstorm excerpt (label propagation)
    thunder, storm = data.FSD50K_CLASSES.index('Thunder'), data.FSD50K_CLASSES.index('Thunderstorm')
    assert fsd.labels[:, thunder].any() and (fsd.labels[:, storm] >= fsd.labels[:, thunder]).all()
    split = data.make_split(fsd)  # the official split: dev train / dev val / eval, never a clip in two parts
    assert split.method == 'official' and len(split.val) > 0
    for part, name in ((split.train, 'train'), (split.val, 'val'), (split.test, 'test')):
        assert set(fsd.subset[part]) == {name}
    pytest.raises(data.DataError, data.make_split, fsd, 'random').match('only its official split')

def test_fsd50k_phases_and_the_excerpt_features(fsd, tmp_path):
    split = data.make_split(fsd)
    phases = data.make_phases(fsd, split)
    assert [p.n_new for p in phases] == [30, 5, 5, 5, 5]
    for ph in phases:
        lo, hi = ph.n_old, ph.n_seen
        np.testing.assert_array_equal(ph.train, split.train[fsd.labels[split.train][:, lo:hi].any(axis=1)])
        np.testing.assert_array_equal(ph.train_y[:, lo:], fsd.labels[ph.train][:, lo:hi])
        assert not ph.train_y[:, :lo].any()  # old columns 0: the paper ignores the other labels
        np.testing.assert_array_equal(ph.test, split.test[fsd.labels[split.test][:, :hi].any(axis=1)])
    # one cache row per excerpt: the features of the excerpt's second of its clip (the last one zero-padded)
    config = data.frontend_config(fsd)
    assert config['name'] == 'panns' and config['seconds'] == 1.0 and config['sr'] == 32000
    clip_group = next(g for g in fsd.groups if (fsd.groups == g).sum() >= 2)
    rows = np.flatnonzero(fsd.groups == clip_group)
    cache = data.build_cache(fsd.select(rows), tmp_path / 'cache', workers=1, progress=False)
    assert cache.shape == (101, 64) and cache.stats['computed'] == len(rows)
    y, sr = data.decode_audio(fsd.paths[rows[0]])
    for j in range(len(rows)):
        expect = data.compute_features(y[j * sr:(j + 1) * sr], sr, config).astype(np.float16)
        np.testing.assert_array_equal(cache.read([j]), expect[None])
    assert len(y) < len(rows) * sr  # the last excerpt was short: padded, the clip's own count kept

def test_fsd50k_bad_input(fsd_root, tmp_path):
    root = copy_root(fsd_root, tmp_path)
    gt = root / 'FSD50K.ground_truth'
    lines = (gt / 'dev.csv').read_text().splitlines()
    first, n = lines[1].split(',')[0], len(lines)
    wav = sorted((root / 'FSD50K.dev_audio').glob('*.wav'))
    wav[0].write_bytes(b'')  # zero-byte
    wav[1].unlink()  # missing
    append(gt / 'dev.csv', '123,"Dog,Animal","/m/0bt9lr"\n',  # 3 fields in a file of 4
           '124,"Dog,Animal","/m/0bt9lr",train\n',  # 2 labels, 1 mid
           '125,Dog,/m/0bt9lr,test\n',  # split neither train nor val
           f'{first},Dog,/m/0bt9lr,train\n',  # a fname twice
           '126,"Dog,Not_a_class","/m/0bt9lr,/m/zzz",train\n')  # a label outside vocabulary.csv: a note
    shutil.copy(wav[2], root / 'FSD50K.dev_audio' / '126.wav')
    ds = bad_input(data.load_fsd50k, root, 6, (f'dev.csv:{n + 1}:', 'expected 4'), (str(wav[0]), 'empty'),
                   (f'dev.csv:{n + 2}:', '2 labels but 1 mids'), (f'dev.csv:{n + 3}:', "split 'test'"),
                   (f'dev.csv:{n + 4}:', f'fname {first} is already on line 2'), (str(wav[1]), 'not found'),
                   skipped=6)[2]
    assert any(not i.fatal and 'Not_a_class' in i.problem for i in ds.issues)
    assert not any(g.endswith(f'/{wav[0].stem}') for g in ds.groups)
    (gt / 'eval.csv').unlink()
    pytest.raises(data.DataError, data.load_fsd50k, root).match('eval.csv: not found')

# ---------------- ESC-50, your own CSV or folder, the authors' phase files
def test_esc50_layout_and_folds(esc_root):
    rows = list(csv.reader(open(esc_root / 'meta' / 'esc50.csv', newline='')))
    assert rows[0] == data.ESC50_HEADER and rows[1:] == sorted(rows[1:])
    ds = data.load_dataset('esc50', esc_root.parent)  # the folder above ESC-50-master/ works too
    assert ds.root == esc_root and len(ds) == 40 and np.bincount(ds.labels).tolist() == [10] * 4
    by_source = collections.defaultdict(set)
    for key, lab, fold, group in zip(ds.keys, ds.labels, ds.folds, ds.groups):
        f, src, take, target = re.fullmatch(r'(\d)-(\d+)-([A-H])-(\d+)\.wav', key).groups()
        assert int(f) == fold and int(target) == lab and src == group
        by_source[group].add(int(fold))
    assert all(len(f) == 1 for f in by_source.values())  # the takes of one recording share a fold
    for fold, val in ((5, 4), (2, 1), (1, 5)):  # test on the fold, validate on the one before it
        split = data.make_split(ds, fold=fold if fold != 5 else None)
        assert set(ds.folds[split.test]) == {fold} and set(ds.folds[split.val]) == {val}
        assert set(ds.folds[split.train]) == {1, 2, 3, 4, 5} - {fold, val}
    pytest.raises(data.DataError, data.make_split, ds, fold=6).match('--fold 6: .* has the folds 1, 2, 3, 4, 5')
    grouped = data.make_split(ds, 'grouped')
    assert not set(ds.groups[grouped.train]) & set(ds.groups[grouped.test])
    assert data.frontend_config(ds)['name'] == 'urbansound8k'

def test_esc50_bad_input(esc_root, tmp_path):
    root = copy_root(esc_root, tmp_path)
    meta = root / 'meta' / 'esc50.csv'
    rows = meta.read_text().splitlines()
    sf.write(root / 'audio' / rows[2].split(',')[0], np.zeros(0, np.float32), 16000)  # header only
    (root / 'audio' / rows[3].split(',')[0]).unlink()  # missing
    (root / 'audio' / 'notes.txt').write_text('stray')  # a note
    append(meta, f"{rows[1].split(',')[0]},1,0,dog,True,1,A\n",  # listed twice
                 '9-1-A-0.wav,9,0,dog,True,1,A\n',  # fold 9
                 '1-2-A-0.wav,1,0,cat,False,2,A\n',  # target 0 is dog
                 '1-3-A-0.wav,1,77,dog,False,3,A\n')  # no class 77
    lines, _, ds = bad_input(data.load_esc50, root, 6, skipped=6)
    for word in ('already listed on line 2', 'bad fold 9', "the category column says 'cat'", 'unknown target 77',
                 '0 samples', 'not found'):
        assert sum(word in line for line in lines) == 1, word
    assert len(ds) == 38
    assert any(i.problem == 'stray non-audio file' and i.path.endswith('notes.txt') for i in ds.issues)

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
    assert all(set(ds.labels[part]) == {0, 1, 2} for part in (rnd.train, rnd.val, rnd.test))
    assert data.frontend_config(ds)['name'] == 'speechcommands'  # clips under 1.5 s

def test_csv_multi_label_counts_targets_and_phases(csv_ml_root):
    ds = data.load_dataset('csv', csv_ml_root, csv=csv_ml_root / 'labels.csv')
    rows = list(csv.DictReader(open(csv_ml_root / 'labels.csv', newline='')))
    assert ds.multilabel and len(ds) == len(rows) and any(';' in r['label'] for r in rows)
    for i, r in enumerate(rows):
        assert sorted(ds.classes[c] for c in np.flatnonzero(ds.labels[i])) == sorted(r['label'].split(';'))
    split = data.make_split(ds)
    for ph in data.make_phases(ds, split, sizes=[2, 1, 1]):
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
    root = copy_root(csv_root, tmp_path, 'own')
    table = root / 'labels.csv'
    rows = table.read_text().splitlines()
    outside, n = tmp_path / 'elsewhere.wav', len(rows)
    sf.write(outside, np.zeros(800, np.float32), 16000)
    append(table, f"{rows[1].split(',')[0]},dog,train\n",  # the same path twice
                  '../elsewhere.wav,dog,train\n',  # outside the data folder
                  f'{outside},dog,train\n',  # absolute, outside too
                  f'{rows[2].split(",")[0].replace("clips/", "clips/./")},dog,train\n',  # the same file, respelled
                  'clips/0000.wav,,train\n',  # no label
                  f'{rows[3].split(",")[0]},frog,test\n',  # frog: only in test (and a duplicate path)
                  'clips/frog1.wav,frog,test\nclips/frog2.wav,frog,val\n')
    shutil.copy(outside, root / 'clips' / 'frog1.wav')
    shutil.copy(outside, root / 'clips' / 'frog2.wav')
    ds = bad_input(data.load_csv, root, 7, *((f'labels.csv:{lineno}:', word) for lineno, word in (
        (n + 1, 'is already listed on line 2'), (n + 2, 'is outside the data folder'),
        (n + 3, 'is outside the data folder'), (n + 4, 'is already listed on line 3'), (n + 5, 'no label'),
        (n + 6, 'is already listed on line 4'))), ("label 'frog' appears only in test and val rows (2)",), csv=table,
        skipped=8)[2]
    assert 'frog' not in ds.classes and len(ds) == 24
    few = root / 'few.csv'  # a class with fewer clips than the random split needs: one line
    few.write_text('path,label\n' + ''.join(f'{r.split(",")[0]},{r.split(",")[1]}\n' for r in rows[1:])
                   + 'clips/frog1.wav,frog\nclips/frog2.wav,frog\n')
    err = str(pytest.raises(data.DataError, data.make_split, data.load_csv(root, csv=few)).value)
    assert err.count('\n') == 0 and "class 'frog' (2 clips)" in err
    assert 'fewer clips than the random split needs (3' in err
    (root / 'bad.csv').write_text('file_name,label\nx.wav,dog\n')
    pytest.raises(data.DataError, data.load_csv, root, csv=root / 'bad.csv').match('no path column')

def test_csv_fold_column_and_folder_layout(csv_root, tmp_path):
    root = copy_root(csv_root, tmp_path, 'own')
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
    tree = synth.synth_folder(tmp_path / 'tree', seed=0, n_classes=3, clips_per_class=4, seconds=0.5, progress=False)
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
    pytest.raises(data.DataError, data.load_dataset, 'folder', tree / 'dog').match(  # audio files, no class folders
        r'0 class folders with audio files \(none\); classes to learn need at least 2')

def test_phase_file_records_wrap_over_lines(tmp_path):
    v50 = np.zeros(50, int)
    v50[[1, 30, 49]] = 1
    numpy_style = synth.format_target(v50)
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
        train, test = (data.read_phase_file(authors_root / name, []) for name in (train_name, test_name))
        assert sorted(index[p] for _, p, _ in train) == ph.train.tolist()
        assert sorted(index[p] for _, p, _ in test) == ph.test.tolist()
        by_row = dict(zip(ph.train.tolist(), ph.train_y[:, ph.n_old:].astype(int).tolist()))
        assert all(by_row[index[p]] == v for _, p, v in train)  # the file's targets over the phase's classes
        by_row = dict(zip(ph.test.tolist(), ph.test_y.astype(int).tolist()))
        assert all(by_row[index[p]] == v for _, p, v in test)  # over every class seen
    pytest.raises(ValueError, data.make_phases, ds, split, sizes=[30, 10, 10]).match(
        r"fix the class order and the phases \(30,5,5,5,5\)")
    pytest.raises(ValueError, data.make_phases, ds, split, data.class_order(50, 'shuffle', 1),
                  [30, 5, 5, 5, 5]).match('fix the class order')

def test_authors_files_bad_input(authors_root, tmp_path):
    root = copy_root(authors_root, tmp_path, 'data_txt')
    (line,), _, _ = bad_input(data.load_authors_txt, root, 1)  # the clips live elsewhere than the files say: one line
    assert re.search(r'(\d+) of the \1 clips of the phase files do not exist on this machine', line)
    assert f'--path-map {synth.AUTHORS_PREFIX}=NEW' in line
    train0 = root / 'train_phase_0.txt'
    text = train0.read_text()
    append(train0, f'{synth.AUTHORS_PREFIX}/train/Yextra_0.wav_[0. 1.]\n',  # 2 values, phase 0 has 30
                   text.split('\n', 1)[0].rsplit('_[', 1)[0] + '_[0. 1. 0. 0. 0.]\n')  # 5 values
    n = len(text.splitlines()) // 2  # two lines per record of 30 values
    bad_input(data.load_authors_txt, root, 2, (f'train_phase_0.txt:{2 * n + 1}: 2 target values; phase 0 has 30',),
              (f'train_phase_0.txt:{2 * n + 2}: 5 target values',), path_map=authors_map(root), skipped=2)
    (root / 'test_phase_0_1.txt').unlink()
    pytest.raises(data.DataError, data.load_authors_txt, root, path_map=authors_map(root)).match(
        'test_phase_0_1.txt: not found; phase 1 needs both')

# ---------------- bad input: one line each, all of them before any training
def test_bad_input_urbansound8k(us8k_root, tmp_path):
    root = copy_root(us8k_root, tmp_path)
    csv_path = root / 'metadata' / 'UrbanSound8K.csv'
    rows = list(csv.reader(open(csv_path, newline='')))
    paths, n = [root / 'audio' / f'fold{r[5]}' / r[0] for r in rows[1:]], len(rows)
    paths[0].write_bytes(b'')  # zero-byte
    paths[1].write_bytes(paths[1].read_bytes()[:len(paths[1].read_bytes()) // 2])  # truncated
    corrupt_header_only(paths[2])  # header only
    paths[3].write_text('this is not audio, just text\n' * 20)  # undecodable
    paths[4].unlink()  # missing
    (root / 'audio' / 'fold1' / '.DS_Store').write_bytes(b'\x00\x01junk')  # stray (a note only)
    append(csv_path, 'broken-row,1,2\n',  # malformed
                     '99999-12-0-0.wav,99999,0.0,1.0,1,1,12,unknown\n',  # unknown classID
                     '99998-3-0-0.wav,99998,0.0,1.0,1,1,3,siren\n',  # classID / name mismatch
                     '99997-3-0-0.wav,99997,0.0,1.0,1,x,3,dog_bark\n')  # fold not an integer
    files = zip(paths[:5], ('empty', 'truncated', '0 samples', 'not a readable audio', 'not found'))
    rows_said = ((n + 1, 'expected 8'), (n + 2, 'unknown classID 12'), (n + 3, "'siren'"), (n + 4, 'not integers'))
    _, err, ds = bad_input(data.load_urbansound8k, root, 9, *((str(p), word) for p, word in files),
                           *((f'UrbanSound8K.csv:{lineno}:', word) for lineno, word in rows_said), skipped=9)
    assert len(err.issues) == 9 and '.DS_Store' not in str(err)  # a stray file is not a reason to stop
    assert len(ds) == len(rows) - 1 - 5
    assert any(i.problem == 'stray non-audio file' and i.path.endswith('.DS_Store') for i in ds.issues)
    assert not any(str(p) in ds.paths for p in paths[:5])

def test_bad_input_audioset(as_root, tmp_path):
    root = copy_root(as_root, tmp_path)
    wav = sorted((root / 'train').glob('Y*.wav'))
    wav[0].write_bytes(b'')
    (root / 'train' / 'notes.txt').write_text('stray')
    sid = 'unknownMID1_1000'
    sf.write(root / 'train' / f'Y{sid}.wav', np.zeros(8000, np.float32) + 0.01, 16000)
    append(root / 'audioset_train_strong.tsv',
           'onlythree\t0.0\t1.0\n',  # malformed: 3 fields
           'noms\t0.0\t1.0\t/m/09x0r\n',  # segment id without _<ms>
           'goodid12345_0\tabc\t1.0\t/m/09x0r\n',  # bad time
           'goodid12345_0\t0.0\t1.0\tSpeech\n',  # label is not a MID
           f'{sid}\t0.0\t0.5\t/m/zzzzz\n',  # MID unknown to mid_to_display_name.tsv: a note
           f'{sid}\t0.0\t0.5\t/m/09x0r\n')
    said = ('got 3', "'noms'", 'bad event times', "'Speech' is not a MID")
    ds = bad_input(data.load_audioset, root, 5, (str(wav[0]), 'empty'),
                   *(('audioset_train_strong.tsv:', word) for word in said), skipped=5)[2]
    notes = [i for i in ds.issues if not i.fatal]
    assert any('/m/zzzzz' in i.problem for i in notes) and any(i.path.endswith('notes.txt') for i in notes)
    missing = [int(i.problem.split()[0]) for i in notes if 'have no audio file' in i.problem]
    assert sum(missing) == ds.counts['missing_audio'] > 0
    assert np.flatnonzero(ds.labels[ds.keys.index(f'train/{sid}')]).tolist() == [30]  # Speech; the unknown MID ignored

def test_bad_input_speechcommands(gsc_root, tmp_path):
    root = copy_root(gsc_root, tmp_path)
    files = sorted((root / 'yes').glob('*.wav'))
    corrupt_header_only(files[0])
    files[1].write_text('RIFF but not really a wav')
    (root / 'no' / 'readme.txt').write_text('stray')
    append(root / 'testing_list.txt', 'up/deadbeef_nohash_9.wav\n')  # listed, missing
    ds = bad_input(data.load_speechcommands, root, 3, (str(files[0]), '0 samples'),
                   (str(files[1]), 'not a readable audio file'), ('up/deadbeef_nohash_9.wav', 'testing_list.txt'),
                   skipped=3)[2]
    assert 'yes/' + files[0].name not in ds.keys
    assert any(i.problem == 'stray non-audio file' and i.path.endswith('readme.txt') for i in ds.issues)
    (root / 'validation_list.txt').unlink()
    pytest.raises(data.DataError, data.load_speechcommands, root).match('validation_list.txt: not found')

def test_missing_metadata_is_one_clear_error(tmp_path):
    for name, needed in (('audioset', 'audioset_train_strong.tsv'), ('urbansound8k', 'UrbanSound8K.csv'),
                         ('speechcommands', 'validation_list.txt')):
        err = str(pytest.raises(data.DataError, data.load_dataset, name, tmp_path).value)
        assert needed in err and 'not found' in err
        assert name != 'audioset' or 'audioset_eval_strong.tsv: not found' in err  # both TSVs named at once

def test_bad_file_found_while_caching(gsc_root, tmp_path):
    root = copy_root(gsc_root, tmp_path)
    ds = data.load_speechcommands(root, check_audio=False)  # no header check: caching finds it
    ds.paths[5].write_bytes(b'')
    err = str(pytest.raises(data.DataError, data.build_cache, ds, tmp_path / 'cache', workers=2, progress=False).value)
    assert str(ds.paths[5]) in err and 'not a readable audio file' in err
    ds2, cache = data.prepare('speechcommands', root, tmp_path / 'cache', skip_bad=True, workers=1, progress=False)
    assert len(ds2) == len(ds) - 1 and cache.valid.all() and ds2.counts['skipped_bad'] == 1
    assert cache.stats['computed'] == 0  # the good clips were cached by the failed run
    assert cache.get(np.arange(len(ds2))).shape == (len(ds2), 32, 32)

@pytest.mark.parametrize('name, lineno, data_name', [
    ('audioset_train_strong.tsv', 5, 'audioset'), ('audioset_eval_strong.tsv', 2, 'audioset'),
    ('mid_to_display_name.tsv', 3, 'audioset'), ('metadata/UrbanSound8K.csv', 4, 'urbansound8k'),
    ('validation_list.txt', None, 'speechcommands'), ('testing_list.txt', None, 'speechcommands')])
def test_non_utf8_metadata_is_one_line(name, lineno, data_name, request, tmp_path, capsys):
    fixture = {'audioset': 'as_root', 'urbansound8k': 'us8k_root', 'speechcommands': 'gsc_root'}[data_name]
    root = copy_root(request.getfixturevalue(fixture), tmp_path)
    load, path = getattr(data, f'load_{data_name}'), root / name
    if lineno:  # a line made not UTF-8
        rows = path.read_bytes().split(b'\n')
        path.write_bytes(b'\n'.join(rows[:lineno - 1] + [rows[lineno - 1] + b'Caf\xe9'] + rows[lineno:]))
    else:  # the Speech Commands lists: a listed name that is not UTF-8, at the end
        with open(path, 'ab') as f:
            f.write(b'yes/caf\xe9_nohash_0.wav\n')
        lineno = len(path.read_bytes().splitlines())
    for skip_bad in (False, True):
        line = one_line(str(pytest.raises(data.DataError, load, root, skip_bad=skip_bad).value))
        assert f'{path}:{lineno}:' in line and 'not UTF-8' in line and 'save the file as UTF-8' in line
    capsys.readouterr()
    for extra in ([], ['--skip-bad']):
        assert data.main(['stats', '--data', data_name, '--root', str(root), *extra]) == 2
        assert f'{path}:{lineno}:' in one_line(capsys.readouterr().err)

def test_a_bom_in_the_urbansound8k_csv_is_fine(us8k_root, tmp_path):
    root = copy_root(us8k_root, tmp_path)
    csv_path = root / 'metadata' / 'UrbanSound8K.csv'
    csv_path.write_bytes(b'\xef\xbb\xbf' + csv_path.read_bytes())  # 'CSV UTF-8' as spreadsheet programs save it
    assert len(data.load_urbansound8k(root)) == len(data.load_urbansound8k(us8k_root))

# ---------------- splits, class orders, phases, and the checks before training
@pytest.mark.parametrize('name', ['gsc', 'us8k'])
def test_split_grouped_no_leakage(name, request):
    ds = request.getfixturevalue(name)
    s = data.make_split(ds, 'grouped', seed=0)
    parts = [set(s.train), set(s.val), set(s.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == set(range(len(ds)))
    groups = [set(ds.groups[list(p)]) for p in parts]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert len(s.train) >= 0.7 * len(ds) and len(s.val) > 0 and len(s.test) > 0
    if name == 'gsc':  # 10 speakers of ~20 clips: close to 70/10/20 (US8K here: too few fsIDs per class)
        assert len(s.train) / len(ds) < 0.85 and len(s.test) / len(ds) > 0.1
    again = data.make_split(ds, 'grouped', seed=0)  # deterministic
    assert again.hash == s.hash and all(np.array_equal(getattr(again, p), getattr(s, p)) for p in ('train', 'val',
                                                                                                   'test'))
    assert data.make_split(ds, 'grouped', seed=1).hash != s.hash
    for c in range(len(ds.classes)):  # US8K: per class; GSC: each class about 70 %
        n_c = int((ds.labels == c).sum())
        assert (ds.labels[s.train] == c).sum() >= (0.7 * n_c if name == 'us8k' else 0.3 * n_c)

def test_split_official_and_random(gsc, us8k, audioset, tmp_path):
    s = data.make_split(us8k, 'official')
    assert set(us8k.folds[s.train]) <= set(range(1, 8)) and set(us8k.folds[s.val]) <= {8}
    assert set(us8k.folds[s.test]) <= {9, 10} and len(s.train) + len(s.val) + len(s.test) == len(us8k)
    s = data.make_split(gsc, 'official')
    for part, which in ((s.val, 'validation'), (s.test, 'testing'), (s.train, 'training')):
        assert all(data.gsc_list_of(gsc.keys[i].split('/')[1]) == which for i in part)
    s = data.make_split(audioset)
    assert s.method == 'official' and len(s.val) == 0
    assert set(audioset.subset[s.train]) == {'train'} and set(audioset.subset[s.test]) == {'eval'}
    pytest.raises(data.DataError, data.make_split, audioset, 'grouped').match('only its official split')
    s = data.make_split(gsc, 'random', seed=5)
    for c in range(20):
        n_c = int((gsc.labels == c).sum())
        assert (gsc.labels[s.train] == c).sum() == round(0.7 * n_c)
        assert (gsc.labels[s.val] == c).sum() == round(0.1 * n_c)
    assert s.hash == data.make_split(gsc, 'random', seed=5).hash != data.make_split(gsc, 'random', seed=6).hash
    data.save_split(s, gsc, tmp_path / 'split.json')  # a saved split round-trips and keeps its hash
    t = data.load_split(tmp_path / 'split.json', gsc)
    assert t.hash == s.hash and np.array_equal(t.train, s.train) and np.array_equal(t.test, s.test)

def test_class_order():
    assert data.class_order('audioset') == list(range(50)) == data.class_order(50)
    a = data.class_order('speechcommands', 'shuffle', seed=1993)
    np.random.seed(1993)
    mittal = list(range(20))
    np.random.shuffle(mittal)
    assert a == mittal and sorted(a) == list(range(20)) and a != list(range(20))
    assert data.class_order(10, 'shuffle', 1) == data.class_order('urbansound8k', 'shuffle', 1)

@pytest.mark.parametrize('order_kind', ['default', 'shuffle'])
def test_phases_single_label(gsc, us8k, order_kind):
    for ds, sizes in ((gsc, [5, 3, 3, 3, 3, 3]), (us8k, [4, 2, 2, 2])):
        split, order = data.make_split(ds), data.class_order(ds.name, order_kind, seed=7)
        phases = data.make_phases(ds, split, order)
        assert [p.n_new for p in phases] == sizes
        learned = {c: j for j, c in enumerate(order)}
        for p in phases:
            lo, hi = p.n_old, p.n_old + p.n_new
            assert p.new_classes == order[lo:hi] and p.seen_classes == order[:hi] and lo == sum(sizes[:p.k])
            exp_train = [i for i in split.train if lo <= learned[ds.labels[i]] < hi]
            assert p.train.tolist() == exp_train and len(exp_train) > 0
            assert p.train_y.tolist() == [learned[ds.labels[i]] for i in exp_train]
            for idx, y, part in ((p.val, p.val_y, split.val), (p.test, p.test_y, split.test),
                                 (p.joint, p.joint_y, split.train)):
                assert idx.tolist() == [i for i in part if learned[ds.labels[i]] < hi]
                assert y.tolist() == [learned[ds.labels[i]] for i in idx]
        assert len(phases[-1].test) == len(split.test) and len(phases[-1].joint) == len(split.train)

@pytest.mark.parametrize('order_kind', ['default', 'shuffle'])
def test_phases_multilabel(as_root, audioset, order_kind):
    split, order = data.make_split(audioset), data.class_order('audioset', order_kind, seed=3)
    phases = data.make_phases(audioset, split, order)
    assert [p.n_new for p in phases] == [30, 5, 5, 5, 5]
    mid_of = [data.AUDIOSET_CLASSES[c][1] for c in order]  # learned label -> MID
    clips = {part: read_strong_tsv(Path(as_root) / data.AUDIOSET_TSV[part]) for part in ('train', 'eval')}
    key_mids = {k: clips[k.split('/')[0]][k.split('/', 1)[1]] for k in audioset.keys}
    lo = 0
    for p in phases:
        hi = lo + p.n_new
        new, seen = mid_of[lo:hi], mid_of[:hi]
        exp = [i for i in split.train if key_mids[audioset.keys[i]] & set(new)]
        assert p.train.tolist() == exp and len(exp) > 0
        assert p.train_y.shape == (len(exp), hi) and p.train_y.dtype == np.float32
        for row, i in zip(p.train_y, exp):  # only phase-k classes are targets
            assert row.tolist() == [float(j >= lo and mid_of[j] in key_mids[audioset.keys[i]]) for j in range(hi)]
        assert (p.train_y[:, lo:].sum(axis=1) >= 1).all() and not p.train_y[:, :lo].any()
        exp_test = [i for i in split.test if key_mids[audioset.keys[i]] & set(seen)]
        assert p.test.tolist() == exp_test and len(exp_test) > 0
        for row, i in zip(p.test_y, exp_test):  # test targets over all seen classes
            assert row.tolist() == [float(m in key_mids[audioset.keys[i]]) for m in seen]
        exp_joint = [i for i in split.train if key_mids[audioset.keys[i]] & set(seen)]
        assert p.joint.tolist() == exp_joint and p.joint_y.shape == (len(exp_joint), hi)
        assert (p.joint_y.sum(axis=1) >= 1).all() and len(p.val) == 0
        lo = hi
    # a clip with classes of two phases is in both phases' train sets, with different targets
    assert len(set(phases[0].train) & set(phases[1].train)) > 0
    pytest.raises(ValueError, data.make_phases, audioset, split, order, sizes=[30, 30])

def test_check_classes_names_a_class_without_clips(gsc, us8k, audioset):
    data.check_classes(gsc, data.class_order('speechcommands'), 20)
    data.check_classes(audioset, data.class_order('audioset'), 50)
    no_dog = us8k.select(us8k.labels != 3)  # dog_bark
    err = pytest.raises(data.DataError, data.check_classes, no_dog, data.class_order('urbansound8k'), 10).value
    assert str(err) == (f'no clip of dog_bark in {us8k.root} (after skipped files); restore its clips, '
                        'or learn fewer classes with --phases') and err.issues == []
    data.check_classes(no_dog, [0, 1, 2, 4, 5, 6, 7, 8, 9, 3], 9)  # dog_bark not learned: fine

def test_check_phases_names_the_first_part_without_a_class(gsc, us8k, audioset):
    split, order = data.make_split(gsc), data.class_order('speechcommands')
    data.check_phases(gsc, data.make_phases(gsc, split, order))  # train: new classes only, by design
    for part, (c, k, name) in {'train': (6, 1, 'on'), 'val': (0, 0, 'yes'), 'test': (19, 5, 'nine')}.items():
        idx = getattr(split, part)
        phases = data.make_phases(gsc, dataclasses.replace(split, **{part: idx[gsc.labels[idx] != c]}), order)
        assert str(pytest.raises(data.DataError, data.check_phases, gsc, phases).value) == (
            f'the {part} split of phase {k} has no clip of {name} in {gsc.root}; use more data or another --split')
    # 8 clips per class: the grouped split leaves some classes without a val clip
    phases = data.make_phases(us8k, data.make_split(us8k), data.class_order('urbansound8k'))
    pytest.raises(data.DataError, data.check_phases, us8k, phases).match(
        '^the val split of phase 0 has no clip of air_conditioner, car_horn ')
    # multi-label: every new class of a phase needs a training clip
    split, order = data.make_split(audioset), data.class_order('audioset')
    data.check_phases(audioset, data.make_phases(audioset, split, order))
    c = order[32]  # learned in phase 1
    train = split.train[audioset.labels[split.train, c] == 0]
    phases = data.make_phases(audioset, dataclasses.replace(split, train=train), order)
    assert str(pytest.raises(data.DataError, data.check_phases, audioset, phases).value) == (
        f'phase 1 has no training clip of {audioset.classes[c]} in {audioset.root}; '
        'check the TSV labels or choose another class order')

def test_resample_note_only_for_speechcommands_at_other_rates(gsc, us8k):
    assert data.resample_note(gsc) is None  # all at 16 kHz
    assert data.resample_note(us8k) is None  # resampled by its recipe, no note
    mixed = dataclasses.replace(gsc, sample_rates={16000: len(gsc) - 3, 44100: 2, 8000: 1})
    assert data.resample_note(mixed) == (f'3 clips in {gsc.root} are not at 16 kHz ({{44100: 2, 8000: 1}} Hz: '
                                         'files) and are resampled to 16 kHz; `python data.py stats` lists the rates')

# ---------------- the feature cache: computed once, reused, one-thread BLAS workers
def test_cache_reuse_and_invalidation(gsc_root, tmp_path):
    root = copy_root(gsc_root, tmp_path, 'gsc')
    ds = data.load_dataset('speechcommands', root)
    cache, n = data.build_cache(ds, tmp_path / 'cache', workers=2, progress=False), len(ds)
    assert cache.stats['computed'] == n and cache.stats['reused'] == 0 and cache.shape == (32, 32)
    x = cache.get(np.arange(n))
    assert x.shape == (n, 32, 32) and x.dtype == np.float32
    for i in (0, n // 2, n - 1):  # stored = features of the decoded file (float16 rounding)
        np.testing.assert_allclose(x[i], features.speechcommands_features(*data.decode_audio(ds.paths[i])), atol=0.06,
                                   rtol=2e-3)
    assert '"config"' in (cache.folder / 'manifest.json').read_text()
    assert cache.folder.name.startswith('speechcommands-')
    again = data.build_cache(ds, tmp_path / 'cache', workers=2, progress=False)  # second build: nothing computed
    assert again.stats['computed'] == 0 and again.stats['reused'] == n and np.array_equal(again.get(np.arange(n)), x)
    # change one file's content -> only it is recomputed; touch another -> re-hashed, not recomputed
    changed, touched = ds.paths[3], ds.paths[7]
    y, sr = sf.read(changed, dtype='float32')
    sf.write(changed, np.roll(y, 4000) * 0.5, sr, subtype='PCM_16')
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = data.build_cache(ds, tmp_path / 'cache', workers=2, progress=False)
    assert third.stats['computed'] == 1 and third.stats['rehashed'] == 1 and third.stats['reused'] == n - 2
    x3 = third.get(np.arange(n))
    assert not np.array_equal(x3[3], x[3]) and np.array_equal(np.delete(x3, 3, 0), np.delete(x, 3, 0))
    assert third.rows[3] == cache.rows[3]  # recomputed in place
    # a different config -> a different cache folder, computed from scratch
    other = dict(data.frontend_config(ds), extra_setting=1)
    fourth = data.build_cache(ds, tmp_path / 'cache', config=other, workers=1, progress=False)
    assert fourth.folder != cache.folder and fourth.stats['computed'] == n
    assert len(list((tmp_path / 'cache').iterdir())) == 2
    sf.write(root / 'yes' / '0badcafe_nohash_0.wav', np.zeros(16000, np.float32) + 0.01, 16000)  # a new clip
    fifth = data.build_cache(data.load_dataset('speechcommands', root), tmp_path / 'cache', workers=1, progress=False)
    assert fifth.stats['computed'] == 1 and fifth.stats['reused'] == n  # appended, the rest reused

def test_cache_frontends_follow_dataset(as_root, us8k, audioset, tmp_path):
    config = data.frontend_config(audioset)
    assert config['name'] == 'logmel16k' and config['sr'] == 16000 and config['seconds'] == 1.0
    assert data.frontend_config(audioset, 'panns')['sr'] == 32000
    small = audioset.select(np.arange(6))
    cache = data.build_cache(small, tmp_path / 'c', workers=1, progress=False)
    assert cache.shape == (51, 64)  # 1 s at hop 320
    y, sr = data.decode_audio(small.paths[0])
    np.testing.assert_allclose(cache.get([0])[0], features.log_mel(y, 16000, 512, 320, 64, 50.0, 8000.0), atol=0.06,
                               rtol=2e-3)
    assert data.frontend_config(us8k)['fn'] == 'urbansound8k_features'
    c2 = data.build_cache(us8k.select(np.arange(3)), tmp_path / 'c', workers=1, progress=False)
    assert c2.shape == (128, 85) and set(c2.stats['sample_rates']) <= {str(r) for r in us8k.sample_rates}

def test_cache_read_is_the_stored_float16_in_index_order(gsc, tmp_path):
    cache = data.build_cache(gsc.select(np.arange(5)), tmp_path / 'c', workers=1, progress=False)
    index = [3, 0, 3, 4]
    x = cache.read(index)
    assert x.dtype == np.float16 and x.shape == (4, 32, 32) and x.flags.c_contiguous
    assert type(x) is np.ndarray  # a copy in memory, not a view of the file
    np.testing.assert_array_equal(x, np.asarray(cache.data)[cache.rows[index]])
    np.testing.assert_array_equal(x[0], x[2])
    x32 = cache.read(np.array(index), np.float32)
    assert x32.dtype == np.float32 and np.array_equal(x32, x.astype(np.float32))
    np.testing.assert_array_equal(cache.get(index), x32)
    assert cache.read([]).shape == (0, 32, 32)
    pytest.raises(ValueError, dataclasses.replace(cache, rows=np.array([0, -1, 2, 3, 4])).read, [1]).match(
        'skipped as bad')

def _blas_counts():
    return [get() for get, _ in data._loaded_blas()]

def test_the_cache_build_runs_a_one_thread_blas_in_every_process(monkeypatch):
    """blas_threads(1) around a build: one OpenBLAS thread here, in a forked worker, told to spawned ones; restored."""
    monkeypatch.delenv('OPENBLAS_NUM_THREADS', raising=False)
    calls = data._loaded_blas()
    if not calls:
        pytest.skip('no OpenBLAS found in this process (numpy without OpenBLAS, or not Linux)')
    before = [get() for get, _ in calls]
    with data.blas_threads(1):
        assert [get() for get, _ in calls] == [1] * len(calls) and os.environ['OPENBLAS_NUM_THREADS'] == '1'
        with multiprocessing.get_context('fork').Pool(1) as pool:
            assert pool.apply(_blas_counts) == [1] * len(calls)
    assert [get() for get, _ in calls] == before and 'OPENBLAS_NUM_THREADS' not in os.environ

# ---------------- the feature cache checked when opened and when read: damage found, repaired, said in one line
def test_truncated_cache_is_recomputed_not_zero_filled(few, clean, tmp_path, capsys):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    full = dpath.stat().st_size
    os.truncate(dpath, full // 2 + 100)  # half, and part of one row
    lost = len(few) - (full // 2 + 100) // (full // len(few))
    cache, err = rebuild(few, root, capsys)
    line = one_line(err)
    assert str(dpath) in line and 'cut short' in line and f'recomputing {lost} clips' in line
    assert cache.stats['repaired'] == cache.stats['computed'] == lost and cache.stats['note'] == line
    assert dpath.stat().st_size == full and np.array_equal(cache.read(np.arange(len(few))), clean[1])
    again, err = rebuild(few, root, capsys)
    assert err == '' and again.stats['computed'] == 0 and again.stats['reused'] == len(few)

def test_a_damaged_cache_that_cannot_be_repaired_is_not_grown(few, clean, tmp_path, monkeypatch):
    """Opening never zero-fills a short file: with nothing writable it is left as it is, one line stops the build."""
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    os.truncate(dpath, dpath.stat().st_size // 2)
    before = dpath.stat().st_size
    read_only_folder(monkeypatch, root)
    line = one_line(str(pytest.raises(data.DataError, data.build_cache, few, root, workers=1, progress=False).value))
    assert str(folder) in line and 'Permission denied' in line and 'cut short' in line
    assert dpath.stat().st_size == before

def swap_rows(few, mpath):
    """The manifest's rows of clips 5 and 40 swapped: a valid manifest, its rows in another order."""
    m = json.loads(mpath.read_text())
    a, b = m['clips'][few.keys[5]], m['clips'][few.keys[40]]
    a[0], b[0] = b[0], a[0]
    mpath.write_text(json.dumps(m))
    return a[0], b[0]

def garbage_rows(few, dpath, mpath):
    row_bytes = dpath.stat().st_size // len(few)
    with open(dpath, 'r+b') as f:
        for r in (0, 17, len(few) - 1):
            f.seek(r * row_bytes + 64)
            f.write(np.full(40, 1.5, np.float16).tobytes())  # plausible values, not NaN

@pytest.mark.parametrize('damage, said, n', [
    (garbage_rows, '3 of its 48 rows', 3),
    (lambda few, dpath, mpath: dpath.write_bytes(np.random.RandomState(0).bytes(dpath.stat().st_size)), '', 48),
    (lambda few, dpath, mpath: swap_rows(few, mpath), '2 of its 48 rows', 2)],  # a manifest pointing at other rows
    ids=['finite-garbage', 'random-bytes', 'manifest-pointing-rows-at-other-clips'])
def test_damaged_rows_are_found_and_recomputed(few, clean, tmp_path, capsys, damage, said, n):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    damage(few, dpath, mpath)
    cache, err = rebuild(few, root, capsys)
    line, x = one_line(err), cache.read(np.arange(len(few)))
    assert said in line and f'recomputing {n} clips' in line and cache.stats['repaired'] == cache.stats['computed'] == n
    assert np.isfinite(x).all() and np.array_equal(x, clean[1])

def test_two_clips_on_one_row_are_separated(few, clean, tmp_path, capsys):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    m = json.loads(mpath.read_text())
    m['clips'][few.keys[40]][0] = m['clips'][few.keys[5]][0]
    mpath.write_text(json.dumps(m))
    size = dpath.stat().st_size
    cache, err = rebuild(few, root, capsys)
    line = one_line(err)  # the row stays with the clip whose checksum it matches; the other gets a new one
    assert f'1 of its {len(few)} rows' in line and 'recomputing 1 clips' in line
    assert cache.stats['computed'] == cache.stats['repaired'] == 1
    assert len(set(cache.rows.tolist())) == len(few) and dpath.stat().st_size == size + 2048  # a new row
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])

def test_rows_moved_together_with_their_manifest_are_still_right(few, clean, tmp_path, capsys):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    a, b = swap_rows(few, mpath)
    x = np.memmap(dpath, np.float16, 'r+', shape=(len(few), 32, 32))
    x[[a, b]] = x[[b, a]]
    x.flush()
    del x
    cache, err = rebuild(few, root, capsys)
    assert err == '' and cache.stats['computed'] == 0 and np.array_equal(cache.read(np.arange(len(few))), clean[1])

@pytest.mark.parametrize('damage, said', [(lambda text: json.dumps(dict(json.loads(text), version=1)),
                                           'format version 1'),
                                          (lambda text: '{"version": 2, "entr', 'not valid JSON')], ids=['v1', 'json'])
def test_unusable_manifests_rebuild_the_cache_with_one_line(few, clean, tmp_path, capsys, damage, said):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    mpath.write_text(damage(mpath.read_text()))
    cache, err = rebuild(few, root, capsys)
    assert said in one_line(err) and cache.stats['computed'] == cache.stats['repaired'] == len(few)
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])
    assert json.loads(mpath.read_text())['version'] == data.MANIFEST_VERSION

def test_a_longer_file_is_cut_back_with_one_line(few, clean, tmp_path, capsys):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    full = dpath.stat().st_size
    with open(dpath, 'ab') as f:
        f.write(b'\1' * 3000)
    cache, err = rebuild(few, root, capsys)
    assert 'longer than' in one_line(err) and cache.stats['computed'] == 0 and dpath.stat().st_size == full

def test_an_interrupted_recomputation_is_not_reported_as_damage(few, clean, tmp_path, capsys):
    """A clip loses its checksum before its row is rewritten: a build stopped half-way resumes with no damage line."""
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    m = json.loads(mpath.read_text())
    e = m['clips'][few.keys[9]]
    e[4] = None  # as a stopped build leaves it
    mpath.write_text(json.dumps(m))
    row_bytes = dpath.stat().st_size // len(few)
    with open(dpath, 'r+b') as f:
        f.seek(e[0] * row_bytes)
        f.write(bytes(row_bytes))  # half-way through the new features
    cache, err = rebuild(few, root, capsys)
    assert err == '' and cache.stats['computed'] == 1 and cache.stats['repaired'] == 0
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])

def test_rows_are_checked_again_when_read(few, clean, tmp_path):
    """A row that changes after the cache was opened (another process, the disk) is one line when read."""
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    cache = data.build_cache(few, root, workers=1, progress=False)
    assert cache.stats['verified'] == len(few)
    with open(dpath, 'r+b') as f:
        f.seek(int(cache.rows[4]) * 2048 + 10)
        f.write(b'\x11\x22')
    line = one_line(str(pytest.raises(data.DataError, cache.read, np.arange(len(few))).value))
    assert str(dpath) in line and f'1 of the {len(few)} feature rows read changed' in line
    assert cache.read([0, 30, 47]).shape == (3, 32, 32) and cache.select(np.arange(4)).read([0]).shape == (1, 32, 32)
    pytest.raises(data.DataError, cache.read, [0, 4, 30])
    again = data.build_cache(few, root, workers=1, progress=False)  # the next build recomputes it
    assert again.stats['repaired'] == 1 and np.array_equal(again.read(np.arange(len(few))), clean[1])

def test_non_finite_features_never_reach_the_file(few, tmp_path, monkeypatch):
    real, bad = data.compute_features, few.paths[7]
    def compute(y, sr, config):
        x = real(y, sr, config)
        if np.allclose(y[:200], data.decode_audio(bad)[0][:200]):
            x[3, 4] = np.inf
        return x
    monkeypatch.setattr(data, 'compute_features', compute)
    small = few.select(np.arange(10))
    pytest.raises(data.DataError, data.build_cache, small, tmp_path, workers=1, progress=False).match('NaN or Inf')
    cache = data.build_cache(small, tmp_path, workers=1, skip_bad=True, progress=False)
    assert cache.rows[7] == -1 and cache.valid.sum() == 9 and np.isfinite(np.asarray(cache.data)).all()
    assert json.loads((cache.folder / 'manifest.json').read_text())['clips'][few.keys[7]][4] is None

# ---------------- a full disk, a read-only cache folder: one line, no temporary file
def test_disk_full_while_writing_features_is_one_line(few, tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'pwrite', full)
    err = pytest.raises(data.DataError, data.build_cache, few, tmp_path, workers=1, progress=False)
    line, folder = one_line(str(err.value)), data.cache_folder(few, tmp_path)
    assert str(folder) in line and 'No space left on device' in line
    assert no_leftovers(tmp_path) == [] and (folder / 'features.f16').stat().st_size == 0
    monkeypatch.undo()
    cache = data.build_cache(few, tmp_path, workers=1, progress=False)
    assert cache.stats['computed'] == len(few) and cache.stats['note'] == ''  # nothing was trusted: no damage line

def test_disk_full_while_writing_the_manifest_is_one_line(few, tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', full)
    err = pytest.raises(data.DataError, data.build_cache, few.select(np.arange(5)), tmp_path, workers=1, progress=False)
    assert 'No space left on device' in one_line(str(err.value))
    assert no_leftovers(tmp_path) == [] and not any(tmp_path.rglob('manifest.json'))

def test_a_file_size_limit_ends_the_cache_command_with_one_line(gsc_root, tmp_path):
    """The real system calls: RLIMIT_FSIZE makes the allocation fail as a full disk does (EFBIG)."""
    def cache_command():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
        return data.main(['cache', '--data', 'speechcommands', '--root', str(gsc_root), '--cache',
                          str(tmp_path / 'cache'), '--workers', '2'])
    p = fork(cache_command, tmp_path / 'err')
    p.join(60)
    line = one_line((tmp_path / 'err').read_text())
    assert p.exitcode == 2 and line.startswith('error: cannot write the feature cache in') and 'File too large' in line
    assert no_leftovers(tmp_path) == []

def test_read_only_cache_folder_simulated(few, clean, tmp_path, monkeypatch):
    read_only_folder(monkeypatch, tmp_path)
    err = pytest.raises(data.DataError, data.build_cache, few, tmp_path / 'fresh', workers=1, progress=False)
    line = one_line(str(err.value))
    assert str(data.cache_folder(few, tmp_path / 'fresh')) in line and 'Permission denied' in line
    assert no_leftovers(tmp_path) == [] and not any((tmp_path / 'fresh').rglob('features.f16'))
    root, *_ = copy_cache(clean, tmp_path)  # copied with the builtin open: not through os.open
    cache = data.build_cache(few, root, workers=1, progress=False)  # complete and intact: used as it is
    assert cache.stats['reused'] == len(few) and np.array_equal(cache.read(np.arange(len(few))), clean[1])

@pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() == 0, reason='root ignores permissions')
def test_read_only_cache_folder_chmod(few, tmp_path):
    (tmp_path / 'ro').mkdir()
    os.chmod(tmp_path / 'ro', 0o555)
    try:
        err = pytest.raises(data.DataError, data.build_cache, few, tmp_path / 'ro', workers=1, progress=False)
        assert 'Permission denied' in one_line(str(err.value))
    finally:
        os.chmod(tmp_path / 'ro', 0o755)

# ---------------- the cache build ends cleanly on SIGTERM and kill -9, and resumes
def start_slow_build(gsc_root, tmp_path):
    """The cache command, slowed down, stopped once its two workers have each done a first chunk."""
    mark = tmp_path / 'mark'
    mark.mkdir()
    def slow_cache_command():
        real = data.compute_features
        def slow(y, sr, config):
            (mark / f'{os.getpid()}-{time.monotonic_ns()}').touch()
            time.sleep(0.01)
            return real(y, sr, config)
        data.compute_features = slow
        return data.main(['cache', '--data', 'speechcommands', '--root', str(gsc_root), '--cache',
                          str(tmp_path / 'cache'), '--workers', '2'])
    p = fork(slow_cache_command, tmp_path / 'stderr')
    deadline = time.time() + 60
    while len(list(mark.iterdir())) < 32 and p.is_alive() and time.time() < deadline:
        time.sleep(0.01)
    workers = {int(f.name.split('-')[0]) for f in mark.iterdir()} - {p.pid}  # the parent probes once
    assert p.is_alive() and len(workers) == 2
    return p, workers, tmp_path / 'stderr'

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGKILL])
def test_build_stopped_by_a_signal_leaves_no_tracebacks_and_resumes(gsc, gsc_root, clean, tmp_path, sig):
    p, workers, err_path = start_slow_build(gsc_root, tmp_path)
    os.kill(p.pid, sig)
    p.join(30)
    assert gone(workers)  # the pool's workers end with their parent, even after kill -9
    time.sleep(0.2)
    err = err_path.read_text()
    assert 'Traceback' not in err and 'Error' not in err, err
    if sig == signal.SIGTERM:
        assert p.exitcode == 130 and 'interrupted; run the same command again' in err
    else:
        assert p.exitcode == -signal.SIGKILL
    folder = data.cache_folder(gsc, tmp_path / 'cache')
    assert (folder / 'lock').exists() == (sig == signal.SIGKILL)  # a dead process's lock: free all the same
    cache = data.build_cache(gsc, tmp_path / 'cache', workers=1, progress=False)
    assert cache.stats['note'] == '' and cache.stats['computed'] + cache.stats['reused'] == len(gsc)
    assert sig != signal.SIGTERM or cache.stats['reused'] > 0  # the interrupted build checkpointed what it had done
    assert np.array_equal(cache.read(np.arange(len(clean[1]))), clean[1]) and no_leftovers(tmp_path / 'cache') == []

def test_sigterm_handler_is_installed_only_where_there_is_none(monkeypatch):
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with data.sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is data._raise_interrupt
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    monkeypatch.setattr(signal, 'getsignal', lambda s: print)  # a caller's own handler (here print) is left alone
    with data.sigterm_as_interrupt():
        pass
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

# ---------------- locks: two commands at once do the work once; a dead holder never blocks
def run_two_while_locked(lock, fn, tmp_path):
    """Two processes run fn while `lock` is held, let go once both wait: what each printed (both must exit 0)."""
    outs = [tmp_path / f'out{n}' for n in range(2)]
    procs = [fork(fn, out) for out in outs]
    deadline = time.time() + 60
    while not all(out.exists() and 'waiting for' in out.read_text() for out in outs) and time.time() < deadline:
        time.sleep(0.02)
    lock.__exit__()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0], [out.read_text() for out in outs]
    outs = [out.read_text() for out in outs]
    for out in outs:
        assert sum('waiting for' in line for line in out.splitlines()) == 1, out
        assert f'waiting for {lock.path} ({socket.gethostname()} {os.getpid()}) ...' in out
    return outs

def test_two_builds_at_once_compute_once(gsc, gsc_root, tmp_path):
    folder = data.cache_folder(gsc, tmp_path)
    folder.mkdir(parents=True)
    lock = data.FolderLock(folder).__enter__()
    def build():
        ds = data.load_dataset('speechcommands', gsc_root)
        c = data.build_cache(ds, tmp_path, workers=1, progress=False)
        print(json.dumps(dict(computed=c.stats['computed'], reused=c.stats['reused'],
                              h=hashlib.sha1(c.read(range(len(ds))).tobytes()).hexdigest())))
        return 0
    out = [json.loads(o.splitlines()[-1]) for o in run_two_while_locked(lock, build, tmp_path)]
    assert sorted((o['computed'], o['reused']) for o in out) == [(0, len(gsc)), (len(gsc), 0)]
    assert out[0]['h'] == out[1]['h']

def test_two_ensure_synth_at_once_generate_once(tmp_path):
    root = tmp_path / 'synth-speechcommands'
    root.mkdir()
    lock = data.FolderLock(root).__enter__()
    def make():
        synth.ensure_synth('speechcommands', root, speakers=2, max_reps=1, noise_seconds=0.5)
        return 0
    out = run_two_while_locked(lock, make, tmp_path)
    assert sum('generating the synthetic speechcommands dataset' in o for o in out) == 1
    assert json.loads((root / 'synth.json').read_text())['speakers'] == 2 and not (root / 'lock').exists()
    assert len(data.load_dataset('speechcommands', root)) > 0
    assert synth.ensure_synth('speechcommands', root, speakers=2, progress=False) == root  # found, not made
    pytest.raises(data.DataError, synth.ensure_synth, 'speechcommands', root, speakers=3, progress=False).match(
        'other settings')

def test_a_lock_file_without_a_holder_is_taken_at_once(tmp_path):
    """flock: the kernel frees a dead holder's lock (kill -9 too): a file left behind, empty or naming it, is taken."""
    for content in ('', f'{socket.gethostname()} 999999999\n'):
        (tmp_path / 'lock').write_text(content)
        said, t0 = [], time.time()
        with data.FolderLock(tmp_path, say=said.append) as lock:
            assert time.time() - t0 < 1.0 and said == []
            assert lock.path.read_text().split() == [socket.gethostname(), str(os.getpid())]
        assert not (tmp_path / 'lock').exists()
    p = fork(lambda: data.FolderLock(tmp_path).__enter__() and os.kill(os.getpid(), signal.SIGKILL), tmp_path / 'err')
    p.join(30)
    assert p.exitcode == -signal.SIGKILL and (tmp_path / 'lock').exists()  # killed while holding it
    with data.FolderLock(tmp_path, say=pytest.fail):
        pass

def test_busy_lock_without_waiting_names_its_holder(tmp_path):
    held = data.FolderLock(tmp_path).__enter__()
    p = fork(lambda: data.FolderLock(tmp_path, wait=False).__enter__(), tmp_path / 'err')
    p.join(30)
    assert p.exitcode == 1 and f'is held by {socket.gethostname()} {os.getpid()}' in (tmp_path / 'err').read_text()
    held.__exit__()
    with data.FolderLock(tmp_path, wait=False):
        pass

# ---------------- the command line
def test_cli_stats_synth_cache(gsc_root, us8k_root, tmp_path, capsys):
    assert data.main(['stats', '--data', 'speechcommands', '--root', str(gsc_root)]) == 0
    out = capsys.readouterr().out
    assert 'split grouped' in out and 'sample rates seen: 16000 Hz' in out and 'problems: none' in out
    for word in data.SPEECHCOMMANDS_WORDS:
        assert re.search(rf'^{word}\s+\d+\s+\d+\s+\d+\s+\d+$', out, re.M), word
    assert data.main(['stats', '--data', 'urbansound8k', '--root', str(us8k_root), '--split', 'official',
                      '--save-split', str(tmp_path / 's.json')]) == 0
    assert 'split official' in capsys.readouterr().out and (tmp_path / 's.json').is_file()
    assert data.main(['synth', '--kind', 'speechcommands', '--out', str(tmp_path / 'g'), '--speakers', '2',
                      '--max-reps', '1']) == 0
    assert (tmp_path / 'g' / 'testing_list.txt').is_file()
    (tmp_path / 'g' / 'yes' / sorted(os.listdir(tmp_path / 'g' / 'yes'))[0]).write_bytes(b'')
    assert data.main(['stats', '--data', 'speechcommands', '--root', str(tmp_path / 'g')]) == 2
    assert 'empty file (0 bytes)' in capsys.readouterr().err
    assert data.main(['cache', '--data', 'speechcommands', '--root', str(tmp_path / 'g'), '--cache',
                      str(tmp_path / 'cache'), '--skip-bad', '--workers', '1']) == 0
    assert 'skipped bad 1' in capsys.readouterr().out

def test_cli_stats_of_a_split_the_dataset_does_not_have_is_one_line(as_root, capsys):
    assert data.main(['stats', '--data', 'audioset', '--root', str(as_root), '--split', 'random']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'audioset has only its official split (--split official)' in err

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
                      f'{synth.AUTHORS_PREFIX}={authors_root / "Audioset"}']) == 0
    assert 'records per phase file: train_phase_0.txt' in capsys.readouterr().out

def test_cli_help(capsys):
    for args in ([], ['stats'], ['cache']):
        assert pytest.raises(SystemExit, data.main, [*args, '--help']).value.code == 0
        assert 'usage' in capsys.readouterr().out
    out = subprocess.run([sys.executable, str(HERE / 'data.py'), 'synth', '--help'], capture_output=True,
                         text=True).stdout  # as a script: synth.py then imports data.py beside __main__
    assert 'usage' in out and all(f in out for f in ('--kind', '--out', '--seed', '--n-train', '--n-eval', '--seconds',
                                                     '--speakers', '--clips-per-class', '--missing'))


# ===== synth.py: the generated stand-ins, byte for byte the same for a seed, made once
@pytest.mark.parametrize('kind,kwargs', [('speechcommands', dict(speakers=3, max_reps=1, noise_seconds=1.0)),
                                         ('urbansound8k', dict(clips_per_class=2)),
                                         ('audioset', dict(n_train=12, n_eval=6, seconds=0.5))])
def test_generators_deterministic(tmp_path, kind, kwargs):
    gen = getattr(synth, f'synth_{kind}')
    ha, hb, hc = (tree_hashes(gen(tmp_path / name, seed=seed, progress=False, **kwargs))
                  for name, seed in (('a', 3), ('b', 3), ('c', 4)))
    assert ha == hb and len(ha) > 5 and ha != hc
    audio = [k for k in ha if k.endswith(('.wav', '.flac')) and k in hc]
    assert all(ha[k] != hc[k] for k in audio)  # different seed -> different audio

def test_ensure_synth_redoes_a_generation_that_did_not_finish(tmp_path):
    root = tmp_path / 'as'
    (root / 'train').mkdir(parents=True)
    (root / 'train' / 'Yhalf_0.wav').write_bytes(b'RIFF')  # a killed generation: no synth.json
    synth.ensure_synth('audioset', root, n_train=20, n_eval=8, seconds=0.5, progress=False)
    ds = data.load_dataset('audioset', root)
    assert ds.synthetic['n_train'] == 20 and 'train/half_0' not in ds.keys

def test_ensure_synth_and_the_command_line(tmp_path, capsys):
    root = synth.ensure_synth('folder', tmp_path / 'tree', n_classes=2, clips_per_class=3, seconds=0.3, progress=False)
    assert json.loads((root / 'synth.json').read_text())['kind'] == 'folder'
    pytest.raises(data.DataError, synth.ensure_synth, 'folder', root, n_classes=3, progress=False).match(
        'other settings')
    assert data.main(['synth', '--kind', 'csv', '--out', str(tmp_path / 'own'), '--classes', '3', '--clips-per-class',
                      '6', '--seconds', '0.3', '--multilabel']) == 0
    assert data.main(['stats', '--data', 'csv', '--root', str(tmp_path / 'own'), '--csv',
                      str(tmp_path / 'own' / 'labels.csv')]) == 0
    out = capsys.readouterr().out
    assert 'dataset csv at' in out and 'split official' in out and 'classes per clip' in out
    assert data.main(['stats', '--data', 'folder', '--root', str(root)]) == 0
    assert 'split random' in capsys.readouterr().out
    pytest.raises(SystemExit, data.main, ['synth', '--kind', 'folder', '--out', str(tmp_path / 'x'), '--n-train', '3'])
    assert '--kind folder does not take --n-train' in capsys.readouterr().err

def test_a_full_disk_while_generating_data_is_one_line(tmp_path, monkeypatch, capsys):
    def full(path, *a, **k):  # libsndfile's only word for a full disk
        raise sf.LibsndfileError(2, f'Error opening {str(path)!r}: ')
    monkeypatch.setattr(synth.sf, 'write', full)
    monkeypatch.setattr(data.shutil, 'disk_usage', lambda folder: types.SimpleNamespace(free=0))
    pytest.raises(data.DataError, synth.ensure_synth, 'audioset', tmp_path / 'g', n_train=4, n_eval=2, seconds=0.5,
                  progress=False).match(r'generated audioset dataset in .*No space left on device\); free space')
    assert data.main(['synth', '--kind', 'speechcommands', '--out', str(tmp_path / 's'), '--speakers', '1',
                      '--max-reps', '1']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'No space left on device; free space there' in err
    ro = data.write_failure(OSError(errno.EROFS, os.strerror(errno.EROFS)))
    assert ro == ('Read-only file system', 'make it writable')


# ===== cil.py: flags, run folders, both learners end to end, resume, faults, locks, reports
# ---------------- flags and config: one-line errors before any folder
@pytest.mark.parametrize('argv, message', [  # SC, AS, ESC: --data synth-speechcommands, synth-audioset, synth-esc50
    (SC + ['--losses', 'ce_x'], "unknown term 'ce_x'"), (SC + ['--losses', ''], 'includes ce_n'),
    (SC + ['--losses', 'ce_n;ce_n,kd_x'], "unknown term 'kd_x'"),
    (SC + ['--seed', 'a'], "--seed 'a': expected whole numbers"), (SC + ['--memory', '200,abc'], '--memory'),
    (SC + ['--memory', '3'], 'every class needs at least one exemplar'), (SC + ['--heads', '5,7'], 'between 2 and 4'),
    (SC + ['--batch-size', '0'], '--batch-size 0 must be at least 1'),
    (SC + ['--lr-a', '-1'], '--lr-a -1.0 must be positive'), (SC + ['--epochs-base', '0'], 'must be at least 1'),
    (SC + ['--epochs', '5'], '--epochs applies only to multi-label'),
    (SC + ['--phases', '5,0'], 'every phase needs at least one class'),
    (AS + ['--losses', 'ce_n'], '--losses applies only to single-label'),
    (AS + ['--memory', '3'], 'smaller than the 50 classes'),
    (SC + ['--report', 'table1'], 'use kws-table1, kws-table2 or kws-figures'),
    (AS + ['--report', 'kws-table2'], 'use table1, table2 or figures'),
    (SC + ['--root', '/data/sc'], '--root is for the real datasets'),
    (AS + ['--mt-batching', 'shared'], 'give --heads too'), (AS + ['--pretrained', 'missing.pth'], 'no such file'),
    (SC + ['--seed', '-1'], 'seeds run from 0 to'), (SC + ['--split-seed', '-1'], '--split-seed -1 must be at least 0'),
    (SC + ['--freeze-upto', '9'], '--freeze-upto 9 must be in [0, 4]'),
    (AS + ['--precision', 'fp16', '--device', 'cpu'], 'fp16 needs a CUDA device'),
    # numbers out of range
    (AS + ['--lr', 'inf'], '--lr inf must be a finite number'),
    (AS + ['--lr-base', '1e308'], '--lr-base 1e+308 must be in [0, 10]'),
    (AS + ['--lr', 'nan'], '--lr nan must be a finite number'),
    (AS + ['--workers', '-3'], '--workers -3 must be at least 1'),
    (AS + ['--lr-min', '1'], '--lr-min 1.0 must be below the learning rates it anneals'),
    (AS + ['--width', '1e-6'], '--width 1e-06 must be at least 0.015625'),
    (AS + ['--T', '1e-30'], '--T 1e-30 must be at least 0.1'),
    (AS + ['--momentum', '1'], '--momentum 1.0 must be in [0, 0.999]'),
    (SC + ['--lr-min', '0.5', '--ft-mode', 'mittal'], 'must be below the learning'),
    # flags of one dataset given to another
    (['--data', 'csv'], '--data csv needs --csv FILE'), (AS + ['--csv', 'x.csv'], '--csv applies only to --data csv'),
    (ESC + ['--path-map', 'a=b'], '--path-map applies only to --data authors-txt'),
    (SC + ['--fold', '1'], '--fold applies only to --data csv / esc50'),
    (ESC + ['--fold', '1', '--split', 'grouped'], '--fold 1: a fold is the test part of the official split, not of '
     '--split grouped'),
])
def test_bad_flags_stop_with_one_line_before_any_folder(argv, message, tmp_path):
    stops_before_any_folder(argv, message, tmp_path)

def test_missing_root_and_device_are_one_line_errors(tmp_path):
    e = pytest.raises(SystemExit, cil.main, ['--method', 'mittal', '--data', 'speechcommands', '--root',
                                             str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'runs')])
    e.match('no such folder; point --root at the unpacked speechcommands')
    assert '--skip-bad' not in str(e.value.code)  # skipping cannot help a missing folder
    if not torch.cuda.is_available():
        pytest.raises(SystemExit, cil.pick_device, 'cuda').match('no CUDA device')
    pytest.raises(SystemExit, cil.pick_device, 'gpu0').match('not a device name')

def test_a_class_without_clips_is_named(us8k_root, tmp_path):
    root = copy_root(us8k_root, tmp_path)
    csv_path = root / 'metadata' / 'UrbanSound8K.csv'
    rows = csv_path.read_text().splitlines()
    csv_path.write_text('\n'.join([rows[0]] + [r for r in rows[1:] if ',dog_bark' not in r]) + '\n')
    pytest.raises(SystemExit, cil.main, ['--method', 'mittal', '--data', 'urbansound8k', '--root', str(root), '--out',
                                         str(tmp_path / 'runs'), '--cache', str(tmp_path / 'cache'), '--workers', '1',
                                         '--quiet']).match('no clip of dog_bark in .*restore its clips, or learn fewer')

def test_csv_and_dataset_flags_stop_with_one_line(csv_root, csv_ml_root, authors_root, tmp_path):
    ml, sl = (['--data', 'csv', '--csv', str(root / 'labels.csv')] for root in (csv_ml_root, csv_root))
    stops_before_any_folder(sl + ['--width', '0.5'], '--width applies only to multi-label', tmp_path)  # the learner
    stops_before_any_folder(ml + ['--losses', 'ce_n'], '--losses applies only to single-label', tmp_path)  # follows
    stops_before_any_folder(ml + ['--fold', '2'], f"--fold 2: {csv_ml_root / 'labels.csv'} has no fold column",
                            tmp_path)  # the labels
    stops_before_any_folder(['--data', 'authors-txt', '--root', str(authors_root), '--path-map', 'nothing'],
                            "--path-map 'nothing': write OLD=NEW", tmp_path)
    cfg = configure(*ml, '--split-seed', '3', '--split', 'random')
    assert cfg['data'] == 'csv-multilabel' and cfg['split'] == 'random' and cfg['split_seed'] == 3
    cfg = configure('--data', 'synth-esc50')
    assert cfg['split'] == 'official' and cfg['fold'] == 5 and cfg['phases'] == [10] * 5 and cfg['heads'] == '10,9,8,7'
    cfg = configure('--data', 'synth-esc50', '--split', 'grouped')
    assert cfg['split'] == 'grouped' and cfg['fold'] is None
    for name in ('synth-audioset', 'synth-speechcommands'):  # unchanged for the first datasets
        cfg = configure('--data', name)
        assert cfg['split'] == 'grouped' and cfg['fold'] is None

def test_default_data_root_and_its_error(as_tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('CIL_DATA', raising=False)
    msg = str(pytest.raises(SystemExit, cil.main, ['--method', 'iodfd', '--data', 'audioset']).value.code)  # no data
    assert '\n' not in msg and 'no dataset at data/audioset' in msg and 'audioset_train_strong.tsv' in msg
    assert 'CIL_DATA' in msg and not (tmp_path / 'runs').exists()
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'audioset').symlink_to(as_tiny)
    assert configure('--method', 'iodfd', '--data', 'audioset')['root'] == str(Path('data') / 'audioset')
    monkeypatch.setenv('CIL_DATA', str(tmp_path / 'elsewhere'))
    pytest.raises(SystemExit, cil.main, ['--method', 'mittal', '--data', 'esc50']).match(
        re.escape(f"no dataset at {tmp_path / 'elsewhere' / 'esc50'} ($CIL_DATA/esc50"))
    monkeypatch.setenv('CIL_DATA', str(tmp_path / 'data'))
    root = configure('--data', 'audioset')['root']
    assert root == str(tmp_path / 'data' / 'audioset') and len(data.load_dataset('audioset', root)) > 0

def test_torchrun_refuses_compile_and_picks_the_backend_by_gpus_per_process(monkeypatch):
    """--compile under torchrun is one line (SyncBatchNorm breaks dynamo's graph); NCCL with a GPU per process, gloo
    if they share one (GPU LOCAL_RANK mod count); the default group waits TRAIN_TIMEOUT, ALONE waits ALONE_TIMEOUT."""
    cfg = dict(data='synth-audioset', batch_size=32, heads=None, memory=None, fd_forward=None, compile=True,
               device='auto')
    monkeypatch.setenv('WORLD_SIZE', '2')
    pytest.raises(SystemExit, cil.start_processes, cfg).match(
        r'--compile .*SyncBatchNorm.* not supported under torchrun')
    calls = []
    monkeypatch.setattr(torch.distributed, 'init_process_group', lambda backend, timeout: calls.append((backend, timeout)))
    monkeypatch.setattr(torch.distributed, 'new_group', lambda backend, timeout: calls.append((backend, timeout)) or 'G')
    monkeypatch.setattr(torch.distributed, 'get_rank', lambda: 0)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'set_device', lambda device: None)
    monkeypatch.setenv('LOCAL_RANK', '1')
    monkeypatch.setattr(cil, 'ALONE', None)
    for gpus, backend, index in ((1, 'gloo', 0), (2, 'nccl', 1)):
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: gpus)
        calls.clear()
        assert cil.start_processes(dict(cfg, compile=False)) == torch.device('cuda', index)
        assert calls == [(backend, cil.TRAIN_TIMEOUT), ('gloo', cil.ALONE_TIMEOUT)] and cil.ALONE == 'G'
    assert cil.TRAIN_TIMEOUT <= datetime.timedelta(hours=1) < datetime.timedelta(hours=12) <= cil.ALONE_TIMEOUT

def test_torchrun_waits_long_only_where_rank_0_works_alone(tmp_path, monkeypatch):
    """The barrier after rank 0's folder lock (maybe hours) is on the ALONE group; those between steps: the default."""
    seen = []
    monkeypatch.setattr(methods, 'world', lambda: (0, 2))
    monkeypatch.setattr(torch.distributed, 'barrier', lambda group=None: seen.append(group))
    monkeypatch.setattr(cil, 'ALONE', 'alone')
    cil.run_once(tmp_path / 'run', types.SimpleNamespace(fingerprint={'data': 'x'}), str,
                 lambda: cil.sync() or {'summary': {}})
    assert seen == ['alone', None]
    seen.clear()
    model = models.SmallCNN(3)
    cil.shared_step(tmp_path / 'base', 'base.pt', model, lambda: (model, {'epochs': 1}), CPU, lambda *a, **k: None,
                    {'data': 'x'}, False)
    assert seen == ['alone', None, None]  # the lock; the fingerprint written; the checkpoint written

# ---------------- run folders: a hash of every setting that can change a result
def test_options_set_to_their_defaults_keep_the_run_folder():
    def key(*argv):
        return cil.run_hash(configure('--data', 'synth-speechcommands', *argv))
    assert key() == key('--classifier', 'linear', '--dropout', '0.5')
    assert len({key(), key('--classifier', 'cosine'), key('--dropout', '0')}) == 3
    pytest.raises(SystemExit, key, '--dropout', '1.5').match('must be in')
    pytest.raises(SystemExit, configure, '--data', 'synth-audioset', '--dropout', '0.2').match(
        '--dropout applies only to single-label')

def test_every_setting_that_can_change_a_result_names_a_new_run_folder():
    cfg = configure('--data', 'synth-audioset')
    def names(c):
        return cil.run_folder(c, 'iodfd').name, cil.run_folder(c, 'phase0').name
    base = names(cfg)
    assert names(dict(cfg, a_future_switch=False)) == base  # a switch left off is an unset option
    dummy = dict(cfg, a_future_flag=3)  # a setting no key list knows about
    assert names(dummy)[0] != base[0] and names(dummy)[1] != base[1]
    incremental = dict(cfg, lr=0.5)  # changes the incremental phases only: phase 0 stays shared
    assert names(incremental)[0] != base[0] and names(incremental)[1] == base[1]
    for key in cil.RUNNING:  # declared not to change a result
        assert names(dict(cfg, **{key: 'something else'})) == base, key
    (running,) = [g for g in cil.PARSER._action_groups if g.title.startswith('running')]
    assert {a.dest for a in running._group_actions} <= set(cil.RUNNING)  # the group is what the tuple names

# ---------------- end to end: the multi-label learner
def test_every_method_runs_and_phase0_is_trained_once(as_root, tmp_path, capsys):
    out = run_cil(as_root, tmp_path / 'runs', '--method', 'all', '--report', 'table1')
    (phase0,) = (out / 'audioset').glob('phase0-*')  # shared by all eight methods
    assert (phase0 / 'log.txt').read_text().count('phase 0 epoch') == 2
    for name in cil.METHOD_ORDER:
        d, m = run_dir(out, name), metrics(out, name)
        assert [r['n_classes'] for r in m['phases']] == [4, 6, 8]
        assert m['phases'][0] == json.loads((phase0 / 'record.json').read_text())
        assert set(m['summary']) >= {'f1', 'fr', 'map', 'map_binary'}
        assert all(0 <= r['f1'] <= 1 and 0 <= r['map'] <= 1 for r in m['phases'])
        for f in ('config.json', 'log.txt', 'phase1.pt', 'phase2.pt', 'table1.csv', 'table2.csv', 'phases.csv'):
            assert (d / f).exists(), (name, f)
        assert not (d / 'state.pt').exists()
    table = (out / 'results' / 'audioset' / 'table1.md').read_text()
    assert all(f'| {name.upper()} |' in table for name in cil.METHOD_ORDER)
    assert '| IODFD | yes | yes | yes |' in table and '| FE | - | - | - |' in table
    def weights(name, phase):
        return torch.load(run_dir(out, name) / f'phase{phase}.pt', weights_only=True)['model']
    # FE: backbone (weights and BN statistics) and the old classifier rows are bit-exact after phase 1
    base, fe = torch.load(phase0 / 'phase0.pt', weights_only=True)['model'], weights('fe', 1)
    for key in base:
        if key.startswith(('bn0', 'conv_block')):
            assert torch.equal(base[key], fe[key]), key
    assert torch.equal(base['fc.weight'], fe['fc.weight'][:4]) and torch.equal(base['fc.bias'], fe['fc.bias'][:4])
    assert torch.equal(fe['fc.weight'], weights('fe', 2)['fc.weight'][:6])  # phase 1's rows are old rows in phase 2
    ft = weights('ft', 1)  # FT changes the backbone and the old rows
    assert not torch.equal(base['conv_block1.conv1.weight'], ft['conv_block1.conv1.weight'])
    assert not torch.equal(base['fc.weight'], ft['fc.weight'][:4])
    # AT is a fresh learner on all seen classes: one classifier block of 8 rows, phase 0 not its start
    assert torch.load(run_dir(out, 'at') / 'phase2.pt', weights_only=True)['sizes'] == [8]

def test_paper_format_generated_audioset_runs_with_the_real_front_end(tmp_path):
    """synth --seconds 10 --sr 32000 (the paper's clips) is real data to --data audioset: PANNs front end, 1001 x 64."""
    root = tmp_path / 'as10'
    assert data.main(['synth', '--kind', 'audioset', '--out', str(root), '--seconds', '10', '--sr', '32000',
                      '--n-train', '12', '--n-eval', '6']) == 0
    ds = data.load_dataset('audioset', root)
    assert set(ds.sample_rates) == {32000} and sf.info(ds.paths[0]).frames == 320000
    assert data.frontend_config(ds) == dict(data.FRONTENDS['panns'], name='panns')
    out = run_cil(root, tmp_path / 'runs', '--method', 'iodfd', '--phases', '4,2')
    assert json.loads((run_dir(out, 'iodfd') / 'config.json').read_text())['frontend']['name'] == 'panns'
    (folder,) = (tmp_path / 'cache' / 'features').glob('audioset-*')
    assert json.loads((folder / 'manifest.json').read_text())['shape'] == [1001, 64]
    assert [r['n_classes'] for r in metrics(out, 'iodfd')['phases']] == [4, 6]

def test_multilabel_learner_with_multitask_heads_and_exemplar_memory(as_root, tmp_path):
    out = run_cil(as_root, tmp_path / 'runs', '--method', 'iodfd', '--heads', '4,3,2', '--memory', '16')
    m, log = metrics(out, 'iodfd'), (run_dir(out, 'iodfd') / 'log.txt').read_text()
    assert [r['n_classes'] for r in m['phases']] == [4, 6, 8]
    assert 0 < m['phases'][1]['memory_clips'] <= 4 * 2 and 0 < m['phases'][2]['memory_clips'] <= 6 * 2
    assert 'replay' in log and 'multitask heads [4, 3, 2]' in log
    (p0,) = (out / 'audioset').glob('phase0-*')
    assert 'bce_head2' in (p0 / 'log.txt').read_text()
    base = torch.load(p0 / 'phase0.pt', weights_only=True)['model']
    assert not any(k.startswith('aux_heads') for k in base)  # only head 0 goes forward

def test_nan_loss_stops_naming_phase_epoch_and_term(as_root, tmp_path, monkeypatch):
    monkeypatch.setattr(methods, 'fd_loss', lambda *a, **k: torch.tensor(float('nan')))
    pytest.raises(SystemExit, run_cil, as_root, tmp_path / 'runs', '--method', 'ifd').match(
        r'phase 1, epoch 1: loss term fd is nan')

def test_bf16_runs_on_the_cpu_in_its_own_run_folder(as_root, tmp_path):
    out = run_cil(as_root, tmp_path / 'runs', '--method', 'iod', '--phases', '4,2', '--precision', 'bf16')
    assert json.loads((run_dir(out, 'iod') / 'config.json').read_text())['precision'] == 'bf16'
    assert all(math.isfinite(r['f1']) and math.isfinite(r['map']) for r in metrics(out, 'iod')['phases'])
    fp32 = configure(*TINY, '--root', 'x', '--precision', 'fp32')
    auto = configure(*TINY, '--root', 'x', '--device', 'cpu')
    assert fp32['precision'] == auto['precision'] == 'fp32'  # fp32 (the paper's) keeps its run folders
    assert cil.run_hash(fp32) == cil.run_hash(auto)

# ---------------- end to end: the single-label learner, and both on your own CSV
def test_kws_run_end_to_end_and_table2(gsc_root, tmp_path):
    out = run_kws(gsc_root, tmp_path / 'runs', '--losses', 'ce_n;ce_n,ce_o,kd_n,kd_o', '--report', 'kws-table2',
                  '--exemplar-select', 'herding')
    runs = sorted((out / 'speechcommands').glob('mittal-*'))
    assert len(runs) == 2 and len(list((out / 'speechcommands').glob('base-*'))) == 1  # one shared base
    for d in runs:
        m = json.loads((d / 'metrics.json').read_text())
        assert len(m['acc']) == 3 and [len(r) for r in m['acc_matrix']] == [1, 2, 3]
        assert m['summary']['avg_excl_base'] == pytest.approx(np.mean(m['acc'][1:]))
        assert [s['memory'] for s in m['steps']] == [12, 10, 14] and [s['quota'] for s in m['steps']] == [4, 2, 2]
        assert m['steps'][0]['old_acc'] is None and m['steps'][0]['new_acc'] == m['acc'][0]
        split = json.loads(Path(m['split_file']).read_text())
        assert split['hash'] == m['split_hash'] and len(split['train']) + len(split['val']) + len(split['test']) > 0
        memory = torch.load(d / 'step2.pt', weights_only=True)['memory']
        assert sorted(memory['per_class']) == [str(c) for c in range(7)]
    table = (out / 'results' / 'speechcommands' / 'kws-table2.md').read_text()
    assert '| CE N |' in table and '| CE N + KD N + CE O + KD O |' in table

def test_kws_run_with_cosine_classifier(gsc_root, tmp_path):
    m, d = kws_metrics(run_kws(gsc_root, tmp_path / 'runs', '--classifier', 'cosine', '--losses', 'ce_n,ce_o'))
    assert len(m['acc']) == 3 and json.loads((d / 'config.json').read_text())['classifier'] == 'cosine'
    ck = torch.load(d / 'step2.pt', weights_only=True)['model']
    assert 'fc.sigma' in ck and 'fc.bias' not in ck and ck['fc.weight'].shape == (7, 64)
    model = cil.new_model({'data': 'speechcommands', 'classifier': None, 'dropout': 0.0}, None, 5)  # unset: paper's
    assert model.classifier == 'linear' and model.dropout.p == 0.0
    assert cil.new_model({'data': 'speechcommands'}, None, 5).dropout.p == 0.5

def test_both_learners_run_two_phases_on_a_csv(csv_root, csv_ml_root, tmp_path, capsys):
    tiny = ['--phases', '2,1', '--batch-size', '8', '--epochs-base', '1']
    runs = run_cil(None, tmp_path / 'sl' / 'runs', '--method', 'mittal', '--data', 'csv', '--csv',
                   str(csv_root / 'labels.csv'), '--memory', '6', '--heads', '2', '--epochs-a', '1', '--epochs-b', '1',
                   '--patience', '1', *tiny, argv=RUNNING)
    assert re.search(r'--data csv: 3 classes, clips of about 0\.5 s; single-label: the small CNN on the Speech '
                     r'Commands features .* split official', capsys.readouterr().out)
    (run,) = (runs / 'csv-singlelabel').glob('mittal-*')
    m = json.loads((run / 'metrics.json').read_text())
    assert len(m['acc']) == 2 and m['class_order'] == data.load_csv(csv_root, csv=csv_root / 'labels.csv').classes
    runs = run_cil(None, tmp_path / 'ml' / 'runs', '--method', 'iodfd', '--data', 'csv', '--csv',
                   str(csv_ml_root / 'labels.csv'), '--width', '0.0625', '--epochs', '1', '--phases', '3,1',
                   '--batch-size', '8', '--epochs-base', '1', argv=RUNNING)
    assert "multi-label (';' in the label column): CNN14 (width 0.0625) on a PANNs log-mel of 1 s" in \
        capsys.readouterr().out
    (run,) = (runs / 'csv-multilabel').glob('iodfd-*')
    config = json.loads((run / 'config.json').read_text())
    assert config['data'] == 'csv-multilabel' and config['frontend']['seconds'] == 1.0
    assert [r['n_classes'] for r in json.loads((run / 'metrics.json').read_text())['phases']] == [3, 4]

# ---------------- resume: a stopped run continues to the same numbers
@pytest.mark.parametrize('stop_at, sigterm', [(2, False), (4, False), (3, True)],
                         ids=['ctrl-c-in-phase-0', 'ctrl-c-in-phase-1', 'sigterm-in-phase-1'])  # phase 0 is shared
def test_resume_equals_an_uninterrupted_run(ref_iodfd, as_root, tmp_path, monkeypatch, stop_at, sigterm):
    e = stopped(monkeypatch, stop_at, run_cil, as_root, tmp_path / 'runs', '--method', 'iodfd', sigterm=sigterm)
    assert not sigterm or e.match('stopped by SIGTERM; run the same command again')
    assert '\n' not in str(e.value.code).strip()  # one line
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the command
    out = run_cil(as_root, tmp_path / 'runs', '--method', 'iodfd')
    assert metrics(ref_iodfd, 'iodfd')['phases'] == metrics(out, 'iodfd')['phases']
    final_a, final_b = (torch.load(run_dir(o, 'iodfd') / 'phase2.pt', weights_only=True)['model']
                        for o in (ref_iodfd, out))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    assert sigterm or 'resuming after epoch' in (run_dir(out, 'iodfd') / 'log.txt').read_text() + ''.join(
        p.read_text() for p in (out / 'audioset').glob('phase0-*/log.txt'))

def test_truncated_checkpoint_is_reported_not_loaded(as_root, tmp_path, monkeypatch):
    stopped(monkeypatch, 4, run_cil, as_root, tmp_path / 'runs', '--method', 'iod')
    state = run_dir(tmp_path / 'runs', 'iod') / 'state.pt'
    state.write_bytes(state.read_bytes()[:5000])
    pytest.raises(SystemExit, run_cil, as_root, tmp_path / 'runs', '--method', 'iod').match(
        'state.pt: truncated or corrupt checkpoint')

def test_kws_resume_mid_step_equals_uninterrupted(ref_kws, gsc_root, tmp_path, monkeypatch):
    stopped(monkeypatch, 3, run_kws, gsc_root, tmp_path / 'runs', name='mittal_epoch')  # step 1, second stage
    (a, _), (b, d) = kws_metrics(ref_kws), kws_metrics(run_kws(gsc_root, tmp_path / 'runs'))
    assert (a['acc'], a['acc_matrix'], a['summary']) == (b['acc'], b['acc_matrix'], b['summary'])
    assert 'resuming after epoch' in (d / 'log.txt').read_text()

def test_checkpoint_cadence_writes_state_at_phase_ends_and_resume_stays_exact(ref_iodfd, as_root, tmp_path,
                                                                              monkeypatch):
    writes, real_write = [], cil.write
    monkeypatch.setattr(cil, 'write', lambda obj, path: writes.append(Path(path).name) or real_write(obj, path))
    stopped(monkeypatch, 4, run_cil, as_root, tmp_path / 'runs', '--method', 'iodfd', '--checkpoint-minutes', '10')
    assert writes.count('state.pt') == 1  # stopped in phase 1's 2nd epoch: phase 0's last written, not phase 1's 1st
    out = run_cil(as_root, tmp_path / 'runs', '--method', 'iodfd', '--checkpoint-minutes', '10')
    assert metrics(ref_iodfd, 'iodfd')['phases'] == metrics(out, 'iodfd')['phases']

def test_torchrun_trains_one_run_on_two_processes_writes_once_and_resumes(as_root, tmp_path):
    """torchrun, 2 CPU processes (gloo): rank 0 alone logs and writes; a run cut after phase 1 resumes exactly."""
    def torchrun():
        out = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', 'cil.py', *TINY,
                              '--root', str(as_root), '--cache', str(tmp_path / 'cache'), '--out',
                              str(tmp_path / 'runs'), '--method', 'iodfd', '--device', 'cpu'], cwd=HERE,
                             capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout
    torchrun()
    d, first = run_dir(tmp_path / 'runs', 'iodfd'), metrics(tmp_path / 'runs', 'iodfd')
    assert json.loads((d / 'config.json').read_text())['processes'] == 2  # the process count names the run
    assert (d / 'log.txt').read_text().count('phase 2 epoch 2/2') == 1  # one writer
    cut = dict(first, phases=first['phases'][:2])
    del cut['summary']
    (d / 'metrics.json').write_text(json.dumps(cut))
    (d / 'phase2.pt').unlink()
    torchrun()
    assert metrics(tmp_path / 'runs', 'iodfd')['phases'] == first['phases'] and 'finished earlier' in torchrun()

# ---------------- faults: damaged checkpoints and records, signals, full and read-only folders
@pytest.mark.parametrize('damage', ['truncate', 'delete'])
def test_a_damaged_phase_checkpoint_is_trained_again_from_the_one_before(ref_iod, as_root, tmp_path, monkeypatch,
                                                                         damage):
    stopped(monkeypatch, 5, run_cil, as_root, tmp_path / 'runs', '--method', 'iod')  # phase 2's 1st epoch (0, 1: 2)
    ck = run_dir(tmp_path / 'runs', 'iod') / 'phase1.pt'
    ck.write_bytes(ck.read_bytes()[:4000]) if damage == 'truncate' else ck.unlink()
    run_cil(as_root, tmp_path / 'runs', '--method', 'iod')
    assert metrics(ref_iod, 'iod')['phases'] == metrics(tmp_path / 'runs', 'iod')['phases']
    assert 'phase1.pt is missing or damaged: phase 1 is trained again' in (
        run_dir(tmp_path / 'runs', 'iod') / 'log.txt').read_text()

def test_a_run_stopped_before_its_summary_finishes_on_the_rerun(as_root, tmp_path, monkeypatch):
    real, runs = cil.write, tmp_path / 'runs'  # the run tables come before the summary: the rerun writes both
    def write(obj, path):
        if Path(path).name == 'metrics.json' and 'summary' in obj:
            raise KeyboardInterrupt
        real(obj, path)
    monkeypatch.setattr(cil, 'write', write)
    pytest.raises(SystemExit, run_cil, as_root, runs, '--method', 'fe').match('interrupted')
    assert (run_dir(runs, 'fe') / 'table1.csv').exists() and 'summary' not in metrics(runs, 'fe')
    monkeypatch.setattr(cil, 'write', real)
    monkeypatch.setattr(methods, 'train_epoch', lambda *a, **k: pytest.fail('every phase is done'))
    assert 'summary' in metrics(run_cil(as_root, runs, '--method', 'fe'), 'fe')
    assert not (run_dir(runs, 'fe') / 'state.pt').exists() and (run_dir(runs, 'fe') / 'phases.csv').exists()

def test_truncated_records_are_rebuilt_and_a_finished_run_is_shown_without_writing(as_root, tmp_path, monkeypatch,
                                                                                   capsys):
    out = run_cil(as_root, tmp_path / 'runs', '--method', 'ifd')
    d, ref = run_dir(out, 'ifd'), metrics(out, 'ifd')
    (p0,) = (out / 'audioset').glob('phase0-*')
    for path in (d / 'metrics.json', p0 / 'record.json'):
        path.write_text(path.read_text()[:100])
    monkeypatch.setattr(methods, 'train_epoch', lambda *a, **k: pytest.fail('nothing needs training'))
    run_cil(as_root, out, '--method', 'ifd')
    log = (d / 'log.txt').read_text()
    assert metrics(out, 'ifd') == ref and 'metrics.json is unreadable' in log and 'finished earlier' in log
    capsys.readouterr()
    writes = []
    def read_only(obj, path):  # as on a read-only mount
        writes.append(Path(path))
        raise cil.RunError(f'cannot write {path}: Read-only file system')
    monkeypatch.setattr(cil, 'write', read_only)
    monkeypatch.setattr(cil.Log, '__call__', lambda *a, **k: pytest.fail('a finished run writes no log'))
    run_cil(as_root, out, '--method', 'ifd', '--report', 'table1')
    text = capsys.readouterr().out
    assert '== ifd: F1' in text and 'finished earlier' in text and '| IFD |' in text and 'not saved' in text
    assert writes == [out / 'results' / 'audioset' / 'table1.md']  # only the report tries to save

def test_a_damaged_step_checkpoint_is_trained_again(ref_kws, gsc_root, tmp_path, monkeypatch):
    stopped(monkeypatch, 5, run_kws, gsc_root, tmp_path / 'runs', name='mittal_epoch')  # step 2, after step 1 (2 + 2)
    step1 = next((tmp_path / 'runs' / 'speechcommands').glob('mittal-*')) / 'step1.pt'
    step1.write_bytes(step1.read_bytes()[:3000])
    (a, _), (b, d) = kws_metrics(ref_kws), kws_metrics(run_kws(gsc_root, tmp_path / 'runs'))
    assert a['acc'] == b['acc'] and a['summary'] == b['summary']
    assert 'step1.pt is damaged: step 1 is trained again' in (d / 'log.txt').read_text()

def test_an_unreadable_base_record_trains_the_base_again_from_scratch(ref_kws, gsc_root, tmp_path):
    out = run_kws(gsc_root, tmp_path / 'runs', '--losses', 'ce_n')
    (base,) = (out / 'speechcommands').glob('base-*')
    (base / 'record.json').write_text('{"val_')
    run_kws(gsc_root, out, '--losses', 'ce_n,ce_o')  # a new run needs the base: it is trained again
    (ref_base,) = (ref_kws / 'speechcommands').glob('base-*')  # the base of every loss set
    a, b = (torch.load(p / 'base.pt', weights_only=True)['model'] for p in (ref_base, base))
    assert all(torch.equal(a[k], b[k]) for k in a)  # from the same start as the first time, not from its weights
    assert 'trained again' in (next((out / 'speechcommands').glob('mittal-*ce_o*')) / 'log.txt').read_text()

@pytest.mark.parametrize('wrapped', [False, True])
def test_a_full_disk_under_out_is_one_line_and_leaves_no_temporary_file(as_root, tmp_path, monkeypatch, wrapped):
    real = torch.save
    def full(obj, f, *a, **k):
        if Path(getattr(f, 'name', '')).name.startswith('state.pt'):
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                if wrapped:  # what torch.save raises on a full disk: its zip writer's error, the OSError as context
                    raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 1208512 vs 1208408')
                raise
        return real(obj, f, *a, **k)
    monkeypatch.setattr(torch, 'save', full)
    e = pytest.raises(SystemExit, run_cil, as_root, tmp_path / 'runs', '--method', 'ft')
    assert e.match(r'cannot write .*state.pt: No space left on device; free space') and '\n' not in str(e.value.code)
    assert not list((tmp_path / 'runs').rglob('*.tmp'))

# ---------------- locks and fingerprints: a folder never mixes two commands, two datasets or two environments
def test_two_commands_on_one_run_folder_train_it_once(as_root, tmp_path):
    """The same command twice: the second waits (one line) at each locked folder, then reuses the first's work."""
    out = tmp_path / 'runs'
    args = TINY + ['--root', str(as_root), '--cache', str(tmp_path / 'cache'), '--out', str(out)]
    run_cil(as_root, tmp_path / 'warm', '--method', 'ft', '--epochs', '1')  # the feature cache, once
    procs = [subprocess.Popen([sys.executable, 'cil.py', *args, '--method', method], cwd=HERE, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for method in ('iod', 'iod', 'ifd')]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    (p0,) = (out / 'audioset').glob('phase0-*')
    assert (p0 / 'log.txt').read_text().count('phase 0 epoch 2/2') == 1  # phase 0 trained once for all three
    assert (run_dir(out, 'iod') / 'log.txt').read_text().count('phase 2 epoch 2/2') == 1  # iod trained once
    assert sum('finished earlier' in o for o, _ in outputs) == 1  # the other iod showed its results
    assert any('waiting for' in e for _, e in outputs) and not list(out.rglob('lock'))

def test_run_folders_refuse_other_data_or_threads_unless_restarted(as_root, tmp_path, monkeypatch):
    root, runs, args = copy_root(as_root, tmp_path, 'as'), tmp_path / 'runs', ('--method', 'iod', '--phases', '4,2')
    run_cil(root, runs, *args)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 7)
    run_cil(root, runs, *args)  # finished results are shown on another thread count
    path = run_dir(runs, 'iod') / 'metrics.json'
    cut = json.loads(path.read_text())
    del cut['summary']
    path.write_text(json.dumps(cut))  # ... but an unfinished run is not continued there
    e = pytest.raises(SystemExit, run_cil, root, runs, *args)
    assert e.match(r'computed with other inputs: threads \d+ -> 7\. Run the same command with --restart')
    assert '\n' not in str(e.value.code)
    monkeypatch.undo()
    run_cil(root, runs, *args)  # back on the same threads: continued
    ds = data.load_dataset('audioset', root)
    Path(ds.paths[int(np.flatnonzero(ds.subset == 'train')[0])]).unlink()  # a clip deleted between two commands
    pytest.raises(SystemExit, run_cil, root, runs, *args).match(
        r'the data \(clips or their content\); .*clips \d+ -> \d+')
    run_cil(root, runs, *args, '--restart')
    m = metrics(runs, 'iod')
    assert m['missing_clips'] >= 1 and metrics(run_cil(root, tmp_path / 'fresh', *args), 'iod')['phases'] == m['phases']
    fp = run_dir(runs, 'iod') / 'fingerprint.json'
    fp.write_text(fp.read_text()[:40])  # a damaged fingerprint does not switch the check off
    pytest.raises(SystemExit, run_cil, root, runs, *args).match('fingerprint.json is unreadable')
    run_cil(root, runs, *args, '--restart')
    tsv = root / data.AUDIOSET_TSV['train']
    rows = tsv.read_text().splitlines()
    mids = [r.split('\t')[-1] for r in rows[1:]]
    a, b = sorted(set(mids))[:2]
    tsv.write_text('\n'.join([rows[0]] + [r.rsplit('\t', 1)[0] + '\t' + {a: b, b: a}.get(mid, mid)
                                          for r, mid in zip(rows[1:], mids)]) + '\n')  # two labels swapped
    pytest.raises(SystemExit, run_cil, root, runs, *args).match(r'other inputs: the labels\. Run')

# ---------------- reports
def test_kws_figures_use_only_the_commands_loss_set(gsc_root, tmp_path, monkeypatch):
    out = run_kws(gsc_root, tmp_path / 'runs', '--losses', 'ce_n;ce_n,ce_o')  # both rows at heads 3,2, K 14
    seen = []
    monkeypatch.setattr(ev, 'kws_figures', lambda runs, out_dir: seen.append(sorted(runs)) or [])
    run_kws(gsc_root, out, '--losses', 'ce_n,ce_o', '--report', 'kws-figures')
    assert seen == [[('3,2', 14, 'ce_n,ce_o')]]

def test_kws_timing_table(gsc_root, tmp_path):
    out = run_kws(gsc_root, tmp_path / 'runs', '--report', 'kws-table1', '--timing-epochs', '2')
    table = (out / 'results' / 'speechcommands' / 'kws-table1.md').read_text()
    assert '| [3] |' in table and '| [3, 2] |' in table

def test_kws_several_seeds_report_mean_and_std(gsc_root, tmp_path):
    out = run_kws(gsc_root, tmp_path / 'runs', '--losses', 'ce_n,ce_o', '--seed', '0,1', '--report', 'kws-table2')
    assert len(list((out / 'speechcommands').glob('mittal-*'))) == 2
    table = (out / 'results' / 'speechcommands' / 'kws-table2.md').read_text()
    assert '| CE N + CE O |' in table and ' +- ' in table and 'seeds [0, 1]' in table
    assert '| Losses | Avg incl. base | Forgetting | BWT |' in table
    (row,) = json.loads((out / 'results' / 'speechcommands' / 'kws-table2.json').read_text()).values()
    forgetting = [json.loads((d / 'metrics.json').read_text())['summary']['forgetting']
                  for d in sorted((out / 'speechcommands').glob('mittal-*'))]
    assert row['forgetting']['mean'] == pytest.approx(np.mean(forgetting)) and len(row['acc_step2']['values']) == 2
    assert row['forgetting']['std'] == pytest.approx(np.std(forgetting)) and 'forgetting_group1' in row

def test_od_dropout_check_runs_from_a_shared_phase0(ref_iodfd, as_root, monkeypatch, capsys):
    """bench/od_dropout_check.py (README's L_OD experiment) reads the shared phase 0 through cil's API."""
    script = HERE / 'bench' / 'od_dropout_check.py'
    monkeypatch.setattr(sys, 'argv', [str(script), *TINY, '--root', str(as_root), '--cache',
                                      str(ref_iodfd.parent / 'cache'), '--out', str(ref_iodfd), '--results',
                                      str(ref_iodfd / 'results'), '--epochs', '1'])
    runpy.run_path(str(script), run_name='__main__')  # in this process: no second torch import
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith('| ') and ' / ' in line]
    assert [r.split(' | ')[0][2:] for r in rows] == ['train', 'dropout-only', 'eval', 'forward-only']
    assert len({r.split(' | ')[1].split(' / ')[0] for r in rows}) == 1  # every mode starts from the same phase 0
    evals = rows[2].split(' | ')[1].rstrip(' |').split(' / ')
    assert len(evals) == 2 and len(set(evals)) == 1  # eval mode: L_OD is exactly 0, nothing moves


# ===== Each module copied alone into an empty folder, and used
STANDALONE = '''
import types, numpy as np, torch, methods, models
torch.manual_seed(0)
rs, cpu = np.random.RandomState(0), torch.device('cpu')
# multi-label: phase 0 (4 classes) then phase 1 of IODFD (+2 classes), on random log-mels
x, y0 = torch.randn(24, 50, 64), (rs.rand(24, 4) < 0.4).astype(np.float32)
y0[0] = 1
model = methods.train_multilabel(models.Cnn14(4, width=1 / 16), methods.METHODS['ft'], x, y0, phase=0, epochs=1,
                                 lr=0.01, seed=0, device=cpu, batch_size=8)
y1, seen = (rs.rand(24, 2) < 0.5).astype(np.float32), []
model = methods.train_multilabel(model, methods.METHODS['iodfd'], x, y1, phase=1, epochs=2, lr=0.001, seed=0,
                                 device=cpu, batch_size=8, on_epoch=seen.append)
assert model.fc.out_features == 6 and [s['epoch'] for s in seen] == [1, 2]
assert sorted(seen[-1]['terms']) == ['bce', 'fd', 'od'], seen[-1]['terms']
# single-label: one Mittal step (3 base classes + 2) with a memory of 10 exemplars
xs, labels, train, val = torch.randn(60, 32, 32), np.arange(60) % 5, np.arange(0, 45), np.arange(45, 60)
phase = types.SimpleNamespace(k=1, n_old=3, n_new=2, n_seen=5, seen_classes=np.arange(5), train=train[labels[train] >= 3],
                              train_y=labels[train][labels[train] >= 3], val=val, val_y=labels[val])
small, memory = models.SmallCNN(3), methods.ExemplarMemory(10)
for c in range(3):
    memory.set(c, methods.select_random(train[labels[train] == c], 3, seed=0, class_id=c))
small, memory, info = methods.mittal_step(small, memory, xs, phase, losses=methods.MITTAL_TERMS, seed=0, device=cpu,
                                          batch_size=8, epochs_a=2, epochs_b=2, patience=5)
assert small.fc.out_features == 5 and info['quota'] == 2 and len(memory) == 10, (info, len(memory))
assert set(info['epochs']) == {'A', 'B'}
print('standalone ok')
'''
ALONE = {  # module(s) copied -> code run in the folder (PYTHONPATH emptied)
    ('features.py',): "import numpy as np, features; y = np.random.RandomState(0).randn(32000).astype(np.float32); "
                      "assert features.log_mel(y).shape == (101, 64)",
    ('models.py',): "import torch, models; z, f = models.Cnn14(5, width=1 / 16)(torch.randn(2, 101, 64)); "
                    "assert z.shape == (2, 5); assert models.SmallCNN(3)(torch.randn(2, 32, 32))[0].shape == (2, 3)",
    ('evaluate.py',): "import sys, numpy as np, evaluate; assert evaluate.f1_macro(np.eye(3), np.eye(3)) == 1.0; "
                      "bad = {'torch', 'matplotlib'} & set(sys.modules); assert not bad, bad",  # nor the project's
    ('methods.py', 'models.py'): STANDALONE,  # a phase and a Mittal step train from methods and models alone
    ('data.py', 'features.py'): "import data, sys; root = sys.argv[1]; ds, cache = data.prepare('speechcommands', root, "
                                "'cache', workers=1, progress=False); assert cache.read([0]).shape == (1, 32, 32)",
    ('synth.py', 'data.py', 'features.py'): "import synth, data; synth.ensure_synth('folder', 'own', n_classes=2, "
                                            "clips_per_class=3, seconds=0.3, progress=False); "
                                            "assert len(data.load_dataset('folder', 'own')) == 6",
}

@pytest.mark.parametrize('names', list(ALONE))
def test_each_module_runs_copied_alone(names, gsc_root, tmp_path):
    for name in names:
        shutil.copy(HERE / name, tmp_path / name)
    r = subprocess.run([sys.executable, '-c', ALONE[names], str(gsc_root)], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=''))
    assert r.returncode == 0, r.stderr
    assert ALONE[names] != STANDALONE or 'standalone ok' in r.stdout
