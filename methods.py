"""Every method of both papers: each loss next to its equation, and each learner's whole training loop.

Multi-label CIL (Mulimani & Mesaros): train_multilabel trains one phase of FT, FE, IndL, OD, IOD, IFD, IODFD or AT
(a Method says which logits the BCE sees, which distillation terms apply, what is frozen). Single-label CIL with
exemplars (Ma et al., Mittal et al.'s step): train_base, the multitask base step; mittal_step, one incremental step
with CE N, KD N, CE O, KD O. No file is read or written (the caller hands in features, a resume state and an
on_epoch(state) callback); every loss reduces in fp32 whatever precision the forwards ran in."""
import contextlib
import copy
import hashlib
import inspect
import itertools
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F


# --- Multi-label: the method table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """What a multi-label method changes in an incremental phase (phase 0 is plain BCE for all)."""
    indl: bool = False   # BCE over the new classes' logits only (independent learning), Eq. 1
    od: bool = False     # output distillation on the old logits, Eq. 2
    fd: bool = False     # feature distillation on the backbone features, Eq. 3
    freeze: bool = False  # FE: backbone and old classifier rows frozen after phase 0
    joint: bool = False  # AT: a fresh learner trained on all seen classes every phase
    bce: bool = True     # the BCE of Eq. 1 in incremental phases (False: distillation alone, an ablation)


METHODS = {
    'ft': Method(),
    'fe': Method(freeze=True),
    'indl': Method(indl=True),
    'od': Method(od=True),
    'iod': Method(indl=True, od=True),
    'ifd': Method(indl=True, fd=True),
    'iodfd': Method(indl=True, od=True, fd=True),
    'at': Method(joint=True),
}


@dataclass(frozen=True)
class Hyper:
    """Both learners' one config object (cil.py fills it from its flags); defaults: the authors' released values."""
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_min: float = 1e-4            # eta_min of every CosineAnnealingLR
    # multi-label (Mulimani & Mesaros)
    lambda_base: float = 5.0        # Eq. 4 (their code; the paper's text says 2)
    lambda_pow: float = 0.66
    const_lambda: bool = False
    T: float = 2.0                  # Eq. 2
    pos_weight: str = 'auto'        # #negatives / #positives of the phase, or 'none'
    fd: str = 'flat'                # Eq. 3 over the whole batch flattened, or 'per-sample'
    fd_forward: str = 'single'      # or 'authors': L_FD from a second training-mode forward
    sampler: str = 'shuffle'        # or 'balanced' (PANNs)
    cache_teacher: bool = False     # the previous learner's outputs once per phase
    # multitask base training (Ma et al.)
    mt_batching: str = 'per-task'
    mt_loss_reduce: str = 'sum'
    base_sched: str = 'constant'    # the base step's learning rate, or 'cosine'
    patience: int = 10              # early stopping (single-label)
    # the single-label incremental step (Mittal et al.)
    exemplar_select: str = 'random'
    herding_mean: str = 'normalized'
    ft_mode: str = 'two-step'       # A: conv1..freeze_upto frozen at lr_a, B: every layer at lr_b; or 'mittal'
    freeze_upto: int = 3
    lr_a: float = 0.01
    lr_b: float = 0.001
    lr_ft: float = 0.01
    epochs_a: int = 50
    epochs_b: int = 50
    epochs_ft: int = 60
    es_val: str = 'seen'
    ce_new_logits: str = 'new'
    # speed: the forwards in bf16 / fp16 (losses in fp32), torch.compile, NHWC conv weights (CUDA)
    precision: str = 'fp32'
    compile: bool = False
    channels_last: bool = False


# --- Multi-label losses -----------------------------------------------------------------------------------------------
def upcast(t):
    """float16 / bfloat16 -> float32; float32 and float64 pass unchanged (fp32 runs stay bit for bit)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def bce_loss(logits, targets, pos_weight=None):
    """Eq. 1: binary cross-entropy with sigmoid, in fp32; pos_weight: #negatives / #positives of the phase, a scalar."""
    logits = upcast(logits)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=pw)


def pos_weight_of(targets):
    """#negatives / #positives over a (N, C) multi-hot target matrix (authors' code: a scalar)."""
    targets = torch.as_tensor(targets)
    n_pos = targets.sum()
    if n_pos == 0:
        raise ValueError('the phase has no positive targets: every class of the phase is empty')
    return ((targets == 0).sum() / n_pos).item()


