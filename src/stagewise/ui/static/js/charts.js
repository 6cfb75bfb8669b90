// An execution's measured statistics drawn: the stage waterfall, the candidate funnel, the
// budget, and the warnings, error and cache state.

import { fmtMs, fmtNum, fmtTime, h, section } from "./dom.js";

/** Stages in run order (the statistics object keeps it) with their measured durations. */
function stagesOf(stats) {
  return Object.entries(stats || {}).map(([name, s]) => ({ name, ...s, duration: Number(s.duration_ms) || 0 }));
}

/**
 * One bar per stage on a time axis: a bar starts where the previous stage ended and its
 * width is its duration over the axis. The axis is the run's total time, or the sum of the
 * stages when that is larger (a cache hit's total is its lookup, its stages the original's).
 */
export function waterfall(x) {
  const stages = stagesOf(x.stage_statistics?.stages);
  if (!stages.length) return section("Stage waterfall", h("p", null, "No stage ran."));
  const sum = stages.reduce((acc, s) => acc + s.duration, 0);
  const total = Number(x.stage_statistics?.total_time_ms) || 0;
  const axis = Math.max(sum, total) || 1;
  const pct = (ms) => `${(ms / axis) * 100}%`;
  let offset = 0;
  const rows = stages.map((s) => {
    const label = `${s.name} (${s.stage_id}): ${fmtMs(s.duration)}, from ${fmtMs(offset)} to ${fmtMs(offset + s.duration)}`;
    const bar = h("div", {
      class: `bar${s.stage_cache_hit ? " cached" : ""}${s.error ? " failed" : ""}`,
      role: "img",
      "aria-label": label,
      title: label,
      dataset: { stage: s.name, durationMs: String(s.duration), offsetMs: String(offset) },
      style: { left: pct(offset), width: pct(s.duration) },
    });
    offset += s.duration;
    return [
      h("div", { class: "label" }, h("span", { class: "stage-name" }, s.name), " ", h("code", null, s.stage_id)),
      h("div", { class: "track" }, bar),
      h("div", { class: "dur" }, fmtMs(s.duration)),
    ];
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { class: "tick", style: { left: `${f * 100}%` } }, f ? fmtMs(axis * f) : "0"));
  const notes = [`Total ${fmtMs(total)}; the stages took ${fmtMs(sum)}.`];
  if (x.cache_hit) notes.push("A cache hit runs no stage: these are the original run's statistics.");
  return section("Stage waterfall",
    h("div", { class: "waterfall", dataset: { axisMs: String(axis) } },
      h("div"), h("div", { class: "axis", "aria-hidden": "true" }, ticks), h("div"),
      rows),
    h("p", { class: "meta" }, notes.join(" ")));
}

/** input_count → output_count per stage, as a table (the bars repeat the numbers). */
export function funnel(x) {
  const stages = stagesOf(x.stage_statistics?.stages);
  if (!stages.length) return section("Candidate funnel", h("p", null, "No stage ran."));
  const widest = Math.max(1, ...stages.map((s) => Math.max(s.input_count || 0, s.output_count || 0)));
  const width = (n) => `${((n || 0) / widest) * 100}%`;
  return section("Candidate funnel",
    h("table", { class: "funnel" },
      h("caption", null, "Candidates each stage considered and kept"),
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, "Stage"), h("th", { scope: "col", class: "num" }, "In"),
        h("th", { scope: "col", class: "num" }, "Out"), h("th", { scope: "col", class: "num" }, "Kept"),
        h("th", { scope: "col", class: "num" }, "Credits"), h("th", { scope: "col", class: "vis" }, h("span", { class: "visually-hidden" }, "Chart")))),
      h("tbody", null, stages.map((s) => h("tr", { dataset: { stage: s.name } },
        h("th", { scope: "row" }, s.name, " ", h("code", null, s.stage_id)),
        h("td", { class: "num", dataset: { field: "input" } }, fmtNum(s.input_count)),
        h("td", { class: "num", dataset: { field: "output" } }, fmtNum(s.output_count)),
        h("td", { class: "num" }, typeof s.efficiency === "number" ? `${(s.efficiency * 100).toFixed(0)}%` : "—"),
        h("td", { class: "num" }, fmtNum(s.credits, 4)),
        h("td", { class: "vis", "aria-hidden": "true" },
          h("div", { class: "in", style: { width: width(s.input_count) } }),
          h("div", { class: "out", style: { width: width(s.output_count) } })),
      )))));
}

