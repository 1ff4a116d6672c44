"""Live: watch the viewer's own camera, a camera URL or a replayed video; alert on episodes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from core.accounts import Permission
from core.analytics.review import thumbnail_png
from core.config import DEFAULTS
from core.events.alerts import beep_wav
from core.events.episodes import EpisodeConfig
from core.events.stations import current_rule, list_stations
from core.media import VIDEO_SUFFIXES
from core.pipeline.live import FrameProcessor, LiveConfig, SourceRunner, valid_camera_url
from core.pipeline.sources import SourceStatus, shown_source
from core.training.site import SiteTap
from core.vision.detector import BACKENDS
from ui.text import md
from ui.widgets import model_picker, page_setup, threshold_controls

SOURCES = ("Browser camera", "Camera URL", "Video file replay")

page = page_setup("Live monitoring", "🎥", Permission.RUN_LIVE)
s = page.settings
st.title("Live monitoring")
st.write(
    "Each hand is tracked and judged by the station's rule; a hand that breaks it for "
    "longer than the minimum time becomes **one violation episode** with a privacy-safe "
    "snapshot, an alert and a row in the history."
)

top = st.columns([2, 2])
source = top[0].radio("Source", SOURCES, horizontal=True, key="live-source")
station = top[1].selectbox("Station", list_stations(page.store), key="live-station")
rule = current_rule(page.store, station)
st.caption(md(rule.describe()))

with st.expander("Advanced: model, thresholds, backend, episode timing, alerts"):
    picked = model_picker("live", page, station)
    params = threshold_controls("live", s)
    c = st.columns(4)
    backend = c[0].selectbox(
        "Inference backend",
        BACKENDS,
        index=BACKENDS.index(DEFAULTS.backend),
        key="live-backend",
        help="OpenVINO is the fastest on a CPU; PyTorch is the fallback. "
        "The first start with a new backend exports the model "
        "(seconds).",
    )
    min_dur = c[1].slider(
        "Minimum episode length (s)", 0.0, 5.0, DEFAULTS.min_duration_s, 0.5, key="live-min"
    )
    grace = c[2].slider("Merge gaps up to (s)", 0.0, 10.0, DEFAULTS.grace_s, 0.5, key="live-grace")
    cooldown = c[3].slider(
        "Alert cooldown (s)", 0, 300, int(DEFAULTS.cooldown_s), 10, key="live-cooldown"
    )
    c2 = st.columns(2)
    blur = c2[0].checkbox(
        "Blur everything but the offending hand in evidence",
        DEFAULTS.blur_evidence,
        key="live-blur",
    )
    collect_every = c2[1].number_input(
        "Collect a frame for labelling every … s (0: off)",
        0,
        600,
        0,
        5,
        key="live-collect",
        help="Keeps the most uncertain frame of each interval for the station's own data "
        "set (Label page); near-copies are skipped.",
    )

if picked is None:
    st.stop()
weights = picked[0]
base = LiveConfig(
    weights=weights,
    backend=backend,
    params=params,
    station=station,
    episodes=EpisodeConfig(min_dur, grace),
    blur_evidence=blur,
    cooldown_s=float(cooldown),
    webhook_url=s.webhook_url,
    webhook_secret=s.webhook_secret,
    user=page.account.name,
    tap=(
        SiteTap(station, float(collect_every), params.conf, page.account.name or "live")
        if collect_every > 0
        else None
    ),
)


def ice_servers() -> list[dict]:
    """STUN/TURN servers: GLOVEWATCH_ICE_SERVERS, else ``ice_servers`` in secrets.toml.

    Empty means host candidates only, which is enough on a LAN and needs no outside server.
    """
    if s.ice_servers:
        return s.ice_servers
    try:
        return [dict(x) for x in st.secrets.get("ice_servers", [])]
    except Exception:  # no secrets.toml, or a malformed one: LAN-only
        return []


def processor_for(cfg: LiveConfig) -> FrameProcessor:
    """The viewer's processor for ``cfg``; a changed configuration gets a fresh one."""
    held: FrameProcessor | None = st.session_state.get("live-proc")
    if held is not None and held.cfg == cfg:
        return held
    if held is not None:
        held.finish("finished", "Settings changed; a new session starts with the next frame.")
    proc = FrameProcessor(cfg)
    st.session_state["live-proc"] = proc
    return proc


def show_counters(proc: FrameProcessor, running: bool, status_line: bool = True) -> None:
    """The session's counters; ``status_line`` off where the source's own status is shown."""
    snap = proc.snapshot()
    c = st.columns(3) + st.columns(3)  # six in a row cut labels and values off
    c[0].metric("Compliant hands", snap.compliant)
    c[1].metric("Violating hands", snap.violating)
    c[2].metric(
        "Compliance (session)",
        f"{snap.compliance:.0%}" if snap.compliance is not None else "–",
        help="Compliant share of judged hand-time since the session started.",
    )
    c[3].metric("FPS", f"{snap.fps:.1f}" if running else "–")  # stale once stopped
    c[4].metric("Latency", f"{snap.latency_ms:.0f} ms" if running else "–")
    c[5].metric("Episodes", f"{snap.episodes} ({snap.open_episodes} open)")
    line = f"**{snap.status}** · {md(snap.message)}"
    if snap.status in ("failed", "error"):
        st.error(line)
    elif status_line:
        st.caption(line)
    if running and snap.alerts:
        last = snap.alerts[-1]
        st.error(md(last.message), icon="🚨")
        if last.seq > st.session_state.get("live-alert-heard", 0):
            st.session_state["live-alert-heard"] = last.seq
            st.audio(beep_wav(), format="audio/wav", autoplay=True)


