#!/usr/bin/env bash
# Train the new default model on a GPU with the 'wide' recipe, then evaluate it on the test
# split and on the generated wide-view set (issue 6). Two steps:
#
#   1. here (CPU machine, repo root, needs the package registry once):
#        bash scripts/gpu_train.sh prepare
#      downloads the Ultralytics wheels the GPU image lacks and writes a WebP copy of
#      ../shared/datasets/gloves into .gpu/ (ignored via .git/info/exclude); the device tool
#      sends only the repo, and the JPEG data set is too big for its 64 MiB transfer.
#   2. on the device (one call, ~9 min of a 15 min budget):
#        run(command="bash scripts/gpu_train.sh run", carry=[".gpu"], timeout_s=600)
#      $OUT brings back: gloves-yolo11n-wide.pt, results.csv, train.log (tail), train.json,
#      eval_test.json, eval_wide.json, eval_wide_tiled.json.
#
# Then, here, score the fetched weights on the original JPEG test split and wide-view set:
#   .venv/bin/python -m core evaluate --weights W --data ../shared/datasets/gloves/data.yaml --json
#   .venv/bin/python -m core wideview --out /tmp/wv && \
#   .venv/bin/python -m core evaluate --weights W --data /tmp/wv/data.yaml --json
# and promote with weights/README.md updated (recipe, data, scores, time, hardware).
#
# Knobs (environment): MODEL (default yolo11n.yaml; or yolo11n-scconv.yaml / yolo11n-dyhead.yaml
# from models/), HOURS (training time limit, default 0.1), BATCH (64), IMGSZ (640).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=${MODEL:-yolo11n.yaml}
HOURS=${HOURS:-0.1}
BATCH=${BATCH:-64}
IMGSZ=${IMGSZ:-640}

prepare() {
  local py=.venv/bin/python src=../shared/datasets/gloves dst=.gpu/gloves
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  rm -rf .gpu && mkdir -p .gpu/whl "$dst"
  # The GPU image has torch, torchvision, opencv, matplotlib, pandas, psutil, requests but not
  # these (Python 3.12 there). polars (~45 MB) is replaced by a pandas shim in run().
  $py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
      -d .gpu/whl ultralytics==8.4.190 ultralytics-thop==2.2.3
  $py - "$src" "$dst" <<'PY'
import shutil, sys
from pathlib import Path
import cv2
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for split in ("train", "val", "test"):
    (dst / "images" / split).mkdir(parents=True)
    shutil.copytree(src / "labels" / split, dst / "labels" / split)
    for img in sorted((src / "images" / split).iterdir()):
        im = cv2.imread(str(img))
        cv2.imwrite(str(dst / "images" / split / f"{img.stem}.webp"), im,
                    [cv2.IMWRITE_WEBP_QUALITY, 45])
shutil.copy(src / "data.yaml", dst / "data.yaml")
shutil.copy(src / "SOURCES.md", dst / "SOURCES.md")
PY
  local mb
  mb=$(du -sm .gpu | cut -f1)
  echo "prepared .gpu: ${mb} MiB (the repo travels with it; the limit is 64 MiB in all)"
  if [ "$mb" -gt 56 ]; then echo "too big for the device transfer" >&2; exit 1; fi
}

run() {
  OUT=${OUT:-/tmp/gw-gpu-out}
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .gpu/whl/*.whl
  # Ultralytics reads its results.csv with polars when it saves a checkpoint (its only use
  # with plots off); a pandas stand-in keeps the 45 MB wheel out of the transfer.
  mkdir -p /tmp/shim/polars
  cat > /tmp/shim/polars/__init__.py <<'PY'
"""Minimal polars stand-in for Ultralytics' trainer on the GPU machine (read_csv only)."""
import io
import pandas as pd

class _Frame:
    def __init__(self, df):
        self._df = df
    def to_dict(self, as_series=False):
        return self._df.to_dict(orient="list")

def read_csv(source, infer_schema_length=None):
    data = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    return _Frame(pd.read_csv(data))
PY
  export PYTHONPATH=/tmp/site:/tmp/shim:$ROOT
  export GLOVEWATCH_HOME=/tmp/gw-home PYTHONUNBUFFERED=1
  local data=$ROOT/.gpu/gloves/data.yaml t0=$SECONDS
  python3 -m core train --data "$data" --model "$MODEL" --recipe wide --epochs 300 \
      --imgsz "$IMGSZ" --batch "$BATCH" --patience 300 --device 0 --name "gpu-wide" \
      --extra "{time: $HOURS, workers: 12, cache: ram, plots: false}" --wait --json \
      | tee "$OUT/train.json"
  echo "training wall time: $((SECONDS - t0)) s" | tee -a "$OUT/gpu.txt"
  local run_dir
  run_dir=$(python3 -c "import json, sys
print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['run_dir'])" "$OUT/train.json")
  local w=$OUT/gloves-yolo11n-wide.pt
  cp "$run_dir/train/weights/best.pt" "$w"
  cp "$run_dir/train/results.csv" "$OUT/results.csv"
  tail -c 2000000 "$run_dir/train.log" > "$OUT/train.log" 2>/dev/null || true
  # Quick scores there (WebP copy of the test split); the reference scores are taken on the
  # original JPEGs here afterwards.
  python3 -m core evaluate --weights "$w" --data "$data" --split test --json > "$OUT/eval_test.json"
  python3 -m core wideview --dataset "$ROOT/.gpu/gloves" --out /tmp/wv --json
  python3 -m core evaluate --weights "$w" --data /tmp/wv/data.yaml --split test --json \
      > "$OUT/eval_wide.json"
  python3 -m core evaluate-tiled --weights "$w" --data /tmp/wv/data.yaml --tiles 640:0.25 \
      --json > "$OUT/eval_wide_tiled.json"
  cat "$OUT"/eval_*.json
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash scripts/gpu_train.sh prepare|run" >&2; exit 2 ;;
esac
