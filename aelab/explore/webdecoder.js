// The Traversal page's sliders and picture, decoded in the browser (aelab/webdecoder.py).
// The decoder spec: layers of aelab/nn.py's Decoder (linear, relu, unflatten, convT), float32
// weights as one base64 string; the image is the sigmoid of the last layer's output, as
// aelab.explore.decode_codes. A slider move never reaches the server.
(function () {
  "use strict";
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const view = read("aelab-view"), spec = read("aelab-decoder");
  const bytes = Uint8Array.from(atob(spec.weights), (c) => c.charCodeAt(0));
  const W = new Float32Array(bytes.buffer);  // little-endian, as exported

  // y = W x + b, W (out, in) row-major as torch.nn.Linear keeps it
  function linear(x, L) {
    const y = new Float64Array(L.out);
    for (let o = 0; o < L.out; o++) {
      let s = W[L.b + o];
      const row = L.w + o * L.in;
      for (let i = 0; i < L.in; i++) s += W[row + i] * x[i];
      y[o] = s;
    }
    return y;
  }

  // torch.nn.ConvTranspose2d (groups 1, dilation 1, no output padding), weight (in, out, k, k):
  // out[o, iy*s - p + ky, ix*s - p + kx] += x[i, iy, ix] * w[i, o, ky, kx], plus the bias
  function convT(x, shape, L) {
    const [cin, h, w] = shape, k = L.k, s = L.stride, p = L.pad;
    const ho = (h - 1) * s - 2 * p + k, wo = (w - 1) * s - 2 * p + k;
    const y = new Float64Array(L.out * ho * wo);
    for (let o = 0; o < L.out; o++) y.fill(W[L.b + o], o * ho * wo, (o + 1) * ho * wo);
    for (let i = 0; i < cin; i++) {
      for (let iy = 0; iy < h; iy++) {
        for (let ix = 0; ix < w; ix++) {
          const v = x[(i * h + iy) * w + ix];
          if (v === 0) continue;  // after a ReLU, many are
          for (let o = 0; o < L.out; o++) {
            const wk = L.w + ((i * L.out + o) * k) * k, yo = o * ho * wo;
            for (let ky = 0; ky < k; ky++) {
              const oy = iy * s - p + ky;
              if (oy < 0 || oy >= ho) continue;
              for (let kx = 0; kx < k; kx++) {
                const ox = ix * s - p + kx;
                if (ox >= 0 && ox < wo) y[yo + oy * wo + ox] += v * W[wk + ky * k + kx];
              }
            }
          }
        }
      }
    }
    return [y, [L.out, ho, wo]];
  }

  // pixels in [0, 1], (C, H, W) flat, for code z and (CVAE) class label
  function decode(z, label) {
    let x = Array.from(z);
    if (spec.condition) for (let c = 0; c < spec.condition.classes; c++) x.push(c === label ? 1 : 0);
    let shape = [x.length];
    for (const L of spec.layers) {
      if (L.op === "linear") { x = linear(x, L); shape = [L.out]; }
      else if (L.op === "relu") x = x.map((v) => (v > 0 ? v : 0));
      else if (L.op === "unflatten") shape = L.shape;
      else if (L.op === "convT") [x, shape] = convT(x, shape, L);
      else throw new Error("unknown layer " + L.op);
    }
    return Float64Array.from(x, (v) => 1 / (1 + Math.exp(-v)));
  }

  const [C, H, Wd] = spec.shape, scale = view.scale;
  const z = Float64Array.from(view.base);
  const el = (tag, props, ...kids) => {
    const e = Object.assign(document.createElement(tag), props || {});
    e.append(...kids);
    return e;
  };
  const canvas = el("canvas", { width: Wd * scale, height: H * scale });
  const ctx = canvas.getContext("2d");
  const state = { draws: 0, drawnAt: null, paintedAt: null, z, decode, pixels: null };
  window.aelab = state;  // the tests and the classroom bench read this

  function draw() {
    const px = decode(z, view.label), img = ctx.createImageData(Wd * scale, H * scale);
    for (let y = 0; y < H * scale; y++) {
      for (let x = 0; x < Wd * scale; x++) {
        const at = Math.floor(y / scale) * Wd + Math.floor(x / scale), out = (y * Wd * scale + x) * 4;
        for (let c = 0; c < 3; c++) {
          const v = px[(C === 1 ? 0 : c) * H * Wd + at];
          img.data[out + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
        }
        img.data[out + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    state.pixels = px;
    state.draws += 1;
    state.drawnAt = performance.now();
    requestAnimationFrame(() => { state.paintedAt = performance.now(); });  // the frame shown
  }

  const inputs = [];
  const shown = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
  function slider(s) {
    const input = el("input", { type: "range", min: s.low, max: s.high, step: "any",
                                value: z[s.d], ariaLabel: s.label });
    const value = el("span", { className: "value", textContent: shown(z[s.d]) });
    const set = (v) => {
      z[s.d] = Math.min(s.high, Math.max(s.low, v));
      input.value = z[s.d];
      value.textContent = shown(z[s.d]);
      draw();
    };
    input.addEventListener("input", () => set(parseFloat(input.value)));
    // the keys move by the slider's step (step="any" keeps the base value off the grid exact)
    const keys = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 10, PageDown: -10 };
    input.addEventListener("keydown", (e) => {
      if (e.key in keys) set(z[s.d] + keys[e.key] * s.step);
      else if (e.key === "Home") set(s.low);
      else if (e.key === "End") set(s.high);
      else return;
      e.preventDefault();
    });
    inputs.push([s, input, value]);
    return el("div", { className: "slider" }, el("label", {}, el("span", { textContent: s.label }), value), input);
  }

  const box = el("div", { className: "sliders" }, ...view.dims.filter((s) => !s.inactive).map(slider));
  const folded = view.dims.filter((s) => s.inactive);
  if (folded.length) box.append(el("details", {}, el("summary", { textContent: view.inactive_title }),
                                   ...folded.map(slider)));
  const reset = el("button", { type: "button", textContent: "↺ Reset sliders to the base",
                               title: "Every slider back to the base code: the test image's code or the prior mean" });
  // every slider (and a CVAE's label) to another code at once, drawn once
  const baseLabel = view.label;
  function setCode(code, label) {
    for (const [s, input, value] of inputs) {
      z[s.d] = code[s.d];
      input.value = z[s.d];
      value.textContent = shown(z[s.d]);
    }
    if (label !== undefined) view.label = label;
    draw();
  }
  state.setCode = setCode;  // the exported page's code map sets a clicked point's code
  reset.addEventListener("click", () => setCode(view.base, baseLabel));
  const figure = el("figure", {}, canvas, el("figcaption", { textContent: view.caption }));
  document.getElementById("app").append(box, el("div", { className: "picture" }, figure, reset));
  draw();
})();
