"""
The losses of every method of both papers, each a few lines next to its equation.

Multi-label CIL (Mulimani & Mesaros, "Class-incremental learning for multi-label audio
classification"): FT, FE, IndL, OD, IOD, IFD, IODFD, AT. Defaults follow the authors' released code
(mulimani/CIL-ML-Audio, main_audioset.py), as shared/spec/multilabel_cil.md decides.

Single-label CIL with exemplars (Ma et al., multitask base training; incremental step of Mittal et
al., "Essentials for class incremental learning"): CE N, KD N, CE O, KD O.

The shared training loop that uses these losses (one forward of the learner per step, at most one
of the frozen previous learner) comes with the multi-label issue (#4); this file holds the loss
definitions and the method table it is driven by.
"""
from dataclasses import dataclass

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
    phase's classes. teacher_* come from the frozen previous learner on the same batch.
    Returns (total, {term name: value}) so the loop can log every term.
    """
    n_old = logits.shape[1] - n_new
    if method.indl or method.freeze or n_old == 0:
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
