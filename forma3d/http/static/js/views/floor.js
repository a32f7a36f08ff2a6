// The farm floor: every printer as a tile, grouped by where it stands ("needs attention" first),
// from GET /floor. Committed printer and job events refetch it; telemetry frames update the
// tiles in place (progress, time left, temperatures). Confirming a clear bed and enabling or
// disabling a printer are offered only with printers.operate; anyone who sees the floor can open
// a printer's matching ("which queued jobs can it take, and why not").
import { act, duration, errorText, html, pill } from "../ui.js";

const GROUPS = [
  ["attention", "Needs attention"], ["printing", "Printing"], ["idle", "Idle"],
  ["disabled", "Disabled"], ["offline", "Offline"],
];
const TONE_KEY = { attention: "needs attention", printing: "printing", idle: "ready",
                   disabled: "", offline: "offline" };
const REASONS = {
  offline: "offline", disabled: "disabled by an operator", busy: "busy with another job",
  not_operational: "not operational", not_ready: "bed not confirmed clear",
  wrong_model: "wrong model", wrong_nozzle: "wrong nozzle", wrong_material: "wrong material",
  wrong_color: "wrong colour", wrong_filament: "wrong filament in the slot",
  missing_tag: "missing tag",
};
const SWATCH = /^(#[0-9a-f]{3,8}|[a-z]{3,20})$/i;

function swatch(material) {
  const colour = [material.hex, material.color].find(c => c && SWATCH.test(String(c)));
  return colour ? html`<span class="swatch" style="background:${colour}" aria-hidden="true"></span>`
    : html`<span class="swatch none" aria-hidden="true"></span>`;
}

function nozzle(value) {
  return value === null || value === undefined ? "nozzle —" : `${Number(value)} mm nozzle`;
}

function temps(t) {
  if (!t || !t.temps) return "";
  const tool = Array.isArray(t.temps.tool) ? t.temps.tool[0] : t.temps.tool;
  const parts = [];
  if (tool !== undefined && tool !== null) parts.push(`Nozzle ${Math.round(tool)} °C`);
  if (t.temps.bed !== undefined && t.temps.bed !== null) parts.push(`Bed ${Math.round(t.temps.bed)} °C`);
  return parts.join(" · ");
}

/** Progress (0–100) and seconds left: the farm's last word if any, else an estimate. */
function progressOf(printer, t) {
  if (t && t.progress !== null && t.progress !== undefined && t.job_id === (printer.job || {}).id) {
    const left = t.time_left === null || t.time_left === undefined ? null
      : Math.max(0, t.time_left - (Date.now() - t.received) / 1000);
    return { percent: Number(t.progress), left, estimated: false };
  }
  const job = printer.job;
  if (!job || !job.started_at || !job.estimated_seconds) return null;
  const elapsed = (Date.now() - new Date(job.started_at).getTime()) / 1000;
  return { percent: Math.min(99, Math.max(0, 100 * elapsed / job.estimated_seconds)),
           left: Math.max(0, job.estimated_seconds - elapsed), estimated: true };
}

/** A printer with a job (printing, or paused on one) has its bed in use: whether the bed is
 * clear for the next job ("ready") only means something once it is idle. */
function busy(p) {
  return Boolean(p.job) || p.group === "printing";
}

function progressText(p) {
  if (!p) return "progress not reported yet";
  const pct = `${p.estimated ? "≈ " : ""}${Math.round(p.percent)} %`;
  return p.left === null ? pct : `${pct} · ${duration(p.left)} left`;
}

export default {
  name: "floor",
  title: "Floor",
  permission: "printers.read",
  async render(el, ctx) {
    const operate = ctx.can("printers.operate");
    const telemetry = new Map();  // printer id -> last telemetry frame (+ when it arrived)
    let printers = [];
    let filter = "all";
    // The board is redrawn on every refetch; the matching dialog stays open beside it.
    el.innerHTML = html`<div data-board></div>
      <dialog class="floor-matching" aria-labelledby="fm-title"><div data-matching></div>
        <menu><button type="button" data-close>Close</button></menu></dialog>`;
    const board = el.querySelector("[data-board]");

    const jobBlock = (p) => {
      if (!p.job) return html`<p class="muted small job">No job</p>`;
      const prog = progressOf(p, telemetry.get(p.id));
      const order = p.job.order_id
        ? (ctx.can("orders.read")
          ? html` for <a href="#/orders/${p.job.order_id}">${p.job.order_name || "order"}</a>`
          : html` for ${p.job.order_name || "an order"}`)
        : html` <span class="muted">(stock)</span>`;
      const pct = prog ? Math.round(prog.percent) : 0;
      return html`<div class="job">
        <div class="small"><strong>${p.job.file_name}</strong>${order}</div>
        <div class="progress" role="progressbar" aria-label="Progress of ${p.name}"
             aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}"><span style="width:${pct}%"></span></div>
        <div class="small muted" data-progress>${progressText(prog)}</div></div>`;
    };

    const actions = (p) => {
      const buttons = [html`<button type="button" data-act="matching" data-key="m-${p.id}"
        aria-label="Which jobs can ${p.name} take">Jobs it can take</button>`];
      if (operate) {
        if (!p.ready && !p.job && p.online) {
          buttons.unshift(html`<button type="button" class="primary" data-act="ready" data-key="r-${p.id}"
            aria-label="Confirm bed of ${p.name} cleared">Confirm bed cleared</button>`);
        }
        buttons.push(p.enabled
          ? html`<button type="button" data-act="disable" data-key="d-${p.id}" aria-label="Disable ${p.name}">Disable</button>`
          : html`<button type="button" data-act="enable" data-key="e-${p.id}" aria-label="Enable ${p.name}">Enable</button>`);
      }
      return html`<div class="row actions">${buttons}</div>`;
    };

    const tile = (p) => {
      const t = telemetry.get(p.id);
      const slots = (p.materials || []).length
        ? html`<ul class="slots" aria-label="Loaded material">${p.materials.map(m => html`
            <li>${swatch(m)}<span>${m.type || "?"} ${m.color || ""}</span><span class="muted small">slot ${Number(m.slot ?? 0) + 1}</span></li>`)}</ul>`
        : html`<p class="muted small">No material reported</p>`;
      return html`<article class="tile g-${p.group}" data-printer-id="${p.id}" aria-labelledby="pn-${p.id}">
        <header class="row spread">
          <h3 id="pn-${p.id}">${p.name}</h3>${pill(TONE_KEY[p.group], p.why)}
        </header>
        <p class="muted small">${p.model || "model unknown"} · ${nozzle(p.nozzle_diameter)}</p>
        ${slots}
        <p class="small facts"><span>State <strong data-state>${p.state}</strong></span>
          ${busy(p) ? "" : html`<span data-ready="${p.ready ? "yes" : "no"}">${
            p.ready ? "Ready" : "Not ready"}</span>`}
          ${p.enabled ? "" : html`<span class="pill">disabled</span>`}</p>
        ${jobBlock(p)}
        <p class="small muted" data-temps>${temps(t)}</p>
        ${actions(p)}
      </article>`;
    };

    const draw = () => {
      const focused = document.activeElement && document.activeElement.dataset
        ? document.activeElement.dataset.key : null;
      const counts = Object.fromEntries(GROUPS.map(([g]) => [g, printers.filter(p => p.group === g).length]));
      const filters = [["all", "All", printers.length], ...GROUPS.map(([g, label]) => [g, label, counts[g]])];
      const shown = GROUPS.filter(([g]) => (filter === "all" || filter === g) && counts[g]);
      board.innerHTML = html`<div class="row spread floor-head">
          <h1>Floor</h1>
          <div class="row floor-filter" role="group" aria-label="Show printers">
            ${filters.map(([g, label, n]) => html`<button type="button" data-filter="${g}"
              aria-pressed="${filter === g}" class="${g === "attention" && n ? "warn" : ""}">${label} <span class="count">${n}</span></button>`)}
          </div>
        </div>
        ${printers.length ? "" : html`<p class="muted" data-empty>No printers yet: connect SimplyPrint or register one.</p>`}
        ${shown.map(([g, label]) => html`<section class="floor-group" data-group="${g}" aria-labelledby="fg-${g}">
          <h2 id="fg-${g}">${label} <span class="muted">${counts[g]}</span></h2>
          <div class="floor-grid">${printers.filter(p => p.group === g).map(tile)}</div></section>`)}
        ${printers.length && !shown.length ? html`<p class="muted" data-empty>No printer here now.</p>` : ""}`;
      if (focused) {
        const again = el.querySelector(`[data-key="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
    };

    const load = async () => {
      const rows = await ctx.api.get("/floor");
      if (el.dataset.view !== "floor") return;  // the operator has moved on meanwhile
      printers = rows;
      draw();
    };

    const showMatching = async (p) => {
      const dialog = el.querySelector("dialog.floor-matching");
      const box = dialog.querySelector("[data-matching]");
      box.innerHTML = html`<h2 id="fm-title">${p.name}: which jobs can it take?</h2><p class="muted">Loading…</p>`;
      dialog.showModal();
      try {
        const m = await ctx.api.get(`/printers/${p.id}/matching`);
        const now = m.available
          ? html`<p class="ok">Available now: it takes the first job below that it can print.</p>`
          : html`<p>Takes no job now: <strong>${m.reasons.map(r => REASONS[r] || r).join(", ")}</strong>.</p>`;
        const rows = m.jobs.map(j => {
          const verdict = j.matches ? html`<span class="ok">can take it</span>`
            : j.fits ? html`fits; waits until the printer is free`
            : html`does not fit: ${j.missing_tags.join(", ")}`;
          const where = j.order_id
            ? html`<a href="#/orders/${j.order_id}">${j.order_name || "order"}</a>` : "stock";
          return html`<tr data-job-id="${j.print_job_id}"><td>${j.file_name}</td><td>${where}</td>
            <td class="small">${j.required_tags.length ? j.required_tags.join(", ") : "—"}</td><td>${verdict}</td></tr>`;
        });
        box.innerHTML = html`<h2 id="fm-title">${p.name}: which jobs can it take?</h2>${now}
          ${m.jobs.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Job</th>
            <th scope="col">For</th><th scope="col">Needs</th><th scope="col">This printer</th></tr></thead>
            <tbody>${rows}</tbody></table></div>
            ${m.queued > m.jobs.length ? html`<p class="muted small">The first ${m.jobs.length} of ${m.queued} queued jobs.</p>` : ""}`
          : html`<p class="muted">No queued jobs.</p>`}`;
      } catch (err) {
        box.innerHTML = html`<h2 id="fm-title">${p.name}</h2><p class="error" role="alert">${errorText(err)}</p>`;
      }
    };

    el.addEventListener("click", async (event) => {
      const button = event.target.closest("button");
      if (!button || !el.contains(button)) return;
      if (button.dataset.filter) { filter = button.dataset.filter; draw(); return; }
      if (button.dataset.close !== undefined) { button.closest("dialog").close(); return; }
      const id = button.closest("[data-printer-id]")?.dataset.printerId;
      const p = printers.find(x => x.id === id);
      if (!p) return;
      const what = button.dataset.act;
      if (what === "matching") { showMatching(p); return; }
      const done = { ready: `Bed of ${p.name} confirmed clear`, enable: `${p.name} enabled`,
                     disable: `${p.name} disabled` }[what];
      if (!done) return;
      button.disabled = true;
      try {
        await act(ctx.api.post(`/printers/${p.id}/${what}`), done);
        await load();
      } catch (err) {
        button.disabled = false;  // the toast says why
      }
    });

    ctx.onLive((kind, data) => {
      if (kind !== "telemetry" || data.type !== "printer.telemetry") return;
      telemetry.set(data.printer_id, { ...data, received: Date.now() });
      const p = printers.find(x => x.id === data.printer_id);
      const box = el.querySelector(`[data-printer-id="${CSS.escape(String(data.printer_id))}"]`);
      if (!p || !box) return;
      box.querySelector("[data-temps]").textContent = temps(data);
      const prog = progressOf(p, telemetry.get(p.id));
      const bar = box.querySelector(".progress");
      if (bar && prog) {
        bar.setAttribute("aria-valuenow", String(Math.round(prog.percent)));
        bar.firstElementChild.style.width = `${Math.round(prog.percent)}%`;
        box.querySelector("[data-progress]").textContent = progressText(prog);
      }
    });
    ctx.every(1000, () => {
      for (const p of printers) {
        if (!p.job) continue;
        const text = el.querySelector(`[data-printer-id="${CSS.escape(p.id)}"] [data-progress]`);
        if (text) text.textContent = progressText(progressOf(p, telemetry.get(p.id)));
      }
    });
    ctx.follow(e => e.subject_type === "printer" || String(e.type).startsWith("print-job."),
               load);
    await load();
  },
};
