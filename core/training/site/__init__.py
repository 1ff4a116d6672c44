"""The on-site adaptation loop: a station's own frames, labelled, fine-tuned on, compared,
promoted for that station. One module per step:

1. :mod:`~core.training.site.collect`: frames per station from a live source (the most
   uncertain frame of every few seconds: confidences near the threshold, tracks whose class
   flips), from batch uploads and videos, and from reviewed episodes' evidence. Near-copies
   are skipped by a 64-bit difference hash (:mod:`~core.training.site.frames`).
2. :mod:`~core.training.site.labels`: pre-labels from the station's active model,
   corrections on the Label page (every label change is kept with who and when), YOLO export
   and import.
3. Honest hold-out (:mod:`~core.training.site.frames`): frames are grouped in time blocks
   (``BLOCK_MINUTES``); every ``HOLDOUT_EVERY``-th block of a station, in the order they
   appear, is held out, never at random (neighbouring frames are near-copies), and the
   held-out frames are never trained on.
4. :mod:`~core.training.site.finetune`: from the station's active model on its labelled
   train frames plus a replay sample of the base data set, with a backbone freeze and
   CPU-sized defaults; the time is estimated before it starts.
5. :mod:`~core.training.site.compare`: both models on the station's held-out frames and on
   the base test split; a drop of more than ``MAX_BASE_DROP`` mAP50 on the base test split
   needs an explicit confirmation.

The pipeline never imports this package: a live session samples frames through a
:class:`core.vision.taps.FrameTap` that :class:`SiteTap` opens.
"""

from core.training.site.collect import (
    CollectReport,
    LiveCollector,
    SiteTap,
    collect,
    collect_images,
    collect_reviewed,
    collect_uploads,
    collect_video,
)
from core.training.site.compare import (
    MAX_BASE_DROP,
    ScoreRow,
    StationComparison,
    compare_station,
    holdout_data,
    promote_station,
)
from core.training.site.finetune import (
    FINETUNE_OPTIONS,
    FinetunePlan,
    build_finetune_data,
    finetune,
    plan_finetune,
    run_prefix,
    station_runs,
)
from core.training.site.frames import (
    BLOCK_MINUTES,
    HOLDOUT_EVERY,
    MIN_HAMMING,
    Box,
    SiteFrame,
    block_of,
    boxes_of,
    check_boxes,
    counts,
    dhash,
    frames,
    hamming,
    site_dir,
    split_for,
    uncertainty,
)
from core.training.site.labels import (
    CompletionReport,
    complete_missing,
    export_yolo,
    import_yolo,
    prelabel,
    save_edit,
    save_labels,
)

__all__ = [
    "BLOCK_MINUTES",
    "FINETUNE_OPTIONS",
    "HOLDOUT_EVERY",
    "MAX_BASE_DROP",
    "MIN_HAMMING",
    "Box",
    "CollectReport",
    "CompletionReport",
    "FinetunePlan",
    "LiveCollector",
    "ScoreRow",
    "SiteFrame",
    "SiteTap",
    "StationComparison",
    "block_of",
    "boxes_of",
    "build_finetune_data",
    "check_boxes",
    "collect",
    "collect_images",
    "collect_reviewed",
    "collect_uploads",
    "collect_video",
    "compare_station",
    "complete_missing",
    "counts",
    "dhash",
    "export_yolo",
    "finetune",
    "frames",
    "hamming",
    "holdout_data",
    "import_yolo",
    "plan_finetune",
    "prelabel",
    "promote_station",
    "run_prefix",
    "save_edit",
    "save_labels",
    "site_dir",
    "split_for",
    "station_runs",
    "uncertainty",
]
