"""Tests of the whole project (pytest). Reference values computed once with librosa 0.11, PANNs'
own Cnn14 and scikit-learn are stored under testdata/ (the scripts there say how); none of those
packages is needed to run the tests."""
import copy
import json
import math
import pathlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

import evaluate as ev
import features
import methods
import models

TESTDATA = Path(__file__).parent / 'testdata'
torch.set_num_threads(min(2, torch.get_num_threads()))


# =============================================================================
# models.py

def panns_like_state_dict(bn_stats=None, n_classes=527, seed=1234):
    """A PANNs-layout Cnn14 state dict with deterministic random weights (numpy RandomState is stable
    across numpy versions). Front-end tensors are computed here from their textbook formulas, and
    the mel matrix comes from librosa (stored), so the load-time check is against independent values.
    bn_stats: {name: running_mean/var array} (stored in testdata, calibrated on the test clips)."""
    rs = np.random.RandomState(seed)
    golden = np.load(TESTDATA / 'panns_golden.npz')
    n_fft = 1024
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    sd = {'spectrogram_extractor.stft.conv_real.weight': np.cos(2 * np.pi * k * n / n_fft) * hann,
          'spectrogram_extractor.stft.conv_imag.weight': -np.sin(2 * np.pi * k * n / n_fft) * hann,
          'logmel_extractor.melW': golden['librosa_melW']}
    sd = {key: v[:, None, :] if 'conv_' in key else v for key, v in sd.items()}

    def xavier(shape):
        fan_in = shape[1] * int(np.prod(shape[2:]))
        fan_out = shape[0] * int(np.prod(shape[2:]))
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rs.uniform(-bound, bound, size=shape)

    def bn(prefix, c):
        sd[prefix + '.weight'] = 1.0 + 0.1 * rs.standard_normal(c)
        sd[prefix + '.bias'] = 0.1 * rs.standard_normal(c)
        sd[prefix + '.running_mean'] = np.zeros(c) if bn_stats is None else bn_stats[prefix + '.running_mean']
        sd[prefix + '.running_var'] = np.ones(c) if bn_stats is None else bn_stats[prefix + '.running_var']
        sd[prefix + '.num_batches_tracked'] = np.array(1, dtype=np.int64)

    bn('bn0', 64)
    cin = 1
    for i, cout in enumerate((64, 128, 256, 512, 1024, 2048), 1):
        sd[f'conv_block{i}.conv1.weight'] = xavier((cout, cin, 3, 3))
        sd[f'conv_block{i}.conv2.weight'] = xavier((cout, cout, 3, 3))
        bn(f'conv_block{i}.bn1', cout)
        bn(f'conv_block{i}.bn2', cout)
        cin = cout
    sd['fc1.weight'] = xavier((2048, 2048))
    sd['fc1.bias'] = 0.01 * rs.standard_normal(2048)
    sd['fc_audioset.weight'] = xavier((n_classes, 2048))
    sd['fc_audioset.bias'] = 0.01 * rs.standard_normal(n_classes)
    return {key: torch.from_numpy(np.asarray(v)) if v.dtype == np.int64 else torch.from_numpy(np.asarray(v, np.float32))
            for key, v in sd.items()}


@pytest.fixture(scope='module')
def panns_golden():
    return dict(np.load(TESTDATA / 'panns_golden.npz'))


@pytest.fixture(scope='module')
def panns_state(panns_golden):
    bn_stats = {k[len('bn_stats/'):]: v for k, v in panns_golden.items() if k.startswith('bn_stats/')}
    return panns_like_state_dict(bn_stats)


@pytest.fixture(scope='module')
def panns_checkpoint(tmp_path_factory, panns_state):
    path = tmp_path_factory.mktemp('panns') / 'Cnn14_random.pth'
    torch.save({'iteration': 0, 'model': panns_state}, path)  # the released checkpoints' layout
    return path


def test_cnn14_parameter_counts_match_panns():
    assert models.count_parameters(models.Cnn14(527, head='panns')) == 80_753_615
    cil = models.Cnn14(30)
    assert models.count_parameters(cil) == 75_538_910
    for n_new, expected in zip((5, 5, 5, 5), (75_549_155, 75_559_400, 75_569_645, 75_579_890)):
        cil.grow(n_new)
        assert models.count_parameters(cil) == expected


def test_cnn14_state_dict_keys_are_panns_keys(panns_state):
    ours = models.Cnn14(527, head='panns').state_dict()
    ref = [k for k in panns_state if k not in models.PANNS_FRONT_END_KEYS]
    assert list(ours) == ref  # same names, same order, same count (81 = 84 - 3 front-end tensors)
    assert all(ours[k].shape == panns_state[k].shape and ours[k].dtype == panns_state[k].dtype for k in ref)
    cil_keys = list(models.Cnn14(30).state_dict())
    assert cil_keys == ref[:-4] + ['fc.weight', 'fc.bias'] and len(cil_keys) == 79


