// The page's three ways to ask the model: click a test digit, draw one, upload a picture.
// Every way sends an image file to POST /predict and shows the top-3 answers as bars.
// Requests are numbered: only the latest one's answer is ever shown, so a slow answer
// can never replace a newer one, and Clear (or an empty canvas) makes any answer on its way stale.
"use strict";

const message = document.getElementById("message");
const bars = document.getElementById("bars");
const prepared = document.getElementById("prepared");
const figure = document.getElementById("input-figure");
const reason = document.getElementById("reason");
const resultPanel = document.getElementById("result-panel");
const gallery = document.getElementById("gallery");
let latest = 0; // the number of the latest request; answers to older ones are dropped

function say(text, kind) {
  message.textContent = text;
  message.classList.toggle("error", kind === "error");
  message.classList.toggle("unsure", kind === "unsure");
}

function unchoose() {
  for (const other of gallery.querySelectorAll("img.digit.chosen")) other.classList.remove("chosen");
}

// Forget every answer: bars, the 28x28 picture, the reason; answers on their way become stale.
function resetResult() {
  latest += 1;
  bars.replaceChildren();
  bars.classList.remove("unsure");
  prepared.removeAttribute("src");
  figure.hidden = true;
  reason.hidden = true;
  reason.textContent = "";
}

// On a narrow screen the result is below what was clicked: bring it into view.
function showResult() {
  if (window.matchMedia("(max-width: 52rem)").matches) {
    resultPanel.scrollIntoView({ block: "nearest" });
  }
}

function showBars(predictions, trueLabel) {
  bars.replaceChildren();
  for (const { digit, probability } of predictions) {
    const bar = document.createElement("div");
    bar.className = "bar" + (digit === trueLabel ? " true" : "");
    bar.dataset.digit = String(digit);
    bar.dataset.probability = String(probability);
    const name = document.createElement("span");
    name.className = "digit-name";
    name.textContent = String(digit);
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = (100 * probability).toFixed(1) + "%";
    track.appendChild(fill);
    const share = document.createElement("span");
    share.className = "share";
    share.textContent = (100 * probability).toFixed(1) + "%";
    bar.append(name, track, share);
    bars.appendChild(bar);
  }
}

async function predict(blob, filename, trueLabel) {
  resetResult();
  const request = latest;
  document.body.dataset.request = String(request);
  const form = new FormData();
  form.append("file", blob, filename);
  say("Asking the model...");
  let reply, answer;
  try {
    reply = await fetch("predict?k=3", { method: "POST", body: form });
    answer = await reply.json();
  } catch (error) {
    if (request === latest) say(`Could not reach the service: ${error}`, "error");
    return;
  }
  if (request !== latest) return; // a newer request (or Clear) came since: this answer is stale
  document.body.dataset.answered = String(request);
  if (!reply.ok) {
    const wait = reply.headers.get("Retry-After");
    say(`Error ${reply.status}: ${answer.error}` + (wait ? ` (try again in ${wait} s)` : ""), "error");
    showResult();
    return;
  }
  prepared.src = "data:image/png;base64," + answer.prepared;
  figure.hidden = false;
  showBars(answer.predictions, trueLabel);
  const best = answer.predictions[0];
  let text = `Best guess: ${best.digit} (${(100 * best.probability).toFixed(1)}%)`;
  if (answer.readable === false) {
    bars.classList.add("unsure");
    reason.textContent = `Not read as one digit: ${answer.reason}`;
    reason.hidden = false;
    text = `Not read as one digit; the model's guess would be ${best.digit} ` +
      `(${(100 * best.probability).toFixed(1)}%).`;
  } else if (trueLabel !== undefined) {
    text += best.digit === trueLabel ? ` — right, it is a ${trueLabel}.` : ` — wrong, it is a ${trueLabel}.`;
  }
  say(text + ` Answered in ${answer.milliseconds} ms.`, answer.readable === false ? "unsure" : undefined);
  showResult();
}

function pngBlob(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

// 1. The gallery of test digits.
async function loadGallery() {
  const reply = await fetch("examples");
  const { examples } = await reply.json();
  for (const example of examples) {
    const cell = document.createElement("div");
    cell.className = "cell";
    const img = document.createElement("img");
    img.className = "digit";
    img.src = "data:image/png;base64," + example.png;
    img.alt = `test digit #${example.index}, a ${example.label}`;
    img.title = `#${example.index}: a ${example.label}`;
    img.tabIndex = 0;
    img.dataset.index = String(example.index);
    img.dataset.label = String(example.label);
    const choose = () => {
      unchoose();
      img.classList.add("chosen");
      predict(pngBlob(example.png), `mnist-test-${example.index}.png`, example.label);
    };
    img.addEventListener("click", choose);
    img.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); choose(); }
    });
    const caption = document.createElement("span");
    caption.textContent = `#${example.index}`;
    cell.append(img, caption);
    gallery.appendChild(cell);
  }
}

// 2. The canvas: black ink on white paper, drawn with pointer events (mouse, pen or finger).
const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
let drawing = false;
let inked = false;

function clearCanvas() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  inked = false;
}

function at(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * (canvas.width / box.width), (event.clientY - box.top) * (canvas.height / box.height)];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  try {
    canvas.setPointerCapture(event.pointerId); // keep the stroke even when it leaves the canvas
  } catch (error) {
    // no capture (a synthetic or already-ended pointer): drawing still works inside the canvas
  }
  drawing = true;
  pen.lineWidth = canvas.width / 14;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.strokeStyle = "#000";
  const [x, y] = at(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x + 0.01, y);
  pen.stroke();
  inked = true;
});

canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  event.preventDefault();
  const [x, y] = at(event);
  pen.lineTo(x, y);
  pen.stroke();
});

function endStroke(event) {
  if (!drawing) return;
  drawing = false;
  if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
  predictDrawing();
}

canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function predictDrawing() {
  unchoose();
  if (!inked) {
    resetResult();
    say("The canvas is empty: draw a digit first.", "error");
    return;
  }
  canvas.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
}

document.getElementById("predict-drawing").addEventListener("click", predictDrawing);
document.getElementById("clear-drawing").addEventListener("click", () => {
  clearCanvas();
  unchoose();
  resetResult();
  say("Cleared. Draw a digit, click a test digit or upload a picture.");
});

// 3. Upload a picture. The input is emptied after each choice, so choosing the same file again sends it again.
document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (file) {
    unchoose();
    predict(file, file.name);
  }
});

clearCanvas();
loadGallery().catch((error) => say(`Could not load the gallery: ${error}`, "error"));
