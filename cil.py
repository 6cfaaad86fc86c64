"""
Entry point of the project: `python cil.py --method iodfd --data audioset --root DIR`.

Not there yet: the shared training loop, run folders, checkpoints and resume arrive with the
multi-label issue (#4), the keyword-spotting side with issue #5. Until then this command says so
and exits with status 2 rather than pretending to train. What works today: features.py (audio
features), models.py (CNN14, SmallCNN), methods.py (every loss of both papers), evaluate.py
(metrics) and data.py (datasets), each usable on its own; see README.md.
"""
import sys


def main(argv=None):
    sys.stderr.write('cil.py: training is not implemented yet; it arrives with issue #4 (multi-label CIL) '
                     'and issue #5 (keyword spotting). See README.md for what works today.\n')
    return 2


if __name__ == '__main__':
    sys.exit(main())
