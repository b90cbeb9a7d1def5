#!/usr/bin/env bash
# Installs visionstudy into ./.venv on a fresh machine (Debian, Python >= 3.11).
#   scripts/setup.sh          the package
#   scripts/setup.sh --dev    the package, the test tools and the system packages the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

# System packages: the Fashion-MNIST mirror (benchmarks, end-to-end checks) and, for the tests,
# headless Chromium, PostgreSQL and TeX Live. Skipped quietly where apt-get is missing or we are not root.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  pkgs="dataset-fashion-mnist"
  [ $dev = 1 ] && pkgs="$pkgs chromium postgresql slurmctld slurmd slurm-client munge"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  # a plain TeX Live for the test that compiles `report --format latex` (no recommends: ~100 MB, not 1 GB)
  tex=""
  [ $dev = 1 ] && for p in texlive-latex-base texlive-latex-recommended; do
    dpkg -s "$p" >/dev/null 2>&1 || tex="$tex $p"; done
  if [ -n "$missing$tex" ]; then
    apt-get update -q >/dev/null
    [ -n "$missing" ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
    [ -n "$tex" ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $tex >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip -q --disable-pip-version-check "$@"; }
# torch/torchvision pinned to the builds these machines hold on local disk (pip finds them there).
# Their CUDA build fills about 7 GiB of .venv: say so up front rather than let pip stop half-way with
# "No space left on device" (VISIONSTUDY_SETUP_MIN_FREE_GIB=0 skips the check).
need_gib=${VISIONSTUDY_SETUP_MIN_FREE_GIB:-7}
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  free_gib=$(( $(df --output=avail -k .venv | tail -1) / 1048576 ))
  if [ "$free_gib" -lt "$need_gib" ]; then
    echo "setup.sh: torch needs about ${need_gib} GiB free for .venv; $(pwd) has ${free_gib} GiB." >&2
    echo "  Free space on that disk (old clones' .venv folders are 7 GiB each), then run setup.sh again." >&2
    exit 1
  fi
  pip install torch==2.14.1 torchvision==0.29.1
fi
if [ $dev = 1 ]; then pip install -e ".[dev]"; else pip install -e .; fi
# Byte-compile our own sources: pip does so for what it installs, not for an editable package, and
# where PYTHONDONTWRITEBYTECODE is set (as on these machines) every `visionstudy` process would
# compile them again (0.6 s of each start; hundreds of starts in the test suite).
.venv/bin/python -m compileall -q src >/dev/null
