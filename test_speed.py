"""Tests of the fast path of methods.py: mixed precision, channels_last, the device-side batch plan,
the teacher cache's dtype, fused SGD, the fp16 GradScaler's state across a resume, and
bench/bench_train.py. Tiny widths, CPU; a few seconds in all (the CUDA tests are skipped without a GPU).

That float32 stays bit for bit what it was is checked two ways: test_fp32_epoch_is_bit_identical_to_
the_previous_loop below replays the loop as it was before the fast path (kept here verbatim, minus
comments) against methods.train_epoch, and the existing suite (test_cil.py: bit-exact resume,
hand-computed losses, FE freezing, teacher cache vs live teacher) runs unchanged.
"""
import copy
import math
import pathlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import methods
import models

CPU = torch.device('cpu')
ROOT = pathlib.Path(__file__).resolve().parent


def _cpu_autocast_works(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            z, _ = models.Cnn14(2, width=1 / 16)(torch.randn(2, 64, 64))
        z.float().sum().backward()
        return True
    except RuntimeError:
        return False


def _phase0(seed=0, n=24, frames=40):
    """A phase-0 learner (30 classes, width 1/16) after one epoch, and phase-1 data (5 new classes)."""
    torch.manual_seed(seed)
    x = torch.randn(n, frames, 64).half()
    y0 = (torch.rand(n, 30) < 0.2).float()
    y0[0] = 1
    y1 = (torch.rand(n, 5) < 0.3).float()
    y1[0] = 1
    model = models.Cnn14(30, width=1 / 16)
    model = methods.train_multilabel(model, methods.METHODS['ft'], x, y0.numpy(), phase=0, epochs=1, lr=0.01, seed=0,
                                     device=CPU, batch_size=8)
    return model, x, y1.numpy()


def _iodfd_phase(model, x, y, epochs=1, **kw):
    states = []
    model = methods.train_multilabel(copy.deepcopy(model), methods.METHODS['iodfd'], x, y, phase=1, epochs=epochs,
                                     lr=0.001, seed=0, device=CPU, batch_size=8, **kw,
                                     on_epoch=lambda state: states.append(copy.deepcopy(state)))  # as saved
    return model, states


# ---------------- float32: unchanged

def _previous_train_epoch(model, method, x, y, batches, optimizer, device, *, n_new, teacher=None, teacher_cache=None,
                          pos_weight=None, lam=1.0, T=2.0, fd_per_sample=False, fd_forward='single', memory=None):
    """methods.train_epoch as it was before mixed precision and the device-side batch plan (a float
    pos_weight, indices made per step, the teacher cache indexed on its own device)."""
    model.train()
    needs_teacher = method.od or method.fd
    sums = {}
    for step, idx in enumerate(batches):
        idx_t = torch.as_tensor(idx)
        xb = x[idx_t].to(device, non_blocking=True).float()
        yb = y[idx_t].to(device, non_blocking=True)
        logits, feats = model(xb)
        t_logits = t_feats = None
        if needs_teacher and logits.shape[1] > n_new:
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
    batches = methods.index_batches(20, 8, seed=3)
    pw = methods.pos_weight_of(y)
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
        terms = loop(model, methods.METHODS['iodfd'], x, y, batches, opt, CPU, pos_weight=pos_weight, **kw)
        out.append((terms, model.state_dict()))
    (terms_a, state_a), (terms_b, state_b) = out
    assert terms_a == terms_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_losses_reduce_in_float32_and_keep_float64():
    z = torch.randn(4, 6, dtype=torch.float64)
    t = (torch.rand(4, 6) < 0.5).double()
    assert methods.bce_loss(z, t, 2.5).dtype == torch.float64  # the hand-computed tests run in float64
    for dtype in (torch.bfloat16, torch.float16):
        assert methods.bce_loss(z.to(dtype), t, torch.tensor(2.5)).dtype == torch.float32
        assert methods.kd_loss(z.to(dtype), z.to(dtype)).dtype == torch.float32
        assert methods.fd_loss(z.to(dtype), z.to(dtype)).dtype == torch.float32
        assert methods.replay_bce(z.to(dtype), t.float(), torch.ones(4, 6)).dtype == torch.float32
        _, terms = methods.mittal_loss(('ce_n', 'ce_o'), z.to(dtype), torch.tensor([3, 4, 5, 3]), 3,
                                       logits_o=z.to(dtype), y_o=torch.tensor([0, 1, 2, 5]))
        assert all(v.dtype == torch.float32 for v in terms.values())
    zf = z.float()
    # a tensor pos_weight (made once per phase) gives exactly the float's loss
    assert torch.equal(methods.bce_loss(zf, t, 2.5), methods.bce_loss(zf, t, torch.tensor(2.5)))
    with pytest.raises(ValueError, match='precision'):
        methods.autocast(CPU, 'fp8')


def test_device_batches_on_the_cpu_are_plain_indexing():
    x, y = torch.randn(10, 3, 2), torch.arange(10)
    batches = methods.index_batches(10, 4, seed=0)
    got = list(methods.device_batches([x, y], batches, CPU))
    assert len(got) == 3
    for (xb, yb), idx in zip(got, batches):
        assert torch.equal(xb, x[torch.as_tensor(idx)]) and torch.equal(yb, y[torch.as_tensor(idx)])
    assert [t.tolist() for t in methods.batch_indices(batches, CPU)] == [b.tolist() for b in batches]


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


# ---------------- bf16 and fp16

@pytest.mark.skipif(not _cpu_autocast_works(torch.bfloat16), reason='no bf16 autocast on this CPU')
def test_bf16_autocast_runs_an_iodfd_phase_with_finite_losses_close_to_fp32():
    model, x, y = _phase0()
    _, fp32 = _iodfd_phase(model, x, y)
    _, bf16 = _iodfd_phase(model, x, y, precision='bf16', cache_teacher=True)
    a, b = fp32[0]['terms'], bf16[0]['terms']
    assert set(a) == set(b) == {'bce', 'od', 'fd'}
    assert all(math.isfinite(v) for v in b.values())
    for k in a:  # same seeds, same data: only the rounding of the forwards differs
        assert abs(a[k] - b[k]) <= 0.05 * abs(a[k]) + 1e-3, (k, a[k], b[k])
    assert 'scaler' not in bf16[0]  # bf16 needs no loss scaling


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
    _, rest = _iodfd_phase(model, x, y, epochs=2, precision='fp16', resume=odd)
    assert rest[0]['scaler']['scale'] == 1024.0


class _FakeScaler:
    """GradScaler's interface, recording what fit and sgd_step do with it."""

    def __init__(self):
        self.state, self.calls = {'scale': 8.0}, []

    def scale(self, loss):
        self.calls.append('scale')
        return loss * self.state['scale']

    def step(self, optimizer):
        self.calls.append('step')
        for group in optimizer.param_groups:
            for p in group['params']:
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
        methods.fit(model, opt, None, epoch_fn, lambda: 0.5, max_epochs=epochs, patience=None, tag='t',
                    resume=resume, on_epoch=states.append, scaler=scaler)
        return states

    scaler = _FakeScaler()
    states = run(scaler)
    assert scaler.calls == ['scale', 'step', 'update'] * 2
    assert [s['scaler'] for s in states] == [{'scale': 8.0, 'updates': 1}, {'scale': 8.0, 'updates': 2}]
    later = _FakeScaler()
    run(later, resume=dict(states[0], scaler={'scale': 4.0, 'updates': 7}), epochs=2)
    assert later.state == {'scale': 4.0, 'updates': 8}  # restored, then one more epoch
    assert 'scaler' not in run(None)[0]  # fp32 / bf16 states are as before


# ---------------- channels_last, teacher cache dtype, fused SGD, compile, CUDA switches

def test_channels_last_gives_the_same_logits_on_the_cpu():
    torch.manual_seed(0)
    model = models.Cnn14(7, width=1 / 8)
    x = torch.randn(3, 60, 64)
    for mode in (True, False):  # train mode: same dropout masks from the same seed
        nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last).train(mode)
        torch.manual_seed(1)
        z, f = model.train(mode)(x)
        torch.manual_seed(1)
        z_cl, f_cl = nhwc(x)
        assert f_cl.is_contiguous(memory_format=torch.channels_last)  # NHWC all the way to block 6
        assert torch.allclose(z, z_cl, atol=1e-5, rtol=0)
        # the block-6 map: float32 rounding, magnified a little by train-mode BatchNorm on 3 clips
        assert torch.allclose(f, f_cl, atol=1e-4, rtol=1e-4)
        assert torch.equal(f == 0, f_cl == 0)  # the same activations dropped (models.dropout_nchw)