def kd_loss(student, teacher, T=2.0):
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2, the mean over batch x classes as
    nn.KLDivLoss(reduction='mean') in the authors' and Mittal's code; in fp32."""
    log_p, q = F.log_softmax(upcast(student) / T, dim=1), F.softmax(upcast(teacher) / T, dim=1)
    return (torch.xlogy(q, q) - q * log_p).mean() * T * T  # = F.kl_div(log_p, q, reduction='mean') * T^2


def od_loss(z_old, z_old_teacher, T=2.0):
    """Eq. 2: output discrepancy between the current and previous learner on the old classes."""
    return kd_loss(z_old, z_old_teacher, T)


def fd_loss(feat, feat_teacher, per_sample=False):
    """Eq. 3: 1 - cos(normalize(f_new), normalize(f_old)), one cosine over the whole batch flattened (the
    authors' code) or the per-clip mean (per_sample); in fp32 (bf16 sums lose the small discrepancies)."""
    feat, feat_teacher = upcast(feat), upcast(feat_teacher)
    a, b = (feat.flatten(1), feat_teacher.flatten(1)) if per_sample else (feat.flatten(), feat_teacher.flatten())
    return (1 - F.cosine_similarity(F.normalize(a, dim=-1), F.normalize(b, dim=-1), dim=-1)).mean()


def adaptive_lambda(n_seen, n_new, base=5.0, power=0.66, const=False):
    """Eq. 4 weight: lambda_base * (n_seen / n_new) ** power (the authors' code); const: lambda_base alone."""
    return base if const else base * (n_seen / n_new) ** power


def multilabel_loss(method, logits, targets, n_new, *, feats=None, teacher_logits=None, teacher_feats=None,
                    pos_weight=None, lam=1.0, T=2.0, fd_per_sample=False):
    """Eq. 4: L = L_BCE + lambda * L_OD + L_FD, the terms by `method` -> (total, {term: value}). logits (B, n_seen) =
    [z_old, z_new]; targets (B, n_new): the phase's classes only (phase 0, AT: every logit is new); teacher_*: the
    frozen previous learner on the same batch. FE has no IndL: its BCE sees every logit, only the new rows move."""
    n_old = logits.shape[1] - n_new
    terms = {}
    if method.indl or n_old == 0:
        terms['bce'] = bce_loss(logits[:, n_old:], targets, pos_weight)  # Eq. 1 over z_new only
    else:  # old-class targets are 0: the only information the current data holds about them
        full = torch.cat([targets.new_zeros(targets.shape[0], n_old), targets], dim=1)
        terms['bce'] = bce_loss(logits, full, pos_weight)
    if n_old and not method.bce:  # an ablation: the distillation terms alone
        del terms['bce']
    if n_old and method.od:
        terms['od'] = lam * od_loss(logits[:, :n_old], teacher_logits, T)  # Eq. 2
    if n_old and method.fd:
        terms['fd'] = fd_loss(feats, teacher_feats, fd_per_sample)  # Eq. 3
    return sum(terms.values()), terms


# --- Single-label losses (Mittal et al.'s incremental step; Table 2 of Ma et al. switches the terms) ------------------
MITTAL_TERMS = ('ce_n', 'kd_n', 'ce_o', 'kd_o')


def mittal_loss(terms, logits_n, y_n, n_old, *, logits_o=None, y_o=None, teacher_n=None, teacher_o=None,
                lam=1.0, T=2.0, ce_new_logits='new'):
    """L = CE N + CE O + lambda * (KD N + KD O), each term switchable: CE N over the new logits of the new-data
    batch (Mittal's separated softmax; ce_new_logits='all': every logit), CE O over every seen logit of the
    memory batch, KD N / KD O kd_loss of the old logits on each batch. Returns (total, {term: value})."""
    out = {}
    if 'ce_n' in terms:
        out['ce_n'] = (F.cross_entropy(upcast(logits_n[:, n_old:]), y_n - n_old) if ce_new_logits == 'new'
                       else F.cross_entropy(upcast(logits_n), y_n))
    if 'ce_o' in terms:
        out['ce_o'] = F.cross_entropy(upcast(logits_o), y_o)
    if 'kd_n' in terms and n_old:
        out['kd_n'] = lam * kd_loss(logits_n[:, :n_old], teacher_n, T)
    if 'kd_o' in terms and n_old:
        out['kd_o'] = lam * kd_loss(logits_o[:, :n_old], teacher_o, T)
    return sum(out.values()), out


# --- Pieces both learners use: seeds, batches, the optimiser, the frozen teacher, scores, early stopping --------------
def seed_of(*parts):
    """A 31-bit seed derived from its parts (the same on every machine and every resume)."""
    return int.from_bytes(hashlib.sha1(repr(parts).encode()).digest()[:4], 'little') & 0x7FFFFFFF


def index_batches(n, batch_size, seed):
    """A seeded shuffle of range(n) cut into batches (the last one may be smaller)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def balanced_batches(targets, batch_size, seed):
    """PANNs' class-balanced batches: the classes visited in a shuffled cycle, each visit the next clip of that
    class (reshuffled when used up); as many batches as a plain epoch."""
    rs, targets = np.random.RandomState(seed), np.asarray(targets) > 0
    pools = [np.flatnonzero(column) for column in targets.T]
    queues = {c: list(rs.permutation(pool)) for c, pool in enumerate(pools) if len(pool)}  # the non-empty classes
    cycle, picks = [], []
    for _ in range(-(-len(targets) // batch_size) * batch_size):
        if not cycle:
            cycle = list(rs.permutation(list(queues)))
        c = cycle.pop()
        if not queues[c]:
            queues[c] = list(rs.permutation(pools[c]))
        picks.append(queues[c].pop())
    return list(np.array(picks, np.int64).reshape(-1, batch_size))


_SGD_FUSED = 'fused' in inspect.signature(torch.optim.SGD).parameters


def sgd(model, lr, *, momentum=0.9, weight_decay=5e-4, fused=None):
    """SGD over the parameters that train (frozen ones get no momentum, no weight decay); fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    if fused is None:
        fused = _SGD_FUSED and bool(params) and all(p.device.type == 'cuda' for p in params)
    extra = {'fused': True} if fused else {}
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **extra)


