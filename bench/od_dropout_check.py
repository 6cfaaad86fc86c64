"""Why output distillation costs base-class F1 on the generated data (README, "Measured results").

Starting from a finished phase-0 learner, run phase 1 with L_OD alone (methods.py's training loop
with Method(indl=True, od=True, bce=False): no new-class loss) and measure base-class F1 on the
phase-1 test set, with the learner in four modes during the update: train mode (as the paper),
dropout on with BatchNorm on running statistics, eval mode, and forwards only (learning rate 0:
no update, BatchNorm statistics drift alone).

    python cil.py --method ft --phases 30,5 --data synth-audioset     # once: phase 0 (shared)
    python bench/od_dropout_check.py --data synth-audioset --epochs 3
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import cil  # noqa: E402
import evaluate  # noqa: E402
import methods  # noqa: E402

MODES = ('train', 'dropout-only', 'eval', 'forward-only')
OD_ALONE = methods.Method(indl=True, od=True, bce=False)


def hold_mode(model, mode):
    """Make model.train() (called by methods.train_epoch) put the learner in `mode`; eval() still works."""
    def train(flag=True):
        torch.nn.Module.train(model, flag and mode != 'eval')
        if flag and mode == 'dropout-only':
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        return model
    model.train = train


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=3)
    known, rest = ap.parse_known_args()
    cfg, ds = cil.configure(cil.PARSER.parse_args(rest + ['--quiet']))
    device = cil.pick_device(cfg['device'])
    d = cil.load_data(cfg, device, ds)
    ckpt = cil.run_folder(cfg, 'phase0') / 'phase0.pt'
    if not ckpt.exists():
        raise SystemExit(f'{ckpt} not found: train phase 0 first (see the docstring)')
    ph = d.phases[1]
    x, x_test = d.features(ph.train, device), d.features(ph.test, device)
    y = torch.from_numpy(ph.train_y[:, ph.n_old:]).float()
    n_base = ph.n_old
    lam = methods.adaptive_lambda(ph.n_seen, ph.n_new, cfg['lambda_base'], cfg['lambda_pow'], cfg['const_lambda'])
    print('| learner during the update | base F1 after each epoch (0 first) |\n|---|---|')
    for mode in MODES:
        torch.manual_seed(0)
        model = cil.learner(cfg, d, 0, state=cil.load(ckpt), device=device)
        teacher = methods.frozen_copy(model)
        model.grow(ph.n_new)
        model.to(device)
        hold_mode(model, mode)
        opt, _ = methods.make_optimizer(model, 0.0 if mode == 'forward-only' else cfg['lr'], known.epochs)
        f1 = []
        for epoch in range(known.epochs + 1):
            scores = methods.predict(model, x_test, 64, device)
            f1.append(100 * evaluate.f1_macro(ph.test_y[:, :n_base], scores[:, :n_base]))
            if epoch == known.epochs:
                break
            torch.manual_seed(methods.seed_of(0, 1, epoch))
            methods.train_epoch(model, OD_ALONE, x, y, methods.index_batches(len(x), cfg['batch_size'], epoch), opt,
                                device, n_new=ph.n_new, teacher=teacher, lam=lam, T=cfg['T'])
        print(f"| {mode} | {' / '.join(f'{v:.1f}' for v in f1)} |", flush=True)


if __name__ == '__main__':
    main()