def test_channels_last_phase_trains_like_the_default_layout():
    model, x, y = _phase0()
    _, a = _iodfd_phase(model, x, y)
    trained, b = _iodfd_phase(model, x, y, channels_last=True)
    assert trained.conv_block3.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(abs(a[0]['terms'][k] - b[0]['terms'][k]) < 1e-4 for k in a[0]['terms'])


def test_teacher_cache_dtype_follows_the_precision():
    torch.manual_seed(0)
    teacher = models.Cnn14(4, width=1 / 16).eval()
    x = torch.randn(10, 40, 64).half()
    assert methods.output_dtype('fp32') == torch.float32 and methods.output_dtype('bf16') == torch.bfloat16
    z, f = methods.teacher_outputs(teacher, x, 4, CPU)
    assert z.dtype == f.dtype == torch.float32  # unchanged
    z16, f16 = methods.teacher_outputs(teacher, x, 4, CPU, precision='bf16')
    assert z16.dtype == f16.dtype == torch.bfloat16
    with torch.no_grad(), methods.autocast(CPU, 'bf16'):
        live_z, live_f = teacher(x[4:8].float())  # what a live teacher gives under bf16 autocast
    assert live_z.dtype == torch.bfloat16
    assert torch.allclose(z16[4:8].float(), live_z.float(), atol=2e-2) and torch.allclose(f16[4:8].float(),
                                                                                          live_f.float(), atol=2e-2)
    seen = []

    def spy(*args, **kw):
        out = real(*args, **kw)
        seen.append(tuple(t.dtype for t in out))
        return out
    real, methods.teacher_outputs = methods.teacher_outputs, spy
    try:
        model, xs, y = _phase0()
        for precision in ('fp32', 'bf16'):
            methods.train_multilabel(copy.deepcopy(model), methods.METHODS['iod'], xs, y, phase=1, epochs=1, lr=0.001,
                                     seed=0, device=CPU, batch_size=8, cache_teacher=True, precision=precision)
    finally:
        methods.teacher_outputs = real
    assert seen == [(torch.float32,) * 2, (torch.bfloat16,) * 2]