def load_optimizer_state(optimizer, state):
    """optimizer.load_state_dict keeping this optimiser's kernel (torch copies 'fused' from a CUDA checkpoint)."""
    kernels = [{k: g[k] for k in ('fused', 'foreach') if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)


def restore(resume, model, optimizer, scheduler=None, scaler=None):
    """Load a state given earlier to on_epoch: weights, optimiser, schedule and fp16's loss scale."""
    model.load_state_dict(resume['model'])
    load_optimizer_state(optimizer, resume['optimizer'])
    if scheduler is not None:
        scheduler.load_state_dict(resume['scheduler'])
    if scaler is not None and resume.get('scaler'):
        scaler.load_state_dict(resume['scaler'])


def snapshot(model, optimizer, scheduler=None, scaler=None, **info):
    """The state on_epoch gets, which restore() continues from."""
    state = dict(info, model=model.state_dict(), optimizer=optimizer.state_dict(),
                 scheduler=None if scheduler is None else scheduler.state_dict())
    if scaler is not None:
        state['scaler'] = scaler.state_dict()
    return state


def placed(model, device, channels_last=False):
    """The model on `device`, its conv weights NHWC with channels_last (CUDA's faster layout)."""
    model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def make_optimizer(model, lr, epochs, momentum=0.9, weight_decay=5e-4, eta_min=1e-4):
    """SGD over the trainable parameters + CosineAnnealingLR over the phase's epochs (authors' code)."""
    opt = sgd(model, lr, momentum=momentum, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=eta_min)


def sgd_step(optimizer, loss, terms, sums, scaler=None):
    """One optimiser step on loss (fp16: through the GradScaler); each term added to sums on the device (no sync)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    for k, v in terms.items():
        sums[k] = sums.get(k, 0.0) + v.detach()


def check_finite(terms, where):
    """Stop with one line naming the epoch and the loss term when a term is NaN or infinite."""
    bad = [name for name, v in terms.items() if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f'{where}: loss term {", ".join(bad)} is {terms[bad[0]]}; lower the learning rate '
                                 f'or check the input features')


# --- Speed: precision, the device-side batch plan, CUDA settings ------------------------------------------------------
PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}  # of a forward's outputs


def autocast(device, precision='fp32'):
    """torch.autocast for a bf16 / fp16 forward (weights and BatchNorm statistics stay fp32), none for fp32."""
    dtype = PRECISIONS[precision]
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(torch.device(device).type, dtype)


def grad_scaler(device, precision='fp32'):
    """fp16: a GradScaler (fp16 gradients underflow without loss scaling); bf16 has fp32's exponent range."""
    return torch.amp.GradScaler(torch.device(device).type) if PRECISIONS[precision] == torch.float16 else None


def compiled(model, compile=False):
    """torch.compile(model) sharing its parameters, or the model; dynamo reset first (the grown learners of earlier
    phases would pass its recompile limit: silently eager). Inductor's dropout masks are not the eager run's."""
    if not compile:
        return model
    torch._dynamo.reset()
    return torch.compile(model, dynamic=False)


def fast_cuda(tf32=True):
    """cudnn.benchmark (repeatable to float rounding only); tf32: TF32 matmuls and convolutions (cil.py: bf16, fp16)."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def device_batches(tensors, batches, device):
    """For each index array of `batches`, the rows of every tensor on `device`; CPU features with a CUDA device
    are gathered into pinned memory and copied on a side stream one batch ahead (the copy overlaps compute)."""
    if not batches:
        return
    device, sizes = torch.device(device), [len(b) for b in batches]
    flat = torch.as_tensor(np.concatenate([np.asarray(b, np.int64) for b in batches]))
    index = {t.device: list(flat.to(t.device).split(sizes)) for t in tensors}  # copied once per epoch
    if device.type != 'cuda' or all(t.device.type != 'cpu' for t in tensors):
        yield from ([t[index[t.device][i]] for t in tensors] for i in range(len(batches)))
        return
    side = torch.cuda.Stream(device)

    def fetch(i):
        out = []
        for t in tensors:
            idx = index[t.device][i]
            if t.device.type != 'cpu':
                out.append(t[idx])
                continue
            host = torch.empty((len(idx),) + tuple(t.shape[1:]), dtype=t.dtype, pin_memory=True)
            torch.index_select(t, 0, idx, out=host)
            with torch.cuda.stream(side):
                out.append(host.to(device, non_blocking=True))
        done = torch.cuda.Event()
        done.record(side)
        return out, done

    nxt = fetch(0)
    for i in range(len(batches)):
        out, done = nxt
        if i + 1 < len(batches):
            nxt = fetch(i + 1)
        stream = torch.cuda.current_stream(device)
        stream.wait_event(done)
        for t in out:
            t.record_stream(stream)  # made on the side stream, used on this one: not reused too early
        yield out


def frozen_copy(model):
    """The previous learner as a teacher: a copy in eval mode that gets no gradient."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def fits(nbytes, device, share=0.3):
    """Whether nbytes fit in `share` of a CUDA device's free memory (the allocator's unused cache counted)."""
    if device.type != 'cuda':
        return False
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return nbytes < share * (torch.cuda.mem_get_info(device)[0] + cached)


@torch.no_grad()
def predict(model, x, batch_size, device, sigmoid=True):
    """Scores on every clip of x in float32 (bf16 logits would tie scores and move mAP): sigmoid or logits."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        z, _ = model(x[i:i + batch_size].to(device).float())
        out.append(torch.sigmoid(z) if sigmoid else z)
    return torch.cat(out).float().cpu().numpy()


def accuracy(model, x, y, device, batch_size=256):
    """Top-1 accuracy of the model over all its outputs (the early-stopping criterion), in float32."""
    logits = predict(model, x, batch_size, device, sigmoid=False)
    return float(np.mean(logits.argmax(1) == np.asarray(y)))


def fit(model, optimizer, scheduler, epoch_fn, val_fn, *, max_epochs, patience, tag, resume=None, on_epoch=None,
        scaler=None):
    """Up to max_epochs of epoch_fn(epoch), early stopping on val_fn() (strictly better; patience None: none), the best
    weights restored; resume: a state of the same tag given to on_epoch earlier. Returns (best, epochs run)."""
    start, best, best_state, wait = 0, -1.0, None, 0
    if resume is not None and resume.get('tag') == tag:
        restore(resume, model, optimizer, scheduler, scaler)
        start, best, best_state, wait = resume['epoch'], resume['best'], resume['best_state'], resume['wait']
    ran = start
    for epoch in range(start, max_epochs):
        if patience is not None and wait >= patience:
            break
        ran, t0 = epoch + 1, time.time()
        terms = epoch_fn(epoch)
        check_finite(terms, f'{tag}, epoch {epoch + 1}')
        if scheduler is not None:
            scheduler.step()
        acc = val_fn()
        if acc > best:
            best, best_state, wait = acc, copy.deepcopy(model.state_dict()), 0
        else:
            wait += 1
        if on_epoch is not None:
            on_epoch(snapshot(model, optimizer, scheduler, scaler, tag=tag, epoch=epoch + 1, max_epochs=max_epochs,
                              best=best, best_state=best_state, wait=wait, terms=terms, val=acc,
                              seconds=time.time() - t0))
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return best, ran


# --- Several processes (torchrun): one run trained with DistributedDataParallel ---------------------------------------
def world():
    """(rank, number of processes) of this one: (0, 1) unless torch.distributed is initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def local_batches(batches, rank, size):
    """This rank's part of each global batch and the weight n_rank * size / n that makes the ranks' average of
    means the global mean; an empty part (a last batch smaller than `size`) takes one clip at weight 0."""
    parts = [np.array_split(np.asarray(b), size)[rank] for b in batches]
    weights = [len(p) * size / len(b) for p, b in zip(parts, batches)]
    return [p if len(p) else np.asarray(b)[:1] for p, b in zip(parts, batches)], weights


def fd_loss_global(feat, feat_teacher):
    """Eq. 3 over the global batch flattened, as fd_loss on one process: the ranks' sums of a.b, a.a, b.b all-reduced;
    the value is global, its gradient w.r.t. this rank's features times the rank count (DDP averages: one process's)."""
    a, b = upcast(feat).flatten(), upcast(feat_teacher).flatten()
    local = torch.stack([(a * b).sum(), (a * a).sum(), (b * b).sum()])
    ab, aa, bb = total = local.detach().clone()
    torch.distributed.all_reduce(total)
    value = 1 - ab / (aa.sqrt() * bb.sqrt()).clamp_min(1e-12)
    # d value / d a_rank = -b / sqrt(aa bb) + ab a / (aa^1.5 sqrt(bb)): the gradient of `share`
    share = -local[0] / (aa * bb).sqrt() + ab / (2 * aa.pow(1.5) * bb.sqrt()) * local[1]
    return value + world()[1] * (share - share.detach())


def mean_over_ranks(terms):
    """The ranks' epoch means of each loss term, averaged (one NaN check, one log line for all ranks)."""
    if world()[1] == 1 or not terms:
        return terms
    nccl = torch.distributed.get_backend() == 'nccl'  # NCCL reduces CUDA tensors only
    v = torch.tensor(list(terms.values()), dtype=torch.float64,
                     device=torch.device('cuda', torch.cuda.current_device()) if nccl else 'cpu')
    torch.distributed.all_reduce(v)
    return dict(zip(terms, (v / world()[1]).tolist()))


def distributed(model, device):
    """(model, its DistributedDataParallel); on CUDA BatchNorm is SyncBatchNorm (global batch statistics, same keys)."""
    if device.type == 'cuda':
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == 'cuda' else None, broadcast_buffers=False)


