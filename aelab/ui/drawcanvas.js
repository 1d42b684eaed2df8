// A drawing canvas for st.components.v2 (aelab/ui/own_input.py): light strokes on black, drawn
// with a mouse, a pen or a finger (pointer events); each finished stroke sends the whole canvas
// to Python as a PNG data URL (state "image"), Clear sends null. data: {brush, image, scroll}.
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const canvas = parentElement.querySelector("canvas");
  const clear = parentElement.querySelector("button");
  const ctx = canvas.getContext("2d");
  const blank = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  if (!canvas.dataset.ready) {  // first mount: black, or the drawing Python still holds
    canvas.dataset.ready = "1";
    blank();
    if (data && data.image) {
      const picture = new Image();
      picture.onload = () => ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
      picture.src = data.image;
    }
  }
  const brush = (data && data.brush) || 18;
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const line = (a, b) => {
    ctx.strokeStyle = "#fff"; ctx.lineWidth = brush; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  };
  canvas.onpointerdown = (e) => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    line(last, last);
  };
  canvas.onpointermove = (e) => {
    if (last === null) return;
    const p = at(e);
    line(last, p);
    last = p;
  };
  const end = () => {
    if (last === null) return;
    last = null;
    canvas.dataset.strokes = String(Number(canvas.dataset.strokes || 0) + 1);
    setStateValue("image", canvas.toDataURL("image/png"));
  };
  canvas.onpointerup = end;
  canvas.onpointercancel = end;
  clear.onclick = () => { blank(); canvas.dataset.strokes = "0"; setStateValue("image", null); };
  if (data && data.scroll && !canvas.dataset.scrolled) {  // opened by a link to this section
    canvas.dataset.scrolled = "1";
    canvas.scrollIntoView({ block: "center" });
  }
}
