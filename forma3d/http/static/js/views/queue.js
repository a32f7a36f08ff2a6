// The print queue: tabs by job status, search and filters on the list endpoint's query
// language, drag (or buttons) to reorder what waits, bulk retry and cancel, per-job
// pause/resume/retry/cancel as the role allows, and "why is this waiting" from the matching
// endpoint. Follows print-job events live; the selection survives each refetch.
import { act, ago, errorText, html, pill, raw, toast } from "../ui.js";

const TABS = [
  { id: "queued", label: "Queued", statuses: ["PENDING", "QUEUED"],
    sort: "purpose:asc,priority:desc,position:asc,created_at:asc" },
  { id: "in-progress", label: "In progress", statuses: ["ASSIGNED", "PRINTING"],
    sort: "status_at:desc" },
  { id: "completed", label: "Completed", statuses: ["COMPLETED"], sort: "completed_at:desc",
    finished: true },
  { id: "cancelled", label: "Cancelled", statuses: ["CANCELLED"], sort: "status_at:desc",
    finished: true },
  { id: "errored", label: "Errored", statuses: ["FAILED"], sort: "status_at:desc",
    finished: true },
];
const LIMIT = 200;
const RETRYABLE = new Set(["FAILED", "CANCELLED"]);
const CANCELLABLE = new Set(["PENDING", "QUEUED", "ASSIGNED", "PRINTING"]);
// The dispatcher's words for why a printer cannot take a job, as an operator reads them.
const REASONS = {
  offline: "offline", disabled: "disabled", busy: "busy with another job",
  not_operational: "not operational", not_ready: "bed not confirmed clear",
  wrong_model: "wrong model", wrong_nozzle: "wrong nozzle", wrong_material: "wrong material",
  wrong_color: "wrong colour", wrong_filament: "filament not loaded", missing_tag: "missing tag",
};
// Tag prefixes of the matching vocabulary, offered as filters; anything else is a user tag.
// Each is a filter of the list endpoint (the server reads tags the same way, in any case), so
// it finds every matching job, not only the ones on the loaded page.
const FACETS = [["model", "Model"], ["material", "Material"], ["color", "Colour"],
                ["tag", "Tag"]];
const FACET_PARAM = { model: "model", material: "material", color: "color", tag: "required_tag" };

/** A job's required tags split by facet: {model: [...], material: [...], color: [...], tag}
 * (a filament tag names a material and a colour; nozzle tags are not a facet). */
function facets(job) {
  const out = { model: [], material: [], color: [], tag: [] };
  for (const tag of job.required_tags || []) {
    const cut = tag.indexOf(":");
    const prefix = cut < 0 ? "" : tag.slice(0, cut).trim().toLowerCase();
    const value = tag.slice(cut + 1).trim();
    if (prefix === "filament") {
      const [kind, colour] = value.split("/");
      if (kind) out.material.push(kind.trim());
      if (colour) out.color.push(colour.trim());
    } else if (prefix === "model" || prefix === "material" || prefix === "color") {
      out[prefix].push(value);
    } else if (prefix !== "nozzle") {
      out.tag.push(tag.trim());
    }
  }
  return out;
}

function summary(matching, job) {
  const printers = matching.printers || [];
  if (job && job.held) return "Paused by an operator: it waits until resumed.";
  if (job && job.status === "PENDING") return "Not released to the queue yet.";
  if (!printers.length) return "No printers are registered, so nothing can take it.";
  const ready = printers.filter(p => p.matches);
  if (ready.length) {
    return `${ready.length} printer${ready.length > 1 ? "s" : ""} can take it now; it goes ` +
      "to the next one that pulls work, after the jobs ahead of it.";
  }
  const counts = new Map();
  for (const p of printers) for (const r of p.reasons) counts.set(r, (counts.get(r) || 0) + 1);
  const fit = printers.filter(p => p.fits).length;
  const parts = [...counts].sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `${n} ${REASONS[r] || r}`);
  return `No printer can take it now (${parts.join(", ")}). ` +
    (fit ? `${fit} of ${printers.length} would fit its tags once available.`
         : "None of the printers fits its tags.");
}

