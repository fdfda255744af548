// Start-up and navigation. The page is one more client of /v1: see api.js.
import { keyStore } from "./api.js";
import { initChat, loadSessions } from "./chat.js";
import { initCollections, loadCollections, updateCounts } from "./collections.js";
import { $, fill, on, showError } from "./dom.js";
import { documentsPending, initDocuments, openCollection, refreshDocuments } from "./documents.js";
import { initKeys, loadKeys } from "./keys.js";
import { initSearch } from "./search.js";
import { refreshStatus } from "./status.js";

const VIEWS = ["collections", "documents", "search", "chat", "keys"];
// Polling spends the key's rate-limit budget (60/minute, 1000/hour by default): quick
// only while something is being ingested, slow when idle, paused in a hidden tab.
const BUSY_MS = 3000;
const IDLE_MS = 30000;
const app = { view: "collections", needKey: false, timer: null };

function show(view, loaded = false) {
  app.view = view;
  for (const name of VIEWS) {
    $(`#view-${name}`).hidden = name !== view || app.needKey;
    const tab = $(`nav [data-view="${name}"]`);
    if (name === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (app.needKey) return;
  if (view === "keys") loadKeys();
  if (view === "chat") loadSessions();
  if (view === "collections" && !loaded) loadCollections().catch(() => {});
  if (view === "documents") refreshDocuments();
  if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
}

function askForKey(error) {
  app.needKey = true;
  $("#key-view").hidden = false;
  const stored = keyStore.get();
  fill($("#key-reason"), stored ? "The stored key was not accepted." : "This server needs an API key.");
  showError($("#key-error"), stored ? error : null);
  show(app.view);
  $("#key-input").focus();
}

async function start() {
  $("#forget-key").hidden = !keyStore.get();
  try {
    await loadCollections();
  } catch (error) {
    if (error.status !== 401) showError($("#collections-error"), error);
    return;
  }
  app.needKey = false;
  $("#key-view").hidden = true;
  showError($("#key-error"), null);
  show(app.view, true);
  // Time to interactive, as benchmarks/web_page.py reads it: the collections are drawn
  // and every control works.
  if (!performance.getEntriesByName("ragd:interactive").length) performance.mark("ragd:interactive");
  tick();
}

async function tick() {
  clearTimeout(app.timer);
  if (document.hidden) return; // "visibilitychange" starts it again
  let delay = IDLE_MS;
  const { ingestion, failure } = await refreshStatus($("#status"), { withQueue: !app.needKey });
  if (ingestion) {
    updateCounts(ingestion, app.view === "collections");
    if (ingestion.queue_depth > 0) delay = BUSY_MS;
  }
  if (app.view === "documents" && !app.needKey && documentsPending()) {
    delay = BUSY_MS;
    await refreshDocuments();
  }
  if (failure?.status === 429) delay = Math.max(delay, 1000 * (Number(failure.retryAfter) || 60));
  clearTimeout(app.timer);
  app.timer = setTimeout(tick, delay);
}

/** Poll soon (an upload just went in), unless a key is needed first. */
function busy() {
  if (app.needKey) return;
  clearTimeout(app.timer);
  app.timer = setTimeout(tick, BUSY_MS);
}

function init() {
  initCollections();
  initDocuments();
  initSearch();
  initChat();
  initKeys();
  for (const tab of document.querySelectorAll("nav [data-view]")) {
    tab.addEventListener("click", () => show(tab.dataset.view));
  }
  on("needkey", askForKey);
  on("busy", busy);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !app.needKey) tick();
  });
  on("open-collection", (id) => {
    show("documents");
    openCollection(id);
  });
  on("open-document", () => show("documents"));
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    keyStore.set($("#key-input").value.trim());
    $("#key-input").value = "";
    start();
  });
  $("#forget-key").addEventListener("click", () => {
    keyStore.forget();
    location.reload();
  });
  const fromHash = location.hash.slice(1);
  app.view = VIEWS.includes(fromHash) ? fromHash : "collections";
  refreshStatus($("#status"), { withQueue: false });
  start();
}

init();
