"""
The losses of every method of both papers, each a few lines next to its equation.

Multi-label CIL (Mulimani & Mesaros, "Class-incremental learning for multi-label audio
classification"): FT, FE, IndL, OD, IOD, IFD, IODFD, AT. Defaults follow the authors' released code
(mulimani/CIL-ML-Audio, main_audioset.py), as shared/spec/multilabel_cil.md decides.

Single-label CIL with exemplars (Ma et al., multitask base training; incremental step of Mittal et
al., "Essentials for class incremental learning"): CE N, KD N, CE O, KD O.

One training loop serves every method (`train_epoch`): a method only says which logits the BCE
sees, which distillation terms apply and what is frozen. Each step runs ONE forward of the current
learner (logits and features together) and at most one of the frozen previous learner (none with a
teacher cache).
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


# -----------------------------------------------------------------------------
# Multi-label: the method table

@dataclass(frozen=True)
class Method:
    """What a multi-label method changes in an incremental phase (phase 0 is plain BCE for all)."""
    indl: bool = False   # BCE over the new classes' logits only (independent learning), Eq. 1
    od: bool = False     # output distillation on the old logits, Eq. 2
    fd: bool = False     # feature distillation on the backbone features, Eq. 3
    freeze: bool = False  # FE: backbone and old classifier rows frozen after phase 0
    joint: bool = False  # AT: a fresh learner trained on all seen classes every phase


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


# -----------------------------------------------------------------------------
# Multi-label losses

def bce_loss(logits, targets, pos_weight=None):
    """Eq. 1: binary cross-entropy with sigmoid over the given logits. pos_weight: a scalar
    (#negatives / #positives of the phase's train targets, as the authors' code) or None."""
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=pos_weight)


def pos_weight_of(targets):
    """#negatives / #positives over a (N, C) multi-hot target matrix (authors' code: a scalar)."""
    targets = torch.as_tensor(targets)
    n_pos = targets.sum()
    if n_pos == 0:
        raise ValueError('the phase has no positive targets: every class of the phase is empty')
    return ((targets == 0).sum() / n_pos).item()


