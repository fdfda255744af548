// Chat sessions: list, resume, delete; streamed answers whose [n] open the cited chunk.
import { api, humanMessage, stream } from "./api.js";
import { $, confirmDialog, emit, fill, formatDate, h, on, showError } from "./dom.js";

const state = { sessionId: null, streaming: false };
const errorBox = () => $("#chat-error");

/** Answer text as text nodes, with each [n] a button that opens citation n. */
function answerNodes(text, citations) {
  const byN = new Map((citations || []).map((c) => [c.n, c]));
  return text.split(/(\[\d+\])/).map((part) => {
    const match = /^\[(\d+)\]$/.exec(part);
    const citation = match && byN.get(Number(match[1]));
    if (!citation) return part;
    return h(
      "button",
      {
        type: "button",
        class: "cite",
        "aria-label": `Source ${citation.n}: ${citation.title || "Untitled"}`,
        dataset: { n: citation.n, chunkId: citation.chunk_id },
        onclick: () => openCitation(citation),
      },
      part,
    );
  });
}

function openCitation(citation) {
  const panel = $("#citation-panel");
  panel.hidden = false;
  panel.dataset.chunkId = citation.chunk_id;
  panel.dataset.documentId = citation.document_id;
  fill($("#citation-title"), `[${citation.n}] ${citation.title || "Untitled"}`);
  fill($("#citation-source"), `score ${citation.score.toFixed(3)}`);
  fill($("#citation-text"), citation.text);
  $("#citation-close").focus();
}

function messageItem(role, content, citations) {
  const body = h("div", { class: "content" });
  const item = h("li", { class: `message ${role}`, dataset: { role } }, h("p", { class: "who" }, role === "user" ? "You" : "ragd"), body);
  setContent(item, content, citations);
  return item;
}

function setContent(item, content, citations) {
  const body = item.querySelector(".content");
  if (item.dataset.role === "user") fill(body, content);
  else fill(body, answerNodes(content, citations));
}

export async function loadSessions() {
  let sessions;
  try {
    ({ sessions } = await api("GET", "/v1/chat/sessions"));
  } catch (error) {
    showError(errorBox(), error);
    return;
  }
  fill(
    $("#session-list"),
    sessions.map((s) =>
      h(
        "li",
        { class: s.id === state.sessionId ? "current" : "", dataset: { id: s.id } },
        h("button", { type: "button", class: "link", onclick: () => resume(s) }, s.title || "Untitled chat"),
        h("span", { class: "hint" }, formatDate(s.updated_at)),
        h(
          "button",
          { type: "button", class: "danger", "aria-label": `Delete chat ${s.title || ""}`, onclick: () => remove(s) },
          "Delete",
        ),
      ),
    ),
  );
}

async function resume(session) {
  state.sessionId = session.id;
  fill($("#chat-session-title"), session.title || "Untitled chat");
  $("#citation-panel").hidden = true;
  try {
    const { messages } = await api("GET", `/v1/chat/sessions/${session.id}/messages?limit=100`);
    fill($("#chat-log"), messages.map((m) => messageItem(m.role, m.content, m.citations)));
    showError(errorBox(), null);
  } catch (error) {
    showError(errorBox(), error);
  }
  loadSessions();
}

async function remove(session) {
  if (!(await confirmDialog(`Delete the chat “${session.title || "Untitled chat"}” and its messages?`))) return;
  try {
    await api("DELETE", `/v1/chat/sessions/${session.id}`);
    if (state.sessionId === session.id) newChat();
    await loadSessions();
  } catch (error) {
    showError(errorBox(), error);
  }
}

function newChat() {
  state.sessionId = null;
  fill($("#chat-session-title"), "New chat");
  fill($("#chat-log"));
  $("#citation-panel").hidden = true;
  showError(errorBox(), null);
}

function chosenCollections() {
  const ticked = [...document.querySelectorAll("#session-collections input:checked")];
  return ticked.length ? ticked.map((i) => i.value) : null;
}

async function ask(event) {
  event.preventDefault();
  if (state.streaming) return;
  const input = $("#chat-input");
  const question = input.value.trim();
  if (!question) return;
  state.streaming = true;
  $("#chat-send").disabled = true;
  showError(errorBox(), null);
  const log = $("#chat-log");
  let answer = null;
  try {
    if (!state.sessionId) {
      const created = await api("POST", "/v1/chat/sessions", {
        collections: chosenCollections(),
        title: question.slice(0, 80),
      });
      state.sessionId = created.id;
      fill($("#chat-session-title"), created.title || "Untitled chat");
    }
    log.append(messageItem("user", question));
    input.value = "";
    answer = messageItem("assistant", "");
    answer.dataset.streaming = "true";
    log.append(answer);
    let text = "";
    let citations = [];
    await stream(`/v1/chat/sessions/${state.sessionId}/messages`, { content: question }, (name, data) => {
      if (name === "delta") text += data.text;
      else if (name === "citations") citations = data.citations;
      else if (name === "error") showError(errorBox(), new Error(humanMessage(data.status, data)));
      setContent(answer, text, citations);
      answer.scrollIntoView({ block: "nearest" });
    });
    answer.dataset.streaming = "done";
  } catch (error) {
    if (answer) answer.dataset.streaming = "failed";
    showError(errorBox(), error);
  } finally {
    state.streaming = false;
    $("#chat-send").disabled = false;
    loadSessions();
  }
}

export function initChat() {
  $("#chat-form").addEventListener("submit", ask);
  $("#chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("#chat-form").requestSubmit();
    }
  });
  $("#session-form").addEventListener("submit", (e) => {
    e.preventDefault();
    newChat();
    $("#chat-input").focus();
  });
  $("#citation-close").addEventListener("click", () => {
    $("#citation-panel").hidden = true;
  });
  $("#citation-open").addEventListener("click", () => {
    emit("open-document", $("#citation-panel").dataset.documentId);
  });
  on("collections", (collections) => {
    const box = $("#session-collections");
    const ticked = new Set(chosenCollections() || []);
    fill(
      box,
      collections.map((c) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", value: c.id, checked: ticked.has(c.id) }),
          c.name,
        ),
      ),
    );
  });
}