def test_panns_checkpoint_loads_and_matches_panns_logits(panns_checkpoint, panns_golden):
    model = models.load_panns_checkpoint(models.Cnn14(527, head='panns'), str(panns_checkpoint)).eval()
    wave = torch.from_numpy(panns_golden['wave'])
    with torch.no_grad():
        # fed PANNs' own log-mel: equal up to float32 summation order
        logits, _ = model(torch.from_numpy(panns_golden['panns_logmel']))
        assert np.abs(logits.numpy() - panns_golden['panns_logits']).max() < 1e-5
        emb, fmap = model.embed(torch.from_numpy(panns_golden['panns_logmel']))
        assert fmap.shape == (2, 2048, 3, 2)
        assert np.abs(torch.relu(model.fc1(emb)).numpy() - panns_golden['panns_embedding']).max() < 1e-5
        # with our own front end on the same waveform
        logmel = models.LogMel()(wave)
        assert np.abs(logmel.numpy() - panns_golden['panns_logmel'][:, 0]).max() < 0.05
        logits, _ = model(logmel)
        assert np.abs(logits.numpy() - panns_golden['panns_logits']).max() < 2e-3
    # the logits are not trivially small: the comparison above means something
    assert np.abs(panns_golden['panns_logits']).max() > 1.0


def test_panns_checkpoint_backbone_loads_into_cil_learner(panns_checkpoint, panns_golden):
    fresh = models.Cnn14(30)
    torch.manual_seed(0)
    model = models.load_panns_checkpoint(models.Cnn14(30), str(panns_checkpoint))
    sd = torch.load(panns_checkpoint, weights_only=True)['model']
    for key, value in model.state_dict().items():
        if key.startswith(('bn0', 'conv_block')):
            assert torch.equal(value, sd[key]), key
    assert model.fc.weight.shape == (30, 2048)
    bound = 1 / math.sqrt(2048)  # nn.Linear default init, as the authors' code
    assert model.fc.weight.abs().max() <= bound and model.fc.weight.std() > bound / 3
    assert not torch.equal(model.conv_block1.conv1.weight, fresh.conv_block1.conv1.weight)


def test_panns_checkpoint_front_end_mismatch_is_a_clear_error(panns_state):
    ckpt = {'model': dict(panns_state)}
    ckpt['model']['logmel_extractor.melW'] = panns_state['logmel_extractor.melW'] * 1.01
    with pytest.raises(ValueError, match='logmel_extractor.melW differs'):
        models.load_panns_checkpoint(models.Cnn14(30), ckpt)
    with pytest.raises(ValueError, match='differs'):  # a 32 kHz checkpoint against a 16 kHz front end
        models.load_panns_checkpoint(models.Cnn14(30), {'model': dict(panns_state)},
                                     front_end=models.LogMel(sample_rate=16000, n_fft=1024, hop_length=160,
                                                             fmax=8000))


def test_truncated_checkpoint_is_reported(tmp_path, panns_checkpoint):
    bad = tmp_path / 'truncated.pth'
    bad.write_bytes(Path(panns_checkpoint).read_bytes()[:10000])
    with pytest.raises(ValueError, match='cannot read'):
        models.load_panns_checkpoint(models.Cnn14(30), str(bad))


def test_logmel_torch_agrees_with_panns_config(panns_golden):
    fe = models.LogMel()
    melW = fe.melW.numpy()
    assert np.abs(melW - panns_golden['librosa_melW']).max() < 1e-6
    out = fe(torch.from_numpy(panns_golden['wave']))
    assert out.shape == (2, 101, 64) and out.dtype == torch.float32
    assert np.abs(out.numpy() - panns_golden['librosa_logmel']).max() < 0.05


def test_classifier_growth_keeps_old_rows_bit_exact():
    torch.manual_seed(0)
    model = models.Cnn14(6, width=1 / 32)
    old_w, old_b = model.fc.weight.detach().clone(), model.fc.bias.detach().clone()
    model.grow(3)
    assert model.fc.weight.shape == (9, 64)
    assert torch.equal(model.fc.weight[:6], old_w) and torch.equal(model.fc.bias[:6], old_b)
    assert not torch.equal(model.fc.weight[6:], torch.zeros(3, 64))
    # a state dict round trip restores every row into a model grown the same way
    other = models.Cnn14(6, width=1 / 32)
    other.grow(3)
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.fc.weight, model.fc.weight)
    with pytest.raises(RuntimeError, match='grow the model'):
        models.Cnn14(6, width=1 / 32).load_state_dict(model.state_dict())


def test_frozen_old_rows_and_backbone_stay_bit_exact_under_sgd():
    torch.manual_seed(0)
    model = models.Cnn14(4, width=1 / 32)
    model.grow(2)
    model.fc.freeze_old()
    model.freeze_backbone()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                          weight_decay=5e-4)
    model.train()
    for _ in range(3):
        logits, _ = model(torch.randn(4, 64, 64))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.rand(4, 6).round())
        opt.zero_grad()
        loss.backward()
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
        assert logits.shape == (2, n)
        assert torch.allclose(logits, model.classify(emb, head))
    model.drop_aux_heads()
    assert len(model.aux_heads) == 0


@pytest.mark.parametrize('shape', [(128, 85), (32, 32)])
def test_model_shapes_on_both_input_sizes(shape):
    small = models.SmallCNN(4)
    logits, emb = small(torch.randn(3, *shape))
    assert logits.shape == (3, 4) and emb.shape == (3, 64)
    logits, emb = small(torch.randn(3, 1, *shape))
    assert logits.shape == (3, 4)
    assert models.count_parameters(small) == 65_376 + 65 * 4
    cnn = models.Cnn14(4, mel_bins=shape[1], width=1 / 16).eval()
    logits, fmap = cnn(torch.randn(2, *shape))
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


