// Documents of one collection: add (drop, pick, paste, URL), live status, paging, chunks.
import { api, ApiError, upload } from "./api.js";
import { loadCollections, state as collectionsState } from "./collections.js";
import { $, confirmDialog, emit, fill, formatDate, h, on, showError } from "./dom.js";

// Loads triggered together (several uploads finishing) become one request.
const COALESCE_MS = 250;
const state = { collectionId: null, cursors: [null], page: 0, next: null, timer: null, seq: 0 };
let listed = [];
const uploads = new Map(); // document id -> status element of its upload row

const errorBox = () => $("#documents-error");
const pending = (d) => d.status === "queued" || d.status === "processing";

export function selectedCollection() {
  return state.collectionId;
}

export async function openCollection(id) {
  state.collectionId = id;
  state.cursors = [null];
  state.page = 0;
  $("#documents-collection").value = id || "";
  $("#document-detail").hidden = true;
  await loadDocuments();
}

export function refreshDocuments() {
  return loadDocuments();
}

/** Whether anything shown here may still change: app.js then keeps polling quickly. */
export function documentsPending() {
  return listed.some(pending) || [...uploads.values()].some((u) => !u.done);
}

function scheduleRefresh() {
  clearTimeout(state.timer);
  state.timer = setTimeout(loadDocuments, COALESCE_MS);
}

async function loadDocuments() {
  clearTimeout(state.timer);
  const body = $("#documents-body");
  body.hidden = !state.collectionId;
  if (!state.collectionId) {
    showError(errorBox(), collectionsState.collections.length ? null : new Error("Create a collection first."));
    return;
  }
  const params = new URLSearchParams({ limit: "20" });
  const status = $("#status-filter").value;
  if (status) params.set("status", status);
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  const seq = ++state.seq; // only the latest answer is drawn: loads may overlap
  let page;
  try {
    page = await api("GET", `/v1/collections/${state.collectionId}/documents?${params}`);
    if (seq !== state.seq) return;
    showError(errorBox(), null);
  } catch (error) {
    if (seq === state.seq) showError(errorBox(), error);
    return;
  }
  state.next = page.next_cursor;
  listed = page.documents;
  render(page.documents);
  for (const document of page.documents) trackUpload(document);
  if (documentsPending()) emit("busy"); // app.js polls quickly until all is settled
}

function render(documents) {
  fill(
    $("#documents-table tbody"),
    documents.map((d) =>
      h(
        "tr",
        { dataset: { id: d.id, status: d.status } },
        h("td", { class: "title" }, d.title || d.source || "Untitled"),
        h(
          "td",
          { class: "status-cell" },
          h("span", { class: `badge ${d.status}` }, d.status),
          d.error ? h("div", { class: "error doc-error" }, d.error) : null,
        ),
        h("td", {}, d.chunk_count),
        h("td", {}, formatDate(d.created_at)),
        h(
          "td",
          { class: "actions" },
          h("button", { type: "button", onclick: () => openDocument(d.id) }, "Open"),
          h("button", { type: "button", class: "danger", onclick: () => remove(d) }, "Delete"),
        ),
      ),
    ),
  );
  $("#documents-empty").hidden = documents.length > 0;
  $("#documents-first").disabled = state.page === 0;
  $("#documents-next").disabled = !state.next;
}

async function remove(document) {
  const name = document.title || document.source || document.id;
  if (!(await confirmDialog(`Delete the document “${name}” and its ${document.chunk_count} chunks?`))) return;
  try {
    await api("DELETE", `/v1/documents/${document.id}`);
    await loadDocuments();
    await loadCollections();
  } catch (error) {
    showError(errorBox(), error);
  }
}

export async function openDocument(id) {
  const panel = $("#document-detail");
  panel.hidden = false;
  fill($("#document-detail-title"), "Loading…");
  fill($("#document-chunks"));
  try {
    const [document, chunks] = await Promise.all([
      api("GET", `/v1/documents/${id}`),
      api("GET", `/v1/documents/${id}/chunks`),
    ]);
    panel.dataset.id = id;
    fill($("#document-detail-title"), document.title || document.source || "Untitled");
    fill(
      $("#document-meta"),
      [document.mime_type, document.source, `${document.status}`, `${chunks.chunks.length} chunks`]
        .filter(Boolean)
        .join(" · "),
    );
    const errorText = $("#document-error-text");
    fill(errorText, document.error || "");
    errorText.hidden = !document.error;
    fill(
      $("#document-chunks"),
      chunks.chunks.map((c) =>
        h(
          "li",
          { dataset: { chunkId: c.id } },
          c.heading_path.length ? h("p", { class: "heading-path" }, c.heading_path.join(" › ")) : null,
          h("p", { class: "chunk-text" }, c.text),
        ),
      ),
    );
    panel.scrollIntoView({ block: "nearest" });
  } catch (error) {
    fill($("#document-detail-title"), "Document");
    showError(errorBox(), error);
  }
}

