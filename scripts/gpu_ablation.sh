#!/usr/bin/env bash
# The base-model candidates of issue "right on the plant's own camera", trained in ONE device
# call (at most 10 minutes) and scored here afterwards. Three steps:
#
#   1. here (CPU machine, repo root):   bash scripts/gpu_ablation.sh prepare
#      - Ultralytics wheels the GPU image lacks, into .gpu/whl;
#      - a WebP (quality 45) copy of the train and val splits of ../shared/datasets/gloves and
#        of the extra sets in ../shared/datasets/extra, with the bare hands of
#        ppe-gloves-osamah completed from the shipped model's pre-labels (`python -m core
#        complete-labels`), into .gpu/data (the device call carries at most 64 MiB; the test
#        splits stay here, where the candidates are scored);
#   2. on the device:  run(command="bash scripts/gpu_ablation.sh run", carry=[".gpu"],
#                          timeout_s=600)
#      trains the candidates below AT THE SAME TIME on the one GPU, each with the same
#      wall-clock budget (HOURS, default 0.12 h), and returns each best.pt in $OUT;
#   3. here:  bash scripts/gpu_ablation.sh score DIR   (DIR = where the device's files are)
#      scores every candidate on the gloves test split, the wide-view set (full frame and
#      640 tiles) and the extra sets' test splits (only the classes each labels), and prints
#      one table.
#
# Candidates (same budget, same seed):
#   base        yolo11n.yaml  recipe wide         gloves                (today's default)
#   camera      yolo11n.yaml  recipe wide-camera  gloves                (camera realism)
#   extra       yolo11n.yaml  recipe wide-camera  gloves + extra sets   (more diverse data)
#   scconv      models/yolo11n-scconv.yaml  wide-camera  gloves + extra
#   dyhead      models/yolo11n-dyhead.yaml  wide-camera  gloves + extra
#   p2          models/yolo11n-p2.yaml      wide-camera  gloves + extra
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HOURS=${HOURS:-0.12}
BATCH=${BATCH:-32}
DEVICE=${DEVICE:-0}
CANDIDATES=${CANDIDATES:-"base camera extra scconv dyhead p2"}

