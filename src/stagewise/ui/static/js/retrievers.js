// Retrievers: the list with each one's stage pipeline, and one retriever's page (run form,
// its executions).

import { api, enc } from "./api.js";
import { fmtNum, h, section } from "./dom.js";
import { executionPanel } from "./executions.js";
import { inputForm } from "./inputs.js";
import { announce, pageTitle, showError } from "./shell.js";

const PAGE = 50;

function shortUri(uri) {
  return typeof uri === "string" ? uri.replace(/^mixpeek:\/\//, "") : String(uri);
}

/** The parameters worth reading at a glance: scalars, and what a search does. */
function keyParameters(params) {
  const out = [];
  for (const [name, value] of Object.entries(params || {})) {
    if (name === "searches" && Array.isArray(value)) {
      const each = value.map((s) => `${s.lexical ? "bm25" : "dense"} ${shortUri(s.feature_uri)}${s.top_k ? ` top ${s.top_k}` : ""}`);
      out.push([name, each.join(" + ")]);
    } else if (value === null || typeof value !== "object") {
      out.push([name, String(value)]);
    } else if (Array.isArray(value)) {
      const flat = value.length <= 4 && value.every((v) => v === null || typeof v !== "object");
      out.push([name, flat ? value.join(", ") : `${value.length} entries`]);
    } else {
      const keys = Object.keys(value);
      out.push([name, `{${keys.slice(0, 4).join(", ")}${keys.length > 4 ? ", …" : ""}}`]);
    }
  }
  return out.slice(0, 8);
}

export function pipeline(stages, { full = false } = {}) {
  return h("ol", { class: "pipeline", "aria-label": "Stage pipeline" },
    (stages || []).map((stage, index) => {
      const params = stage.parameters || stage.config?.parameters || {};
      return h("li", { dataset: { stage: stage.stage_name } },
        h("div", null, h("span", { class: "visually-hidden" }, `Stage ${index + 1}: `),
          h("span", { class: "stage-name" }, stage.stage_name), " ", h("code", null, stage.config?.stage_id)),
        h("dl", { class: "kv params" }, keyParameters(params).map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
        full ? h("details", null, h("summary", null, "All parameters"), h("pre", null, JSON.stringify(params, null, 2))) : null,
      );
    }),
  );
}

export async function renderRetrieverList({ main, signal, query }) {
  const offset = Number(query.get("offset") || 0);
  const data = await api("GET", "/v1/retrievers", { query: { limit: PAGE, offset }, signal });
  const results = data.results || [];
  const total = data.total ?? results.length;
  main.append(pageTitle("Retrievers"));
  if (!results.length) {
    main.append(h("p", null, "No retriever in this namespace yet. Create one with POST /v1/retrievers."));
    return;
  }
  main.append(h("p", { class: "meta" }, `${fmtNum(total)} retriever${total === 1 ? "" : "s"}`));
  main.append(h("ul", { class: "cards", style: { listStyle: "none", padding: "0" } },
    results.map((r) => h("li", { class: "panel", dataset: { retrieverId: r.retriever_id } },
      h("h3", null, h("a", { href: `#/retrievers/${enc(r.retriever_id)}` }, r.retriever_name)),
      h("p", { class: "meta" }, h("code", null, r.retriever_id), ` · version ${r.version} · `,
        `${(r.collection_ids || []).length} collection(s)`),
      r.description ? h("p", null, r.description) : null,
      pipeline(r.stages),
      h("p", null, h("a", { href: `#/retrievers/${enc(r.retriever_id)}` }, `Run ${r.retriever_name}`), " · ",
        h("a", { href: `#/executions?retriever=${enc(r.retriever_id)}` }, "Executions")),
    )),
  ));
  if (total > PAGE) {
    const go = (to) => { location.hash = `#/retrievers?offset=${to}`; };
    main.append(h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, "Previous"),
      h("span", null, `${offset + 1}–${offset + results.length} of ${total}`),
      h("button", { type: "button", class: "secondary", disabled: offset + results.length >= total, onclick: () => go(offset + PAGE) }, "Next"),
    ));
  }
}

export async function renderRetriever(ctx, retrieverId) {
  const { main, signal } = ctx;
  const r = await api("GET", `/v1/retrievers/${enc(retrieverId)}`, { signal });
  const limits = r.budget_limits || {};
  main.append(
    pageTitle(`Retriever ${r.retriever_name}`),
    h("dl", { class: "kv panel" },
      h("dt", null, "Id"), h("dd", null, h("code", null, r.retriever_id)),
      h("dt", null, "Version"), h("dd", null, String(r.version)),
      h("dt", null, "Collections"), h("dd", null, (r.collection_ids || []).join(", ") || "—"),
      h("dt", null, "Budget limits"), h("dd", null, Object.keys(limits).length ? JSON.stringify(limits) : "none"),
    ),
    section("Stage pipeline", pipeline(r.stages, { full: true })),
    section("Run", inputForm(r.input_schema || {}, (inputs, options) => run(r, inputs, options))),
  );
  main.append(await executionPanel({ ...ctx, retrieverId: r.retriever_id, base: `#/retrievers/${enc(r.retriever_id)}` }));
}

async function run(retriever, inputs, { skipCache }) {
  try {
    // wait=false: the run goes on in the background and its page follows it live.
    const started = await api("POST", `/v1/retrievers/${enc(retriever.retriever_id)}/execute`, {
      body: { inputs },
      query: { wait: "false", skip_cache: skipCache ? "true" : undefined },
    });
    announce(`Started execution ${started.execution_id}`);
    location.hash = `#/retrievers/${enc(retriever.retriever_id)}/executions/${enc(started.execution_id)}`;
  } catch (error) {
    showError(error);
  }
}