# --- The multi-label learner: one phase of any of the eight methods ---------------------------------------------------
def prepare_phase(model, method, phase, n_new):
    """Before phase k >= 1: grow the classifier by n_new rows; FE also freezes the backbone and the old rows."""
    if phase == 0 or method.joint:
        return model
    model.grow(n_new)
    if method.freeze:
        model.freeze_backbone()
        model.fc.freeze_old()
    return model


@torch.no_grad()
def teacher_outputs(teacher, x, batch_size, device, store=None, precision='fp32'):
    """The frozen teacher's (logits, features) on every clip of x, once per phase (it is frozen, in eval mode,
    the inputs not augmented), in the training precision, on `store` (default: device)."""
    teacher.eval()
    logits = feats = None
    for i in range(0, len(x), batch_size):
        with autocast(device, precision):
            z, f = teacher(x[i:i + batch_size].to(device).float())
        if logits is None:  # preallocated: no list + cat doubling the peak
            dtype, where = PRECISIONS[precision], store or device
            logits = torch.empty((len(x),) + z.shape[1:], dtype=dtype, device=where)
            feats = torch.empty((len(x),) + f.shape[1:], dtype=dtype, device=where)
        logits[i:i + len(z)], feats[i:i + len(f)] = z, f
    return logits, feats


def replay_bce(logits_old, targets, known, pos_weight=None):
    """Exemplar replay (in neither paper): BCE over the old logits of a memory batch where the label is known (the
    classes of the phase the clip was learned in); in fp32."""
    logits_old = upcast(logits_old)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=logits_old.dtype, device=logits_old.device)
    loss = F.binary_cross_entropy_with_logits(logits_old, targets, weight=known, pos_weight=pw, reduction='sum')
    return loss / known.sum().clamp_min(1)


def multilabel_exemplars(phases, k, K, seed):
    """Old-class exemplars for phase k (--memory K; in neither paper): K // n_seen clips a class, a seeded prefix of its
    phase's clips, with the labels learned then. Returns (clip indices, targets (n, n_old), known (n, n_old))."""
    m, n_old, rows = memory_quota(K, phases[k].n_seen), phases[k].n_old, {}
    for p in phases[:k]:
        for j in range(p.n_old, p.n_seen):
            for i in select_random(np.flatnonzero(p.train_y[:, j] > 0), m, seed, int(p.seen_classes[j])):
                t, known = rows.setdefault(int(p.train[i]), (np.zeros(n_old, np.float32), np.zeros(n_old, np.float32)))
                t[p.n_old:p.n_seen], known[p.n_old:p.n_seen] = p.train_y[i, p.n_old:p.n_seen], 1.0
    clips = sorted(rows)
    targets = torch.from_numpy(np.stack([rows[c][0] for c in clips]))
    known = torch.from_numpy(np.stack([rows[c][1] for c in clips]))
    return clips, targets, known


