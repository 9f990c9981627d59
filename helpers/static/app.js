// The page's three ways to ask the model: click a test digit, draw one, upload a picture.
// Every way sends an image file to POST /predict and shows the top-3 answers as bars.
"use strict";

const message = document.getElementById("message");
const bars = document.getElementById("bars");
const prepared = document.getElementById("prepared");

function say(text, isError) {
  message.textContent = text;
  message.classList.toggle("error", Boolean(isError));
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
  const form = new FormData();
  form.append("file", blob, filename);
  say("Asking the model...");
  try {
    const reply = await fetch("predict?k=3", { method: "POST", body: form });
    const answer = await reply.json();
    if (!reply.ok) {
      bars.replaceChildren();
      prepared.removeAttribute("src");
      say(`Error ${reply.status}: ${answer.error}`, true);
      return;
    }
    prepared.src = "data:image/png;base64," + answer.prepared;
    showBars(answer.predictions, trueLabel);
    const best = answer.predictions[0];
    let text = `Best guess: ${best.digit} (${(100 * best.probability).toFixed(1)}%)`;
    if (trueLabel !== undefined) {
      text += best.digit === trueLabel ? ` — right, it is a ${trueLabel}.` : ` — wrong, it is a ${trueLabel}.`;
    }
    say(text + ` Answered in ${answer.milliseconds} ms.`);
  } catch (error) {
    say(`Could not reach the service: ${error}`, true);
  }
}

function pngBlob(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

// 1. The gallery of test digits.
async function loadGallery() {
  const gallery = document.getElementById("gallery");
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
      for (const other of gallery.querySelectorAll("img.digit.chosen")) other.classList.remove("chosen");
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
  if (!inked) {
    say("Draw a digit first.", true);
    return;
  }
  canvas.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
}

document.getElementById("predict-drawing").addEventListener("click", predictDrawing);
document.getElementById("clear-drawing").addEventListener("click", () => {
  clearCanvas();
  bars.replaceChildren();
  say("Cleared. Draw a digit.");
});

// 3. Upload a picture.
document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) predict(file, file.name);
});

clearCanvas();
loadGallery().catch((error) => say(`Could not load the gallery: ${error}`, true));
