// The demo page: plain ES modules, no build step; every image, label and number comes from the API.
import { api } from "./api.js";
import { recordLatency, renderPerturbation, renderPrediction } from "./panels.js";

const $ = (selector) => document.querySelector(selector);
const state = { models: {}, samples: [], mode: "sample", inputs: { sample: null, draw: null, upload: null } };

const call = (path, options = {}) => api(path, { ...options, key: $("#api-key").value.trim() });
const dataset = () => state.models[$("#dataset").value];

function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

// ---- datasets, pipelines and samples -------------------------------------------------------------

async function loadModels() {
  const { data } = await call("/models");
  state.models = data.datasets;
  $("#dataset").replaceChildren(...Object.keys(state.models).map((name) => new Option(name, name)));
  await selectDataset();
}

// Purifiers and samples of the chosen dataset; #samples[data-dataset] names it once all is loaded.
async function selectDataset() {
  const name = $("#dataset").value;
  const info = dataset();
  $("#samples").dataset.dataset = "";
  $("#pipeline").replaceChildren(
    ...Object.entries(info.pipelines).map(([p, entry]) => {
      const option = new Option(p, p, p === info.default_pipeline, p === info.default_pipeline);
      option.title = entry.description || "";
      return option;
    }),
  );
  const { data } = await call("/samples", { params: { dataset: name } });
  state.samples = data.samples;
  $("#samples").replaceChildren(...data.samples.map(sampleButton));
  state.inputs.sample = null;
  if (state.samples.length) await pickSample(Math.floor(Math.random() * state.samples.length));
  updateInputName();
  $("#samples").dataset.dataset = name;
}

function sampleButton(sample) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "sample";
  button.dataset.index = sample.index;
  button.title = `sample ${sample.index}: ${sample.class_name}`;
  button.setAttribute("aria-pressed", "false");
  const image = document.createElement("img");
  image.src = sample.url;
  image.alt = `sample ${sample.index}, ${sample.class_name}`;
  button.append(image);
  button.addEventListener("click", () => pickSample(sample.index).catch(showError));
  return button;
}

async function pickSample(index) {
  const sample = state.samples[index];
  const response = await fetch(sample.url);
  if (!response.ok) throw new Error(`Sample ${index} could not be loaded (${response.status}).`);
  state.inputs.sample = {
    blob: await response.blob(),
    name: `sample ${index} (true label: ${sample.class_name})`,
    trueLabel: sample.label,
  };
  for (const button of document.querySelectorAll("#samples .sample")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === index));
  }
  updateInputName();
}

// ---- input modes: sample, draw, upload ------------------------------------------------------------

function setMode(mode) {
  state.mode = mode;
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  }
  for (const name of Object.keys(state.inputs)) $(`#mode-${name}`).hidden = name !== mode;
  updateInputName();
}

function updateInputName() {
  const input = state.inputs[state.mode];
  $("#input-name").textContent = input ? input.name : "none yet";
}

// The 28×28 pad: white strokes on black, like MNIST; pointer events, so touch works too.
function setUpPad() {
  const pad = $("#pad");
  const context = pad.getContext("2d");
  const clear = () => {
    context.fillStyle = "#000";
    context.fillRect(0, 0, pad.width, pad.height);
    state.inputs.draw = null;
    updateInputName();
  };
  const point = (event) => [(event.offsetX / pad.clientWidth) * pad.width, (event.offsetY / pad.clientHeight) * pad.height];
  let last = null;
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    last = point(event);
  });
  pad.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    Object.assign(context, { strokeStyle: "#fff", lineWidth: 2.2, lineCap: "round" });
    context.beginPath();
    context.moveTo(...last);
    context.lineTo(...next);
    context.stroke();
    last = next;
    state.inputs.draw = { canvas: pad, name: "your drawing (28×28)" };
    updateInputName();
  });
  for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => (last = null));
  $("#clear").addEventListener("click", clear);
  clear();
}

function inputBlob(input) {
  if (input.blob) return Promise.resolve(input.blob);
  return new Promise((resolve) => input.canvas.toBlob(resolve, "image/png"));
}