def train_epoch(model, method, x, y, batches, optimizer, device, *, n_new, teacher=None, teacher_cache=None,
                pos_weight=None, lam=1.0, T=2.0, fd_per_sample=False, fd_forward='single', memory=None,
                precision='fp32', scaler=None, forward=None, teacher_forward=None):
    """One epoch of a method over `batches` (index arrays into x (N, T, F), y (N, n_new)); the mean of each term. ONE
    forward gives logits and features (fd_forward='authors': L_FD from a second one, as the authors' step); memory:
    (x, targets, known, batches) replayed with replay_bce; forward / teacher_forward: compiled, or the modules."""
    device, forward = torch.device(device), model if forward is None else forward
    teacher_forward = teacher if teacher_forward is None else teacher_forward
    model.train()
    needs_teacher = method.od or method.fd
    cached, (rank, size), weights = needs_teacher and teacher_cache is not None, world(), [1.0] * len(batches)
    if size > 1:  # DDP: this rank's part of each global batch
        batches, weights = local_batches(batches, rank, size)
    rows = device_batches([x, y] + (list(teacher_cache) if cached else []), batches, device)
    if memory is not None:
        mx, my, mknown, mbatches = memory
        memory_rows = device_batches([mx, my, mknown], mbatches, device)
    sums = {}
    for got, weight in zip(rows, weights):
        xb, yb = got[0].to(device, non_blocking=True).float(), got[1].to(device, non_blocking=True)
        t_logits = t_feats = None
        with autocast(device, precision):
            logits, feats = forward(xb)  # one forward: logits and features together
            if needs_teacher and logits.shape[1] > n_new:
                if cached:
                    t_logits, t_feats = got[2], got[3]
                else:
                    with torch.no_grad():
                        t_logits, t_feats = teacher_forward(xb)
                if method.fd and fd_forward == 'authors':
                    _, feats = forward(xb)
        loss, terms = multilabel_loss(method, logits, yb, n_new, feats=feats, teacher_logits=t_logits,
                                      teacher_feats=t_feats, pos_weight=pos_weight, lam=lam, T=T,
                                      fd_per_sample=fd_per_sample)
        if size > 1:  # means weighted to the global batch's, flat L_FD over it (an empty part's stand-in: weight 0)
            keep = float(weight > 0)
            terms = {k: fd_loss_global(feats * keep, t_feats * keep) if k == 'fd' and not fd_per_sample
                     else v * weight for k, v in terms.items()}
            loss = sum(terms.values())
        if memory is not None:
            mxb, myb, mkb = next(memory_rows)
            with autocast(device, precision):
                z_mem, _ = forward(mxb.to(device).float())
            terms['replay'] = replay_bce(z_mem[:, :myb.shape[1]], myb.to(device), mkb.to(device), pos_weight)
            loss = loss + terms['replay']
        sgd_step(optimizer, loss, terms, sums, scaler)
    return mean_over_ranks({k: (v / max(len(batches), 1)).item() for k, v in sums.items()})


def train_multilabel(model, method, x, y, hp=None, *, phase, epochs, lr, seed, device, subsets=None, memory=None,
                     resume=None, on_epoch=None, log=None, **settings):
    """One phase of a multi-label method -> the learner at its end. model: the learner after phase - 1 (phase 0, AT: a
    fresh one); x (N, T, F): the phase's training clips; y (N, n_new): its new classes' targets (AT: every seen one's).
    From phase 1 (not AT) the previous learner is the frozen teacher and the classifier grows. subsets: phase 0's
    multitask heads; memory: (x, targets, known) replayed. Epochs reseed from (seed, phase, epoch): resume is exact."""
    hp = replace(hp or Hyper(), **settings)
    batch_size, precision, device, n_new, teacher = hp.batch_size, hp.precision, torch.device(device), y.shape[1], None
    if phase > 0 and not method.joint:
        teacher = frozen_copy(model)
        torch.manual_seed(seed_of(seed, 'grow', phase))
        prepare_phase(model, method, phase, n_new)
    for s in subsets[1:] if subsets else []:
        model.add_head(len(s))
    lam = adaptive_lambda(model.fc.out_features, n_new, hp.lambda_base, hp.lambda_pow, hp.const_lambda)  # Eq. 4
    pw = torch.tensor(pos_weight_of(y), dtype=torch.float32, device=device) if hp.pos_weight == 'auto' else None
    placed(model, device, hp.channels_last)
    optimizer, scheduler = make_optimizer(model, lr, epochs, hp.momentum, hp.weight_decay, hp.lr_min)
    scaler = grad_scaler(device, precision)
    if resume is not None:
        restore(resume, model, optimizer, scheduler, scaler)
    start, teacher_cache = resume['epoch'] if resume is not None else 0, None
    if teacher is not None and (method.od or method.fd) and start < epochs:
        placed(teacher, device, hp.channels_last)
        if hp.cache_teacher:
            with torch.no_grad(), autocast(device, precision):
                z, f = teacher(x[:1].to(device).float())
            nbytes = len(x) * (z[0].numel() + f[0].numel()) * PRECISIONS[precision].itemsize
            store = device if fits(nbytes, device) else torch.device('cpu')
            teacher_cache = teacher_outputs(teacher, x, 2 * batch_size, device, store, precision)
            if log:
                log(f'phase {phase}: teacher outputs cached for {len(x)} clips ({nbytes / 2 ** 20:.0f} MiB, {store})')
    rank, size = world()
    if size > 1:  # torchrun: the same run on every process, each on its part of every batch
        model, ddp = distributed(model, device)  # SyncBatchNorm keeps the Parameters the optimiser holds
    forward = compiled(ddp if size > 1 else model, hp.compile)
    teacher_forward = compiled(teacher, hp.compile) if teacher is not None and teacher_cache is None else teacher
    y_t = torch.from_numpy(np.asarray(y, np.float32)).to(x.device)
    for epoch in range(start, epochs):
        t0, step_seed = time.time(), seed_of(seed, phase, epoch)
        # dropout masks: a function of (seed, phase, epoch) (and the rank), so resume is exact
        torch.manual_seed(step_seed if size == 1 else seed_of(seed, phase, epoch, rank))
        batches = (balanced_batches(y, batch_size, step_seed) if hp.sampler == 'balanced'
                   else index_batches(len(y), batch_size, step_seed))
        if subsets:
            terms = multitask_epoch(model, subsets, x, y_t, batch_size, optimizer, device, step_seed,
                                    batching=hp.mt_batching, reduce=hp.mt_loss_reduce, pos_weight=pw,
                                    precision=precision, scaler=scaler, forward=forward)
        else:
            replay = None if memory is None else tuple(memory) + (
                memory_batches(len(memory[1]), len(batches), batch_size, step_seed + 1),)
            terms = train_epoch(model, method, x, y_t, batches, optimizer, device, n_new=n_new, teacher=teacher,
                                teacher_cache=teacher_cache, pos_weight=pw, lam=lam, T=hp.T, memory=replay,
                                fd_per_sample=hp.fd == 'per-sample', fd_forward=hp.fd_forward, precision=precision,
                                scaler=scaler, forward=forward, teacher_forward=teacher_forward)
        check_finite(terms, f'phase {phase}, epoch {epoch + 1}')
        scheduler.step()
        if on_epoch is not None:
            on_epoch(snapshot(model, optimizer, scheduler, scaler, phase=phase, epoch=epoch + 1, epochs=epochs,
                              terms=terms, lr=optimizer.param_groups[0]['lr'], seconds=time.time() - t0))
    if size > 1:  # every process leaves with rank 0's learner (BatchNorm statistics included), the one saved
        with torch.no_grad():  # the tensors themselves: state_dict's classifier entries are concatenated copies
            for t in [*model.parameters(), *model.buffers()]:
                torch.distributed.broadcast(t, 0)
    if subsets:
        model.drop_aux_heads()  # heads 1.. are discarded; the backbone and head 0 go forward (Ma et al.)
    return model


