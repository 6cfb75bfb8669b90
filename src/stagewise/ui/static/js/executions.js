// Executions: a retriever's runs, filtered by status and time, paged.

import { api, enc } from "./api.js";
import { fmtMs, fmtNum, fmtTime, h, section, snippet, statusBadge, uid } from "./dom.js";
import { pageTitle } from "./shell.js";

const PAGE = 20;
const STATUSES = ["completed", "failed", "running", "pending", "processing"];

export async function renderExecutionList(ctx) {
  const { main, signal, query } = ctx;
  main.append(pageTitle("Executions"));
  const data = await api("GET", "/v1/retrievers", { query: { limit: 1000 }, signal });
  const retrievers = data.results || [];
  if (!retrievers.length) {
    main.append(h("p", null, "No retriever in this namespace: nothing has run yet."));
    return;
  }
  const retrieverId = query.get("retriever") || retrievers[0].retriever_id;
  main.append(await executionPanel({ ...ctx, retrieverId, retrievers, base: "#/executions", title: "Runs" }));
}

/** ISO-8601 (UTC) of a datetime-local value, which is the reader's local time. */
function iso(local) {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function filterForm({ query, retrievers, retrieverId, base }) {
  const field = (label, control) => {
    control.id = uid("filter");
    return h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  };
  const retriever = retrievers
    ? h("select", { name: "retriever" },
      retrievers.map((r) => h("option", { value: r.retriever_id, selected: r.retriever_id === retrieverId }, r.retriever_name)))
    : null;
  const status = h("select", { name: "status" }, h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: query.get("status") === s }, s)));
  const start = h("input", { type: "datetime-local", name: "start", step: "1", value: query.get("start") || null });
  const end = h("input", { type: "datetime-local", name: "end", step: "1", value: query.get("end") || null });
  const apply = (values) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(values)) if (value) params.set(name, value);
    location.hash = `${base}?${params}`;
  };
  return h("form", { class: "filters", role: "search", "aria-label": "Filter executions",
    onsubmit: (event) => {
      event.preventDefault();
      apply({ retriever: retriever?.value, status: status.value, start: start.value, end: end.value });
    } },
  retriever ? field("Retriever", retriever) : null,
  field("Status", status),
  field("Started from", start),
  field("Started until", end),
  h("button", { type: "submit" }, "Apply filters"),
  h("button", { type: "button", class: "secondary", onclick: () => apply({ retriever: retriever?.value }) }, "Clear"),
  );
}

/** The filter form and the table of runs; the filters live in the page's hash. */
export async function executionPanel(ctx) {
  const { signal, query, retrieverId, base } = ctx;
  const offset = Math.max(0, Number(query.get("offset") || 0));
  const body = {};
  if (query.get("status")) body.status = query.get("status");
  if (iso(query.get("start"))) body.start_time = iso(query.get("start"));
  if (iso(query.get("end"))) body.end_time = iso(query.get("end"));
  const data = await api("POST", `/v1/retrievers/${enc(retrieverId)}/executions/list`, {
    query: { limit: PAGE, offset }, body, signal,
  });
  const rows = data.results || [];
  const total = data.pagination?.total ?? rows.length;
  const link = (x) => `#/retrievers/${enc(retrieverId)}/executions/${enc(x.execution_id)}`;
  const table = rows.length
    ? h("table", { class: "executions" },
      h("caption", null, `${fmtNum(total)} execution${total === 1 ? "" : "s"}${Object.keys(body).length ? " matching the filters" : ""}`),
      h("thead", null, h("tr", null, ["Execution", "Status", "Started", "Duration", "Credits", "Returned", "Inputs", "Error"]
        .map((name, i) => h("th", { scope: "col", class: i >= 3 && i <= 5 ? "num" : null }, name)))),
      h("tbody", null, rows.map((x) => h("tr", { dataset: { executionId: x.execution_id, status: x.status } },
        h("td", null, h("a", { href: link(x) }, h("code", null, x.execution_id))),
        h("td", null, statusBadge(x.status)),
        h("td", null, fmtTime(x.created_at)),
        h("td", { class: "num" }, fmtMs(x.duration_ms)),
        h("td", { class: "num" }, fmtNum(x.credits_used)),
        h("td", { class: "num" }, fmtNum(x.total_returned)),
        h("td", null, h("span", { class: "snippet mono" }, snippet(x.query_summary || "", 80))),
        h("td", null, x.error ? snippet(x.error, 120) : ""),
      ))))
    : h("p", null, "No execution matches.");
  const page = (to) => {
    const params = new URLSearchParams(query);
    params.set("offset", String(to));
    location.hash = `${base}?${params}`;
  };
  const pager = total > PAGE
    ? h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => page(Math.max(0, offset - PAGE)) }, "Previous"),
      h("span", null, `${offset + 1}–${offset + rows.length} of ${fmtNum(total)}`),
      h("button", { type: "button", class: "secondary", disabled: !data.pagination?.has_next, onclick: () => page(offset + PAGE) }, "Next"))
    : null;
  return section(ctx.title || "Executions", filterForm(ctx), table, pager);
}
