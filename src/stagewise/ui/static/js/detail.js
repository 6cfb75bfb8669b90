// One execution: followed live while it runs, then its statistics, results and replay.

import { api, enc } from "./api.js";
import { budget, funnel, notices, waterfall } from "./charts.js";
import { fmtMs, fmtNum, fmtTime, h, sleep, statusBadge } from "./dom.js";
import { replay } from "./replay.js";
import { results } from "./results.js";
import { announce, pageTitle } from "./shell.js";

const POLL_MS = 500;
const PAGE = 20;
const RUNNING = new Set(["pending", "processing"]);

/** Polls the status route until the run ends, drawing its progress. */
async function follow(main, path, first, signal) {
  let status = first;
  const bar = h("progress", { id: "run-progress", max: 1, value: 0 });
  const text = h("p", { id: "run-progress-text" });
  const panel = h("section", { class: "panel", id: "run-live", "aria-labelledby": "run-live-title", "aria-busy": "true" },
    h("h3", { id: "run-live-title" }, "Running"),
    h("label", { for: "run-progress" }, "Stages completed "), bar, text);
  const show = (s) => {
    bar.max = Math.max(1, s.total_stages || 1);
    bar.value = s.stages_completed || 0;
    panel.dataset.status = s.status;
    panel.dataset.currentStage = s.current_stage || "";
    text.textContent = `${s.status}: ${s.stages_completed ?? 0} of ${s.total_stages ?? "?"} stages completed` +
      (s.current_stage ? `; running ${s.current_stage}` : "");
  };
  show(status);
  main.append(panel);
  let announced = null;
  while (RUNNING.has(status.status)) {
    if (status.current_stage && status.current_stage !== announced) {
      announced = status.current_stage;
      announce(`Running stage ${announced}`);
    }
    await sleep(POLL_MS, signal);
    status = await api("GET", `${path}/status`, { signal });
    show(status);
  }
  panel.remove();
  announce(`Execution ${status.status}`);
}

function summary(x, retrieverId) {
  const stats = x.stage_statistics || {};
  return h("dl", { class: "kv panel", id: "execution-summary" },
    h("dt", null, "Status"), h("dd", { dataset: { status: x.status } }, statusBadge(x.status)),
    h("dt", null, "Retriever"), h("dd", null, h("a", { href: `#/retrievers/${enc(retrieverId)}` }, h("code", null, retrieverId))),
    h("dt", null, "Started"), h("dd", null, fmtTime(x.created_at)),
    h("dt", null, "Completed"), h("dd", null, fmtTime(x.completed_at)),
    h("dt", null, "Total time"), h("dd", null, fmtMs(stats.total_time_ms)),
    h("dt", null, "Credits"), h("dd", null, fmtNum(stats.credits_used, 4)),
    h("dt", null, "Stages"), h("dd", null, `${x.stages_completed ?? "—"} of ${x.total_stages ?? "—"} completed`),
    x.replay_of
      ? [h("dt", null, "Replay of"), h("dd", null, h("a", { href: `#/retrievers/${enc(retrieverId)}/executions/${enc(x.replay_of)}` },
        h("code", null, x.replay_of)))]
      : null,
  );
}

export async function renderExecution(ctx, retrieverId, executionId) {
  const { main, signal } = ctx;
  const path = `/v1/retrievers/${enc(retrieverId)}/executions/${enc(executionId)}`;
  main.append(pageTitle("Execution ", h("code", null, executionId)));
  const status = await api("GET", `${path}/status`, { signal });
  if (RUNNING.has(status.status)) await follow(main, path, status, signal);
  const x = await api("GET", path, { query: { limit: PAGE }, signal });
  const loadPage = (offset) => api("GET", path, { query: { limit: PAGE, offset }, signal });
  main.append(
    summary(x, retrieverId),
    replay(x, retrieverId, signal),
    waterfall(x),
    funnel(x),
    budget(x),
    notices(x),
    results(x, loadPage),
  );
}
