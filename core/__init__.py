"""GloveWatch core: detection, compliance, storage, reports and training, without Streamlit."""

from core.config import apply_offline_env

# Before anything imports ultralytics: no downloads, no telemetry, local fonts.
apply_offline_env()