def kd_loss(student, teacher, T=2.0):
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2, averaged over batch x classes like
    nn.KLDivLoss(reduction='mean') (the authors' and Mittal's code), not over the batch only."""
    log_p = F.log_softmax(student / T, dim=1)
    q = F.softmax(teacher / T, dim=1)
    return (torch.xlogy(q, q) - q * log_p).mean() * T * T  # = F.kl_div(log_p, q, reduction='mean') * T^2


def od_loss(z_old, z_old_teacher, T=2.0):
    """Eq. 2: output discrepancy between the current and previous learner on the old classes."""
    return kd_loss(z_old, z_old_teacher, T)


def fd_loss(feat, feat_teacher, per_sample=False):
    """Eq. 3: 1 - cos(normalize(f_new), normalize(f_old)). The authors' code flattens the whole batch
    into one vector and takes one cosine; per_sample=True averages the per-clip cosines instead."""
    a, b = (feat.flatten(1), feat_teacher.flatten(1)) if per_sample else (feat.flatten(), feat_teacher.flatten())
    return (1 - F.cosine_similarity(F.normalize(a, dim=-1), F.normalize(b, dim=-1), dim=-1)).mean()


def adaptive_lambda(n_seen, n_new, base=5.0, power=0.66, const=False):
    """Eq. 4 weight: lambda_base * (n_seen / n_new) ** power (LUCIR-style adaptive weight, values of
    the authors' code); const=True gives lambda_base alone."""
    return base if const else base * (n_seen / n_new) ** power


def multilabel_loss(method, logits, targets, n_new, feats=None, teacher_logits=None, teacher_feats=None,
                    pos_weight=None, lam=1.0, T=2.0, fd_per_sample=False):
    """Loss of one incremental step, Eq. 4: L = L_BCE + lambda * L_OD + L_FD (terms by `method`).

    logits (B, n_seen) = [z_old, z_new] of the current learner; targets (B, n_new) hold only the
    phase's classes (phase 0 and AT: n_new = n_seen, every logit is "new"). teacher_* come from the
    frozen previous learner on the same batch. FE has no IndL (multilabel_cil.md): its BCE sees every
    logit, though only the new rows can move. Returns (total, {term name: value}).
    """
    n_old = logits.shape[1] - n_new
    if method.indl or n_old == 0:
        bce = bce_loss(logits[:, n_old:], targets, pos_weight)  # Eq. 1 over z_new only
    else:  # old-class targets are 0: the only information the current data holds about them
        full = torch.cat([targets.new_zeros(targets.shape[0], n_old), targets], dim=1)
        bce = bce_loss(logits, full, pos_weight)
    terms = {'bce': bce}
    if n_old and method.od:
        terms['od'] = lam * od_loss(logits[:, :n_old], teacher_logits, T)  # Eq. 2
    if n_old and method.fd:
        terms['fd'] = fd_loss(feats, teacher_feats, fd_per_sample)  # Eq. 3
    return sum(terms.values()), terms


# -----------------------------------------------------------------------------
# Single-label losses (Mittal et al.'s incremental step; Table 2 of Ma et al. switches the terms)

KWS_TERMS = ('ce_n', 'kd_n', 'ce_o', 'kd_o')


def kws_loss(terms, logits_n, y_n, n_old, logits_o=None, y_o=None, teacher_n=None, teacher_o=None,
             lam=1.0, T=2.0, ce_new_logits='new'):
    """L = CE N + CE O + lambda * (KD N + KD O), each term switchable (`terms`, a subset of KWS_TERMS).

    CE N: new-class batch, cross-entropy over the new logits only (ce_new_logits='new', Mittal's
          separated softmax) or over all logits ('all').
    CE O: exemplar batch (balanced over old + new classes), cross-entropy over all seen logits.
    KD N / KD O: kd_loss of the old logits against the previous learner, on each batch.
    Returns (total, {term name: value}).
    """
    out = {}
    if 'ce_n' in terms:
        out['ce_n'] = (F.cross_entropy(logits_n[:, n_old:], y_n - n_old) if ce_new_logits == 'new'
                       else F.cross_entropy(logits_n, y_n))
    if 'ce_o' in terms:
        out['ce_o'] = F.cross_entropy(logits_o, y_o)
    if 'kd_n' in terms and n_old:
        out['kd_n'] = lam * kd_loss(logits_n[:, :n_old], teacher_n, T)
    if 'kd_o' in terms and n_old:
        out['kd_o'] = lam * kd_loss(logits_o[:, :n_old], teacher_o, T)
    return sum(out.values()), out


# -----------------------------------------------------------------------------
# The training loop (multi-label; the keyword-spotting step reuses its pieces)

def index_batches(n, batch_size, seed):
    """A seeded shuffle of range(n) cut into batches (the last one may be smaller)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def balanced_batches(targets, batch_size, seed):
    """PANNs' class-balanced sampling for multi-label data: the classes are visited in a shuffled
    cycle and each visit takes the next clip of that class (each class's clips reshuffled when used
    up). As many batches as a plain epoch (ceil(N / B)). Classes without clips are skipped."""
    rs = np.random.RandomState(seed)
    targets = np.asarray(targets) > 0
    pools = [np.flatnonzero(targets[:, c]) for c in range(targets.shape[1])]
    classes = [c for c in range(len(pools)) if len(pools[c])]
    queues = {c: list(rs.permutation(pools[c])) for c in classes}
    cycle = []
    out = []
    for _ in range(-(-targets.shape[0] // batch_size)):
        batch = []
        for _ in range(batch_size):
            if not cycle:
                cycle = list(rs.permutation(classes))
            c = cycle.pop()
            if not queues[c]:
                queues[c] = list(rs.permutation(pools[c]))
            batch.append(queues[c].pop())
        out.append(np.array(batch))
    return out


def make_optimizer(model, lr, epochs, momentum=0.9, weight_decay=5e-4, eta_min=1e-4):
    """SGD over the trainable parameters + CosineAnnealingLR over the phase's epochs (authors' code)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=eta_min)


def prepare_phase(model, method, phase, n_new):
    """Before training phase k >= 1: grow the classifier by n_new rows; FE also freezes the backbone
    and the old rows. (AT builds a fresh learner instead; phase 0 trains everything.)"""
    if phase == 0 or method.joint:
        return model
    model.grow(n_new)
    if method.freeze:
        model.freeze_backbone()
        model.fc.freeze_old()
    return model