# --- Single-label CIL (Ma et al. + Mittal et al.): exemplar memory, multitask base, incremental step ------------------
def memory_quota(K, n_seen):
    """Exemplars per class when n_seen classes share a memory of K (floor; the remainder is unused)."""
    if K < n_seen:
        raise ValueError(f'memory of {K} exemplars cannot hold one per class for {n_seen} classes')
    return K // n_seen


def select_random(indices, m, seed, class_id):
    """m exemplars of one class: a prefix of a permutation seeded by (seed, the dataset's class id); reducing keeps
    a prefix of the same draw (Mittal's selection, without repeats)."""
    indices = np.asarray(indices)
    return indices[np.random.RandomState(seed * 1000 + class_id).permutation(len(indices))[:m]]


def select_herding(embeddings, m, normalize_mean=True):
    """iCaRL herding: positions of m items, in order, whose running mean of unit embeddings stays closest to the class
    mean (normalised with normalize_mean, kws_cil.md 2.6; plain as iCaRL's code)."""
    phi = F.normalize(torch.as_tensor(embeddings, dtype=torch.float64), dim=1)
    mu = phi.mean(0)
    mu = F.normalize(mu, dim=0) if normalize_mean else mu
    chosen, running = [], torch.zeros_like(mu)
    for k in range(1, min(m, len(phi)) + 1):
        dist = (mu - (running + phi) / k).norm(dim=1)
        dist[chosen] = float('inf')  # a chosen item is never a candidate again
        i = int(dist.argmin())
        chosen.append(i)
        running += phi[i]
    return np.array(chosen, dtype=np.int64)


class ExemplarMemory:
    """A fixed total of K exemplars, an equal quota per seen class (kws_cil.md 2.6). Each class keeps
    its exemplars (dataset indices) in priority order, so reduction truncates to a prefix."""

    def __init__(self, K):
        self.K, self.per_class = K, {}

    def reduce(self, n_seen):
        m = memory_quota(self.K, n_seen)
        self.per_class = {c: idx[:m] for c, idx in self.per_class.items()}
        return m

    def set(self, label, indices):
        self.per_class[int(label)] = np.asarray(indices, dtype=np.int64)

    def items(self):
        """(dataset indices, learned labels) of every exemplar, classes in label order."""
        labels = sorted(self.per_class)
        idx = [self.per_class[c] for c in labels]
        return (np.concatenate(idx) if idx else np.zeros(0, np.int64),
                np.concatenate([np.full(len(i), c) for c, i in zip(labels, idx)]) if idx else np.zeros(0, np.int64))

    def __len__(self):
        return sum(len(v) for v in self.per_class.values())

    def state_dict(self):
        return {'K': self.K, 'per_class': {str(c): v.tolist() for c, v in self.per_class.items()}}

    def load_state_dict(self, state):
        self.K = state['K']
        self.per_class = {int(c): np.asarray(v, np.int64) for c, v in state['per_class'].items()}


def memory_batches(n_memory, n_batches, batch_size, seed):
    """n_batches batches of min(B, |M|) memory items read in turn from one shuffled permutation, cycling
    (kws_cil.md 2.1; no drop_last, no item twice in a batch)."""
    if n_memory == 0:
        return [None] * n_batches
    size, perm = min(batch_size, n_memory), np.random.RandomState(seed).permutation(n_memory)
    return [perm[(i * size + np.arange(size)) % n_memory] for i in range(n_batches)]


@torch.no_grad()
def embeddings(model, x, batch_size, device, precision='fp32'):
    """Pooled embeddings (eval mode, float32) of every row of x: the herding features."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        with autocast(device, precision):
            out.append(upcast(model.embed(x[i:i + batch_size].to(device).float())[0]))
    return torch.cat(out).cpu()


def select_exemplars(memory, model, x, phase, labels, m, *, how, seed, device, normalize_mean=True,
                     precision='fp32'):
    """m exemplars of each learned label in `labels`: random, or herding on the model's embeddings of x (every clip)."""
    for c in labels:
        idx = phase.train[phase.train_y == c]  # training clips of learned label c
        if how == 'random':
            memory.set(c, select_random(idx, m, seed, int(phase.seen_classes[c])))
        else:
            emb = embeddings(model, x[torch.as_tensor(idx)], 256, device, precision)
            memory.set(c, idx[select_herding(emb, m, normalize_mean)])


