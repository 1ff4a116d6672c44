"""A small box editor for the Label page (Streamlit custom component v2, no build step).

The image is shown with its boxes drawn over it. Click a box to select it; press a class's
number (or its button) to change the class of the selected box; Delete removes it; drag on the
image to draw a missing box of the current class. ``←``/``p`` and ``→``/``n`` go to the
previous/next frame, ``Enter`` marks the frame done. Boxes travel as
``{"class_id", "x1", "y1", "x2", "y2"}`` in 0..1 of the image.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import streamlit as st

HTML = """
<div class="gw-editor" tabindex="0">
  <div class="gw-bar"></div>
  <div class="gw-stage"><img class="gw-img" alt="frame"/><svg class="gw-svg"></svg></div>
  <div class="gw-help">Click a box to select it · number keys set its class · Delete removes
  it · drag on the image to draw a box · ← / p previous · → / n next · Enter: done</div>
</div>
"""

CSS = """
.gw-editor { outline: none; font-family: var(--st-font); user-select: none; }
.gw-bar { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .5rem; }
.gw-bar button { border: 1px solid var(--st-border-color); border-radius: .4rem;
  background: var(--st-secondary-background-color); color: var(--st-text-color);
  padding: .25rem .6rem; cursor: pointer; font-size: .85rem; }