export default {
  name: "queue", title: "Queue", permission: "print_jobs.read",

  async render(el, ctx) {
    const can = {
      retry: ctx.can("print_jobs.retry"), cancel: ctx.can("print_jobs.cancel"),
      pause: ctx.can("print_jobs.pause"), reorder: ctx.can("print_jobs.reorder"),
      clear: ctx.can("print_jobs.clear"),
    };
    const state = {
      tab: TABS.find(t => t.id === ctx.args[0]) || TABS[0],
      search: "", order: "", facet: { model: "", material: "", color: "", tag: "" },
      rows: [], total: 0, counts: {}, selected: new Set(), why: null, orders: new Map(),
      files: new Map(), options: { model: [], material: [], color: [], tag: [] },
      busy: false,
    };

    // Everything lives in this view's own root: listeners go with it when the view is left,
    // and a refetch that lands after the view was replaced finds it detached and draws nothing.
    const root = document.createElement("div");
    root.className = "q-view";
    el.replaceChildren(root);
    root.innerHTML = html`
      <div class="row spread q-head"><h1>Queue</h1><span class="row"><span class="muted small"
        id="q-total"></span>${can.clear ? html`<button type="button" id="q-clear"
        title="Hide finished jobs from these tabs; their history stays">Clear finished</button>` : ""}</span></div>
      <div class="tabs" role="tablist" aria-label="Job status">${TABS.map(t => html`
        <button type="button" role="tab" id="q-tab-${t.id}" data-tab="${t.id}"
          aria-controls="q-panel">${t.label} <span class="q-count" data-count="${t.id}"></span></button>`)}
      </div>
      <form class="q-filters row" id="q-filters" role="search" aria-label="Filter jobs">
        <label>Job key <input type="search" name="search" placeholder="part of a job key"
          autocomplete="off"></label>
        ${ctx.can("orders.read") ? html`<label>Order <input type="search" name="order"
          placeholder="order name" autocomplete="off"></label>` : ""}
        ${FACETS.map(([key, label]) => html`<label>${label}
          <select name="${key}"><option value="">Any</option></select></label>`)}
        <button type="reset">Clear filters</button>
      </form>
      <div class="q-bulk row" id="q-bulk" aria-live="polite" hidden></div>
      <aside id="q-why" class="card q-why" aria-label="Why is this waiting" hidden></aside>
      <div id="q-panel" role="tabpanel" class="q-list"></div>`;
    const $ = sel => root.querySelector(sel);
    const form = $("#q-filters");

    // --- reading ------------------------------------------------------------------------------

    /** The tab's jobs: what the counts, the list and the filters' choices all start from. */
    const tabFilter = tab => {
      const p = { "status.in": tab.statuses.join(",") };
      if (tab.finished) p["cleared_at.isNull"] = "true";
      return p;
    };

    const params = () => {
      const p = { ...tabFilter(state.tab), sort: state.tab.sort, limit: LIMIT, meta: "true" };
      if (state.search) p["job_key.contains"] = state.search;
      if (state.order) p["order_name.contains"] = state.order;
      for (const [key] of FACETS) if (state.facet[key]) p[FACET_PARAM[key]] = state.facet[key];
      return p;
    };

    /** The filters' choices: every required tag among the tab's jobs, split by facet. */
    const options = async () => {
      const tags = await ctx.api.get("/print-jobs/required-tags", tabFilter(state.tab));
      const f = facets({ required_tags: tags });
      for (const key of Object.keys(state.options)) {
        state.options[key] = [...new Set(f[key])].sort((a, b) => a.localeCompare(b));
      }
    };

    /** Names for the orders and files the rows point to (one list call each). */
    const names = async rows => {
      const lookups = [];
      const orderIds = [...new Set(rows.map(r => r.order_id).filter(id => id && !state.orders.has(id)))];
      if (orderIds.length && ctx.can("orders.read")) {
        lookups.push(ctx.api.get("/orders", { "id.in": orderIds.join(","), fields: "id,name",
                                              limit: 500 })
          .then(found => found.forEach(o => state.orders.set(o.id, o.name))));
      }
      const fileIds = [...new Set(rows.map(r => r.file_id).filter(id => !state.files.has(id)))];
      if (fileIds.length && ctx.can("files.read")) {
        lookups.push(ctx.api.get("/print-files", { "id.in": fileIds.join(","),
                                                   fields: "id,filename", limit: 500 })
          .then(found => found.forEach(f => state.files.set(f.id, f.filename))));
      }
      await Promise.all(lookups);
    };

    const counts = async () => {
      await Promise.all(TABS.map(async t => {
        const p = { ...tabFilter(t), limit: 1, fields: "id", meta: "true" };
        state.counts[t.id] = (await ctx.api.get("/print-jobs", p)).total;
      }));
    };

    let loads = 0;
    const load = async () => {
      const mine = ++loads;  // a later load wins; an earlier answer arriving late is dropped
      const [page] = await Promise.all([ctx.api.get("/print-jobs", params()), counts(),
                                        options()]);
      await names(page.data);
      if (mine !== loads || !root.isConnected) return;
      state.rows = page.data;
      state.total = page.total;
      const ids = new Set(state.rows.map(r => r.id));
      for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
      draw();
      if (state.why) await explain(state.why, { quiet: true });
    };

    /** A refetch whose failure is reported, never left unhandled. */
    const refresh = () => load().catch(err => toast(errorText(err), "error"));

    // --- drawing ------------------------------------------------------------------------------

    const jobName = row => {
      const file = state.files.get(row.file_id);
      return file ? file.replace(/\.(bgcode|gcode|3mf)$/i, "") : row.job_key;
    };

    const statusCell = row => html`${pill(row.status)}${row.held
      ? html` ${pill("PAUSED", "paused")}` : ""}${row.error
      ? html`<div class="small error q-error" title="${row.error}">${row.error}</div>` : ""}`;

    const actions = (row, index, rows) => {
      const id = row.id, name = jobName(row), out = [];
      const queued = state.tab.id === "queued";
      if (queued) {
        out.push(html`<button type="button" data-act="why" data-id="${id}"
          class="q-ask" aria-label="Why is ${name} waiting">Why waiting?</button>`);
      }
      if (can.pause && (queued || row.status === "PRINTING")) {
        const held = queued ? row.held : null;
        if (held !== true) {
          out.push(html`<button type="button" data-act="pause" data-id="${id}"
            aria-label="Pause ${name}">Pause</button>`);
        }
        if (held !== false) {
          out.push(html`<button type="button" data-act="resume" data-id="${id}"
            aria-label="Resume ${name}">Resume</button>`);
        }
      }
      if (can.retry && RETRYABLE.has(row.status)) {
        out.push(html`<button type="button" class="primary" data-act="retry" data-id="${id}"
          aria-label="Retry ${name}">Retry</button>`);
      }
      if (can.cancel && CANCELLABLE.has(row.status)) {
        out.push(html`<button type="button" class="danger" data-act="cancel" data-id="${id}"
          aria-label="Cancel ${name}">Cancel</button>`);
      }
      return html`<div class="q-actions">${out}</div>`;
    };

    /** Keyboard-usable reordering beside the drag grip: to the front, up, down. */
    const moves = (row, index, rows) => {
      const name = jobName(row), first = index === 0, last = index === rows.length - 1;
      return html`<div class="q-move" role="group" aria-label="Move ${name}">
        <button type="button" data-act="front" data-id="${row.id}" ${raw(first ? "disabled" : "")}
          aria-label="Move ${name} to front" title="Move to front">Top</button>
        <button type="button" data-act="up" data-id="${row.id}" ${raw(first ? "disabled" : "")}
          aria-label="Move ${name} up" title="Move up">▲</button>
        <button type="button" data-act="down" data-id="${row.id}" ${raw(last ? "disabled" : "")}
          aria-label="Move ${name} down" title="Move down">▼</button></div>`;
    };

    const when = row => state.tab.id === "queued" ? row.queued_at || row.created_at
      : state.tab.id === "completed" ? row.completed_at : row.status_at || row.updated_at;

    const drawBulk = rows => {
      const bulk = $("#q-bulk");
      const chosen = rows.filter(r => state.selected.has(r.id));
      const retry = can.retry && chosen.some(r => RETRYABLE.has(r.status));
      const cancel = can.cancel && chosen.some(r => CANCELLABLE.has(r.status));
      bulk.hidden = !chosen.length;
      bulk.innerHTML = chosen.length ? html`<strong>${chosen.length} selected</strong>
        ${retry ? html`<button type="button" class="primary" data-bulk="retry">Retry selected</button>` : ""}
        ${cancel ? html`<button type="button" class="danger" data-bulk="cancel">Cancel selected</button>` : ""}
        <button type="button" data-bulk="none">Clear selection</button>` : "";
    };

    const draw = () => {
      for (const t of TABS) {
        const button = $(`#q-tab-${t.id}`);
        button.setAttribute("aria-selected", String(t === state.tab));
        button.tabIndex = t === state.tab ? 0 : -1;
        const n = state.counts[t.id];
        $(`[data-count="${t.id}"]`).textContent = n === undefined ? "" : String(n);
      }
      for (const [key] of FACETS) {
        const select = form.elements[key];
        const values = [...state.options[key]];
        if (state.facet[key] && !values.includes(state.facet[key])) values.unshift(state.facet[key]);
        select.innerHTML = html`<option value="">Any</option>${values.map(v =>
          html`<option value="${v}" ${raw(v === state.facet[key] ? "selected" : "")}>${v}</option>`)}`;
      }
      const rows = state.rows;
      const queued = state.tab.id === "queued";
      const drag = queued && can.reorder;
      const writes = can.retry || can.cancel;
      $("#q-total").textContent = state.total > state.rows.length
        ? `showing ${state.rows.length} of ${state.total}` : "";
      const allChosen = rows.length > 0 && rows.every(r => state.selected.has(r.id));
      $("#q-panel").innerHTML = !rows.length
        ? html`<p class="muted card" data-empty>No ${state.tab.label.toLowerCase()} jobs${
            state.search || state.order || Object.values(state.facet).some(Boolean)
              ? " match these filters" : ""}.</p>`
        : html`<div class="table-wrap"><table class="q-table" aria-label="${state.tab.label} jobs">
          <thead><tr>
            ${writes ? html`<th scope="col" class="q-pick"><input type="checkbox" data-all
              aria-label="Select all shown jobs" ${raw(allChosen ? "checked" : "")}></th>` : ""}
            ${queued ? html`<th scope="col" class="q-place">#</th>` : ""}
            ${drag ? html`<th scope="col">Move</th>` : ""}
            <th scope="col">Job</th><th scope="col">Order</th><th scope="col">Status</th>
            <th scope="col">Priority</th><th scope="col">Needs</th>
            <th scope="col" class="q-when">${queued ? "Queued" : state.tab.id === "completed" ? "Completed" : "Since"}</th>
            <th scope="col"><span class="sr">Actions</span></th>
          </tr></thead>
          <tbody>${rows.map((row, i) => html`<tr data-job="${row.id}"
              class="${state.selected.has(row.id) ? "selected" : ""}${row.held ? " q-held" : ""}"
              ${raw(drag ? 'draggable="true"' : "")}>
            ${writes ? html`<td class="q-pick"><input type="checkbox" data-pick="${row.id}"
              aria-label="Select ${jobName(row)}" ${raw(state.selected.has(row.id) ? "checked" : "")}></td>` : ""}
            ${queued ? html`<td class="q-place">${drag ? html`<span class="q-grip"
              title="Drag to reorder" aria-hidden="true">⠿</span>` : ""}<span class="q-num">${i + 1}</span></td>` : ""}
            ${drag ? html`<td>${moves(row, i, rows)}</td>` : ""}
            <td><div class="q-name">${jobName(row)}</div>
              <div class="small muted" title="${row.job_key}">copy ${row.copy_number} · attempt ${
                row.attempts}/${row.max_attempts}${row.purpose === "STOCK" ? " · stock" : ""}</div></td>
            <td>${row.order_id ? (ctx.can("orders.read")
              ? html`<a href="#/orders/${row.order_id}">${state.orders.get(row.order_id) || "order"}</a>`
              : "order") : html`<span class="muted">stock</span>`}</td>
            <td>${statusCell(row)}</td>
            <td><span class="q-prio ${row.priority > 0 ? "up" : row.priority < 0 ? "down" : ""}"
              title="Priority ranks above queue position">${row.priority > 0 ? `+${row.priority}` : row.priority}</span></td>
            <td>${(row.required_tags || []).length ? row.required_tags.map(t =>
              html`<span class="q-tag">${t}</span>`) : html`<span class="muted">any</span>`}</td>
            <td class="q-when" title="${when(row) || ""}">${ago(when(row))}</td>
            <td>${actions(row, i, rows)}</td>
          </tr>`)}</tbody></table></div>`;
      drawBulk(rows);
    };

    // --- why is this waiting ------------------------------------------------------------------

    const explain = async (id, { quiet = false } = {}) => {
      const aside = $("#q-why");
      if (!root.isConnected) return;
      const row = state.rows.find(r => r.id === id);
      if (!row) { state.why = null; aside.hidden = true; return; }
      state.why = id;
      let matching;
      try {
        matching = await ctx.api.get(`/print-jobs/${id}/matching`);
      } catch (err) {
        if (!quiet) toast(String(err.message || err), "error");
        return;
      }
      const printers = matching.printers || [];
      aside.hidden = false;
      aside.innerHTML = html`<div class="row spread"><h2 tabindex="-1">Why is this waiting?</h2>
          <button type="button" data-act="close-why" aria-label="Close the explanation">✕</button></div>
        <p class="q-why-job"><strong>${jobName(row)}</strong> ${pill(row.status)}</p>
        <p class="q-why-summary" data-why-summary>${summary(matching, row)}</p>
        <p class="small muted">Needs: ${matching.required_tags.length
          ? matching.required_tags.map(t => html`<span class="q-tag">${t}</span>`) : "any printer"}</p>
        ${printers.length ? html`<ul class="q-why-list">${printers.map(p => html`
          <li data-printer="${p.name}"><span class="q-verdict ${p.matches ? "ok" : "error"}"
            aria-hidden="true">${p.matches ? "✓" : "✕"}</span>
            <span class="q-why-name">${p.name}</span>
            ${p.matches ? html`<span class="small ok">can take it</span>` : p.reasons.map(r =>
              html`<span class="pill ${["offline", "disabled"].includes(r) ? "bad" : "warn"}"
                data-reason="${r}">${REASONS[r] || r}</span>`)}
            ${p.missing_tags.length ? html`<span class="small muted">missing ${p.missing_tags.join(", ")}</span>` : ""}
          </li>`)}</ul>` : ""}`;
      if (!quiet) aside.querySelector("h2").focus?.();
    };

    // --- writing ------------------------------------------------------------------------------

    /** Moves a waiting job before or after another: its 0-based place among every waiting
     * job in queue-position order (the list the reorder endpoint counts in). */
    const place = async (id, { before = null, after = null }) => {
      const waiting = await ctx.api.get("/print-jobs", { "status.in": "PENDING,QUEUED",
        sort: "position:asc,created_at:asc", fields: "id", limit: 500 });
      const order = waiting.map(r => r.id).filter(x => x !== id);
      const anchor = order.indexOf(before || after);
      if (anchor < 0) throw new Error("That job left the queue meanwhile; the list is refreshed.");
      await ctx.api.post(`/print-jobs/${id}/reorder`, { position: before ? anchor : anchor + 1 });
    };

    const write = async (fn, message) => {
      if (state.busy) return;
      state.busy = true;
      try { await act(fn(), message); } catch { /* reported by act */ } finally {
        state.busy = false;
      }
      await refresh();
    };

    const one = async (kind, id) => {
      const rows = state.rows;
      const index = rows.findIndex(r => r.id === id);
      const row = rows[index];
      if (!row) return;
      const name = jobName(row);
      if (kind === "why") { await explain(id); return; }
      if (kind === "close-why") return;
      if (kind === "front") {
        await write(() => ctx.api.post(`/print-jobs/${id}/move-to-front`), `${name} moved to front`);
      } else if (kind === "up" && index > 0) {
        await write(() => place(id, { before: rows[index - 1].id }), `${name} moved up`);
      } else if (kind === "down" && index < rows.length - 1) {
        await write(() => place(id, { after: rows[index + 1].id }), `${name} moved down`);
      } else if (kind === "pause" || kind === "resume") {
        await write(() => ctx.api.post(`/print-jobs/${id}/${kind}`), `${name} ${kind}d`);
      } else if (kind === "retry") {
        await write(() => ctx.api.post(`/print-jobs/${id}/retry`), `${name} requeued`);
      } else if (kind === "cancel") {
        await write(() => ctx.api.post(`/print-jobs/${id}/cancel`), `${name} cancelled`);
      }
    };

    /** Bulk retry or cancel: one call per job, every outcome reported in one toast. */
    const bulk = async kind => {
      const ok = kind === "retry" ? RETRYABLE : CANCELLABLE;
      const chosen = state.rows.filter(r => state.selected.has(r.id) && ok.has(r.status));
      if (!chosen.length || state.busy) return;
      state.busy = true;
      const results = await Promise.allSettled(chosen.map(r =>
        ctx.api.post(`/print-jobs/${r.id}/${kind}`)));
      state.busy = false;
      const failed = results.filter(r => r.status === "rejected");
      const verb = kind === "retry" ? "requeued" : "cancelled";
      if (failed.length) {
        toast(`${chosen.length - failed.length} ${verb}, ${failed.length} refused: ` +
              failed.map(f => f.reason.message).join("; "), "error");
      } else {
        toast(`${chosen.length} job${chosen.length > 1 ? "s" : ""} ${verb}`);
      }
      chosen.forEach((r, i) => { if (results[i].status === "fulfilled") state.selected.delete(r.id); });
      await refresh();
    };

    // --- events -------------------------------------------------------------------------------

    const tabs = root.querySelector(".tabs");
    const pick = tab => {
      state.tab = tab;
      state.selected.clear();
      state.why = null;
      $("#q-why").hidden = true;
      history.replaceState(null, "", `#/queue/${tab.id}`);
      refresh();
    };
    tabs.addEventListener("click", e => {
      const button = e.target.closest("[data-tab]");
      if (button) pick(TABS.find(t => t.id === button.dataset.tab));
    });
    tabs.addEventListener("keydown", e => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = TABS[(TABS.indexOf(state.tab) + step + TABS.length) % TABS.length];
      pick(next);
      $(`#q-tab-${next.id}`).focus();
    });

    let typing = null;
    form.addEventListener("input", e => {
      const name = e.target.name;
      if (name === "search" || name === "order") {
        clearTimeout(typing);
        typing = setTimeout(() => { state[name] = e.target.value.trim(); refresh(); }, 250);
      }
    });
    form.addEventListener("change", e => {
      if (e.target.name in state.facet) { state.facet[e.target.name] = e.target.value; refresh(); }
    });
    form.addEventListener("submit", e => e.preventDefault());
    form.addEventListener("reset", () => {
      state.search = ""; state.order = "";
      for (const key of Object.keys(state.facet)) state.facet[key] = "";
      setTimeout(refresh);
    });

    $("#q-clear")?.addEventListener("click", async () => {
      await write(async () => {
        const { cleared } = await ctx.api.post("/print-jobs/clear-finished");
        toast(`${cleared} finished job${cleared === 1 ? "" : "s"} cleared from view`);
      }, "");
    });

    root.addEventListener("click", e => {
      const button = e.target.closest("button[data-act]");
      if (button) {
        if (button.dataset.act === "close-why") { state.why = null; $("#q-why").hidden = true; return; }
        one(button.dataset.act, button.dataset.id);
        return;
      }
      const b = e.target.closest("button[data-bulk]");
      if (b) {
        if (b.dataset.bulk === "none") { state.selected.clear(); draw(); } else bulk(b.dataset.bulk);
      }
    });
    root.addEventListener("change", e => {
      if (e.target.matches("[data-pick]")) {
        const id = e.target.dataset.pick;
        if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
        draw();
      } else if (e.target.matches("[data-all]")) {
        for (const r of state.rows) {
          if (e.target.checked) state.selected.add(r.id); else state.selected.delete(r.id);
        }
        draw();
      }
    });

    // Drag to reorder (queued tab): the row lands before or after the row it is dropped on.
    const panel = $("#q-panel");
    let dragged = null;
    const mark = (tr, where) => {
      panel.querySelectorAll(".q-drop-before,.q-drop-after").forEach(r =>
        r.classList.remove("q-drop-before", "q-drop-after"));
      if (tr) tr.classList.add(`q-drop-${where}`);
    };
    const side = (tr, e) => {
      const box = tr.getBoundingClientRect();
      return e.clientY < box.top + box.height / 2 ? "before" : "after";
    };
    panel.addEventListener("dragstart", e => {
      const tr = e.target.closest && e.target.closest("tr[data-job]");
      if (!tr) return;
      dragged = tr.dataset.job;
      tr.classList.add("q-dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", dragged);
    });
    panel.addEventListener("dragover", e => {
      const tr = e.target.closest("tr[data-job]");
      if (!dragged || !tr) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      mark(tr.dataset.job === dragged ? null : tr, side(tr, e));
    });
    panel.addEventListener("dragleave", e => { if (!panel.contains(e.relatedTarget)) mark(null); });
    panel.addEventListener("dragend", () => {
      mark(null);
      panel.querySelectorAll(".q-dragging").forEach(r => r.classList.remove("q-dragging"));
      dragged = null;
    });
    panel.addEventListener("drop", e => {
      const tr = e.target.closest("tr[data-job]");
      const id = dragged;
      mark(null);
      if (!id || !tr || tr.dataset.job === id) return;
      e.preventDefault();
      const where = side(tr, e);
      // Show the new order at once; the refetch after the write shows the server's.
      const moving = panel.querySelector(`tr[data-job="${CSS.escape(id)}"]`);
      if (moving) tr.parentNode.insertBefore(moving, where === "before" ? tr : tr.nextSibling);
      write(() => place(id, { [where]: tr.dataset.job }), "Queue reordered");
    });

    ctx.follow(e => e.subject_type === "print_job" || String(e.type || "").startsWith("print-job."),
               () => { if (!state.busy) refresh(); }, 300);
    ctx.follow(e => state.why && (e.subject_type === "printer" ||
                                  String(e.type || "").startsWith("printer.")),
               () => { if (state.why) explain(state.why, { quiet: true }); }, 300);

    await load();
  },
};