@torch.no_grad()
def teacher_outputs(teacher, x, batch_size, device, store=None):
    """The frozen previous learner's (logits, features) on every clip of x, computed once per phase
    (valid because it is frozen, in eval mode, and the inputs are not augmented). Kept in float32 on
    `store` (default: device): N x (n_old + C*T'*F') x 4 bytes."""
    teacher.eval()
    store = store or device
    logits = feats = None
    for i in range(0, len(x), batch_size):
        z, f = teacher(x[i:i + batch_size].to(device).float())
        if logits is None:  # preallocate: no list + cat doubling the peak
            logits = torch.empty((len(x),) + z.shape[1:], device=store)
            feats = torch.empty((len(x),) + f.shape[1:], device=store)
        logits[i:i + len(z)], feats[i:i + len(f)] = z, f
    return logits, feats


def sgd_step(optimizer, loss, terms, sums):
    """One optimiser step on `loss`; adds each term's value to `sums` (on the device: no sync per step)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    for k, v in terms.items():
        sums[k] = sums.get(k, 0.0) + v.detach()


def replay_bce(logits_old, targets, known, pos_weight=None):
    """Exemplar replay for the multi-label learner (not in the paper): BCE over the old logits of a
    memory batch, counted only where the label is known (the classes of the phase the clip was
    stored in: the only labels the learner ever saw for it)."""
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=logits_old.dtype, device=logits_old.device)
    loss = F.binary_cross_entropy_with_logits(logits_old, targets, weight=known, pos_weight=pw, reduction='sum')
    return loss / known.sum().clamp_min(1)


def train_epoch(model, method, x, y, batches, optimizer, device, n_new, teacher=None, teacher_cache=None,
                pos_weight=None, lam=1.0, T=2.0, fd_per_sample=False, memory=None):
    """One epoch of one method over the batches (index arrays into x, y). x: (N, T, F) tensor (any
    float dtype, on CPU or `device`); y: (N, n_new) targets. memory: optional (x, targets, known,
    batches) of exemplars of old classes, replayed with `replay_bce` (one more forward per step).
    Returns the mean of each loss term."""
    model.train()
    needs_teacher = method.od or method.fd
    sums = {}
    for step, idx in enumerate(batches):
        idx_t = torch.as_tensor(idx)
        xb = x[idx_t].to(device, non_blocking=True).float()
        yb = y[idx_t].to(device, non_blocking=True)
        logits, feats = model(xb)  # one forward: logits and features together
        t_logits = t_feats = None
        if needs_teacher and logits.shape[1] > n_new:
            if teacher_cache is not None:
                t_logits, t_feats = (t[idx_t.to(t.device)].to(device) for t in teacher_cache)
            else:
                with torch.no_grad():
                    t_logits, t_feats = teacher(xb)
        loss, terms = multilabel_loss(method, logits, yb, n_new, feats, t_logits, t_feats, pos_weight, lam, T,
                                      fd_per_sample)
        if memory is not None:
            mx, my, mknown, mbatches = memory
            m = torch.as_tensor(mbatches[step])
            z_mem, _ = model(mx[m].to(device).float())
            terms['replay'] = replay_bce(z_mem[:, :my.shape[1]], my[m].to(device), mknown[m].to(device), pos_weight)
            loss = loss + terms['replay']
        sgd_step(optimizer, loss, terms, sums)
    return {k: (v / max(len(batches), 1)).item() for k, v in sums.items()}


@torch.no_grad()
def predict(model, x, batch_size, device, sigmoid=True):
    """Scores of the model on every clip of x: sigmoid probabilities (multi-label) or raw logits."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        z, _ = model(x[i:i + batch_size].to(device).float())
        out.append(torch.sigmoid(z) if sigmoid else z)
    return torch.cat(out).float().cpu().numpy()


# -----------------------------------------------------------------------------
# Single-label CIL (Ma et al. + Mittal et al.): exemplar memory, multitask base, incremental step

def memory_quota(K, n_seen):
    """Exemplars per class when n_seen classes share a memory of K (floor; the remainder is unused)."""
    if K < n_seen:
        raise ValueError(f'memory of {K} exemplars cannot hold one per class for {n_seen} classes')
    return K // n_seen


