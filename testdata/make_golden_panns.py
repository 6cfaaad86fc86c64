"""Regenerate testdata/panns_golden.npz: reference outputs of PANNs' own Cnn14 on two test clips.

Needs what the project itself does not: librosa 0.11, torchlibrosa 0.1.0, and a checkout of
qiuqiangkong/audioset_tagging_cnn (its pytorch/ folder holds models.py and pytorch_utils.py):

    python testdata/make_golden_panns.py --panns-dir PATH/TO/audioset_tagging_cnn/pytorch

The weights are test_cil.panns_like_state_dict (deterministic); its BatchNorm running statistics are
first calibrated on the test clips (cumulative batch statistics, dropout off) so that activations
stay at unit scale and the stored logits are O(1), which makes a 2e-3 tolerance meaningful.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def test_clips(sr=32000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    rs = np.random.RandomState(7)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1320 * t) * (t > 0.4)
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 4000 * t ** 2))
    clips = np.stack([tone + 0.05 * rs.standard_normal(t.size),
                      chirp * np.hanning(t.size) + 0.1 * rs.standard_normal(t.size)])
    return clips.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--panns-dir', required=True)
    args = ap.parse_args()
    sys.path[:0] = [args.panns_dir, str(ROOT)]
    import librosa
    from models import Cnn14 as PannsCnn14  # PANNs' models.py (its folder comes first on sys.path)
    import test_cil

    melW = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    np.savez_compressed(ROOT / 'testdata' / 'panns_golden.npz', librosa_melW=melW)  # the builder reads it
    wave = test_clips()
    model = PannsCnn14(32000, 1024, 320, 64, 50, 14000, 527)
    model.load_state_dict(test_cil.panns_like_state_dict(), strict=True)
    model.eval()
    bns = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for m in bns.values():  # calibrate: cumulative batch stats, dropout still off
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        model(torch.from_numpy(wave))
    bn_stats = {}
    for n, m in bns.items():
        bn_stats[f'bn_stats/{n}.running_mean'] = m.running_mean.numpy().copy()
        bn_stats[f'bn_stats/{n}.running_var'] = m.running_var.numpy().copy()
    model.load_state_dict(test_cil.panns_like_state_dict(
        {k[len('bn_stats/'):]: v for k, v in bn_stats.items()}), strict=True)
    model.eval()
    captured = {}
    model.fc_audioset.register_forward_hook(lambda mod, inp, out: captured.update(logits=out))
    with torch.no_grad():
        x = torch.from_numpy(wave)
        logmel = model.logmel_extractor(model.spectrogram_extractor(x))  # (B, 1, T, 64)
        out = model(x)
    ref_logmel = np.stack([librosa.power_to_db(librosa.feature.melspectrogram(
        y=w, sr=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50, fmax=14000, pad_mode='reflect'),
        top_db=None).T for w in wave])
    np.savez_compressed(ROOT / 'testdata' / 'panns_golden.npz', librosa_melW=melW, wave=wave,
                        panns_logmel=logmel.numpy(), panns_logits=captured['logits'].numpy(),
                        panns_embedding=out['embedding'].numpy(), librosa_logmel=ref_logmel.astype(np.float32),
                        **bn_stats)
    print('logits range', captured['logits'].min().item(), captured['logits'].max().item())
    print('panns logmel vs librosa: max |diff| dB', np.abs(logmel.numpy()[:, 0] - ref_logmel).max())


if __name__ == '__main__':
    main()