def test_sgd_is_plain_on_the_cpu_and_fused_on_request():
    model = torch.nn.Linear(3, 2)
    assert not methods.sgd(model, 0.1).defaults.get('fused')
    if methods._SGD_FUSED:
        assert methods.sgd(model, 0.1, fused=True).defaults['fused'] is True


def test_a_resumed_optimizer_keeps_its_own_kernel_choice():
    model = torch.nn.Linear(3, 2)
    fused = methods.sgd(model, 0.1, fused=True) if methods._SGD_FUSED else None
    if fused is None:
        pytest.skip('this torch has no fused SGD')
    plain = methods.sgd(model, 0.1)
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
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = flags


# ---------------- bench/bench_train.py

def test_bench_train_quick_prints_every_row():
    out = subprocess.run([sys.executable, str(ROOT / 'bench' / 'bench_train.py'), '--quick', '--device', 'cpu'],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    names = ('authors', 'fp32', 'bf16', 'bf16+CL', 'bf16+CL+cache', 'bf16+CL+cache+compile')
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.split()
            and line.split()[0] in names}
    assert set(rows) == set(names)
    for name in names[:-1]:  # clips/s, x fp32, x authors, GFLOP/clip, TFLOP/s, '-', 'not measured on a GPU'
        assert float(rows[name][1]) > 0 and rows[name][6] == '-' and ' '.join(rows[name][7:]) == 'not measured on a GPU'
    assert float(rows['fp32'][2]) == 1.0 and float(rows['authors'][3]) == 1.0
    assert float(rows['authors'][4]) == pytest.approx(2 * float(rows['fp32'][4]), rel=0.02)  # two of each forward
    assert float(rows['bf16+CL+cache'][4]) < float(rows['bf16+CL'][4])  # no teacher forward
    assert 'not measured' in ' '.join(rows['bf16+CL+cache+compile'])  # compile: CUDA, or --compile-cpu
    assert '83,419,440 clip-epochs' in out.stdout  # 120 x (63,700 + 7 x 4 x 10,600 + AT 334,662)