.gw-bar button.on { outline: 2px solid var(--st-primary-color); }
.gw-bar .sep { flex: 1; }
.gw-stage { position: relative; display: inline-block; max-width: 100%; cursor: crosshair; }
.gw-img { display: block; max-width: 100%; height: auto; }
.gw-svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.gw-svg rect.box { fill: transparent; stroke-width: 2.5; cursor: pointer; }
.gw-svg rect.sel { stroke-width: 4; stroke-dasharray: 6 3; }
.gw-svg text { font-size: 13px; font-weight: 600; paint-order: stroke; stroke: #000;
  stroke-width: 3px; fill: #fff; pointer-events: none; }
.gw-help { font-size: .8rem; opacity: .75; margin-top: .35rem; }
"""

JS = """
export default function(component) {
  const { data, setStateValue, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector('.gw-editor');
  const img = root.querySelector('.gw-img');
  const svg = root.querySelector('.gw-svg');
  const bar = root.querySelector('.gw-bar');
  if (!root.gw || root.gw.frame !== data.frame) {
    root.gw = { frame: data.frame, boxes: JSON.parse(JSON.stringify(data.boxes || [])),
                sel: -1, cls: 0, drag: null };
    img.src = data.image;
  }
  const S = root.gw;
  const NS = 'http://www.w3.org/2000/svg';
  const push = () => setStateValue('boxes', { frame: S.frame, boxes: S.boxes });
  const act = (type) => setTriggerValue('action', { type, frame: S.frame, boxes: S.boxes });
  const colour = (c) => (data.classes[c] || {colour: '#999'}).colour;

  function drawBar() {
    bar.innerHTML = '';
    data.classes.forEach((k, i) => {
      const b = document.createElement('button');
      b.textContent = `${i + 1} ${k.name}`;
      b.style.borderColor = k.colour;
      if (i === S.cls) b.classList.add('on');
      b.onclick = () => { setClass(i); root.focus(); };
      bar.appendChild(b);
    });
    const del = document.createElement('button');
    del.textContent = 'Delete box';
    del.onclick = () => { remove(); root.focus(); };
    bar.appendChild(del);
    const sep = document.createElement('span'); sep.className = 'sep'; bar.appendChild(sep);
    for (const [label, type] of [['← Previous', 'prev'], ['Next →', 'next'],
                                 ['Done ✓ (Enter)', 'done']]) {
      const b = document.createElement('button');
      b.textContent = label;
      b.onclick = () => act(type);
      bar.appendChild(b);
    }
  }

  function drawBoxes() {
    svg.setAttribute('viewBox', `0 0 ${data.width} ${data.height}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.innerHTML = '';
    S.boxes.forEach((b, i) => {
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', b.x1 * data.width); r.setAttribute('y', b.y1 * data.height);
      r.setAttribute('width', (b.x2 - b.x1) * data.width);
      r.setAttribute('height', (b.y2 - b.y1) * data.height);
      r.setAttribute('stroke', colour(b.class_id));
      r.setAttribute('class', i === S.sel ? 'box sel' : 'box');
      r.dataset.index = i;
      svg.appendChild(r);
      const t = document.createElementNS(NS, 'text');
      t.setAttribute('x', b.x1 * data.width + 3);
      t.setAttribute('y', Math.max(14, b.y1 * data.height - 4));
      t.textContent = (data.classes[b.class_id] || {name: '?'}).name;
      svg.appendChild(t);
    });
    if (S.drag && S.drag.moved) {
      const d = S.drag, r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', Math.min(d.x0, d.x1) * data.width);
      r.setAttribute('y', Math.min(d.y0, d.y1) * data.height);
      r.setAttribute('width', Math.abs(d.x1 - d.x0) * data.width);
      r.setAttribute('height', Math.abs(d.y1 - d.y0) * data.height);
      r.setAttribute('stroke', colour(S.cls)); r.setAttribute('class', 'box sel');
      svg.appendChild(r);
    }
  }

  function setClass(c) {
    if (c < 0 || c >= data.classes.length) return;
    S.cls = c;
    if (S.sel >= 0) { S.boxes[S.sel].class_id = c; push(); }
    drawBar(); drawBoxes();
  }
  function remove() {
    if (S.sel < 0) return;
    S.boxes.splice(S.sel, 1); S.sel = -1; push(); drawBoxes();
  }
  const at = (e) => {
    const r = svg.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)),
            Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
  };
  svg.onmousedown = (e) => {
    // Keys need the focus; focusing must not scroll the page under the pointer mid-drag.
    root.focus({preventScroll: true});
    const idx = e.target.dataset ? e.target.dataset.index : undefined;
    if (idx !== undefined) {
      S.sel = Number(idx); S.cls = S.boxes[S.sel].class_id; drawBar(); drawBoxes(); return;
    }
    const [x, y] = at(e);
    S.drag = { x0: x, y0: y, x1: x, y1: y, moved: false }; S.sel = -1; drawBoxes();
    e.preventDefault();
  };
  svg.onmousemove = (e) => {
    if (!S.drag) return;
    [S.drag.x1, S.drag.y1] = at(e); S.drag.moved = true; drawBoxes();
  };
  const finish = (e) => {
    if (!S.drag) return;
    const d = S.drag; S.drag = null;
    if (e) [d.x1, d.y1] = at(e);
    if (Math.abs(d.x1 - d.x0) > 0.005 && Math.abs(d.y1 - d.y0) > 0.005) {
      S.boxes.push({ class_id: S.cls, x1: Math.min(d.x0, d.x1), y1: Math.min(d.y0, d.y1),
                     x2: Math.max(d.x0, d.x1), y2: Math.max(d.y0, d.y1) });
      S.sel = S.boxes.length - 1; push();
    }
    drawBoxes();
  };
  svg.onmouseup = finish;
  svg.onmouseleave = () => { if (S.drag) finish(null); };
  root.onkeydown = (e) => {
    if (e.key >= '1' && e.key <= '9') { setClass(Number(e.key) - 1); e.preventDefault(); }
    else if (e.key === 'Delete' || e.key === 'Backspace' || e.key === 'd') {
      remove(); e.preventDefault(); }
    else if (e.key === 'ArrowRight' || e.key === 'n') { act('next'); e.preventDefault(); }
    else if (e.key === 'ArrowLeft' || e.key === 'p') { act('prev'); e.preventDefault(); }
    else if (e.key === 'Enter') { act('done'); e.preventDefault(); }
    else if (e.key === 'Escape') { S.sel = -1; drawBoxes(); }
  };
  drawBar(); drawBoxes();
}
"""

_editor = st.components.v2.component("glovewatch_box_editor", html=HTML, css=CSS, js=JS)


@dataclass(frozen=True)
class EditorResult:
    """The boxes as the user left them and the action they asked for (if any)."""

    boxes: list[dict[str, Any]] | None  # None: untouched in the browser
    action: str | None  # prev | next | done


def _data_url(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise ValueError("the frame could not be encoded")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()


def box_editor(
    image: np.ndarray,
    boxes: list[dict[str, Any]],
    frame: int,
    classes: list[tuple[str, str]],
    key: str,
) -> EditorResult:
    """Show the editor for one frame (BGR ``image``); ``classes`` are (name, #colour)."""
    h, w = image.shape[:2]
    data = {
        "image": _data_url(image),
        "width": w,
        "height": h,
        "frame": frame,
        "boxes": boxes,
        "classes": [{"name": n, "colour": c} for n, c in classes],
    }
    res = _editor(key=key, data=data, on_boxes_change=lambda: None, on_action_change=lambda: None)
    state = getattr(res, "boxes", None)
    trigger = getattr(res, "action", None)
    got = state.get("boxes") if isinstance(state, dict) and state.get("frame") == frame else None
    action = (
        trigger.get("type") if isinstance(trigger, dict) and trigger.get("frame") == frame else None
    )
    if isinstance(trigger, dict) and action and trigger.get("boxes") is not None:
        got = trigger["boxes"]
    return EditorResult(got, action)
