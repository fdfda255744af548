// The header's status line: /readyz checks and the ingestion queue depth.
import { api, keyStore, readiness } from "./api.js";
import { fill, h } from "./dom.js";

/** Redraws the status line; returns /v1/ingestion's answer (or the error it gave). */
export async function refreshStatus(node, { withQueue }) {
  let failure = null;
  const [ready, ingestion] = await Promise.all([
    readiness(),
    withQueue
      ? api("GET", "/v1/ingestion").catch((error) => {
          failure = error;
          return null;
        })
      : null,
  ]);
  const parts = [];
  if (!ready) {
    parts.push(h("span", { class: "check fail" }, "server unreachable"));
  } else {
    for (const [name, check] of Object.entries(ready.checks)) {
      const title = check.detail ? `${name}: ${check.detail}` : `${name}: ${check.latency_ms} ms`;
      parts.push(h("span", { class: `check ${check.status}`, title }, `${name} ${check.status}`));
    }
  }
  if (ingestion) {
    parts.push(h("span", { class: "check queue" }, `queue ${ingestion.queue_depth}`));
  } else if (failure?.status === 429) {
    parts.push(h("span", { class: "check fail", title: failure.message }, "rate limited"));
  }
  if (keyStore.get()) parts.push(h("span", { class: "check" }, "key set"));
  fill(node, parts);
  return { ingestion, failure };
}
