// Rendering the results: predictions with top-3 bars, the detector's flag, the perturbation, latencies.

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The top 3 as [probability, class index]: from every probability (full detail), the top k (topk), or none (label).
function topThree(prediction) {
  if (prediction.probabilities) return prediction.probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  return (prediction.top || []).slice(0, 3).map((entry) => [entry.probability, entry.label]);
}

// A panel's label, its top-3 probabilities as bars, extra lines and (from /defended-classify) the flag and,
// for a certifiable pipeline, its certificate.
export function renderPrediction(
  panel, prediction, classNames, { lines = [], defended = null, threshold = null, certificate = null } = {},
) {
  panel.dataset.label = prediction.label;
  const label = element("p", "label");
  label.append(element("span", "name", prediction.class_name), element("span", "muted", ` label ${prediction.label}`));
  const bars = element("ol", "top3");
  for (const [probability, index] of topThree(prediction)) {
    const percent = `${(probability * 100).toFixed(1)}%`;
    const fill = element("span");
    fill.style.width = percent;
    const bar = element("span", "bar");
    bar.append(fill);
    const row = element("li");
    row.append(element("span", "cls", classNames[index]), bar, element("span", "pct", percent));
    bars.append(row);
  }
  const verdict = panel.querySelector(".verdict");
  verdict.replaceChildren(label, bars, ...lines.map((text) => element("p", "muted", text)));
  if (defended && defended.suspected_adversarial !== undefined) verdict.append(flagBadge(defended, threshold));
  if (defended && defended.certified !== undefined) verdict.append(certificateBadge(defended, certificate));
}

// The pipeline's certificate: whether its label provably holds at its ε, and the radius it provably holds to.
function certificateBadge(defended, certificate) {
  const eps = certificate ? ` at ε ${certificate.eps}` : "";
  const radius = defended.certified_radius === undefined ? "" : ` · certified radius ${defended.certified_radius.toFixed(3)}`;
  const text = `${defended.certified ? "certified" : "not certified"}${eps}${radius}`;
  return element("p", defended.certified ? "badge certified" : "badge uncertified", text);
}

function flagBadge(defended, threshold) {
  const limit = threshold === null || threshold === undefined ? "" : ` (threshold ${threshold.toFixed(4)})`;
  const verdict = defended.suspected_adversarial ? "suspected adversarial" : "not flagged";
  const mse = defended.reconstruction_mse;
  const detail = mse === null ? "no purifier: flagged on disagreement only" : `reconstruction MSE ${mse.toFixed(4)}${limit}`;
  const text = `${verdict} · ${detail}`;
  return element("p", defended.suspected_adversarial ? "badge flagged" : "badge clean", text);
}

function pngImage(base64) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The server sent an unreadable PNG."));
    image.src = `data:image/png;base64,${base64}`;
  });
}

function pixels(image) {
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  return context.getImageData(0, 0, canvas.width, canvas.height).data;
}

// adversarial − original: gray where unchanged, white brighter, black darker, scaled to the largest change.
export async function renderPerturbation(panel, attack, certifiedRadius) {
  const [original, adversarial] = await Promise.all([pngImage(attack.original_image), pngImage(attack.image)]);
  const before = pixels(original);
  const after = pixels(adversarial);
  const canvas = panel.querySelector("canvas");
  canvas.width = adversarial.naturalWidth;
  canvas.height = adversarial.naturalHeight;
  const context = canvas.getContext("2d");
  const out = context.createImageData(canvas.width, canvas.height);
  const scale = 127 / Math.max(1, attack.linf * 255);
  for (let i = 0; i < out.data.length; i += 4) {
    const value = 128 + (after[i] - before[i]) * scale;
    out.data.set([value, value, value, 255], i);
  }
  context.putImageData(out, 0, 0);
  const params = attack.attack === "pgd" ? `ε ${attack.eps}, α ${attack.alpha}, ${attack.steps} steps` : `ε ${attack.eps}`;
  const flipped = attack.adversarial.label !== attack.original.label;
  panel.querySelector(".verdict").replaceChildren(
    element("p", "", `${attack.attack.toUpperCase()} (${params}) on label ${attack.label}`),
    element("p", "", `ℓ∞ ${attack.linf.toFixed(3)} · ℓ2 ${attack.l2.toFixed(3)}`),
    element("p", "muted", "gray: unchanged · white: brighter · black: darker (scaled to ℓ∞)"),
    element("p", flipped ? "badge flagged" : "badge clean", flipped ? "the label flipped" : "the label held"),
  );
  if (certifiedRadius !== undefined && certifiedRadius !== null) {
    const within = attack.eps <= certifiedRadius;
    panel.querySelector(".verdict").append(element("p", within ? "badge certified" : "muted", within
      ? `ε ${attack.eps} ≤ the certified radius ${certifiedRadius.toFixed(3)}: no attack this size can flip the label`
      : `ε ${attack.eps} > the certified radius ${certifiedRadius.toFixed(3)}: no guarantee`));
  }
}

// One row of the latency table: the server's latency_ms (per request) and the browser's round trip.
export function recordLatency(table, call, data, roundTripMs) {
  const first = Array.isArray(data) ? data[0] : data;
  const row = element("tr");
  row.append(
    element("td", "", call),
    element("td", "", `${first.latency_ms.toFixed(1)} ms`),
    element("td", "", `${roundTripMs.toFixed(1)} ms`),
  );
  table.querySelector("tbody").append(row);
}