# =============================================================================
# methods.py: every loss against a value computed by hand (numpy, float64) on a fixed tiny batch

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
    bce_new = _np_bce(Z[:, 3:], Y_NEW, pw)
    bce_all = _np_bce(Z, np.hstack([np.zeros((3, 3)), Y_NEW]), pw)
    od, fd = _np_kd(Z[:, :3], Z_TEACHER, T), _np_cos_loss(FEAT, FEAT_TEACHER)
    expected = {'ft': bce_all, 'fe': bce_new, 'indl': bce_new, 'od': bce_all + lam * od,
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
    a, b = FEAT.reshape(3, -1), FEAT_TEACHER.reshape(3, -1)
    per_sample = np.mean([_np_cos_loss(x, y) for x, y in zip(a, b)])
    assert methods.fd_loss(_t(FEAT), _t(FEAT_TEACHER), per_sample=True).item() == pytest.approx(per_sample, rel=1e-12)
    assert methods.fd_loss(_t(FEAT), _t(FEAT), per_sample=False).item() == pytest.approx(0.0, abs=1e-12)
    assert methods.pos_weight_of(torch.tensor([[1, 0, 0], [0, 0, 1]])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match='no positive'):
        methods.pos_weight_of(torch.zeros(4, 3))


def test_kws_loss_terms_equal_hand_computed_values():
    y_n, y_o, n_old, lam, T = np.array([3, 4, 3]), np.array([0, 2, 4]), 3, 9.55, 2.0
    z_o = Z[::-1].copy()

    def ce(z, y):
        return np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])
    expected = {'ce_n': ce(Z[:, 3:], y_n - 3), 'ce_o': ce(z_o, y_o),
                'kd_n': lam * _np_kd(Z[:, :3], Z_TEACHER, T), 'kd_o': lam * _np_kd(z_o[:, :3], Z_TEACHER[::-1], T)}
    total, terms = methods.kws_loss(methods.KWS_TERMS, _t(Z), torch.tensor(y_n), n_old, _t(z_o), torch.tensor(y_o),
                                    _t(Z_TEACHER), _t(Z_TEACHER[::-1].copy()), lam=lam, T=T)
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-12), name
    assert total.item() == pytest.approx(sum(expected.values()), rel=1e-12)
    _, terms = methods.kws_loss(('ce_n',), _t(Z), torch.tensor(y_n), n_old, ce_new_logits='all')
    assert list(terms) == ['ce_n'] and terms['ce_n'].item() == pytest.approx(ce(Z, y_n), rel=1e-12)


# =============================================================================
# features.py against librosa 0.11 (testdata/features_golden.npz, made by testdata/make_golden_features.py)

GOLDEN_PATH = pathlib.Path(__file__).parent / "testdata" / "features_golden.npz"
with np.load(GOLDEN_PATH) as _npz:
    G = {k: _npz[k] for k in _npz.files}
CLIP_SR = {str(n): int(sr) for n, sr in zip(G["clips"], G["clip_sr"])}
SPECTRAL_CLIPS = [n for n in CLIP_SR if n != "panns"]  # analysed at n_fft 2048 / hop 512

DB_TOL = 0.05  # dB, log-mel and mel spectrogram
CHROMA_TOL = 1e-5  # chroma_stft and tonnetz
CONTRAST_TOL = 1e-3  # dB
FB_TOL = 1e-6  # mel filterbank weights


def clip(name):
    return G[f"{name}__y"], CLIP_SR[name]


