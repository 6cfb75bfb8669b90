// The ranked results; each hit opens to its score provenance.

import { clear, fmtNum, fmtScore, h, section, snippet } from "./dom.js";
import { showError } from "./shell.js";

// Score keys a stage writes, with what they mean; any other key is shown as it is.
const KNOWN = [
  ["fused", "Fused"],
  ["pre_rerank", "Before rerank"],
  ["rerank", "Rerank"],
  ["rerank_fused", "Rerank fused"],
  ["mmr", "MMR"],
];

function value(v) {
  return typeof v === "number" ? fmtScore(v) : typeof v === "string" ? v : JSON.stringify(v);
}

function sourcesTable(sources) {
  const entries = Object.entries(sources || {});
  if (!entries.length) return h("p", null, "No search source is recorded for this hit.");
  return h("table", { class: "sources" },
    h("caption", null, "The searches that found it"),
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "Search"), h("th", { scope: "col" }, "Feature"),
      h("th", { scope: "col", class: "num" }, "Raw score"), h("th", { scope: "col", class: "num" }, "Rank"),
      h("th", { scope: "col", class: "num" }, "Weight"))),
    h("tbody", null, entries.map(([key, s]) => {
      const cut = key.indexOf(":");
      const kind = cut > 0 ? key.slice(0, cut) : key;
      const feature = cut > 0 ? key.slice(cut + 1) : "";
      return h("tr", { dataset: { source: key } },
        h("th", { scope: "row" }, kind),
        h("td", null, h("code", null, feature)),
        h("td", { class: "num", dataset: { field: "raw" } }, fmtScore(s?.raw)),
        h("td", { class: "num", dataset: { field: "rank" } }, fmtNum(s?.rank)),
        h("td", { class: "num" }, fmtNum(s?.weight)));
    })));
}

function provenance(doc) {
  const scores = doc.scores || {};
  const facts = [];
  for (const [key, label] of KNOWN) {
    if (scores[key] === undefined || scores[key] === null) continue;
    const extra = key === "fused" && scores.fusion ? ` (${scores.fusion})` : "";
    facts.push([label, `${value(scores[key])}${extra}`, key]);
  }
  const known = new Set(["sources", "fusion", ...KNOWN.map(([k]) => k)]);
  for (const [key, v] of Object.entries(scores)) if (!known.has(key)) facts.push([key, value(v), key]);
  facts.push(["Final score", fmtScore(doc.score), "score"]);
  facts.push(["Collection", h("code", null, doc.collection_id || "—"), "collection"]);
  const metadata = doc.metadata && Object.keys(doc.metadata).length ? doc.metadata : null;
  return h("div", { class: "provenance" },
    h("h4", { class: "visually-hidden" }, "Score provenance"),
    sourcesTable(scores.sources),
    h("dl", { class: "kv scores" }, facts.map(([label, text, key]) => [h("dt", null, label), h("dd", { dataset: { score: key } }, text)])),
    metadata ? h("details", null, h("summary", null, "Metadata"), h("pre", null, JSON.stringify(metadata, null, 2))) : null);
}

function hit(doc, rank) {
  const label = doc.text || doc.title || doc.document_id;
  return h("li", { dataset: { documentId: doc.document_id, rank: String(rank) } },
    h("details", { class: "hit" },
      h("summary", null,
        h("span", { class: "rank" }, `#${rank}`),
        h("span", null, snippet(label, 160), " ", h("code", null, doc.document_id)),
        h("span", { class: "score" }, fmtScore(doc.score))),
      provenance(doc)));
}

/** The results of one page; `loadPage(offset)` fetches another ({documents, pagination}). */
export function results(x, loadPage) {
  const list = h("ol", { class: "hits", "aria-label": "Ranked results" });
  const caption = h("p", { class: "meta" });
  const pager = h("div", { class: "pager" });
  const show = (documents, pagination) => {
    const offset = pagination?.offset ?? 0;
    const total = pagination?.total ?? documents.length;
    clear(list);
    documents.forEach((doc, i) => list.append(hit(doc, offset + i + 1)));
    caption.textContent = documents.length
      ? `Hits ${offset + 1}–${offset + documents.length} of ${fmtNum(total)}. Open a hit for its score provenance.`
      : x.status === "completed" ? "No hit." : "A run that did not complete has no results.";
    const step = pagination?.limit || documents.length || 1;
    const go = (to) => loadPage(to).then((page) => show(page.documents || [], page.pagination)).catch(showError);
    clear(pager);
    if (total > documents.length) {
      pager.append(
        h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - step)) }, "Previous hits"),
        h("button", { type: "button", class: "secondary", disabled: !pagination?.has_next, onclick: () => go(offset + step) }, "Next hits"));
    }
  };
  show(x.documents || [], x.pagination);
  return section("Results", caption, list, pager);
}