def head_subsets(n_base, heads, how='random', seed=0):
    """The multitask heads' class subsets (kws_cil.md 2.2): head 0 every base class, head h a sorted k_h-subset new to
    the heads: random (of the unused ones), cyclic ({h-1+t mod n}), prefix (range(k)) or explicit '0-1-2-3/1-2-4'."""
    if heads[0] != n_base or any(not 2 <= k < n_base for k in heads[1:]):
        raise ValueError(f'--heads {heads}: the first head must have all {n_base} base classes and every other '
                         f'head between 2 and {n_base - 1} classes')
    subsets = [list(range(n_base))]
    if how not in ('random', 'cyclic', 'prefix'):  # explicit
        try:
            subsets += [sorted(int(c) for c in part.split('-')) for part in how.split('/')]
        except ValueError:
            raise ValueError(f"--head-subsets {how!r}: write class ids as '0-1-2-3/1-2-4/0-3' (heads 1..)") from None
        if [len(s) for s in subsets] != list(heads):
            raise ValueError(f'explicit head subsets {how!r} do not match --heads {heads}')
        if any(len(set(s)) != len(s) or not all(0 <= c < n_base for c in s) for s in subsets[1:]):
            raise ValueError(f'--head-subsets {how!r}: each head needs distinct class ids in 0..{n_base - 1}')
        if len({tuple(s) for s in subsets}) != len(subsets):
            raise ValueError(f'--head-subsets {how!r}: two heads have the same classes')
        return subsets
    rs = np.random.RandomState(seed)
    for h, k in enumerate(heads[1:], 1):
        if how == 'prefix':
            subsets.append(list(range(k)))
        elif how == 'cyclic':
            subsets.append(sorted((h - 1 + t) % n_base for t in range(k)))
        else:
            unused = [list(c) for c in itertools.combinations(range(n_base), k) if list(c) not in subsets]
            if not unused:
                raise ValueError(f'--heads {heads}: no distinct {k}-subset of {n_base} classes is left')
            subsets.append(unused[rs.randint(len(unused))])
    return subsets


def multitask_epoch(model, subsets, x, y, batch_size, optimizer, device, seed, *, batching='per-task', reduce='sum',
                    pos_weight=None, precision='fp32', scaler=None, forward=None):
    """Multitask base training, one epoch (Ma et al. 3: one backbone, a head per class subset); y: labels or multi-hot.
    per-task: a loader per head; a step: a batch of each head not exhausted, one SGD step on sum_h L_h. shared: one."""
    forward = model if forward is None else forward
    model.train()
    y_np = y.cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
    multilabel = y_np.ndim == 2
    local = [np.full(y_np.shape[1] if multilabel else int(y_np.max()) + 1, -1) for _ in subsets]
    for h, s in enumerate(subsets):
        local[h][s] = np.arange(len(s))
    # targets reach the device with their batch (device_batches: no host copy per step): multi-label the
    # multi-hot rows (a head takes its subset's columns), single-label each head's local label (-1: not its class)
    y_all = torch.as_tensor(y_np if multilabel else np.stack([local[h][y_np] for h in range(len(subsets))], 1))
    columns = [torch.as_tensor(s, device=device) for s in subsets] if multilabel else None

    def head_loss(h, yb, logits):
        if multilabel:
            return bce_loss(logits, yb.index_select(1, columns[h]), pos_weight)  # contiguous, as the sum's order
        return F.cross_entropy(upcast(logits), yb[:, h], ignore_index=-1)

    losses, counts = [0.0] * len(subsets), [0] * len(subsets)
    if batching == 'per-task':
        members = [np.flatnonzero(y_np[:, s].any(1) if multilabel else local[h][y_np] >= 0)
                   for h, s in enumerate(subsets)]
        steps = [[(h, rows[b]) for b in index_batches(len(rows), batch_size, seed * 131 + h)]
                 for h, rows in enumerate(members)]
        iterations = [[step for step in it if step is not None] for it in itertools.zip_longest(*steps)]
    elif batching == 'shared':
        iterations = [[(h, b) for h in range(len(subsets))] for b in index_batches(len(y_np), batch_size, seed)]
    else:
        raise ValueError(f'unknown --mt-batching {batching!r}')
    shared = batching == 'shared'
    feed = device_batches([x, y_all], [it[0][1] for it in iterations] if shared else
                          [b for it in iterations for _, b in it], device)  # in the order the loop takes them
    for it in iterations:
        total, used = 0.0, 0
        if shared:
            xb, yb = next(feed)
            with autocast(device, precision):
                emb, _ = model.embed(xb.float())
        for h, b in it:
            if shared and not multilabel and not (local[h][y_np[b]] >= 0).any():
                continue  # no clip of head h's classes in the shared batch
            if not shared:
                xb, yb = next(feed)
            with autocast(device, precision):
                logits = model.classify(emb, h) if shared else forward(xb.float(), head=h)[0]
            loss = head_loss(h, yb, logits)
            losses[h], counts[h] = losses[h] + loss.detach(), counts[h] + 1
            total, used = total + loss, used + 1
        if used:
            sgd_step(optimizer, total / used if reduce == 'mean' else total, {}, {}, scaler)
    name = 'bce' if multilabel else 'ce'
    return {f'{name}_head{h}': float(v) / max(c, 1) for h, (v, c) in enumerate(zip(losses, counts))}


def mittal_epoch(model, terms, x, y, batches, optimizer, device, *, n_old, mem_x=None, mem_y=None, mem_batches=None,
                 teacher=None, lam=1.0, T=2.0, ce_new_logits='new', precision='fp32', scaler=None, forward=None):
    """One epoch of Mittal's step: per iteration a new-data batch and a memory batch, each with its own forward
    (train mode: BatchNorm sees each alone), and the frozen teacher on each batch a KD term needs."""
    forward = model if forward is None else forward
    model.train()
    use_mem = ('ce_o' in terms or 'kd_o' in terms) and mem_x is not None and len(mem_x)
    sums = {}
    new = device_batches([x, y], batches, device)  # no host copy per step (a pinned prefetch from the host)
    mem = device_batches([mem_x, mem_y], mem_batches, device) if use_mem else itertools.repeat(None)
    for (xb, yb), old in zip(new, mem):
        xb = xb.float()
        logits_o = yo = t_n = t_o = None
        with autocast(device, precision):
            logits_n, _ = forward(xb)
            if use_mem:
                xo, yo = old[0].float(), old[1]
                logits_o, _ = forward(xo)
            if n_old and teacher is not None:
                with torch.no_grad():
                    t_n = teacher(xb)[0] if 'kd_n' in terms else None
                    t_o = teacher(xo)[0] if use_mem and 'kd_o' in terms else None
        active = [t for t in terms if use_mem or t not in ('ce_o', 'kd_o')]
        loss, parts = mittal_loss(active, logits_n, yb, n_old, logits_o=logits_o, y_o=yo, teacher_n=t_n, teacher_o=t_o,
                                  lam=lam, T=T, ce_new_logits=ce_new_logits)
        sgd_step(optimizer, loss, parts, sums, scaler)
    return {k: (v / max(len(batches), 1)).item() for k, v in sums.items()}