def select_random(indices, m, seed, class_id):
    """m exemplars of one class: the prefix of a per-class permutation (RandomState(seed*1000+class_id),
    class_id the dataset's, so the draw does not depend on the class order); reducing a class later
    keeps a prefix of the same draw (Mittal's selection, without repeats)."""
    indices = np.asarray(indices)
    return indices[np.random.RandomState(seed * 1000 + class_id).permutation(len(indices))[:m]]


def select_herding(embeddings, m, normalize_mean=True):
    """iCaRL herding: positions of m items, in selection order, whose running mean of L2-normalised
    embeddings stays closest to the class mean: argmin_i || mu - (sum_selected + phi_i) / k || over
    the items not yet selected.

    normalize_mean=True: mu is the mean of the phi_i scaled to unit length (kws_cil.md 2.6).
    normalize_mean=False: mu is the plain mean of the phi_i, as iCaRL's released code has it (its
    walk w += mu - phi_pick, argmax <w, phi_i>, is this argmin because every phi_i has unit length).
    The first pick is the same; later ones can differ, since |mu| < 1 unless all phi_i coincide.
    Not reproduced: iCaRL's walk may land on an item it already holds (nothing is added, but w
    moves on); here a selected item is never a candidate again."""
    phi = F.normalize(torch.as_tensor(embeddings, dtype=torch.float64), dim=1)
    mu = phi.mean(0)
    if normalize_mean:
        mu = F.normalize(mu, dim=0)
    chosen, running = [], torch.zeros_like(mu)
    available = torch.ones(len(phi), dtype=torch.bool)
    for k in range(1, min(m, len(phi)) + 1):
        dist = (mu - (running + phi) / k).norm(dim=1)
        dist[~available] = float('inf')
        i = int(dist.argmin())
        chosen.append(i)
        available[i] = False
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
    """n_batches batches of min(B, |M|) memory items, read in turn from one shuffled permutation of
    the memory per epoch, cycling through it (kws_cil.md 2.1). No drop_last, so a memory of 10 still
    gives batches, and no item appears twice in a batch."""
    if n_memory == 0:
        return [None] * n_batches
    size, perm = min(batch_size, n_memory), np.random.RandomState(seed).permutation(n_memory)
    return [perm[(i * size + np.arange(size)) % n_memory] for i in range(n_batches)]


def head_subsets(n_base, heads, how='random', seed=0):
    """Class subsets of the multitask heads (kws_cil.md 2.2). Head 0 covers every base class; head h
    of size k_h gets a k_h-subset of range(n_base), sorted, distinct from every earlier head's.
    how: 'random' (uniform over the unused k-subsets, RandomState(seed)), 'cyclic' ({h-1+t mod n}),
    'prefix' (range(k)), or an explicit spec '0-1-2-3/1-2-4/0-3' for heads 1.."""
    from itertools import combinations
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
        for s in subsets[1:]:
            if len(set(s)) != len(s) or not all(0 <= c < n_base for c in s):
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
            unused = [list(c) for c in combinations(range(n_base), k) if list(c) not in subsets]
            if not unused:
                raise ValueError(f'--heads {heads}: no distinct {k}-subset of {n_base} classes is left')
            subsets.append(unused[rs.randint(len(unused))])
    return subsets


