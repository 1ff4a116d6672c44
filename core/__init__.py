"""GloveWatch core: detection, compliance, storage, reports and training, without Streamlit.

Sub-packages, lower layers first (a package imports only from those before it):
``config``/``errors``/``text``/``media``/``logs`` (foundations), ``vision`` (models,
detections, tiling, evaluation), ``storage`` (schema, connections, repositories), ``events``
(station rules, episodes, coverage, evidence, alerts), ``training`` (data sets, runs,
registry), ``analytics`` (history, review, reports, retention, demo data), ``pipeline``
(sources, live processing, batch, benchmarks), ``accounts``, ``cli``.

Importing the package changes nothing: each entry point (the command line, the pages, the
training worker) calls :func:`core.config.apply_offline_environment` first, then reads
:func:`core.config.settings` once and passes on what each layer needs.
"""