prepare() {
  local py=.venv/bin/python
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  rm -rf .gpu && mkdir -p .gpu/whl .gpu/data
  $py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
      -d .gpu/whl ultralytics==8.4.190 ultralytics-thop==2.2.3 sqlalchemy==2.0.58 \
      argon2-cffi==25.1.0 argon2-cffi-bindings==25.1.0
  GLOVEWATCH_HOME=/tmp/gw-prepare $py -m core complete-labels \
      ../shared/datasets/extra/ppe-gloves-osamah --missing hand --out /tmp/gw-ppe-completed
  $py - <<'PY'
import shutil
from pathlib import Path
import cv2
out = Path(".gpu/data")
sets = {"gloves": Path("../shared/datasets/gloves"),
        "ppe": Path("/tmp/gw-ppe-completed"),
        "gestures": Path("../shared/datasets/extra/hand-gestures-dwivedi"),
        "hina": Path("../shared/datasets/extra/glove-hand-hina")}
for name, src in sets.items():
    for split in ("train", "val"):
        if not (src / "images" / split).is_dir():
            continue
        (out / name / "images" / split).mkdir(parents=True)
        shutil.copytree(src / "labels" / split, out / name / "labels" / split)
        for img in sorted((src / "images" / split).iterdir()):
            im = cv2.imread(str(img))
            cv2.imwrite(str(out / name / "images" / split / f"{img.stem}.webp"), im,
                        [cv2.IMWRITE_WEBP_QUALITY, 45])
    (out / name / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: glove\n  1: hand\n")
PY
  local mb
  mb=$(du -s --apparent-size --block-size=1M .gpu | cut -f1)
  echo "prepared .gpu: ${mb} MiB (the repo travels with it; the limit is 64 MiB in all)"
  if [ "$mb" -gt 56 ]; then echo "too big for the device transfer" >&2; exit 1; fi
}

mixed_yaml() {  # gloves + the extra sets' train splits; val stays the gloves one
  # Inside .gpu/data with relative entries: a data set may not point outside its folder.
  cat > "$1" <<YAML
path: .
train: [gloves/images/train, ppe/images/train, gestures/images/train, hina/images/train]
val: gloves/images/val
names: {0: glove, 1: hand}
YAML
}

run() {
  OUT=${OUT:-/tmp/gw-gpu-out}
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true
  if [ -d .gpu/whl ] && ls .gpu/whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/whl/*.whl
    export PYTHONPATH=/tmp/site:$ROOT
  fi
  export PYTHONUNBUFFERED=1
  local gloves=$ROOT/.gpu/data/gloves/data.yaml mixed=$ROOT/.gpu/data/mixed.yaml
  mixed_yaml "$mixed"
  local pids=() t0=$SECONDS
  for c in $CANDIDATES; do
    local model=yolo11n.yaml recipe=wide-camera data=$mixed
    case $c in
      base) recipe=wide; data=$gloves ;;
      camera) data=$gloves ;;
      extra) ;;
      scconv) model=yolo11n-scconv.yaml ;;
      dyhead) model=yolo11n-dyhead.yaml ;;
      p2) model=yolo11n-p2.yaml ;;
    esac
    # one data folder per candidate: runs started at once must not share a store
    GLOVEWATCH_HOME=/tmp/gw-$c python3 -m core train --data "$data" --model "$model" \
        --recipe "$recipe" --epochs 300 --imgsz 640 --batch "$BATCH" --patience 300 \
        --device "$DEVICE" --name "$c" \
        --extra "{time: $HOURS, workers: 2, seed: 0, plots: false}" --wait --json \
        > "$OUT/train-$c.json" 2> "$OUT/train-$c.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  echo "all candidates: $((SECONDS - t0)) s wall" | tee -a "$OUT/gpu.txt"
  for c in $CANDIDATES; do
    local dir
    dir=$(ls -d /tmp/gw-$c/runs/*/ 2>/dev/null | head -1)
    [ -n "$dir" ] || continue
    cp "$dir/train/weights/best.pt" "$OUT/$c.pt" 2>/dev/null || true
    cp "$dir/train/results.csv" "$OUT/$c.results.csv" 2>/dev/null || true
  done
  ls -la "$OUT"
}

score() {
  local dir=${1:?give the folder that holds the .pt files of the candidates}
  local py=.venv/bin/python home=/tmp/gw-score
  export GLOVEWATCH_HOME=$home
  $py -m core wideview --out /tmp/gw-wideview --json > /dev/null
  for w in "$dir"/*.pt; do
    local c
    c=$(basename "$w" .pt)
    $py -m core evaluate --weights "$w" --data ../shared/datasets/gloves --split test \
        --json > "$dir/$c.test.json"
    $py -m core evaluate --weights "$w" --data /tmp/gw-wideview/data.yaml --split test \
        --json > "$dir/$c.wide.json"
    $py -m core evaluate-tiled --weights "$w" --data /tmp/gw-wideview/data.yaml \
        --split test --tiles 640:0.25 --json > "$dir/$c.wide640.json"
    for x in ppe-gloves-osamah hand-gestures-dwivedi; do
      $py -m core evaluate --weights "$w" --data "../shared/datasets/extra/$x" \
          --split test --json > "$dir/$c.$x.json"
    done
  done
  $py - "$dir" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
print("| candidate | test mAP50 | wide-view mAP50 | wide 640 tiles | ppe AP50 glove | gestures AP50 hand |")
print("|---|---|---|---|---|---|")
for pt in sorted(d.glob("*.pt")):
    c = pt.stem
    r = {k: json.loads((d / f"{c}.{k}.json").read_text()) for k in
         ("test", "wide", "wide640", "ppe-gloves-osamah", "hand-gestures-dwivedi")}
    print(f"| {c} | {r['test']['map50']:.3f} | {r['wide']['map50']:.3f} | "
          f"{r['wide640']['map50']:.3f} | "
          f"{r['ppe-gloves-osamah']['per_class_ap50'].get('glove', 0):.3f} | "
          f"{r['hand-gestures-dwivedi']['per_class_ap50'].get('hand', 0):.3f} |")
PY
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  score) shift; score "$@" ;;
  *) echo "usage: bash scripts/gpu_ablation.sh prepare|run|score DIR" >&2; exit 2 ;;
esac
