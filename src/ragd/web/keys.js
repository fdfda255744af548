// API keys (admin only): create with scope and collection limit, list, revoke.
import { api } from "./api.js";
import { collectionName } from "./collections.js";
import { $, confirmDialog, fill, formatDate, h, on, showError } from "./dom.js";

const errorBox = () => $("#keys-error");

export async function loadKeys() {
  try {
    const { keys } = await api("GET", "/v1/keys");
    showError(errorBox(), null);
    render(keys);
  } catch (error) {
    fill($("#keys-table tbody"));
    showError(errorBox(), error);
  }
}

function render(keys) {
  fill(
    $("#keys-table tbody"),
    keys.map((k) =>
      h(
        "tr",
        { dataset: { id: k.id, prefix: k.prefix } },
        h("td", {}, k.name),
        h("td", {}, h("code", {}, k.prefix)),
        h("td", {}, k.scope),
        h("td", {}, k.collections ? k.collections.map(collectionName).join(", ") : "all"),
        h("td", {}, formatDate(k.last_used_at)),
        h("td", {}, k.revoked_at ? `revoked ${formatDate(k.revoked_at)}` : "active"),
        h(
          "td",
          {},
          k.revoked_at
            ? null
            : h("button", { type: "button", class: "danger", onclick: () => revoke(k) }, "Revoke"),
        ),
      ),
    ),
  );
}

async function revoke(key) {
  const text = `Revoke the key “${key.name}” (${key.prefix})? Clients using it get 401 from now on.`;
  if (!(await confirmDialog(text, "Revoke"))) return;
  try {
    await api("DELETE", `/v1/keys/${key.id}`);
    await loadKeys();
  } catch (error) {
    showError(errorBox(), error);
  }
}

async function create(event) {
  event.preventDefault();
  const limited = [...document.querySelectorAll("#new-key-collections input:checked")].map((i) => i.value);
  try {
    const created = await api("POST", "/v1/keys", {
      name: $("#new-key-name").value.trim(),
      scope: $("#new-key-scope").value,
      collections: limited.length ? limited : null,
    });
    event.target.reset();
    fill($("#new-key-secret"), created.key);
    $("#new-key").hidden = false;
    fill($("#new-key-copy"), "Copy");
    await loadKeys();
  } catch (error) {
    showError(errorBox(), error);
  }
}

async function copy() {
  const button = $("#new-key-copy");
  try {
    await navigator.clipboard.writeText($("#new-key-secret").textContent);
    fill(button, "Copied");
  } catch {
    getSelection().selectAllChildren($("#new-key-secret"));
    fill(button, "Press Ctrl+C");
  }
}

export function initKeys() {
  $("#key-create-form").addEventListener("submit", create);
  $("#new-key-copy").addEventListener("click", copy);
  on("collections", (collections) => {
    fill(
      $("#new-key-collections"),
      collections.map((c) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", value: c.id }), c.name),
      ),
    );
  });
}
