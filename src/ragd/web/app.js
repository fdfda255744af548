// Start-up and navigation. The page is one more client of /v1: see api.js.
import { keyStore } from "./api.js";
import { initChat, loadSessions } from "./chat.js";
import { initCollections, loadCollections, updateCounts } from "./collections.js";
import { $, fill, on, showError } from "./dom.js";
import { initDocuments, openCollection, refreshDocuments } from "./documents.js";
import { initKeys, loadKeys } from "./keys.js";
import { initSearch } from "./search.js";
import { refreshStatus } from "./status.js";

const VIEWS = ["collections", "documents", "search", "chat", "keys"];
const STATUS_MS = 3000;
const app = { view: "collections", needKey: false, timer: null };

function show(view) {
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
  show(app.view);
  // Time to interactive, as benchmarks/web_page.py reads it: the collections are drawn
  // and every control works.
  if (!performance.getEntriesByName("ragd:interactive").length) performance.mark("ragd:interactive");
  tick();
}

async function tick() {
  clearTimeout(app.timer);
  const ingestion = await refreshStatus($("#status"), { withQueue: !app.needKey });
  if (ingestion) updateCounts(ingestion);
  app.timer = setTimeout(tick, STATUS_MS);
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