def multitask_epoch(model, subsets, x, y, batch_size, optimizer, device, seed, batching='per-task', reduce='sum',
                    pos_weight=None):
    """One epoch of multitask base training (hard parameter sharing: one backbone, a linear head per
    class subset; Ma et al. section 3). y: base labels 0..n_base-1, or (N, n_base) multi-hot targets
    for the multi-label learner (then each head's loss is the BCE over its subset's columns).
    per-task: head h has its own data (samples of its classes, relabelled 0..k_h-1) and loader; each
      iteration takes one batch from every task not yet exhausted, one forward per batch through its
      head, and one SGD step on sum_h CE_h. The epoch ends when every task's loader is exhausted.
    shared: one batch, one forward; each head's CE over its members (others ignored), heads with
      no member in the batch skipped (multi-label: every clip, non-members are all-negative)."""
    model.train()
    y_np = y.cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
    multilabel = y_np.ndim == 2
    local = [np.full(y_np.shape[1] if multilabel else int(y_np.max()) + 1, -1) for _ in subsets]
    for h, s in enumerate(subsets):
        local[h][s] = np.arange(len(s))

    def head_loss(h, b, logits):
        if multilabel:
            return bce_loss(logits, torch.as_tensor(y_np[b][:, subsets[h]], device=device), pos_weight)
        return F.cross_entropy(logits, torch.as_tensor(local[h][y_np[b]], device=device), ignore_index=-1)

    losses, counts = [0.0] * len(subsets), [0] * len(subsets)
    if batching == 'per-task':
        members = [np.flatnonzero(y_np[:, s].any(1) if multilabel else local[h][y_np] >= 0)
                   for h, s in enumerate(subsets)]
        loaders = [[members[h][b] for b in index_batches(len(members[h]), batch_size, seed * 131 + h)]
                   for h in range(len(subsets))]
        steps = [list(zip([h] * len(ld), ld)) for h, ld in enumerate(loaders)]
        iterations = [[steps[h][i] for h in range(len(subsets)) if i < len(steps[h])]
                      for i in range(max(len(s) for s in steps))]
    elif batching == 'shared':
        iterations = [[(h, b) for h in range(len(subsets))] for b in index_batches(len(y_np), batch_size, seed)]
    else:
        raise ValueError(f'unknown --mt-batching {batching!r}')
    for it in iterations:
        total, used = 0.0, 0
        if batching == 'shared':
            emb, _ = model.embed(x[torch.as_tensor(it[0][1])].to(device).float())
        for h, b in it:
            if batching == 'per-task':
                logits, _ = model(x[torch.as_tensor(b)].to(device).float(), head=h)
            else:
                if not multilabel and not (local[h][y_np[b]] >= 0).any():
                    continue
                logits = model.classify(emb, h)
            loss = head_loss(h, b, logits)
            losses[h], counts[h] = losses[h] + loss.detach(), counts[h] + 1
            total, used = total + loss, used + 1
        if used:
            optimizer.zero_grad(set_to_none=True)
            (total / used if reduce == 'mean' else total).backward()
            optimizer.step()
    name = 'bce' if multilabel else 'ce'
    return {f'{name}_head{h}': float(v) / max(c, 1) for h, (v, c) in enumerate(zip(losses, counts))}


def kws_train_epoch(model, terms, x, y, batches, mem_x, mem_y, mem_batches, optimizer, device, n_old,
                    teacher=None, lam=1.0, T=2.0, ce_new_logits='new'):
    """One epoch of Mittal's incremental step: per iteration one new-data batch and one memory batch,
    each with its own forward (train mode, so BatchNorm sees each batch alone), and the previous
    learner (frozen, eval mode) on each batch that a KD term needs."""
    model.train()
    use_mem = ('ce_o' in terms or 'kd_o' in terms) and mem_x is not None and len(mem_x)
    sums = {}
    for idx, midx in zip(batches, mem_batches):
        idx = torch.as_tensor(idx)
        xb, yb = x[idx].to(device).float(), y[idx].to(device)
        logits_n, _ = model(xb)
        logits_o = yo = t_n = t_o = None
        if use_mem:
            midx = torch.as_tensor(midx)
            xo, yo = mem_x[midx].to(device).float(), mem_y[midx].to(device)
            logits_o, _ = model(xo)
        if n_old and teacher is not None:
            with torch.no_grad():
                t_n = teacher(xb)[0] if 'kd_n' in terms else None
                t_o = teacher(xo)[0] if use_mem and 'kd_o' in terms else None
        active = [t for t in terms if use_mem or t not in ('ce_o', 'kd_o')]
        loss, parts = kws_loss(active, logits_n, yb, n_old, logits_o, yo, t_n, t_o, lam, T, ce_new_logits)
        sgd_step(optimizer, loss, parts, sums)
    return {k: (v / max(len(batches), 1)).item() for k, v in sums.items()}


@torch.no_grad()
def embeddings(model, x, batch_size, device):
    """Pooled embeddings (eval mode) of every row of x: the herding features."""
    model.eval()
    return torch.cat([model.embed(x[i:i + batch_size].to(device).float())[0]
                      for i in range(0, len(x), batch_size)]).cpu()
