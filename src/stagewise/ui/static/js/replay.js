// Replay: run an execution's inputs again on today's index and retriever, and show how the
// ranking moved (POST .../executions/{id}/replay).

import { api, enc } from "./api.js";
import { fmtNum, fmtScore, h, section, snippet, uid } from "./dom.js";
import { announce, showError } from "./shell.js";

const CHANGE = {
  up: (r) => ["▲", `up ${r.rank_delta}`],
  down: (r) => ["▼", `down ${Math.abs(r.rank_delta)}`],
  same: () => ["=", "same"],
  new: () => ["+", "new"],
  gone: () => ["−", "gone"],
};

const SUMMARY = [
  ["moved_up", "▲", "moved up"],
  ["moved_down", "▼", "moved down"],
  ["unchanged", "=", "unchanged"],
  ["new", "+", "new"],
  ["gone", "−", "gone"],
];

const signed = (n) => (typeof n !== "number" ? "—" : n > 0 ? `+${n}` : n < 0 ? `−${Math.abs(n)}` : "0");

/** document_id → text from both runs' stored results (a gone hit may be deleted by now). */
async function texts(retrieverId, ids, depth, signal) {
  const out = new Map();
  const pages = await Promise.allSettled(ids.map((id) =>
    api("GET", `/v1/retrievers/${enc(retrieverId)}/executions/${enc(id)}`, { query: { limit: Math.min(depth, 1000) }, signal })));
  for (const page of pages) {
    if (page.status !== "fulfilled") continue;
    for (const doc of page.value.documents || []) if (!out.has(doc.document_id)) out.set(doc.document_id, doc.text || "");
  }
  return out;
}

function diffView(result, retrieverId, labels) {
  const link = h("a", { href: `#/retrievers/${enc(retrieverId)}/executions/${enc(result.execution_id)}`, class: "replayed-link" },
    "Open the replayed execution ", h("code", null, result.execution_id));
  const versions = result.retriever_version || {};
  const head = h("p", null, `Retriever version ${versions.original} → ${versions.replayed}`,
    versions.original !== versions.replayed ? " (the retriever changed since)" : "",
    result.total_results ? `; results ${result.total_results.original} → ${result.total_results.replayed}` : "", ". ", link);
  if (!result.diff) {
    return h("div", { class: "diff" }, h("div", { class: "notice error" }, h("strong", null, `The replay ${result.status}: `),
      result.error || "no ranking to compare."), head);
  }
  const { summary = {}, rows = [], depth } = result.diff;
  return h("div", { class: "diff", dataset: { replayOf: result.replay_of } },
    h("ul", { class: "diff-summary", "aria-label": "Summary of the ranking diff" },
      SUMMARY.map(([key, arrow, label]) => h("li", { dataset: { kind: key, count: String(summary[key] ?? 0) } },
        h("span", { "aria-hidden": "true" }, arrow), ` ${fmtNum(summary[key] ?? 0)} ${label}`))),
    head,
    h("table", { class: "diff-table" },
      h("caption", null, `The top ${depth} of each ranking compared; gone hits last`),
      h("thead", null, h("tr", null, ["Change", "Document", "Was", "Now", "Δ rank", "Score before", "Score after"]
        .map((name, i) => h("th", { scope: "col", class: i >= 2 ? "num" : null }, name)))),
      h("tbody", null, rows.map((r) => {
        const [arrow, words] = (CHANGE[r.change] || (() => ["?", r.change]))(r);
        return h("tr", { dataset: { change: r.change, documentId: r.document_id } },
          h("td", { class: "change" }, h("span", { "aria-hidden": "true" }, arrow), ` ${words}`),
          h("td", { class: "doc" }, h("code", null, r.document_id),
            labels.get(r.document_id) ? h("span", { class: "snippet" }, snippet(labels.get(r.document_id), 90)) : null),
          h("td", { class: "num" }, r.original_rank ?? "—"),
          h("td", { class: "num" }, r.replayed_rank ?? "—"),
          h("td", { class: "num", dataset: { field: "delta" } }, signed(r.rank_delta)),
          h("td", { class: "num" }, fmtScore(r.original_score)),
          h("td", { class: "num" }, fmtScore(r.replayed_score)));
      }))));
}

export function replay(x, retrieverId, signal) {
  const depthId = uid("depth");
  const depth = h("input", { id: depthId, name: "depth", type: "number", min: 1, max: 1000, step: 1, value: 100, required: true });
  const button = h("button", { type: "submit", disabled: !["completed", "failed"].includes(x.status) }, "Replay");
  const out = h("div", { class: "replay-result" });
  const form = h("form", { class: "filters", "aria-label": "Replay this execution", onsubmit: async (event) => {
    event.preventDefault();
    button.disabled = true;
    out.replaceChildren(h("p", { role: "status" }, "Replaying…"));
    try {
      const result = await api("POST", `/v1/retrievers/${enc(retrieverId)}/executions/${enc(x.execution_id)}/replay`, {
        query: { depth: depth.value }, signal,
      });
      const labels = await texts(retrieverId, [x.execution_id, result.execution_id], Number(depth.value), signal);
      out.replaceChildren(h("h4", { tabindex: "-1" }, "Ranking diff"), diffView(result, retrieverId, labels));
      out.querySelector("h4").focus();
      announce(`Replay ${result.status}`);
    } catch (error) {
      out.replaceChildren();
      showError(error);
    } finally {
      button.disabled = false;
    }
  } },
  h("div", { class: "field" }, h("label", { for: depthId }, "Depth (hits compared)"), depth),
  button);
  return section("Replay",
    h("p", { class: "meta" }, "Runs this execution's inputs and filters again, against today's index and the ",
      "retriever's current version (never from the cache), and compares the two rankings."),
    form, out);
}