def quiet(fn, *args, **kwargs):
    """Call fn with the expected warnings (short clip, empty tuning set) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_close(actual, expected, atol, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()
    assert err <= atol, f"{what}: max abs error {err:.3g} > {atol:g}"


def test_goldens_are_from_librosa_0_11():
    assert str(G["versions"][0]).startswith("librosa 0.11"), G["versions"]


# ---------------------------------------------------------------- mel scale and filterbank

def test_mel_scale_values_and_roundtrip():
    assert features.hz_to_mel(1000.0) == pytest.approx(15.0)  # Slaney: linear part ends at 15
    assert features.hz_to_mel(500.0) == pytest.approx(7.5)
    assert features.hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4
    assert features.hz_to_mel(1000.0, htk=True) == pytest.approx(2595 * np.log10(1 + 1000 / 700))
    f = np.array([0.0, 50.0, 999.0, 1000.0, 4000.0, 14000.0])
    for htk in (False, True):
        np.testing.assert_allclose(features.mel_to_hz(features.hz_to_mel(f, htk=htk), htk=htk), f,
                                   rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("key, args, kwargs", [
    ("fb_panns", (32000, 1024), dict(n_mels=64, fmin=50.0, fmax=14000.0)),
    ("fb_us8k", (22050, 2048), dict(n_mels=60)),
    ("fb_htk", (16000, 512), dict(n_mels=40, fmin=20.0, fmax=7600.0, htk=True, norm=None)),
])
def test_mel_filterbank_matches_librosa(key, args, kwargs):
    fb = features.mel_filterbank(*args, **kwargs)
    assert fb.dtype == np.float32
    assert fb.shape == (kwargs["n_mels"], 1 + args[1] // 2)
    assert_close(fb, G[key], FB_TOL, key)


def test_mel_filterbank_norms():
    slaney = features.mel_filterbank(32000, 1024, n_mels=64, fmin=50.0, fmax=14000.0)
    plain = features.mel_filterbank(32000, 1024, n_mels=64, fmin=50.0, fmax=14000.0, norm=None)
    assert plain.max() <= 1.0 and plain.max() > 0.9  # unnormalised triangles peak near 1
    assert slaney[:, 0].max() == 0.0 and slaney[:, 448:].max() == 0.0  # DC and > 14 kHz unused
    with pytest.raises(ValueError):
        features.mel_filterbank(16000, 512, norm="l2")


# ---------------------------------------------------------------- STFT

def test_stft_complex_matches_librosa_short_clip():
    y, _ = clip("short")  # 1500 samples < n_fft: librosa warns but still pads and frames
    with pytest.warns(UserWarning, match="too large"):
        D = features.stft(y, n_fft=2048, hop_length=512)
    assert D.dtype == np.complex64  # float32 input -> complex64 output, as librosa
    assert D.shape == (1025, 1 + 1500 // 512)
    ref = G["short__stft"]
    assert np.abs(D - ref).max() <= 1e-6 * np.abs(ref).max()


def test_stft_win_length_no_center_matches_librosa():
    y, _ = clip("noise")
    D = features.stft(y[:4000], n_fft=512, hop_length=128, win_length=400, center=False)
    assert D.shape == (257, 1 + (4000 - 512) // 128)
    ref = G["noise__stft_mag_nocenter"]
    assert np.abs(np.abs(D) - ref).max() <= 1e-6 * ref.max()


def test_stft_center_false_too_short_raises():
    with pytest.raises(ValueError, match="n_fft"):
        features.stft(np.zeros(1000, dtype=np.float32), n_fft=2048, center=False)


def test_stft_framing_and_dtypes():
    y = np.random.RandomState(0).randn(5000)  # float64
    D = features.stft(y, n_fft=1024)  # hop defaults to 1024 // 4
    assert D.dtype == np.complex128 and D.shape == (513, 1 + 5000 // 256)
    # frame t is centred on y[t*hop]: frame 3 equals the rfft of the windowed centred slice
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    seg = y[3 * 256 - 512: 3 * 256 + 512]
    np.testing.assert_allclose(D[:, 3], np.fft.rfft(seg * win), atol=1e-9)
    with pytest.raises(ValueError):
        features.stft(np.zeros(4096, dtype=np.int16))


# ---------------------------------------------------------------- mel spectrogram, dB

@pytest.mark.parametrize("name", SPECTRAL_CLIPS)
def test_melspectrogram_db_matches_librosa(name):
    y, sr = clip(name)
    mel = quiet(features.melspectrogram, y=y, sr=sr)
    assert mel.shape == (128, 1 + len(y) // 512) and mel.dtype == np.float32
    assert_close(features.power_to_db(mel), G[f"{name}__mel_db"], DB_TOL, name)
    if f"{name}__mel_db_reflect" in G:
        mel_r = quiet(features.melspectrogram, y=y, sr=sr, pad_mode="reflect")
        assert_close(features.power_to_db(mel_r), G[f"{name}__mel_db_reflect"], DB_TOL,
                     name + " reflect")


def test_melspectrogram_power_htk_and_S_input():
    y, sr = clip("tones")
    mel = features.melspectrogram(y=y, sr=sr)
    ref = G["tones__mel_power"]
    assert np.abs(mel - ref).max() <= 1e-5 * ref.max()
    S = np.abs(features.stft(y, n_fft=2048, hop_length=512)) ** 2
    np.testing.assert_array_equal(features.melspectrogram(S=S, sr=sr), mel)
    y, sr = clip("harmonic")
    htk = features.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=256, n_mels=40, htk=True,
                                  norm=None, fmin=30.0, fmax=8000.0)
    assert_close(features.power_to_db(htk), G["harmonic__mel_db_htk"], DB_TOL, "htk")


def test_power_to_db_is_per_array():
    rs = np.random.RandomState(1)
    loud = rs.rand(8, 10).astype(np.float32) + 1.0  # ~0..3 dB
    quiet_clip = (rs.rand(8, 10).astype(np.float32) + 1.0) * 1e-5  # ~-50 dB, spread < 80 dB
    per_clip = features.power_to_db(quiet_clip)
    np.testing.assert_allclose(per_clip, 10 * np.log10(quiet_clip), atol=1e-4)  # not clipped
    batched = features.power_to_db(np.stack([loud, quiet_clip]))[1]
    # in a batch the floor is max(loud) - 80 dB, so nothing is clipped here either ...
    np.testing.assert_allclose(batched, per_clip, atol=1e-4)
    very_quiet = quiet_clip * 1e-4  # ~-87..-90 dB: below the loud clip's max - 80
    batched = features.power_to_db(np.stack([loud, very_quiet]))[1]
    alone = features.power_to_db(very_quiet)
    np.testing.assert_allclose(alone, 10 * np.log10(very_quiet), atol=1e-4)  # per clip: intact
    floor = features.power_to_db(loud).max() - 80.0
    assert np.all(batched == np.float32(floor))  # in a batch: flattened to the loud clip's floor
    # floor, ref, top_db=None
    S = np.array([1.0, 1e-3, 1e-12], dtype=np.float32)
    np.testing.assert_allclose(features.power_to_db(S, top_db=None), [0.0, -30.0, -100.0],
                               atol=1e-4)
    np.testing.assert_allclose(features.power_to_db(S, top_db=20.0), [0.0, -20.0, -20.0],
                               atol=1e-4)
    np.testing.assert_allclose(features.power_to_db(S * 10, ref=np.max, top_db=None),
                               [0.0, -30.0, -110.0], atol=1e-4)


# ---------------------------------------------------------------- tuning, chroma, tonnetz

@pytest.mark.parametrize("name", SPECTRAL_CLIPS)
def test_estimated_tuning_equals_librosa(name):
    y, sr = clip(name)
    S = np.abs(quiet(features.stft, y, n_fft=2048, hop_length=512)) ** 2
    tuning = quiet(features.estimate_tuning, S, sr, n_fft=2048)
    assert tuning == float(G[f"{name}__tuning"])


def test_pitch_tuning_and_piptrack():
    f = 440.0 * 2 ** (np.array([0.255, 0.256, 0.257, -0.1]) / 12)
    assert features.pitch_tuning(f) == pytest.approx(0.25)  # left edge of the fullest bin
    assert features.pitch_tuning(440.0 * 2 ** (0.605 / 12)) == pytest.approx(-0.4)  # folded
    with pytest.warns(UserWarning, match="empty"):
        assert features.pitch_tuning(np.array([0.0, -5.0])) == 0.0
    # hand-made plateau: localmax is strict on the left, >= on the right, so only bin 100
    # counts; parabola through (0, 1, 1) peaks half a bin up; mag = 1 + 0.5 * 0.5 * 0.5
    S = np.zeros((1025, 2), dtype=np.float32)
    S[100:102, 0] = 1.0
    S[300, 1] = 1.0  # 3230 Hz: inside [150, 4000)
    S[500, 1] = 2.0  # 5383 Hz: above fmax, never a candidate
    pitches, mags = features.piptrack(S, 22050, n_fft=2048)
    assert np.count_nonzero(pitches[:, 0]) == 1 and np.count_nonzero(pitches[:, 1]) == 1
    assert pitches[100, 0] == pytest.approx(100.5 * 22050 / 2048)
    assert mags[100, 0] == pytest.approx(1.125)
    assert pitches[300, 1] == pytest.approx(300 * 22050 / 2048) and mags[300, 1] == 1.0
    y, sr = clip("tones")
    S = np.abs(features.stft(y)) ** 2
    pitches, mags = features.piptrack(S, sr, n_fft=2048)
    assert pitches.shape == S.shape and mags.shape == S.shape
    found = pitches[pitches > 0]
    assert found.min() >= 150.0 and found.max() < 4000.0
    assert np.any(np.abs(found - 446.2) < 3.0)  # the 446.2 Hz tone is found


def test_chroma_filterbank_matches_librosa():
    fb = features.chroma_filterbank(22050, 2048, tuning=0.23)
    assert fb.dtype == np.float32 and fb.shape == (12, 1025)
    assert_close(fb, G["chroma_fb_tuned"], FB_TOL, "chroma filterbank")


@pytest.mark.parametrize("name", SPECTRAL_CLIPS)
def test_chroma_and_tonnetz_match_librosa(name):
    y, sr = clip(name)
    chroma = quiet(features.chroma_stft, y=y, sr=sr)  # tuning=None: estimated, as librosa
    assert chroma.shape == (12, 1 + len(y) // 512) and chroma.dtype == np.float32
    assert_close(chroma, G[f"{name}__chroma"], CHROMA_TOL, name + " chroma")
    ton = features.tonnetz(chroma=chroma)
    assert ton.shape == (6, chroma.shape[1])
    assert_close(ton, G[f"{name}__tonnetz"], CHROMA_TOL, name + " tonnetz")


def test_chroma_tuning_argument_and_tonnetz_from_y():
    y, sr = clip("harmonic")
    est = features.chroma_stft(y=y, sr=sr)
    tuning = features.estimate_tuning(np.abs(features.stft(y)) ** 2, sr, n_fft=2048)
    np.testing.assert_array_equal(features.chroma_stft(y=y, sr=sr, tuning=tuning), est)
    assert np.abs(features.chroma_stft(y=y, sr=sr, tuning=0.0) - est).max() > 1e-3
    np.testing.assert_allclose(est.max(axis=0), 1.0, rtol=1e-6)  # inf-norm per frame
    # tonnetz(y=...) is tonnetz of chroma_stft (not librosa's chroma_cqt default)
    np.testing.assert_array_equal(features.tonnetz(y=y, sr=sr), features.tonnetz(chroma=est))


# ---------------------------------------------------------------- spectral contrast

@pytest.mark.parametrize("name", SPECTRAL_CLIPS)
def test_spectral_contrast_matches_librosa(name):
    y, sr = clip(name)
    contrast = quiet(features.spectral_contrast, y=y, sr=sr)
    assert contrast.shape == (7, 1 + len(y) // 512)
    assert_close(contrast, G[f"{name}__contrast"], CONTRAST_TOL, name + " contrast")


def test_spectral_contrast_empty_bands_after_upsampling():
    # up8k has (almost) nothing above 4 kHz: the top bands are set by rounding and top_db,
    # which only an exact (float64-FFT, whole-array top_db) implementation reproduces
    y, sr = clip("up8k")
    contrast = features.spectral_contrast(y=y, sr=sr)
    assert_close(contrast[5:], G["up8k__contrast"][5:], CONTRAST_TOL, "empty bands")
    mag = np.abs(features.stft(y))
    np.testing.assert_array_equal(features.spectral_contrast(S=mag, sr=sr), contrast)


@pytest.mark.parametrize("sr", [8000, 11025, 12800])
def test_spectral_contrast_above_nyquist_raises(sr):
    y = np.random.RandomState(0).randn(sr).astype(np.float32)
    with pytest.raises(ValueError, match="Nyquist"):
        features.spectral_contrast(y=y, sr=sr)


# ---------------------------------------------------------------- silence

def test_silent_clip_gives_zeros_and_no_nan():
    y, sr = clip("silent")
    chroma = quiet(features.chroma_stft, y=y, sr=sr)
    assert not np.isnan(chroma).any() and np.all(chroma == 0.0)
    ton = features.tonnetz(chroma=chroma)
    assert not np.isnan(ton).any() and np.all(ton == 0.0)
    contrast = features.spectral_contrast(y=y, sr=sr)
    assert not np.isnan(contrast).any() and np.all(contrast == 0.0)
    mel_db = features.power_to_db(features.melspectrogram(y=y, sr=sr))
    np.testing.assert_allclose(mel_db, -100.0, atol=1e-3)  # 10 log10(amin = 1e-10)
    np.testing.assert_allclose(features.log_mel(np.zeros(32000, dtype=np.float32)), -100.0,
                               atol=1e-3)
    us8k = quiet(features.urbansound8k_features, y, sr)
    assert not np.isnan(us8k).any()


# ---------------------------------------------------------------- PANNs log-mel

def test_log_mel_matches_librosa_panns_config():
    y, sr = clip("panns")
    lm = features.log_mel(y, sr)
    assert lm.dtype == np.float32 and lm.shape == (1 + len(y) // 320, 64)  # (frames, mels)
    assert_close(lm, G["panns__log_mel"], DB_TOL, "log_mel")
    assert lm.min() == pytest.approx(-100.0, abs=1e-3)  # digital silence, no top_db


def test_log_mel_batch_equals_per_clip():
    y, sr = clip("panns")
    batch = np.stack([y, y[::-1].copy() * 0.1])
    out = features.log_mel(batch, sr)
    assert out.shape == (2, 1 + len(y) // 320, 64) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], features.log_mel(y, sr))
    np.testing.assert_array_equal(out[1], features.log_mel(batch[1], sr))
    assert features.log_mel(np.zeros(320000, dtype=np.float32)).shape == (1001, 64)


# ---------------------------------------------------------------- resampling and recipes

def test_resample():
    y = np.sin(2 * np.pi * 440.0 * np.arange(44100) / 44100).astype(np.float32)
    out = features.resample(y, 44100, 22050)
    assert out.dtype == np.float32 and len(out) == 22050
    assert features.resample(y, 44100, 44100) is y
    z = features.resample(y[:1001], 44100, 32000)  # up 320 / down 441
    assert len(z) == math.ceil(1001 * 320 / 441)
    np.testing.assert_allclose(z, scipy.signal.resample_poly(y[:1001], 320, 441), atol=1e-6)
    spec = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spec) * 22050 / len(out) - 440.0) < 2.0  # pitch preserved


@pytest.mark.parametrize("name", ["bursts", "harmonic"])
def test_urbansound8k_features_match_librosa(name):
    y, sr = clip(name)
    feats = features.urbansound8k_features(y, sr)
    assert feats.shape == (128, 85) and feats.dtype == np.float32
    ref = G[f"{name}__us8k"]
    assert_close(feats[:, :60], ref[:, :60], DB_TOL, "log-mel")
    assert_close(feats[:, 60:78], ref[:, 60:78], CHROMA_TOL, "chroma + tonnetz")
    assert_close(feats[:, 78:], ref[:, 78:], CONTRAST_TOL, "contrast")


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
    y, sr = clip("sr16k")
    feats = features.speechcommands_features(y, sr)
    assert feats.shape == (32, 32) and feats.dtype == np.float32  # (frames, mels)
    assert_close(feats, G["sr16k__speechcommands"], DB_TOL, "speechcommands")
    short = features.speechcommands_features(y[:12000].astype(np.float64), sr)  # zero-padded
    assert short.shape == (32, 32) and short.dtype == np.float32
    y8 = features.resample(y, 16000, 8000)
    assert features.speechcommands_features(y8, 8000).shape == (32, 32)
    np.testing.assert_array_equal(features.speechcommands_features(np.concatenate([y, y]), sr),
                                  feats)  # cropped to the first second
    with pytest.raises(ValueError):
        features.speechcommands_features(np.stack([y, y]), sr)  # mono only


def test_recipe_configs_are_hashable_json():
    for cfg in (features.LOG_MEL_CONFIG, features.URBANSOUND8K_CONFIG,
                features.SPEECHCOMMANDS_CONFIG):
        assert json.loads(json.dumps(cfg, sort_keys=True)) == cfg
    assert features.URBANSOUND8K_CONFIG["n_samples"] == 3 * features.URBANSOUND8K_CONFIG["sr"]


# =============================================================================
# evaluate.py against scikit-learn (testdata/metrics_golden.npz, made by testdata/make_golden_metrics.py)

GOLDEN = pathlib.Path(__file__).parent / "testdata" / "metrics_golden.npz"
TOL = 1e-12


# ------------------------------------------------------------------ golden values (sklearn)
def _golden_cases():
    d = np.load(GOLDEN)
    out = []
    for i in range(int(d["n_cases"])):
        k = f"c{i}_"
        out.append(pytest.param({name[len(k):]: d[name] for name in d.files
                                 if name.startswith(k)}, id=str(d["case_names"][i])))
    return out


@pytest.mark.parametrize("case", _golden_cases())
def test_multilabel_metrics_match_sklearn_golden(case):
    y = case["y_true"]
    s = case["y_score"].astype(np.float64)
    thr = float(case["threshold"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert abs(ev.f1_macro(y, s, thr) - case["f1_macro"]) <= TOL
        np.testing.assert_allclose(ev.f1_per_class(y, s, thr), case["f1_per_class"],
                                   rtol=0, atol=TOL)
        ap = ev.average_precision_per_class(y, s)
        np.testing.assert_allclose(ap, case["ap_per_class"], rtol=0, atol=TOL)
        ap_cols = [ev.average_precision(y[:, c], s[:, c]) for c in range(y.shape[1])]
        np.testing.assert_allclose(ap_cols, case["ap_per_class"], rtol=0, atol=TOL)
        assert abs(ev.mean_average_precision(y, s) - case["ap_macro"]) <= TOL
        assert abs(ev.map_binary(y, s, thr) - case["map_binary"]) <= TOL
        # bool targets and 0/1 prediction "scores" are accepted too
        pred = ev.binarize(s, thr)
        assert abs(ev.f1_macro(y.astype(bool), pred) - case["f1_macro"]) <= TOL
        assert abs(ev.mean_average_precision(y, pred) - case["map_binary"]) <= TOL





# ------------------------------------------------------------------ multi-label, by hand
def test_average_precision_hand_values():
    # ranks 1 and 3 are positives: (1/1 + 2/3) / 2
    assert ev.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)
    # a tie block is one threshold: both positives get precision 2/3 at the block end
    assert ev.average_precision([1, 0, 1], [0.5, 0.5, 0.5]) == pytest.approx(2 / 3)
    assert ev.average_precision([0, 1, 1, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(2 / 3)
    assert ev.average_precision([1, 1], [0.2, 0.3]) == 1.0
    # order of tied samples does not matter
    assert ev.average_precision([1, 0, 0, 1], [0.5, 0.5, 0.4, 0.4]) == \
        ev.average_precision([0, 1, 1, 0], [0.5, 0.5, 0.4, 0.4])


def test_average_precision_no_positive_and_empty():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ev.average_precision([0, 0, 0], [0.9, 0.1, 0.5]) == 0.0
        assert ev.average_precision([], []) == 0.0
        np.testing.assert_array_equal(
            ev.average_precision_per_class(np.zeros((0, 3)), np.zeros((0, 3))), np.zeros(3))
        assert math.isnan(ev.mean_average_precision(np.zeros((5, 0)), np.zeros((5, 0))))
        assert math.isnan(ev.f1_macro(np.zeros((5, 0)), np.zeros((5, 0))))
        np.testing.assert_array_equal(ev.f1_per_class(np.zeros((0, 2)), np.zeros((0, 2))),
                                      [0.0, 0.0])


def test_threshold_is_strict_like_authors_code():
    y = np.array([[1], [1], [0]])
    s = np.array([[0.5], [0.6], [0.4]])          # 0.5 is NOT a positive (torch.gt)
    assert ev.f1_per_class(y, s)[0] == pytest.approx(2 * 1 / (2 + 1))
    assert ev.binarize(s).ravel().tolist() == [False, True, False]
    assert ev.f1_per_class(y, s, threshold=0.45)[0] == 1.0


def test_f1_zero_division_and_simple_counts():
    y = np.array([[0, 1, 1, 0], [0, 0, 1, 1], [0, 1, 0, 0]])
    s = np.array([[0.1, 0.9, 0.2, 0.7], [0.2, 0.1, 0.9, 0.8], [0.3, 0.8, 0.1, 0.9]])
    # class0: no pos, no pred -> 0; class1: tp2 -> 1; class2: tp1 fn1 -> 2/3;
    # class3: tp1 fp2 -> 2/4
    np.testing.assert_allclose(ev.f1_per_class(y, s), [0.0, 1.0, 2 / 3, 0.5])
    assert ev.f1_macro(y, s) == pytest.approx((1 + 2 / 3 + 0.5) / 4)


def test_map_binary_never_predicted_class_gets_prevalence():
    y = np.array([[1], [0], [0], [1], [0]])
    s = np.array([[0.4], [0.3], [0.2], [0.1], [0.0]])
    assert ev.map_binary(y, s) == pytest.approx(2 / 5)
    # R1 * P1 + (1 - R1) * prevalence: one of two positives predicted, one false positive
    s2 = np.array([[0.9], [0.8], [0.2], [0.1], [0.0]])
    assert ev.map_binary(y, s2) == pytest.approx(0.5 * 0.5 + 0.5 * 0.4)


def test_input_validation():
    with pytest.raises(ValueError):
        ev.f1_macro(np.ones((2, 2)), np.full((2, 2), np.nan))
    with pytest.raises(ValueError):
        ev.average_precision([1, 0], [np.nan, 0.1])
    with pytest.raises(ValueError):
        ev.mean_average_precision(np.array([[2, 0]]), np.array([[0.1, 0.2]]))
    with pytest.raises(ValueError):
        ev.f1_macro(np.ones((2, 3)), np.ones((2, 2)))





def test_weight_norms():
    W = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(ev.weight_norms(W), [5.0, 0.0, math.sqrt(2)])
    assert ev.weight_norms(np.zeros((0, 4))).shape == (0,)


def test_multilabel_phase_record_groups():
    # 4 seen classes: base = first 2, the phase added the last 1
    y = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]])
    s = np.array([[0.9, 0.1, 0.2, 0.8], [0.1, 0.1, 0.9, 0.1], [0.9, 0.9, 0.1, 0.1]])
    per = ev.f1_per_class(y, s)                  # [1, 2/3, 1, 1]
    r = ev.multilabel_phase_record(y, s, n_base=2, n_new=1)
    assert r["n_classes"] == 4
    assert r["f1"] == pytest.approx(per.mean())
    assert r["f1_base"] == pytest.approx(per[:2].mean())
    assert r["f1_old"] == pytest.approx(per[:3].mean())
    assert r["f1_new"] == pytest.approx(per[3])
    assert r["map"] == pytest.approx(ev.mean_average_precision(y, s))
    assert r["map_binary"] == pytest.approx(ev.map_binary(y, s))
    r0 = ev.multilabel_phase_record(y, s, n_base=4)           # phase 0: all classes new
    assert math.isnan(r0["f1_old"]) and r0["f1_new"] == pytest.approx(r0["f1"])
    assert r0["f1_base"] == pytest.approx(r0["f1"])


def test_forgetting_and_table1_averages():
    assert ev.forgetting_f1([0.452, 0.40, 0.35]) == pytest.approx([0.0, 0.052, 0.102])
    assert ev.forgetting_f1([]) == []
    # FT forgetting everything: its average Fr equals its phase-0 F1
    recs = [{"f1": 0.452, "f1_base": 0.452, "map": 0.297, "map_binary": 0.2}]
    recs += [{"f1": f, "f1_base": 0.0, "map": m, "map_binary": 0.1}
             for f, m in [(0.06, 0.1), (0.04, 0.09), (0.03, 0.08), (0.021, 0.07)]]
    t = ev.table1_averages(recs)
    assert t["fr"] == pytest.approx(0.452)
    assert t["f1"] == pytest.approx((0.452 + 0.06 + 0.04 + 0.03 + 0.021) / 5)
    assert t["map"] == pytest.approx((0.297 + 0.1 + 0.09 + 0.08 + 0.07) / 5)
    assert t["map_binary"] == pytest.approx((0.2 + 4 * 0.1) / 5)
    assert t["fr_per_phase"] == pytest.approx([0.0, 0.452, 0.452, 0.452, 0.452])
    one = ev.table1_averages(recs[:1])
    assert math.isnan(one["fr"]) and one["f1"] == pytest.approx(0.452)
    assert "map_binary" not in ev.table1_averages([{"f1": 1, "f1_base": 1, "map": 1}])


# ------------------------------------------------------------------ single-label (kws)
def test_accuracy_logits_and_predictions():
    y = np.array([0, 1, 2, 2])
    logits = np.array([[2.0, 1, 0], [0, 3, 1], [0, 5, 1], [0, 0, 9]])
    assert ev.accuracy(y, logits) == 0.75
    assert ev.accuracy(y, [0, 1, 1, 2]) == 0.75
    assert math.isnan(ev.accuracy([], []))
    assert math.isnan(ev.accuracy(np.zeros(0, int), np.zeros((0, 3))))
    with pytest.raises(ValueError):
        ev.accuracy([0, 1], [0])


def test_group_and_old_new_accuracy():
    groups = [[0, 1], [2], [3]]
    y = np.array([0, 1, 1, 2, 2, 3])
    pred = np.array([0, 1, 0, 2, 3, 3])
    assert ev.group_accuracies(y, pred, groups) == pytest.approx([2 / 3, 1 / 2, 1.0])
    old, new = ev.old_new_accuracy(y, pred, groups, 2)
    assert old == pytest.approx(3 / 5) and new == 1.0
    old0, new0 = ev.old_new_accuracy(y, pred, groups, 0)
    assert math.isnan(old0) and new0 == pytest.approx(2 / 3)
    assert math.isnan(ev.group_accuracies(y, pred, [[7]])[0])


def test_paper_table2_avg():
    acc = [60.23, 43.79, 35.73, 29.46, 26.22]   # paper Avg excludes the base step
    assert ev.avg_incremental([90.0] + acc) == pytest.approx(39.086)
    assert ev.avg_including_base(acc) == pytest.approx(sum(acc) / 5)
    assert math.isnan(ev.avg_incremental([50.0]))


def test_forgetting_and_bwt_hand_matrix():
    ragged = [[0.9],
              [0.7, 0.8],
              [0.75, 0.6, 0.85],
              [0.5, 0.65, 0.7, 0.9]]
    # forgetting: j0 max(.9,.7,.75)-.5=.4; j1 max(.8,.6)-.65=.15; j2 .85-.7=.15 -> .7/3
    assert ev.forgetting(ragged) == pytest.approx(0.7 / 3)
    # bwt: (.5-.9) + (.65-.8) + (.7-.85) = -.7 -> -.7/3
    assert ev.bwt(ragged) == pytest.approx(-0.7 / 3)
    square = np.full((4, 4), np.nan)
    for t, row in enumerate(ragged):
        square[t, :t + 1] = row
    assert ev.forgetting(square) == pytest.approx(0.7 / 3)
    assert ev.bwt(square) == pytest.approx(-0.7 / 3)
    s = ev.kws_summary([0.9, 0.8, 0.7, 0.6], ragged)
    assert s["avg_excl_base"] == pytest.approx(0.7)
    assert s["avg_incl_base"] == pytest.approx(0.75)
    assert s["forgetting"] == pytest.approx(0.7 / 3) and s["bwt"] == pytest.approx(-0.7 / 3)
    # forgetting uses the max over earlier steps, not the diagonal: it can exceed -bwt
    m = [[0.5], [0.9, 0.8], [0.6, 0.7, 0.9]]
    assert ev.forgetting(m) == pytest.approx(((0.9 - 0.6) + (0.8 - 0.7)) / 2)
    assert ev.bwt(m) == pytest.approx(((0.6 - 0.5) + (0.7 - 0.8)) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(ev.forgetting([[0.9]])) and math.isnan(ev.bwt([[0.9]]))


def test_torch_log_mel_agrees_with_numpy_log_mel(panns_golden):
    wave = panns_golden['wave']
    ours = models.LogMel()(torch.from_numpy(wave)).numpy()
    ref = features.log_mel(wave)
    assert ref.shape == ours.shape == (2, 101, 64)
    assert np.abs(ours - ref).max() < 0.05  # dB (measured: float32 rounding only)