// -- adding documents ---------------------------------------------------------------

function uploadRow(name) {
  const progress = h("progress", { max: "1", value: "0", "aria-label": `Upload of ${name}` });
  const status = h("span", { class: "upload-status" }, "uploading");
  const row = h("li", { dataset: { name } }, h("span", { class: "upload-name" }, name), progress, status);
  $("#uploads").prepend(row);
  return { row, progress, status, done: false };
}

function trackUpload(document) {
  const entry = uploads.get(document.id);
  if (!entry) return;
  entry.row.dataset.status = document.status;
  fill(entry.status, h("span", { class: `badge ${document.status}` }, document.status));
  if (document.error) entry.status.append(h("span", { class: "error" }, ` ${document.error}`));
  entry.done = !pending(document);
}

async function added(entry, document) {
  entry.progress.value = 1;
  entry.row.dataset.id = document.id;
  uploads.set(document.id, entry);
  trackUpload(document);
  scheduleRefresh();
  emit("busy");
}

function failed(entry, error) {
  entry.done = true;
  entry.row.dataset.status = "rejected";
  fill(entry.status, h("span", { class: "error" }, error.message));
}

// Dropped files go to the batch endpoint, this many files or bytes per request (the
// server's defaults are 100 files and 100 MB): one request, and one rate-limit hit, per
// batch rather than per file.
const BATCH_FILES = 100;
const BATCH_BYTES = 50 * 1024 * 1024;

function batches(files) {
  const found = [];
  let batch = [];
  let size = 0;
  for (const file of files) {
    if (batch.length && (batch.length >= BATCH_FILES || size + file.size > BATCH_BYTES)) {
      found.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(file);
    size += file.size;
  }
  if (batch.length) found.push(batch);
  return found;
}

/** One batch; each file's row gets its own result. A batch the server finds too large
 * (its bounds are tighter than ours) is sent again in halves. */
async function sendBatch(path, batch, rows) {
  const entries = batch.map((file) => rows.get(file));
  let result;
  try {
    result = await upload(path, batch, (p) => {
      for (const entry of entries) entry.progress.value = p;
    });
  } catch (error) {
    if (error.status === 413 && batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      await Promise.all([
        sendBatch(path, batch.slice(0, half), rows),
        sendBatch(path, batch.slice(half), rows),
      ]);
      return;
    }
    for (const entry of entries) failed(entry, error);
    return;
  }
  for (const item of result.items) {
    const entry = entries[item.index];
    if (item.status === "rejected") failed(entry, new ApiError(item.problem.status, item.problem));
    else await added(entry, item.document);
  }
}

async function addFiles(files) {
  if (!state.collectionId) return;
  const path = `/v1/collections/${state.collectionId}/documents:batch`;
  const rows = new Map([...files].map((file) => [file, uploadRow(file.name)]));
  await Promise.all(batches([...rows.keys()]).map((batch) => sendBatch(path, batch, rows)));
}

async function addJson(label, body, form) {
  const entry = uploadRow(label);
  try {
    const document = await api("POST", `/v1/collections/${state.collectionId}/documents`, body);
    form.reset();
    await added(entry, document);
  } catch (error) {
    failed(entry, error);
  }
}

export function initDocuments() {
  on("collections", (collections) => {
    const select = $("#documents-collection");
    const current = state.collectionId;
    fill(
      select,
      h("option", { value: "" }, collections.length ? "Choose a collection" : "No collections"),
      collections.map((c) => h("option", { value: c.id }, c.name)),
    );
    if (current && !collections.some((c) => c.id === current)) state.collectionId = null;
    select.value = state.collectionId || "";
    $("#documents-body").hidden = !state.collectionId;
  });
  $("#documents-collection").addEventListener("change", (e) => openCollection(e.target.value || null));
  $("#status-filter").addEventListener("change", () => {
    state.cursors = [null];
    state.page = 0;
    loadDocuments();
  });
  $("#documents-next").addEventListener("click", () => {
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    loadDocuments();
  });
  $("#documents-first").addEventListener("click", () => {
    state.page = 0;
    loadDocuments();
  });
  $("#document-close").addEventListener("click", () => {
    $("#document-detail").hidden = true;
  });
  const input = $("#file-input");
  input.addEventListener("change", () => {
    addFiles(input.files).finally(() => {
      input.value = "";
    });
  });
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });
  $("#text-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const title = $("#text-title").value.trim();
    const body = { text: $("#text-body").value };
    if (title) body.title = title;
    addJson(title || "Pasted text", body, e.target);
  });
  $("#url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("#url-input").value.trim();
    addJson(url, { url }, e.target);
  });
}

on("open-document", (id) => openDocument(id));
