"""Live: watch the viewer's own camera, a camera URL or a replayed video; alert on episodes."""

from dataclasses import replace
from pathlib import Path

import streamlit as st

from core import store
from core.alerts import beep_wav
from core.detector import BACKENDS
from core.episodes import EpisodeConfig
from core.live import FrameProcessor, LiveConfig, SourceRunner, SourceStatus, redact_url
from core.media import VIDEO_SUFFIXES
from core.stations import current_rule, list_stations
from ui.widgets import model_picker, page_setup, threshold_controls

SOURCES = ("Browser camera", "Camera URL", "Video file replay")

s = page_setup("Live monitoring", "🎥")
st.title("Live monitoring")
st.write("Each hand is tracked; a bare hand (or a glove not allowed at the station) seen for "
         "longer than the minimum time becomes **one violation episode** with a privacy-safe "
         "snapshot, an alert and a row in the history.")
if s is None:
    st.stop()

conn = store.connect()
with st.sidebar:
    st.header("Before START")
    picked = model_picker("live")
    params = threshold_controls("live", s)
    backend = st.selectbox("Inference backend", BACKENDS, index=BACKENDS.index("openvino"),
                           key="live-backend",
                           help="OpenVINO is the fastest on a CPU; PyTorch is the fallback. "
                                "The first START with a new backend exports the model (seconds).")
    station = st.selectbox("Station", list_stations(conn), key="live-station")
    rule = current_rule(conn, station)
    st.caption(f"Rule v{rule.version}: {rule.polarity}"
               + (f", allowed {', '.join(rule.allowed)}" if rule.allowed else "")
               + (f", zones {', '.join(z.name for z in rule.zones)}" if rule.zones else ""))
    min_dur = st.slider("Minimum episode length (s)", 0.0, 5.0, 1.0, 0.5, key="live-min")
    grace = st.slider("Merge gaps up to (s)", 0.0, 10.0, 2.0, 0.5, key="live-grace")
    cooldown = st.slider("Alert cooldown (s)", 0, 300, 30, 10, key="live-cooldown")
    blur = st.checkbox("Blur faces in evidence", True, key="live-blur")
conn.close()

if picked is None:
    st.stop()
weights, _ = picked
source = st.radio("Source", SOURCES, horizontal=True, key="live-source")
base = LiveConfig(weights=weights, backend=backend, params=params, station=station,
                  episodes=EpisodeConfig(min_dur, grace), blur_evidence=blur,
                  cooldown_s=float(cooldown), webhook_url=s.webhook_url)


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
    held = st.session_state.get("live-proc")
    if held is not None and held.cfg == cfg:
        return held
    if held is not None:
        held.finish("finished", "Settings changed; a new session starts with the next frame.")
    proc = FrameProcessor(cfg)
    st.session_state["live-proc"] = proc
    return proc


def show_counters(proc: FrameProcessor) -> None:
    snap = proc.snapshot()
    c = st.columns(6)
    c[0].metric("Gloved hands", snap.gloved)
    c[1].metric("Bare hands", snap.bare)
    c[2].metric("Compliance (session)",
                f"{snap.compliance:.0%}" if snap.compliance is not None else "–")
    c[3].metric("FPS", f"{snap.fps:.1f}")
    c[4].metric("Latency", f"{snap.latency_ms:.0f} ms")
    c[5].metric("Episodes", f"{snap.episodes} ({snap.open_episodes} open)")
    status_line = f"**{snap.status}** · {snap.message}"
    (st.error if snap.status in ("failed", "error") else st.caption)(status_line)
    if snap.alerts:
        last = snap.alerts[-1]
        st.error(f"🚨 {last.message}", icon="🚨")
        if last.seq > st.session_state.get("live-alert-heard", 0):
            st.session_state["live-alert-heard"] = last.seq
            st.audio(beep_wav(), format="audio/wav", autoplay=True)


if source == "Browser camera":
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    proc = processor_for(replace(base, kind="live", source="browser camera"))
    st.caption("Your own camera, from this browser. Allow camera access when asked; if the "
               "video never connects (firewall or NAT), configure TURN servers in "
               "GLOVEWATCH_ICE_SERVERS, or use a camera URL or a video file instead.")

    @st.fragment(run_every=1.0)
    def live_panel() -> None:
        show_counters(proc)

    live_panel()
    webrtc_streamer(
        key=f"live-cam-{station}", mode=WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": ice_servers()},
        media_stream_constraints={"video": True, "audio": False},
        video_frame_callback=proc.webrtc_callback, on_video_ended=proc.finish,
        async_processing=True)
else:
    runner: SourceRunner | None = st.session_state.get("live-runner")
    if source == "Camera URL":
        target = st.text_input("Camera URL", placeholder="rtsp://user:pass@192.168.1.20/stream",
                               key="live-url",
                               help="An RTSP or HTTP(S) stream the server can reach.")
        label = redact_url(target.strip())
    else:
        up = st.file_uploader("Video file", key="live-file",
                              type=sorted(x.lstrip(".") for x in VIDEO_SUFFIXES))
        target, label = "", ""
        if up is not None:
            label = Path(up.name).name
            path = s.uploads_dir / f"replay-{Path(up.name).name}"
            if not path.exists() or path.stat().st_size != up.size:
                path.write_bytes(up.getvalue())
            target = str(path)
    kind = "stream" if source == "Camera URL" else "file"
    running = runner is not None and runner.alive
    start_col, stop_col = st.columns(2)
    if start_col.button("Start", type="primary", key="live-start",
                        disabled=running or not target.strip()):
        if target.strip().startswith(("rtsp://", "rtsps://", "http://", "https://")) \
                or kind == "file":
            proc = processor_for(replace(base, kind=kind, source=label))
            runner = SourceRunner(target.strip(), proc, realtime=True,
                                  viewer_timeout_s=30.0).start()
            st.session_state["live-runner"] = runner
        else:
            st.error("A camera URL starts with rtsp://, rtsps://, http:// or https://.")
    if stop_col.button("Stop", key="live-stop", disabled=not running):
        runner.stop()

    @st.fragment(run_every=1.0)
    def source_panel() -> None:
        current: SourceRunner | None = st.session_state.get("live-runner")
        if current is None:
            st.info("Choose a source and press **Start**.")
            return
        current.touch()
        status, message = current.status()
        shown = st.error if status is SourceStatus.FAILED else \
            st.warning if status in (SourceStatus.RECONNECTING, SourceStatus.CONNECTING) \
            else st.info
        shown(f"{status}: {message}")
        show_counters(current.processor)
        frame = current.latest()
        if frame is not None:
            st.image(frame, channels="BGR", width="stretch")

    source_panel()
