"""The two learners, in plain PyTorch (this file needs only torch); every model takes a log-mel (B, T, F) or
(B, 1, T, F) and returns (logits, features), the features being what feature distillation compares.

- Cnn14: PANNs' CNN14 (Kong et al. 2020) layer for layer, with PANNs' key names (a released checkpoint loads);
  head='linear' is the multi-label CIL learner (one classifier on the pooled 2048-d vector, grown per phase),
  head='panns' the audio-tagging head of the checkpoints (fc1 + fc_audioset).
- SmallCNN: the four-layer CNN of the keyword-spotting CIL paper (Ma et al.).
- IncrementalLinear: a classifier grown by blocks of rows (old blocks can be frozen), linear or cosine.
- LogMel: the PANNs log-mel front end in torch (it checks a checkpoint's front-end kernels)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# -----------------------------------------------------------------------------
# Front end: PANNs log-mel (torchlibrosa Spectrogram + LogmelFilterBank, same maths)

def hz_to_mel(f, htk=False):
    """Slaney mel scale (librosa's default): linear below 1 kHz, logarithmic above. HTK as option."""
    f = torch.as_tensor(f, dtype=torch.float64)
    if htk:
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    mel = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f / min_log_hz) / logstep, mel)


def mel_to_hz(m, htk=False):
    m = torch.as_tensor(m, dtype=torch.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk=False, norm='slaney'):
    """(n_mels, 1 + n_fft//2) float32 triangles in Hz on exact FFT-bin frequencies, as librosa.filters.mel."""
    fft_freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sr / n_fft
    mel_f = mel_to_hz(torch.linspace(float(hz_to_mel(fmin, htk)), float(hz_to_mel(fmax, htk)), n_mels + 2,
                                     dtype=torch.float64), htk)
    fdiff = mel_f[1:] - mel_f[:-1]
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    if norm == 'slaney':  # constant area per triangle
        weights = weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.to(torch.float32)  # built in float64, stored float32, as librosa


