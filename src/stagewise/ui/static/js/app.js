// The explorer's entry: sign-in, the namespace and the hash router.

import { api, session } from "./api.js";
import { add, clear, h } from "./dom.js";
import { renderExecution } from "./detail.js";
import { renderExecutionList } from "./executions.js";
import { renderRetriever, renderRetrieverList } from "./retrievers.js";
import { announce, clearMessages, focusNextTitle, pageTitle, showError } from "./shell.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const sessionBar = document.getElementById("session");
const namespaceSelect = document.getElementById("namespace-select");

let namespaces = [];

async function loadNamespaces(signal) {
  const data = await api("GET", "/v1/namespaces", { query: { limit: 1000 }, namespace: false, signal });
  namespaces = data.results || [];
  clear(namespaceSelect);
  add(namespaceSelect, [
    h("option", { value: "" }, "— choose —"),
    namespaces.map((ns) =>
      h("option", { value: ns.namespace_id, selected: ns.namespace_id === session.namespace }, ns.namespace_name),
    ),
  ]);
  if (session.namespace && !namespaces.some((ns) => ns.namespace_id === session.namespace)) {
    session.useNamespace("");
  }
  if (!session.namespace && namespaces.length === 1) {
    session.useNamespace(namespaces[0].namespace_id);
    namespaceSelect.value = namespaces[0].namespace_id;
  }
}

function renderSignIn(main) {
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "api-key-hint", spellcheck: "false" });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "sign-in-title", onsubmit: async (event) => {
      event.preventDefault();
      clearMessages();
      session.signIn(input.value.trim());
      try {
        await loadNamespaces();
        announce("Signed in");
        route();
      } catch (error) {
        session.signOut();
        showError(error);
      }
    } },
    h("h2", { id: "sign-in-title", tabindex: "-1" }, "Sign in"),
    h("div", { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      input,
      h("span", { id: "api-key-hint", class: "hint" },
        "Kept in this tab's session storage only: closing the tab forgets it."),
    ),
    h("button", { type: "submit" }, "Sign in"),
  );
  main.append(form);
  input.focus();
}

function renderNamespacePicker(main) {
  const list = h("ul", { class: "cards", style: { listStyle: "none", padding: "0" } },
    namespaces.map((ns) =>
      h("li", { class: "panel" },
        h("h3", null, ns.namespace_name),
        h("p", { class: "meta" }, h("code", null, ns.namespace_id), ` · ${ns.collection_count ?? 0} collections · `,
          `${ns.document_count ?? 0} documents`),
        h("button", { type: "button", onclick: () => chooseNamespace(ns.namespace_id) }, `Use ${ns.namespace_name}`),
      ),
    ),
  );
  main.append(pageTitle("Choose a namespace"),
    namespaces.length ? list : h("p", null, "This key sees no namespace yet. Create one through the API."));
}

function chooseNamespace(id) {
  session.useNamespace(id);
  namespaceSelect.value = id;
  clearMessages();
  go("#/retrievers");
}

/** Navigates to `hash`; the same hash renders again (no hashchange would fire). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

namespaceSelect.addEventListener("change", () => {
  if (namespaceSelect.value) chooseNamespace(namespaceSelect.value);
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  namespaces = [];
  clearMessages();
  announce("Signed out");
  go("#/");
});

let current = null; // the AbortController of the view on screen: its polls stop when it goes

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

async function route() {
  current?.abort();
  current = new AbortController();
  const { signal } = current;
  // A view draws into its own container: one still loading when the reader moved on
  // draws into a detached node, never over the next page.
  const view = h("div");
  main.replaceChildren(view);
  const signedIn = Boolean(session.key);
  nav.hidden = !signedIn;
  sessionBar.hidden = !signedIn;
  try {
    if (!signedIn) return renderSignIn(view);
    if (!namespaces.length) await loadNamespaces(signal);
    if (!session.namespace) return renderNamespacePicker(view);
    const { parts, query } = parseHash();
    const ctx = { main: view, signal, query };
    if (parts[0] === "retrievers" && parts[2] === "executions" && parts[3]) {
      await renderExecution(ctx, parts[1], parts[3]);
    } else if (parts[0] === "retrievers" && parts[1]) {
      await renderRetriever(ctx, parts[1]);
    } else if (parts[0] === "executions") {
      await renderExecutionList(ctx);
    } else {
      await renderRetrieverList(ctx);
    }
  } catch (error) {
    showError(error);
  }
}

window.addEventListener("stagewise:signed-out", () => {
  namespaces = [];
  route();
});
window.addEventListener("hashchange", () => {
  clearMessages();
  focusNextTitle();
  route();
});
route();
