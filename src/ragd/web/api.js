// The page's only door to ragd: /v1 over fetch, with the key from sessionStorage.
import { emit } from "./dom.js";

const KEY = "ragd.apiKey";

export const keyStore = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  forget: () => sessionStorage.removeItem(KEY),
};

/** An HTTP error from the API, with a short message a person can act on. */
export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    super(humanMessage(status, problem, retryAfter));
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

const WHAT = {
  400: "Bad request",
  401: "The server did not accept the API key",
  403: "This key may not do that",
  404: "Not found",
  409: "Conflict",
  413: "Too large",
  415: "Unsupported type",
  422: "Invalid input",
  429: "Too many requests",
  500: "Server error",
  502: "The LLM failed",
  503: "Service unavailable",
  504: "The LLM timed out",
};

export function humanMessage(status, problem = {}, retryAfter = null) {
  if (status === 0) return "Could not reach the server. Is ragd running?";
  const what = WHAT[status] || problem.title || "Request failed";
  let detail = typeof problem.detail === "string" ? problem.detail : "";
  if (status === 422 && Array.isArray(problem.errors) && problem.errors.length && !detail) {
    detail = problem.errors.map((e) => e.msg).join("; ");
  }
  let text = `${what} (${status})`;
  if (detail) text += `: ${detail.length > 300 ? `${detail.slice(0, 300)}…` : detail}`;
  if (status === 429 && retryAfter) text += ` Try again in ${retryAfter} s.`;
  return text;
}

function headers(extra = {}) {
  const key = keyStore.get();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

async function fail(response) {
  const error = new ApiError(
    response.status,
    await problemOf(response),
    response.headers.get("Retry-After"),
  );
  if (response.status === 401) emit("needkey", error);
  throw error;
}

async function send(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0);
  }
}

/** JSON in, JSON out; throws ApiError on any non-2xx answer. */
export async function api(method, path, body) {
  const response = await send(method, path, body);
  if (!response.ok) await fail(response);
  if (response.status === 204) return null;
  return response.json();
}

/**
 * POST a body that answers with Server-Sent Events (EventSource cannot POST or send
 * headers): parse the stream from fetch's ReadableStream, calling onEvent(name, data).
 */
export async function stream(path, body, onEvent) {
  const response = await send("POST", path, { ...body, stream: true });
  if (!response.ok) await fail(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll("\r\n", "\n");
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      dispatch(buffer.slice(0, end), onEvent);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
  if (buffer.trim()) dispatch(buffer, onEvent);
}

function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return;
  let parsed;
  try {
    parsed = JSON.parse(data.join("\n"));
  } catch {
    parsed = data.join("\n");
  }
  onEvent(name, parsed);
}

/** Multipart upload with progress (fetch cannot report upload progress; XHR can): one
 * file, or several as repeated `file` parts (the batch endpoint). */
export function upload(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.response);
        return;
      }
      const error = new ApiError(
        xhr.status,
        xhr.response || {},
        xhr.getResponseHeader("Retry-After"),
      );
      if (xhr.status === 401) emit("needkey", error);
      reject(error);
    });
    xhr.addEventListener("error", () => reject(new ApiError(0)));
    const form = new FormData();
    for (const file of Array.isArray(files) ? files : [files]) form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** /readyz needs no key and answers 503 with the same body when a check fails. */
export async function readiness() {
  try {
    const response = await fetch("/readyz");
    return await response.json();
  } catch {
    return null;
  }
}