function meterRow(name, used, limit, format) {
  const hasLimit = typeof limit === "number";
  return [
    h("dt", null, name),
    h("dd", { dataset: { budget: name.toLowerCase() } },
      hasLimit ? h("meter", { min: 0, max: limit, value: Math.min(used || 0, limit), "aria-label": `${name} used of the limit` }) : null,
      " ", `${format(used)} used`, hasLimit ? ` of ${format(limit)} (${(((used || 0) / limit) * 100).toFixed(0)}%)` : ", no limit set"),
  ];
}

export function budget(x) {
  const b = x.budget || {};
  const limits = b.limits || {};
  return section("Budget",
    h("dl", { class: "kv" },
      meterRow("Credits", b.credits_used, limits.max_credits, (n) => fmtNum(n, 4)),
      meterRow("Time", b.time_used_ms, limits.max_time_ms, fmtMs),
      typeof b.credits_remaining === "number" ? [h("dt", null, "Credits left"), h("dd", null, fmtNum(b.credits_remaining, 4))] : null,
    ),
    Object.keys(limits).length ? null : h("p", { class: "meta" }, "The retriever sets no budget_limits; the server's execution deadline still applies."));
}

function listOf(items, render) {
  return h("ul", null, items.map((item) => h("li", null, render(item))));
}

const text = (item) => (typeof item === "string" ? item : JSON.stringify(item));

export function notices(x) {
  const parts = [];
  if (x.error) parts.push(h("div", { class: "notice error", id: "execution-error" }, h("strong", null, "Error: "), x.error));
  else parts.push(h("p", null, "No error."));
  const warnings = x.warnings || [];
  parts.push(warnings.length
    ? h("div", { class: "notice warning", id: "execution-warnings" }, h("strong", null, `Warnings (${warnings.length})`), listOf(warnings, text))
    : h("p", null, "No warnings."));
  if ((x.degraded || []).length) {
    parts.push(h("div", { class: "notice warning" }, h("strong", null, "Degraded"),
      listOf(x.degraded, (d) => `${d.stage ? `${d.stage}: ` : ""}${d.reason || text(d)}${d.next_step ? ` (${d.next_step})` : ""}`)));
  }
  if ((x.limits || []).length) {
    parts.push(h("div", { class: "notice warning" }, h("strong", null, "Limits applied"),
      listOf(x.limits, (l) => `${l.name}: asked ${fmtNum(l.requested)}, applied ${fmtNum(l.applied)}`)));
  }
  const interp = x.interpretation || {};
  if ((interp.relaxations || []).length) {
    parts.push(h("div", { class: "notice" }, h("strong", null, "Filter relaxations"), listOf(interp.relaxations, text)));
  }
  if ((interp.ignored_input_keys || []).length) {
    parts.push(h("p", null, `Ignored inputs: ${interp.ignored_input_keys.join(", ")}`));
  }
  const cache = x.cache_hit
    ? ["Result cache: ", h("strong", null, "hit"), ". Served the answer of a run completed ", fmtTime(x.cached_at), "."]
    : ["Result cache: ", h("strong", null, "miss"), ". The stages ran for this execution."];
  const stageCaches = stagesOf(x.stage_statistics?.stages).filter((s) => s.metadata?.cache || "stage_cache_hit" in s);
  parts.push(h("div", { id: "cache-state", dataset: { cacheHit: String(Boolean(x.cache_hit)) } },
    h("p", null, cache),
    stageCaches.length
      ? listOf(stageCaches, (s) => {
        const c = s.metadata?.cache;
        return `${s.name}: ${s.stage_cache_hit ? "its own cache served all of its model work" : "model work ran"}` +
          (c ? ` (${c.behavior}, ${c.hits} hits, ${c.misses} misses)` : "");
      })
      : null));
  return section("Warnings, error and cache", parts);
}
