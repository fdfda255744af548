// Collections: list with live status counts, create, rename, delete.
import { api } from "./api.js";
import { $, confirmDialog, emit, fill, h, plural, showError } from "./dom.js";

export const state = { collections: [], counts: {}, renaming: false };

const errorBox = () => $("#collections-error");

export async function loadCollections() {
  const [list, ingestion] = await Promise.all([
    api("GET", "/v1/collections"),
    api("GET", "/v1/ingestion"),
  ]);
  state.collections = list.collections;
  state.counts = ingestion.collections;
  render();
  emit("collections", state.collections);
  return ingestion;
}

/** New counts from the status poll. The list (document and chunk totals) is fetched
 * again only when the counts moved and it is on screen; opening the view refetches it. */
export function updateCounts(ingestion, visible) {
  const moved = JSON.stringify(ingestion.collections) !== JSON.stringify(state.counts);
  state.counts = ingestion.collections;
  if (moved && visible) loadCollections().catch(() => {});
  else render();
}

export const collectionName = (id) =>
  state.collections.find((c) => c.id === id)?.name ?? id;

function render() {
  if (state.renaming) return; // redrawing would throw away the name being typed
  const rows = state.collections.map((c) => row(c));
  fill($("#collections-table tbody"), rows);
  $("#collections-empty").hidden = rows.length > 0;
}

function row(collection) {
  const counts = state.counts[collection.id] || {};
  const queued = (counts.queued || 0) + (counts.processing || 0);
  const name = h("td", { class: "name" }, collection.name);
  if (collection.description) name.append(h("div", { class: "hint" }, collection.description));
  return h(
    "tr",
    { dataset: { id: collection.id, name: collection.name } },
    name,
    h("td", {}, collection.document_count),
    h("td", {}, collection.chunk_count),
    h("td", { class: "ready" }, counts.ready ?? 0),
    h("td", { class: "queued" }, queued),
    h("td", { class: "failed" }, counts.failed ?? 0),
    h(
      "td",
      { class: "actions" },
      h("button", { type: "button", onclick: () => emit("open-collection", collection.id) }, "Open"),
      h("button", { type: "button", onclick: (e) => rename(e.target, collection) }, "Rename"),
      h("button", { type: "button", class: "danger", onclick: () => remove(collection) }, "Delete"),
    ),
  );
}

function rename(button, collection) {
  const cell = button.closest("tr").querySelector("td.name");
  const input = h("input", {
    value: collection.name,
    "aria-label": `New name for ${collection.name}`,
    required: true,
  });
  const form = h(
    "form",
    { class: "row" },
    input,
    h("button", { type: "submit" }, "Save"),
    h("button", { type: "button", onclick: stopRenaming }, "Cancel"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PATCH", `/v1/collections/${collection.id}`, { name: input.value.trim() });
      showError(errorBox(), null);
      state.renaming = false;
      await loadCollections();
    } catch (error) {
      showError(errorBox(), error);
    }
  });
  state.renaming = true;
  fill(cell, form);
  input.focus();
}

function stopRenaming() {
  state.renaming = false;
  render();
}

async function remove(collection) {
  const what =
    `Delete the collection “${collection.name}” with its ` +
    `${plural(collection.document_count, "document")} and ` +
    `${plural(collection.chunk_count, "chunk")}? This cannot be undone.`;
  if (!(await confirmDialog(what))) return;
  try {
    await api("DELETE", `/v1/collections/${collection.id}`);
    showError(errorBox(), null);
    await loadCollections();
  } catch (error) {
    showError(errorBox(), error);
  }
}

export function initCollections() {
  $("#collection-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#collection-name");
    try {
      const created = await api("POST", "/v1/collections", {
        name: name.value.trim(),
        description: $("#collection-description").value,
      });
      event.target.reset();
      showError(errorBox(), null);
      await loadCollections();
      emit("open-collection", created.id);
    } catch (error) {
      showError(errorBox(), error);
    }
  });
}
