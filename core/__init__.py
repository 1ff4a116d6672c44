"""GloveWatch core: detection, compliance, storage, reports and training, without Streamlit.

Sub-packages, lower layers first (a package imports only from those before it):
``config``/``errors``/``text``/``media``/``logs`` (foundations), ``vision`` (models,
detections, tiling, evaluation), ``storage`` (schema, connections, repositories), ``events``
(station rules, episodes, coverage, evidence, alerts), ``training`` (data sets, runs,
registry), ``analytics`` (history, review, reports, retention, demo data), ``pipeline``
(sources, live processing, batch, benchmarks), ``accounts``, ``cli``.
"""

from core.config import apply_offline_env

# Before anything imports ultralytics: no downloads, no telemetry, local fonts, and weights
# unpickled with PyTorch's weights_only loader (see core.vision.weights).
apply_offline_env()