class LogMel(nn.Module):
    """Waveform (B, L) -> log-mel (B, 1 + L // hop, n_mels), PANNs' front end: periodic Hann, centred reflect-padded
    frames, |rfft|^2, Slaney mel (area-normalised), 10 log10(max(x, 1e-10)); agrees with features.log_mel."""

    def __init__(self, sample_rate=32000, n_fft=1024, hop_length=320, n_mels=64, fmin=50.0, fmax=14000.0):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.fmin, self.fmax = n_mels, fmin, fmax
        self.register_buffer('window', torch.hann_window(n_fft, periodic=True, dtype=torch.float64), persistent=False)
        self.register_buffer('melW', mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).T.contiguous(),
                             persistent=False)  # (n_fft//2+1, n_mels), as PANNs stores it

    def forward(self, wave):
        # The FFT runs in float64 (as librosa and features.log_mel do): exact to float32 rounding, and the
        # front end is <1% of CNN14's cost.
        spec = torch.stft(wave.to(torch.float64), self.n_fft, self.hop_length, window=self.window,
                          center=True, pad_mode='reflect', return_complex=True)  # (B, F, T)
        power = (spec.real ** 2 + spec.imag ** 2).transpose(1, 2).to(torch.float32)
        mel = power @ self.melW
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))

    def panns_kernels(self):
        """The three front-end tensors of a PANNs checkpoint, as this front end defines them."""
        n = torch.arange(self.n_fft, dtype=torch.float64)
        k = torch.arange(self.n_fft // 2 + 1, dtype=torch.float64)
        angle = 2 * math.pi * k[:, None] * n[None, :] / self.n_fft
        return {
            'spectrogram_extractor.stft.conv_real.weight': (torch.cos(angle) * self.window.cpu())[:, None, :].float(),
            'spectrogram_extractor.stft.conv_imag.weight': (-torch.sin(angle) * self.window.cpu())[:, None, :].float(),
            'logmel_extractor.melW': self.melW.cpu(),
        }


# -----------------------------------------------------------------------------
# Classifier that grows by blocks of rows

class IncrementalLinear(nn.Module):
    """A classifier grown by blocks of rows, one per phase, each its own nn.Linear so old blocks freeze exactly (no
    gradient, momentum or weight decay). Its state_dict holds one weight and one bias, as nn.Linear (checkpoints
    do not depend on the growth history); new rows get nn.Linear's init, as the authors' change_output_dim.
    cosine=True: sigma * normalize(x) @ normalize(W).T, no bias, one learnable sigma (init 1) kept across
    growth (LUCIR; Mittal et al.'s SplitCosineLinear: rows normalised alone, so blocks never change a logit)."""

    def __init__(self, in_features, out_features=0, cosine=False):
        super().__init__()
        self.in_features, self.cosine = in_features, cosine
        self.blocks = nn.ModuleList()
        self.sigma = nn.Parameter(torch.ones(1)) if cosine else None
        self.register_state_dict_post_hook(_merge_blocks)
        self.register_load_state_dict_pre_hook(_split_blocks)
        if out_features:
            self.grow(out_features)

    @property
    def out_features(self):
        return sum(b.out_features for b in self.blocks)

    @property
    def weight(self):
        return torch.cat([b.weight for b in self.blocks], 0)

    @property
    def bias(self):
        return None if self.cosine else torch.cat([b.bias for b in self.blocks], 0)

    def grow(self, n):
        ref = self.blocks[0].weight if len(self.blocks) else self.sigma
        block = nn.Linear(self.in_features, n, bias=not self.cosine)
        if ref is not None:
            block.to(device=ref.device, dtype=ref.dtype)
        self.blocks.append(block)
        return block

    def freeze_old(self):
        """Freeze every block but the newest (method FE), and a cosine classifier's shared sigma, so
        the old classes' logits stay exactly as they were. (Mittal's step never calls this: there
        every parameter, sigma included, trains.)"""
        for b in self.blocks[:-1]:
            b.requires_grad_(False)
        if self.sigma is not None:
            self.sigma.requires_grad_(False)

    def forward(self, x):
        if self.cosine:  # sigma * cos(x, w_c) for every class c
            x = F.normalize(x, dim=1)
            return self.sigma * torch.cat([F.linear(x, F.normalize(b.weight, dim=1)) for b in self.blocks], dim=1)
        return torch.cat([b(x) for b in self.blocks], dim=1)


def _merge_blocks(module, state_dict, prefix, local_metadata):
    """state_dict post-hook: blocks.i.{weight,bias} -> one weight (n, d) and one bias (n,)."""
    for name in ('weight', 'bias'):
        keys = [f'{prefix}blocks.{i}.{name}' for i in range(len(module.blocks))]
        parts = [state_dict.pop(k) for k in keys if k in state_dict]
        if parts:
            state_dict[prefix + name] = torch.cat(parts, 0)


def _split_blocks(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    """load_state_dict pre-hook: the inverse of _merge_blocks, checking the row count."""
    sizes = [b.out_features for b in module.blocks]
    for name in ('weight', 'bias'):
        value = state_dict.pop(prefix + name, None)
        if value is None:
            continue
        if value.shape[0] != sum(sizes):
            error_msgs.append(f'{prefix}{name}: the checkpoint has {value.shape[0]} classes, the classifier has '
                              f'{sum(sizes)} (blocks {sizes}); grow the model to the checkpoint\'s phase first')
            continue
        for i, chunk in enumerate(value.split(sizes)):
            state_dict[f'{prefix}blocks.{i}.{name}'] = chunk


class _Heads(nn.Module):
    """Shared head logic: `fc` (head 0, grows across phases) plus auxiliary heads for multitask base
    training (Ma et al.: hard parameter sharing, one linear head per class subset)."""

    def _init_heads(self, emb_dim, n_classes, classifier='linear'):
        if classifier not in ('linear', 'cosine'):
            raise ValueError(f"classifier must be 'linear' or 'cosine', got {classifier!r}")
        self.emb_dim, self.classifier = emb_dim, classifier
        self.fc = IncrementalLinear(emb_dim, n_classes, cosine=classifier == 'cosine')
        self.aux_heads = nn.ModuleList()

    def add_head(self, n_classes):
        """Add an auxiliary head (same kind as `fc`, its own sigma if cosine); returns its index."""
        head = IncrementalLinear(self.emb_dim, n_classes, cosine=self.classifier == 'cosine')
        self.aux_heads.append(head.to(next(self.parameters()).device))
        return len(self.aux_heads)

    def drop_aux_heads(self):
        self.aux_heads = nn.ModuleList()

    def grow(self, n):
        """Add n output rows to head 0, old rows kept exactly."""
        self.fc.grow(n)

    def classify(self, emb, head=0):
        return self.fc(emb) if head == 0 else self.aux_heads[head - 1](emb)


def _as_image(x):
    """(B, T, F) -> (B, 1, T, F)."""
    return x.unsqueeze(1) if x.dim() == 3 else x


# -----------------------------------------------------------------------------
# CNN14

class ConvBlock(nn.Module):
    """(3x3 conv -> BN -> ReLU) x 2 -> average pooling. Key names as PANNs."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)
        for m in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(m.weight)  # PANNs' init (BatchNorm: weight 1, bias 0, torch's own)

    def forward(self, x, pool_size=(2, 2)):
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool_size)  # floor mode: an odd length drops its last row


class Cnn14(_Heads):
    """PANNs CNN14 on a log-mel (B, T, mel_bins). forward(x, head=0) -> (logits, fmap), fmap the block-6 map after its
    dropout (B, C, T', F'), what the authors' feature distillation compares; embed(x) -> (pooled vector, fmap).
    block6_pool (1, 1) is PANNs, (2, 2) the authors' CIL code; width scales every channel count (1.0 = CNN14).
    PANNs' training-time SpecAugment and mixup are not part of the CIL learner."""
    channels = (64, 128, 256, 512, 1024, 2048)
    dropout = 0.2  # after every block, as PANNs

    def __init__(self, n_classes=527, head='linear', mel_bins=64, width=1.0, block6_pool=(1, 1), classifier='linear'):
        super().__init__()
        if head not in ('linear', 'panns'):
            raise ValueError(f"head must be 'linear' or 'panns', got {head!r}")
        chans = [max(1, int(round(c * width))) for c in self.channels]
        self.head, self.block6_pool = head, tuple(block6_pool)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        cin = 1
        for i, cout in enumerate(chans, 1):
            setattr(self, f'conv_block{i}', ConvBlock(cin, cout))
            cin = cout
        if head == 'panns':
            self.emb_dim = cin
            self.fc1 = nn.Linear(cin, cin)
            self.fc_audioset = nn.Linear(cin, n_classes)
            for m in (self.fc1, self.fc_audioset):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            self.aux_heads = nn.ModuleList()
        else:
            self._init_heads(cin, n_classes, classifier)

    def embed(self, x):
        """Log-mel -> (the pooled vector (B, C), the block-6 map (B, C, T', F'))."""
        x = _as_image(x)
        # BN per mel bin, over (batch, time); both transposes are views, and the result, a contiguous (B, 1, T, F),
        # is NCHW and NHWC at once: a channels_last learner needs no input conversion
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(1, 7):
            x = getattr(self, f'conv_block{i}')(x, pool_size=(2, 2) if i < 6 else self.block6_pool)
            x = F.dropout(x, p=self.dropout, training=self.training)  # the mask drawn in the stored layout
        pooled = x.mean(dim=3)  # (B, C, T'): the mean over frequency, then the max + mean over time
        return pooled.max(dim=2)[0] + pooled.mean(dim=2), x

    def classify(self, emb, head=0):
        if self.head == 'panns' and head == 0:
            return self.fc_audioset(F.relu_(self.fc1(F.dropout(emb, p=0.5, training=self.training))))
        return self.fc(emb) if head == 0 else self.aux_heads[head - 1](emb)

    def grow(self, n):
        if self.head != 'linear':
            raise ValueError("only the 'linear' CIL head grows")
        super().grow(n)

    def forward(self, x, head=0):
        emb, fmap = self.embed(x)
        return self.classify(emb, head), fmap

    def backbone_parameters(self):
        return [p for n, p in self.named_parameters() if n.startswith(('bn0.', 'conv_block'))]

    def freeze_backbone(self):
        """Method FE: backbone fixed (no gradient) and its BatchNorm kept in eval mode (see train())."""
        for p in self.backbone_parameters():
            p.requires_grad_(False)
        self._backbone_frozen = True

    def train(self, mode=True):
        super().train(mode)
        if getattr(self, '_backbone_frozen', False):  # frozen BN must not update its running stats
            for name, m in self.named_modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and name.startswith(('bn0', 'conv_block')):
                    m.eval()
        return self


PANNS_FRONT_END_KEYS = ('spectrogram_extractor.stft.conv_real.weight',
                        'spectrogram_extractor.stft.conv_imag.weight', 'logmel_extractor.melW')


def load_panns_checkpoint(model, checkpoint, front_end=None, atol=1e-5):
    """Load a PANNs checkpoint (a path or a loaded dict, e.g. Cnn14_mAP=0.431.pth) into `model`. Its front-end tensors
    must equal `front_end`'s (default LogMel(), 32 kHz), else ValueError: its bn0 statistics would not fit our
    log-mel. head='panns': every key, strictly; head='linear': the backbone strictly, the CIL classifier fresh."""
    name = checkpoint if isinstance(checkpoint, str) else 'checkpoint'
    if isinstance(checkpoint, str):
        try:
            checkpoint = torch.load(checkpoint, map_location='cpu', weights_only=True)
        except Exception as e:  # truncated or not a torch file
            raise ValueError(f'{name}: cannot read as a PyTorch checkpoint ({e}); re-download it') from None
    state = dict(checkpoint['model'] if 'model' in checkpoint else checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    front_end = front_end or LogMel()
    for key, expected in front_end.panns_kernels().items():
        if key not in state:
            raise ValueError(f'{name}: missing {key}; not a PANNs CNN14 checkpoint')
        got = state.pop(key).float()
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=atol, rtol=0):
            diff = (got - expected).abs().max().item() if got.shape == expected.shape else 'shape'
            raise ValueError(f'{name}: {key} differs from our front end (max |diff| {diff}); the checkpoint was '
                             f'made with another sample rate / n_fft / mel config than {front_end.sample_rate} Hz, '
                             f'n_fft {front_end.n_fft}, {front_end.n_mels} mels {front_end.fmin}-{front_end.fmax} Hz')
    if model.head == 'panns':
        model.load_state_dict(state, strict=True)
    else:
        backbone = {k: v for k, v in state.items() if k.startswith(('bn0.', 'conv_block'))}
        own = {k for k in model.state_dict() if k.startswith(('bn0.', 'conv_block'))}
        if set(backbone) != own:
            raise ValueError(f'{name}: backbone keys differ: missing {sorted(own - set(backbone))[:5]}, '
                             f'unexpected {sorted(set(backbone) - own)[:5]}')
        model.load_state_dict(backbone, strict=False)
    return model


# -----------------------------------------------------------------------------
# The small CNN of the keyword-spotting CIL paper

class SmallCNN(_Heads):
    """Four conv layers, each Conv -> ReLU -> BatchNorm (the paper's order), Dropout(0.5), global average pooling and
    a linear head; 3x3 kernels, stride 1 then 2, 2, 2 (kws_cil.md 3; the paper gives neither), or 1 throughout
    (downsample='none'). Any input size (32 x 32 and 128 x 85 in the papers). forward -> (logits, embedding)."""

    def __init__(self, n_classes, channels=(32, 32, 64, 64), downsample='stride', dropout=0.5, classifier='linear'):
        super().__init__()
        if downsample not in ('stride', 'none'):
            raise ValueError(f"downsample must be 'stride' or 'none', got {downsample!r}")
        layers, cin = [], 1
        for i, cout in enumerate(channels):
            stride = 2 if (downsample == 'stride' and i > 0) else 1
            layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout)]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self._init_heads(cin, n_classes, classifier)

    def conv_layers(self, upto):
        """The modules of conv layers 1..upto (conv, ReLU, BN each)."""
        return list(self.convs)[:3 * upto]

    def freeze_upto(self, n):
        """Two-step fine-tuning, step A: conv layers 1..n get no gradient and their BatchNorm stays in
        eval mode (running statistics fixed). freeze_upto(0) unfreezes everything."""
        for i, m in enumerate(self.convs):
            m.requires_grad_(i >= 3 * n)
        self._frozen_upto = n
        return self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        for m in self.conv_layers(getattr(self, '_frozen_upto', 0)):
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def embed(self, x):
        x = self.dropout(self.convs(_as_image(x)))
        emb = x.mean(dim=(2, 3))
        return emb, emb

    def forward(self, x, head=0):
        emb, _ = self.embed(x)
        return self.classify(emb, head), emb


def count_parameters(model, trainable=True):
    """Number of parameters of `model` (only those with requires_grad unless trainable=False).
    API for users who check a model's size (e.g. Cnn14 against PANNs' 80.8 M); the training code does
    not call it."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)