def train_base(model, x, phase, hp=None, *, subsets, seed, device, epochs, lr=0.01, resume=None, on_epoch=None,
               **settings):
    """Step 0 of Ma et al.: multitask base training, early stopping on head 0's accuracy over the base validation
    clips, the auxiliary heads dropped at the end. Returns (model, best validation accuracy, epochs run)."""
    hp, device = replace(hp or Hyper(), **settings), torch.device(device)
    for s in subsets[1:]:
        model.add_head(len(s))
    placed(model, device, hp.channels_last)
    opt = sgd(model, lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, hp.lr_min) if hp.base_sched == 'cosine' else None
    scaler, forward = grad_scaler(device, hp.precision), compiled(model, hp.compile)
    x_train, y_train = x[torch.as_tensor(phase.train)], torch.as_tensor(phase.train_y)
    x_val = x[torch.as_tensor(phase.val)]

    def epoch_fn(epoch):
        torch.manual_seed(seed_of(seed, 'base', epoch))
        return multitask_epoch(model, subsets, x_train, y_train, hp.batch_size, opt, device,
                               seed_of(seed, 'base-batches', epoch), batching=hp.mt_batching, reduce=hp.mt_loss_reduce,
                               precision=hp.precision, scaler=scaler, forward=forward)

    best, ran = fit(model, opt, sched, epoch_fn, lambda: accuracy(model, x_val, phase.val_y, device), max_epochs=epochs,
                    patience=hp.patience, tag='base', resume=resume, on_epoch=on_epoch, scaler=scaler)
    model.drop_aux_heads()
    return model, best, ran


def mittal_step(model, memory, x, phase, hp=None, *, losses, seed, device, resume=None, on_epoch=None, **settings):
    """Incremental step k >= 1 of the single-label learner (Mittal et al.'s step, as Ma et al. run it):
    1. the learner of step k-1 becomes the frozen teacher; head 0 grows by the new classes;
    2. the memory shrinks to K // n_seen a class (a prefix); the new classes get theirs (random, as Mittal's code);
    3. training on the new classes' clips, a memory batch beside each, loss mittal_loss(losses): two-step (A: lr_a,
       conv1..freeze_upto frozen; B: lr_b, every layer; early stopping each) or 'mittal' (every layer, lr_ft, cosine);
    4. exemplar_select='herding' re-selects the new classes' exemplars with the trained model.
    resume: a state of this step ('done': its finished stages). Returns (model, memory, info)."""
    hp, device, k = replace(hp or Hyper(), **settings), torch.device(device), phase.k
    teacher = frozen_copy(model)
    torch.manual_seed(seed_of(seed, 'grow', k))
    model.grow(phase.n_new)
    m, new = memory.reduce(phase.n_seen), range(phase.n_old, phase.n_seen)
    select_exemplars(memory, model, x, phase, new, m, how='random', seed=seed, device=device)
    mem_idx, mem_y = memory.items()
    mem_x, mem_y = x[torch.as_tensor(mem_idx)], torch.as_tensor(mem_y)
    x_train, y_train = x[torch.as_tensor(phase.train)], torch.as_tensor(phase.train_y)
    lam = adaptive_lambda(phase.n_seen, phase.n_new, hp.lambda_base, hp.lambda_pow, hp.const_lambda)
    keep = phase.val_y >= (phase.n_old if hp.es_val == 'new' else 0)  # early stopping on seen or new classes
    x_val, val_y = x[torch.as_tensor(phase.val[keep])], phase.val_y[keep]
    placed(model, device, hp.channels_last)
    placed(teacher, device, hp.channels_last)
    forward = compiled(model, hp.compile)

    def epoch_fn(epoch, stage):  # opt and scaler: the stage's, set before fit() runs it
        epoch_seed = seed_of(seed, k, stage, epoch)
        torch.manual_seed(epoch_seed)
        batches = index_batches(len(y_train), hp.batch_size, epoch_seed)
        mb = memory_batches(len(mem_y), len(batches), hp.batch_size, epoch_seed + 1)
        return mittal_epoch(model, losses, x_train, y_train, batches, opt, device, n_old=phase.n_old, mem_x=mem_x,
                            mem_y=mem_y, mem_batches=mb, teacher=teacher, lam=lam, T=hp.T,
                            ce_new_logits=hp.ce_new_logits, precision=hp.precision, scaler=scaler, forward=forward)

    stages = ({'A': (hp.lr_a, hp.epochs_a), 'B': (hp.lr_b, hp.epochs_b)} if hp.ft_mode == 'two-step'
              else {'ft': (hp.lr_ft, hp.epochs_ft)})  # stage: (learning rate, epochs)
    tags = {s: f'step{k}{s}' for s in stages}
    epochs = dict(resume.get('done', {})) if resume is not None and resume['tag'] in tags.values() else {}
    for stage, (lr, max_epochs) in stages.items():
        if stage in epochs:  # finished before the resume
            continue
        model.freeze_upto(hp.freeze_upto if stage == 'A' else 0)  # A: conv layers 1..freeze_upto frozen
        opt = sgd(model, lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max_epochs, hp.lr_min) if stage == 'ft' else None
        scaler, finished = grad_scaler(device, hp.precision), dict(epochs)
        on_stage_epoch = None if on_epoch is None else lambda state, f=finished: on_epoch(dict(state, done=f))
        _, epochs[stage] = fit(
            model, opt, sched, lambda e, s=stage: epoch_fn(e, s), lambda: accuracy(model, x_val, val_y, device),
            scaler=scaler, max_epochs=max_epochs, patience=None if stage == 'ft' else hp.patience, tag=tags[stage],
            resume=resume, on_epoch=on_stage_epoch)
    model.freeze_upto(0)
    if hp.exemplar_select == 'herding':  # re-select the new classes with the trained model
        select_exemplars(memory, model, x, phase, new, m, how='herding', seed=seed, device=device,
                         normalize_mean=hp.herding_mean != 'icarl', precision=hp.precision)
    return model, memory, {'quota': m, 'epochs': epochs}