// ---- one run: attack, then defend and purify the adversarial image, then classify the purified one ----

async function timed(name, path, options) {
  const result = await call(path, options);
  recordLatency($("#latency"), name, result.data, result.roundTripMs);
  return result.data;
}

async function run() {
  const input = state.inputs[state.mode];
  if (!input) {
    showError(new Error("Pick a sample, draw something or upload an image first."));
    return;
  }
  const results = $("#results");
  $("#run").disabled = true;
  showError(null);
  results.dataset.state = "running";
  $("#latency tbody").replaceChildren();
  const name = $("#dataset").value;
  const pipeline = $("#pipeline").value;
  const { purifier, certificate } = dataset().pipelines[pipeline];
  const params = { dataset: name, attack: $("#attack").value, eps: $("#eps").value };
  if (params.attack === "pgd") Object.assign(params, { alpha: $("#alpha").value, steps: $("#steps").value });
  if ($("#target").value === "pipeline") Object.assign(params, { target: "pipeline", pipeline });
  try {
    const blob = await inputBlob(input);
    const attack = await timed(`/attack (${params.attack})`, "/attack", { params, blob });
    // a pipeline without a purifier shows the adversarial image itself in the third panel
    const [defended, purified] = await Promise.all([
      timed("/defended-classify ×2", "/defended-classify", {
        params: { dataset: name, pipeline },
        json: { images: [attack.original_image, attack.image] },
      }),
      purifier
        ? timed("/purify", "/purify", { params: { dataset: name, purifier }, json: { images: [attack.image] } })
        : [{ image: attack.image }],
    ]);

    const { class_names: classNames, detector_thresholds: thresholds } = dataset();
    const threshold = purifier ? thresholds[purifier] : null;
    const truth = input.trueLabel === undefined ? [] : [`true label: ${classNames[input.trueLabel]}`];
    const show = (panel, image) => {
      $(`${panel} img`).src = `data:image/png;base64,${image}`;
      return $(panel);
    };
    renderPrediction(show("#panel-original", attack.original_image), attack.original, classNames, {
      lines: truth,
      defended: defended[0],
      threshold,
      certificate,
    });
    renderPrediction(show("#panel-adversarial", attack.image), attack.adversarial, classNames, {
      defended: defended[1],
      threshold,
      certificate,
    });
    renderPrediction(show("#panel-purified", purified[0].image), defended[1], classNames, {
      lines: [`pipeline: ${pipeline} (purifier: ${purifier || "none"})`],
    });
    await renderPerturbation($("#panel-perturbation"), attack, defended[0].certified_radius);
    results.dataset.state = "done";
  } catch (error) {
    showError(error);
    results.dataset.state = "error";
  } finally {
    $("#run").disabled = false;
  }
}

// ---- wiring -----------------------------------------------------------------------------------------

function showValue(inputId, outputId, format) {
  const update = () => ($(outputId).textContent = format($(inputId).value));
  $(inputId).addEventListener("input", update);
  update();
}

setUpPad();
// The server rounds the adversarial image to whole 8-bit steps inside the ε-ball.
showValue("#eps", "#eps-value", (value) => `${Number(value).toFixed(2)} (${Math.floor(value * 255 + 1e-6)}/255)`);
showValue("#steps", "#steps-value", (value) => value);
$("#attack").addEventListener("change", () => ($("#pgd-options").hidden = $("#attack").value !== "pgd"));
for (const tab of document.querySelectorAll(".tabs [role=tab]")) tab.addEventListener("click", () => setMode(tab.dataset.mode));
$("#random").addEventListener("click", () => pickSample(Math.floor(Math.random() * state.samples.length)).catch(showError));
$("#file").addEventListener("change", () => {
  const file = $("#file").files[0];
  state.inputs.upload = file ? { blob: file, name: file.name } : null;
  updateInputName();
});
$("#dataset").addEventListener("change", () => selectDataset().catch(showError));
$("#run").addEventListener("click", run);
loadModels().catch(showError);
