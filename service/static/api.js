// The service's HTTP API as the page uses it: one call, its JSON answer and the round-trip time.

export class ApiError extends Error {
  constructor(response, body, text) {
    const code = body && body.error ? body.error : "http_error";
    const detail = body && body.detail ? body.detail : text.slice(0, 200) || response.statusText;
    let message = `${response.status} ${code}: ${String(detail).replace(/\.?$/, ".")}`;
    const retry = response.headers.get("retry-after");
    if (retry) message += ` Retry in ${retry} s.`;
    if (response.status === 401) message += " Enter the server's key under “API key”.";
    super(message);
    this.status = response.status;
  }
}

// GET, or POST an image Blob or a JSON body; resolves to {data, roundTripMs}, rejects with a readable message.
export async function api(path, { params = {}, blob, json, key = "" } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const headers = { accept: "application/json" };
  if (key) headers["x-api-key"] = key;
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (blob) {
    headers["content-type"] = blob.type === "image/png" ? "image/png" : "application/octet-stream";
    body = blob;
  }
  const started = performance.now();
  let response;
  try {
    response = await fetch(url, { method: body ? "POST" : "GET", headers, body });
  } catch (error) {
    throw new Error(`Cannot reach the server (${error.message}).`);
  }
  const text = await response.text();
  const roundTripMs = performance.now() - started;
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: an error message falls back to the text
  }
  if (!response.ok) throw new ApiError(response, data, text);
  return { data, roundTripMs };
}
