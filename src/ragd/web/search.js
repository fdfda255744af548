// Search: query, mode, top-k, collection, metadata filter rows; highlighted snippets.
import { api } from "./api.js";
import { collectionName } from "./collections.js";
import { $, emit, fill, h, on, showError } from "./dom.js";

const SNIPPET = 360;

/** Query words worth highlighting, longest first so "leave" wins over "lea". */
export function terms(query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [];
  return [...new Set(words)].sort((a, b) => b.length - a.length);
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** ``text`` as text nodes and <mark>s around the query's words (never as HTML). */
export function highlighted(text, words) {
  if (!words.length) return [text];
  const pattern = new RegExp(`(${words.map(escape).join("|")})`, "giu");
  return text.split(pattern).map((part, i) => (i % 2 ? h("mark", {}, part) : part));
}

/** A window of the chunk around its first matching word. */
function snippet(text, words) {
  if (text.length <= SNIPPET) return text;
  const lower = text.toLowerCase();
  const hits = words.map((w) => lower.indexOf(w)).filter((i) => i >= 0);
  const first = hits.length ? Math.min(...hits) : 0;
  const start = Math.max(0, Math.min(first - 80, text.length - SNIPPET));
  return `${start > 0 ? "…" : ""}${text.slice(start, start + SNIPPET)}${start + SNIPPET < text.length ? "…" : ""}`;
}

/** "1894" -> 1894, "true" -> true, '"1894"' -> "1894", anything else stays text. */
function filterValue(raw) {
  const text = raw.trim();
  if (/^".*"$/.test(text)) return text.slice(1, -1);
  if (text === "true" || text === "false") return text === "true";
  if (text === "null") return null;
  if (text !== "" && Number.isFinite(Number(text))) return Number(text);
  return text;
}

function addFilterRow() {
  const rows = $("#filter-rows");
  const n = rows.children.length + 1;
  const key = h("input", { "aria-label": `Filter ${n} key`, placeholder: "key", class: "filter-key" });
  const value = h("input", { "aria-label": `Filter ${n} value`, placeholder: "value", class: "filter-value" });
  const row = h("div", { class: "row" }, key, h("span", {}, "="), value);
  row.append(h("button", { type: "button", onclick: () => row.remove(), "aria-label": `Remove filter ${n}` }, "Remove"));
  rows.append(row);
  key.focus();
}

function filters() {
  const found = {};
  for (const row of $("#filter-rows").children) {
    const key = row.querySelector(".filter-key").value.trim();
    if (key) found[key] = filterValue(row.querySelector(".filter-value").value);
  }
  return Object.keys(found).length ? found : null;
}

async function run(event) {
  event.preventDefault();
  const query = $("#search-query").value;
  const body = {
    query,
    mode: $("#search-mode").value,
    top_k: Number($("#search-topk").value) || 10,
  };
  const collection = $("#search-collection").value;
  if (collection) body.collections = [collection];
  const filter = filters();
  if (filter) body.filters = filter;
  fill($("#search-summary"), "Searching…");
  try {
    const { results } = await api("POST", "/v1/search", body);
    showError($("#search-error"), null);
    render(results, terms(query));
  } catch (error) {
    fill($("#search-summary"));
    showError($("#search-error"), error);
  }
}

function render(results, words) {
  fill($("#search-summary"), results.length ? `${results.length} results` : "No results.");
  fill(
    $("#search-results"),
    results.map((r) =>
      h(
        "li",
        { dataset: { chunkId: r.chunk_id, documentId: r.document_id } },
        h(
          "div",
          { class: "row spread" },
          h(
            "button",
            { type: "button", class: "link", onclick: () => emit("open-document", r.document_id) },
            r.title || "Untitled",
          ),
          h("span", { class: "score", title: "score" }, r.score.toFixed(3)),
        ),
        h(
          "p",
          { class: "hint" },
          [collectionName(r.collection_id), ...r.heading_path].join(" › "),
        ),
        h("p", { class: "snippet" }, highlighted(snippet(r.text, words), words)),
      ),
    ),
  );
}

export function initSearch() {
  $("#search-form").addEventListener("submit", run);
  $("#filter-add").addEventListener("click", addFilterRow);
  on("collections", (collections) => {
    const select = $("#search-collection");
    const current = select.value;
    fill(
      select,
      h("option", { value: "" }, "All collections"),
      collections.map((c) => h("option", { value: c.id }, c.name)),
    );
    select.value = collections.some((c) => c.id === current) ? current : "";
  });
}