def show_episodes(proc: FrameProcessor) -> None:
    """This session's episodes with their evidence thumbnails."""
    eps = proc.episodes(page.store)
    if not eps:
        return
    st.subheader(f"Episodes of this session ({len(eps)})")
    for row in [eps[::-1][i : i + 6] for i in range(0, min(len(eps), 24), 6)]:
        cols = st.columns(6)
        for col, ep in zip(cols, row):
            png = thumbnail_png(ep, 120)
            if png:
                col.image(png)
            col.caption(
                f"#{ep.id} {ep.started_at[11:]} · {ep.duration_s:.1f} s · "
                f"{ep.severity}{' · open' if ep.state == 'open' else ''}"
            )


if source == "Browser camera":
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    proc = processor_for(replace(base, kind="live", source="browser camera"))
    st.caption(
        "Your own camera, from this browser. Allow camera access when asked; if the "
        "video never connects (firewall or NAT), configure TURN servers in "
        "GLOVEWATCH_ICE_SERVERS, or use a camera URL or a video file instead."
    )
    ctx = webrtc_streamer(
        key=f"live-cam-{station}",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": ice_servers()},
        media_stream_constraints={"video": True, "audio": False},
        video_frame_callback=proc.webrtc_callback,
        on_video_ended=proc.finish,
        async_processing=True,
    )
    playing = bool(getattr(getattr(ctx, "state", None), "playing", False))

    @st.fragment(run_every=1.0)
    def live_panel() -> None:
        show_counters(proc, playing)
        show_episodes(proc)

    live_panel()
else:
    if source == "Camera URL":
        target = st.text_input(
            "Camera URL",
            placeholder="rtsp://camera-3/stream or env:SAW3_CAMERA_URL",
            key="live-url",
            type="password",
            help="An RTSP or HTTP(S) stream the server can reach. Keep passwords out of "
            "screens and the store: put the URL in an environment variable and type "
            "env:NAME here.",
        ).strip()
        label = shown_source(target)
    else:
        up = st.file_uploader(
            "Video file", key="live-file", type=sorted(x.lstrip(".") for x in VIDEO_SUFFIXES)
        )
        target, label = "", ""
        if up is not None:
            label = Path(up.name).name
            # kept under its own name: the source's messages name the file as uploaded
            path = s.uploads_dir / "replays" / Path(up.name).name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.stat().st_size != up.size:
                path.write_bytes(up.getvalue())
            target = str(path)
    kind = "stream" if source == "Camera URL" else "file"

    def start() -> None:
        if kind == "stream" and not valid_camera_url(target):
            st.session_state["live-error"] = (
                "A camera URL starts with rtsp://, rtsps://, http:// or https://, or is env:NAME."
            )
            return
        st.session_state.pop("live-error", None)
        proc = processor_for(replace(base, kind=kind, source=label))
        st.session_state["live-runner"] = SourceRunner(
            target, proc, realtime=True, viewer_timeout_s=DEFAULTS.viewer_timeout_s
        ).start()

    def stop() -> None:
        runner = st.session_state.get("live-runner")
        if runner is not None:
            runner.stop()

    # Buttons act in callbacks, before the page is drawn: Start and Stop are always right.
    current: SourceRunner | None = st.session_state.get("live-runner")
    running = current is not None and current.alive
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button(
        "Start", type="primary", key="live-start", on_click=start, disabled=running or not target
    )
    b2.button("Stop", key="live-stop", on_click=stop, disabled=not running)
    if "live-error" in st.session_state:
        st.error(st.session_state["live-error"])

    @st.fragment(run_every=1.0)
    def source_panel() -> None:
        runner: SourceRunner | None = st.session_state.get("live-runner")
        if runner is None:
            st.info("Choose a source and press **Start**.")
            return
        if runner.alive != running:
            st.rerun()  # started or stopped since the buttons were drawn: redraw them
        runner.touch()
        status, message = runner.status()
        shown = (
            st.error
            if status is SourceStatus.FAILED
            else st.warning
            if status in (SourceStatus.RECONNECTING, SourceStatus.CONNECTING, SourceStatus.LOADING)
            else st.info
        )
        shown(f"{status}: {md(message)}")
        show_counters(runner.processor, runner.alive, status_line=False)
        frame = runner.latest()
        if frame is not None and runner.alive:
            st.image(frame, channels="BGR", width="stretch")
        show_episodes(runner.processor)

    source_panel()
