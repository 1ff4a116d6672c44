#!/usr/bin/env bash
# The adaptation loop measured as a plant would live it, with the project's own commands.
# "New camera": ../shared/datasets/extra/ppe-gloves-osamah (industrial PPE photos the default
# model never saw; only gloves are labelled there, bare hands are visible but unlabelled).
#
#   bash scripts/measure_site_loop.sh [N_IMAGES] [EPOCHS] [IMGSZ] [RATIO] [FREEZE] [BATCH]
#
# 1. collect the first N (100) of its train images for station "PPE cam" (pre-labelled by
#    the active model);
# 2. correct them: the set's glove boxes plus the model's bare hands that the set leaves
#    unlabelled (`complete-labels`), imported into the loop (`label import`: matched to the
#    collected frames by content, marked done, every change recorded);
# 3. fine-tune on this CPU (`finetune`, printed estimate first), from the default model,
#    mixed with a replay sample of the gloves train split;
# 4. score glove AP50 on the set's held-out images (its val + test splits, 95 images: the
#    only class it labels) and mAP50 on the gloves test split, before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
EPOCHS=${2:-10}
IMGSZ=${3:-640}
RATIO=${4:-2}
FREEZE=${5:-10}
BATCH=${6:-16}
PY=.venv/bin/python
PPE=$(realpath ../shared/datasets/extra/ppe-gloves-osamah)
BASE=$(realpath ../shared/datasets/gloves)
W=/tmp/gw-siteloop
rm -rf "$W" && mkdir -p "$W/in/images/train" "$W/in/labels/train"
export GLOVEWATCH_HOME=$W/home
for f in $(ls "$PPE/images/train" | head -n "$N"); do
  cp "$PPE/images/train/$f" "$W/in/images/train/"
  cp "$PPE/labels/train/${f%.*}.txt" "$W/in/labels/train/"
done
printf 'path: %s\ntrain: images/train\nnames: {0: glove, 1: hand}\n' \
  "$W/in" > "$W/in/data.yaml"
cat > "$W/holdout.yaml" <<YAML
path: $PPE
train: images/train
val: images/val
test: [images/val, images/test]
names: {0: glove, 1: hand}
YAML
score() {  # $1 weights, $2 label
  $PY -m core evaluate --weights "$1" --data "$W/holdout.yaml" --split test --json \
    > "$W/$2-ppe.json" 2>/dev/null
  $PY -m core evaluate --weights "$1" --data "$BASE" --split test --json \
    > "$W/$2-base.json" 2>/dev/null
}
t0=$SECONDS
$PY -m core collect --station "PPE cam" --split train "$W/in/images/train"
echo "collect + pre-label: $((SECONDS - t0)) s for $N images"
t0=$SECONDS
$PY -m core complete-labels "$W/in/data.yaml" --missing hand --out "$W/corrected"
$PY -m core label import --station "PPE cam" --from "$W/corrected/data.yaml"
echo "corrections imported: $((SECONDS - t0)) s"
$PY -m core finetune --station "PPE cam" --base "$BASE" --epochs "$EPOCHS" --imgsz "$IMGSZ" \
  --ratio "$RATIO" --freeze "$FREEZE" --batch "$BATCH" --device cpu --dry-run
t0=$SECONDS
$PY -m core finetune --station "PPE cam" --base "$BASE" --epochs "$EPOCHS" --imgsz "$IMGSZ" \
  --ratio "$RATIO" --freeze "$FREEZE" --batch "$BATCH" --device cpu --wait
echo "fine-tune wall time: $((SECONDS - t0)) s"
RUN_PT=$(ls -d "$W"/home/runs/*/train/weights/best.pt | head -1)
score "$($PY -c 'import core.config as c; print(c.settings().default_weights)')" before
score "$RUN_PT" after
$PY - "$W" <<'PY'
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
r = {k: json.loads((w / f"{k}.json").read_text()) for k in
     ("before-ppe", "after-ppe", "before-base", "after-base")}
print("| | before | after | change |\n|---|---|---|---|")
for label, key, metric in (("new camera (PPE), AP50 glove, 95 held-out images", "ppe", "glove"),
                           ("gloves test split, mAP50 (268 images)", "base", None)):
    b, a = (r[f"{s}-{key}"]["per_class_ap50"][metric] if metric else r[f"{s}-{key}"]["map50"]
            for s in ("before", "after"))
    print(f"| {label} | {b:.3f} | {a:.3f} | {a - b:+.3f} |")
PY
