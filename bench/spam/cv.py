#!/usr/bin/env python3
"""The spam filter's cross-validation: k-fold on the training part of the
benchmark corpus (SHA-256 0-b; the held-out c-f part is never read), with
the production rules, tokens, Bayes combination and thresholds. Every
change to the model is kept only if it helps here (bench/spam/RESULTS.md).

Usage: bench/spam/cv.py [FOLDS]    (CV_ERRORS=1 lists each mistake,
                                    CV_HIST=1 the Bayes probabilities)
"""
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402  (the corpus download lives there)

run.corpus()  # fetched once into bench/.cache
data = run.CACHE / "package" / "data"
folds = sys.argv[1] if len(sys.argv) > 1 else "5"
sys.exit(subprocess.call(["cargo", "run", "-q", "--release", "-p", "spam", "--example", "cv", "--",
                          str(data), folds], cwd=run.ROOT))
