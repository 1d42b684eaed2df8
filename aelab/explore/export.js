// The exported run's code map (aelab/explore/export.py): the cached test points in a 2-D view,
// one colour per label, the image under the pointer drawn from the embedded sprite, and a click
// that sets the traversal sliders (webdecoder.js, window.aelab.setCode) to the point's code.
// Everything is in this file: no request is ever made.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("aelab-map").textContent);
  const floats = (b64) => new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
  const n = data.index.length, dims = data.latent_dim, size = data.size, pad = 14;
  const codes = floats(data.codes);
  const views = Object.fromEntries(Object.entries(data.views).map(([k, v]) => [k, floats(v)]));
  const canvas = document.getElementById("map"), ctx = canvas.getContext("2d");
  const preview = document.getElementById("preview"), pctx = preview.getContext("2d");
  const caption = document.getElementById("preview-caption"), select = document.getElementById("view");
  const sp = data.sprite;
  preview.width = sp.w * data.preview;
  preview.height = sp.h * data.preview;
  const sprite = new Image();
  const state = { view: null, xy: new Float32Array(2 * n), hovered: -1, chosen: 0, shown: -1, draws: 0,
                  spriteReady: false };
  window.aelabMap = state;  // the tests read this

  // a view's points fitted into the square canvas, one scale for both axes (distances kept), y up
  function layout(name) {
    const p = views[name];
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      x0 = Math.min(x0, p[2 * i]); x1 = Math.max(x1, p[2 * i]);
      y0 = Math.min(y0, p[2 * i + 1]); y1 = Math.max(y1, p[2 * i + 1]);
    }
    const k = (size - 2 * pad) / Math.max(x1 - x0, y1 - y0, 1e-9);
    const cx = (size - k * (x1 - x0)) / 2, cy = (size - k * (y1 - y0)) / 2;
    for (let i = 0; i < n; i++) {
      state.xy[2 * i] = cx + k * (p[2 * i] - x0);
      state.xy[2 * i + 1] = size - cy - k * (p[2 * i + 1] - y0);
    }
    state.view = name;
  }

  const dot = (i, r) => { ctx.moveTo(state.xy[2 * i] + r, state.xy[2 * i + 1]); ctx.arc(state.xy[2 * i], state.xy[2 * i + 1], r, 0, 2 * Math.PI); };
  function draw() {
    ctx.fillStyle = "white";
    ctx.fillRect(0, 0, size, size);
    ctx.globalAlpha = 0.75;
    data.classes.forEach((c, g) => {  // one path per class: one colour change each
      ctx.beginPath();
      for (let i = 0; i < n; i++) if (data.member[i] === g) dot(i, 2.5);
      ctx.fillStyle = c.colour;
      ctx.fill();
    });
    ctx.globalAlpha = 1;
    for (const [i, colour] of [[state.chosen, "rgb(255, 75, 75)"], [state.hovered, "black"]]) {
      if (i < 0) continue;
      ctx.beginPath();
      dot(i, 6);
      ctx.lineWidth = 2;
      ctx.strokeStyle = colour;
      ctx.stroke();
    }
    state.draws += 1;
  }

  function show(i) {
    if (!state.spriteReady) return;
    pctx.imageSmoothingEnabled = false;
    const col = i % sp.cols, row = Math.floor(i / sp.cols);
    pctx.drawImage(sprite, col * sp.w, row * sp.h, sp.w, sp.h, 0, 0, preview.width, preview.height);
    const label = data.labels ? `, label ${data.labels[i]}` : "";
    caption.textContent = `test image ${data.index[i]}${label}`;
    state.shown = i;
  }

  // the point nearest the pointer, within 8 canvas pixels; -1 when none is
  function nearest(event) {
    const box = canvas.getBoundingClientRect();
    const x = (event.clientX - box.left) * (canvas.width / box.width);
    const y = (event.clientY - box.top) * (canvas.height / box.height);
    let best = -1, bestD = 64;
    for (let i = 0; i < n; i++) {
      const dx = state.xy[2 * i] - x, dy = state.xy[2 * i + 1] - y, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  // where point i is on the screen (client pixels): for the tests and the keyboard-less
  state.position = (i) => {
    const box = canvas.getBoundingClientRect();
    return [box.left + state.xy[2 * i] * box.width / canvas.width,
            box.top + state.xy[2 * i + 1] * box.height / canvas.height];
  };

  canvas.addEventListener("pointermove", (event) => {
    const i = nearest(event);
    if (i === state.hovered) return;
    state.hovered = i;
    if (i >= 0) show(i);
    draw();
  });
  canvas.addEventListener("pointerleave", () => { state.hovered = -1; draw(); });
  canvas.addEventListener("click", (event) => {
    const i = nearest(event);
    if (i < 0) return;
    state.chosen = i;
    show(i);
    draw();
    if (window.aelab && window.aelab.setCode) {
      window.aelab.setCode(codes.subarray(i * dims, (i + 1) * dims), data.conditional ? data.labels[i] : undefined);
    }
    if (classSelect) classSelect.value = String(data.labels[i]);
  });
  // a CVAE decodes for a class: its own control, and a clicked point's class
  const classSelect = document.getElementById("class");
  if (classSelect) {
    for (let c = 0; c < data.n_classes; c++) classSelect.append(new Option(String(c), String(c)));
    classSelect.value = String(data.labels[0]);
    classSelect.addEventListener("change", () => window.aelab.setCode(window.aelab.z, parseInt(classSelect.value, 10)));
    document.querySelector("#app button").addEventListener("click", () => { classSelect.value = String(data.labels[0]); });
  }

  for (const name of Object.keys(views)) select.append(new Option(name, name));
  select.addEventListener("change", () => { layout(select.value); draw(); });
  const legend = document.getElementById("legend");
  if (data.labels) {
    for (const c of data.classes) {
      const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
      swatch.style.background = c.colour;
      const item = document.createElement("li");
      item.append(swatch, `label ${c.name}`);
      legend.append(item);
    }
  }
  layout(select.value);
  draw();
  sprite.onload = () => { state.spriteReady = true; show(state.hovered >= 0 ? state.hovered : 0); };
  sprite.src = sp.src;
})();
