// GridFlock: plan a drawer as you type (the plate set drawn to scale from the preview's plan),
// follow the jobs through their steps, retry a failed one, download its plates, and see the
// tenant's presets. Routes: #/gridflock and #/gridflock/job/<id>.
import { ApiError } from "../api.js";
import { act, ago, debounce, download, duration, errorText, html, pill, table, when } from "../ui.js";

const STEPS = [["GENERATING_STL", "STL"], ["SLICING", "Slice"], ["UPLOADING", "Upload"],
               ["MAPPING", "Mapping"]];
const RUNNING = ["PENDING", "GENERATING_STL", "SLICING", "UPLOADING", "MAPPING"];
const FILTERS = [["", "All"], ["FAILED", "Failed"], ["RUNNING", "Running"],
                 ["COMPLETED", "Completed"]];
const LIST_FIELDS = "sku,printer_profile,status,failed_step,error,attempts,created_at,updated_at";
const PITCH = 42;
const MARGIN = 12;

// What the drawer form holds, kept while the operator visits other views.
const form = { width_mm: "523", depth_mm: "387", printer_profile: "", connector: "puzzle",
               magnets: false };
let drawings = 0;

const mm = value => `${Number(value).toLocaleString(undefined, { maximumFractionDigits: 1 })} mm`;
const plateFill = number => `hsl(${(number * 137) % 360},55%,82%)`;

/** The plate set of a plan (the preview's or a job's) as an inline SVG, 1 unit = 1 mm, north up:
 * each printed plate a rectangle with its number, the 42 mm cell grid over them. */
function drawPlan(plan) {
  const W = plan.width_mm, D = plan.depth_mm, pad = plan.padding || {};
  const id = `gf-cells-${++drawings}`;
  const gridX = pad.west || 0, gridTop = pad.north || 0;
  const gridW = (plan.cells_x || 0) * PITCH, gridH = (plan.cells_y || 0) * PITCH;
  const offsetY = (D - (pad.south || 0)) % PITCH;
  const sizes = new Map((plan.plates || []).map(p => [p.number, p]));
  const plates = (plan.placements || []).map(pl => {
    const x = pl.x_mm, y = D - pl.y_mm - pl.depth_mm, w = pl.width_mm, h = pl.depth_mm;
    const font = Math.min(w, h, 4 * PITCH / 2) * 0.45;
    const plate = sizes.get(pl.number) || {};
    return html`<g class="plate" data-number="${pl.number}">
      <title>Plate ${pl.number}: ${mm(plate.width_mm ?? w)} × ${mm(plate.depth_mm ?? h)}</title>
      <rect x="${x}" y="${y}" width="${w}" height="${h}" rx="2" fill="${plateFill(pl.number)}"/>
      <text x="${x + w / 2}" y="${y + h / 2}" font-size="${font}">${pl.number}</text></g>`;
  });
  const edges = (plan.placements || []).map(pl => html`<rect class="edge" x="${pl.x_mm}"
    y="${D - pl.y_mm - pl.depth_mm}" width="${pl.width_mm}" height="${pl.depth_mm}" rx="2"/>`);
  const label = `${mm(W)} × ${mm(D)} drawer: ${plan.total_plates} plates ` +
    `(${plan.unique_plates} unique)`;
  return html`<svg class="gf-plan" role="img" aria-label="${label}"
      data-plates="${plan.total_plates}"
      viewBox="${-MARGIN} ${-MARGIN} ${W + 2 * MARGIN} ${D + 2 * MARGIN}"
      preserveAspectRatio="xMidYMid meet">
    <defs><pattern id="${id}" width="${PITCH}" height="${PITCH}" patternUnits="userSpaceOnUse"
      x="${gridX}" y="${offsetY}"><path d="M${PITCH},0V${PITCH}H0" class="cell"/></pattern></defs>
    <rect class="drawer" x="0" y="0" width="${W}" height="${D}"/>
    ${plates}
    <rect x="${gridX}" y="${gridTop}" width="${gridW}" height="${gridH}" fill="url(#${id})"
      pointer-events="none"/>
    ${edges}
  </svg>`;
}

function planFacts(plan, sku) {
  return html`<dl class="gf-facts">
    ${sku ? html`<div><dt>SKU</dt><dd><code>${sku}</code></dd></div>` : ""}
    <div><dt>Plates</dt><dd data-total-plates>${plan.total_plates}</dd></div>
    <div><dt>Unique</dt><dd>${plan.unique_plates}</dd></div>
    <div><dt>Cells</dt><dd>${plan.cells_x} × ${plan.cells_y}</dd></div>
    <div><dt>Columns</dt><dd>${plan.columns}</dd></div>
    <div><dt>Height</dt><dd>${plan.plates && plan.plates[0] ? mm(plan.plates[0].height_mm) : "—"}</dd></div>
  </dl>`;
}

/** The pipeline as four chips: done, under way, failed, still to come. */
function steps(job) {
  const at = job.status === "FAILED" ? STEPS.findIndex(([s]) => s === job.failed_step)
    : job.status === "COMPLETED" ? STEPS.length : STEPS.findIndex(([s]) => s === job.status);
  const chips = STEPS.map(([name, label], i) => {
    const state = job.status === "COMPLETED" || i < at ? "done"
      : i === at ? (job.status === "FAILED" ? "failed" : "now") : "todo";
    return html`<li class="gf-step ${state}" data-state="${state}">${label}</li>`;
  });
  return html`<ol class="gf-steps" aria-label="Steps">${chips}</ol>`;
}

function fileName(response, fallback) {
  const header = response.headers.get("content-disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1] : fallback;
}

export default {
  name: "gridflock",
  title: "GridFlock",
  permission: "gridflock.read",
  async render(view, ctx) {
    // Our own element: its listeners go with it when the operator leaves the view.
    const el = document.createElement("div");
    view.replaceChildren(el);
    const [mode, jobId] = ctx.args;
    if (mode === "job" && jobId) return renderJob(el, ctx, jobId);
    return renderMain(el, ctx);
  },
};

async function retry(ctx, job, requested) {
  requested.add(job.id);
  try {
    await act(ctx.api.post(`/gridflock/jobs/${job.id}/retry`), `Retry of ${job.sku} queued`);
  } catch {
    requested.delete(job.id);
  }
}

function retryControl(ctx, job, requested) {
  if (job.status !== "FAILED" || !ctx.can("gridflock.retry")) return "";
  if (requested.has(job.id)) return html`<span class="pill busy" data-retry-requested>Retry requested</span>`;
  return html`<button type="button" data-retry="${job.id}" aria-label="Retry ${job.sku}">Retry</button>`;
}

// --- the main page: drawer form, jobs, presets ------------------------------------------------

async function renderMain(el, ctx) {
  const canPreview = ctx.can("gridflock.preview");
  const requested = new Set();  // retries sent whose job has not moved yet
  let filter = "";
  let jobs = [];
  let presets = [];
  let choices = null;

  el.innerHTML = html`
    <div class="row spread"><h1>GridFlock</h1></div>
    <section class="card gf-planner" aria-labelledby="gf-plan-title">
      <h2 id="gf-plan-title">Plan a drawer</h2>
      <div id="gf-form-slot"></div>
      <div class="gf-preview">
        <div id="gf-drawing" class="gf-drawing"></div>
        <div id="gf-summary" class="gf-summary"></div>
      </div>
    </section>
    <section aria-labelledby="gf-jobs-title">
      <div class="row spread">
        <h2 id="gf-jobs-title">Jobs</h2>
        <div class="tabs gf-filter" role="tablist" aria-label="Job status">
          ${FILTERS.map(([value, label]) => html`<button type="button" role="tab"
            data-filter="${value}" aria-selected="${value === filter}">${label}</button>`)}
        </div>
      </div>
      <div id="gf-jobs"></div>
    </section>
    <section aria-labelledby="gf-presets-title">
      <h2 id="gf-presets-title">Presets</h2>
      <div id="gf-presets"></div>
    </section>`;
  const $ = sel => el.querySelector(sel);

  // The drawer form and its live preview.
  if (!canPreview) {
    $("#gf-form-slot").innerHTML = html`<p class="muted">Your role can see GridFlock jobs but
      not plan drawers.</p>`;
    $(".gf-preview").hidden = true;
  }
  let asked = 0;
  const showError = message => {
    $("#gf-summary").innerHTML = html`<p class="error gf-refused" role="alert">${message}</p>`;
    $("#gf-drawing").classList.add("stale");
  };
  const preview = async () => {
    const width = Number(form.width_mm), depth = Number(form.depth_mm);
    if (!form.width_mm || !form.depth_mm || !(width > 0) || !(depth > 0)) {
      showError("Enter the drawer's width and depth in millimetres.");
      return;
    }
    const mine = ++asked;
    const body = { width_mm: width, depth_mm: depth,
                   options: { magnets: form.magnets, connector: form.connector } };
    if (form.printer_profile) body.printer_profile = form.printer_profile;
    try {
      const answer = await ctx.api.post("/gridflock/preview", body);
      if (mine !== asked) return;  // a newer keystroke's answer decides
      $("#gf-drawing").classList.remove("stale");
      $("#gf-drawing").innerHTML = drawPlan(answer.plan);
      const plates = answer.plan.plates.map(p => html`<li><span class="gf-swatch"
        style="background:${plateFill(p.number)}"></span> Plate ${p.number} ×${p.count}
        <span class="muted">${mm(p.width_mm)} × ${mm(p.depth_mm)}</span></li>`);
      $("#gf-summary").innerHTML = html`${planFacts(answer.plan, answer.sku)}
        <ul class="gf-plates" aria-label="Unique plates">${plates}</ul>`;
    } catch (err) {
      if (mine !== asked) return;
      if (!(err instanceof ApiError)) throw err;
      showError(err.problem && err.problem.detail ? err.problem.detail : errorText(err));
    }
  };
  const later = debounce(preview, 200);

  const drawForm = () => {
    if (!canPreview) return;
    const profiles = choices ? choices.profiles : [];
    if (!form.printer_profile && choices) form.printer_profile = choices.default_profile;
    const range = choices ? html`<p class="muted small">Each side from ${mm(choices.min_mm)} to
      ${mm(choices.max_mm)} (the tenant's GridFlock limits).</p>` : "";
    $("#gf-form-slot").innerHTML = html`<form class="gf-form" id="gf-form" novalidate>
      <label>Width (mm) <input name="width_mm" type="number" inputmode="decimal" min="0"
        step="0.5" value="${form.width_mm}"></label>
      <span class="gf-times" aria-hidden="true">×</span>
      <label>Depth (mm) <input name="depth_mm" type="number" inputmode="decimal" min="0"
        step="0.5" value="${form.depth_mm}"></label>
      <label>Printer <select name="printer_profile">${profiles.map(p => html`<option
        value="${p.id}" ${p.id === form.printer_profile ? "selected" : ""}>${p.name}
        (${p.bed_x_mm} × ${p.bed_y_mm})</option>`)}</select></label>
      <label>Connectors <select name="connector">
        <option value="puzzle" ${form.connector === "puzzle" ? "selected" : ""}>Puzzle</option>
        <option value="none" ${form.connector === "none" ? "selected" : ""}>None</option>
      </select></label>
      <label class="inline"><input type="checkbox" name="magnets" ${form.magnets ? "checked" : ""}>
        Magnets</label>
    </form>${range}`;
    const f = $("#gf-form");
    f.addEventListener("input", event => {
      const input = event.target;
      form[input.name] = input.type === "checkbox" ? input.checked : input.value;
      later();
    });
    f.addEventListener("submit", event => { event.preventDefault(); preview(); });
  };

  // Jobs.
  const drawJobs = () => {
    const shown = jobs.filter(j => !filter || (filter === "RUNNING" ? RUNNING.includes(j.status)
      : j.status === filter));
    $("#gf-jobs").innerHTML = table([
      { label: "SKU", cell: j => html`<a href="#/gridflock/job/${j.id}">${j.sku}</a>` },
      { label: "Printer", cell: j => j.printer_profile },
      { label: "Status", cell: j => pill(j.status) },
      { label: "Steps", cell: j => steps(j) },
      { label: "Retries", cell: j => html`<span data-attempts>${j.attempts}</span>` },
      { label: "Updated", cell: j => html`<span title="${when(j.updated_at)}">${ago(j.updated_at)}</span>` },
      { label: "Problem", cell: j => j.error ? html`<span class="gf-error" title="${j.error}">${j.error}</span>` : "" },
      { label: "", cell: j => retryControl(ctx, j, requested) },
    ], shown, { empty: filter ? "No jobs in this state." : "No GridFlock jobs yet: they start when an order asks for a new drawer size.",
                rowAttrs: j => html`data-job="${j.id}" data-status="${j.status}"` });
  };
  const loadJobs = async () => {
    const params = { limit: 100, fields: LIST_FIELDS };
    jobs = await ctx.api.list("/gridflock/jobs", params);
    for (const job of jobs) if (job.status !== "FAILED") requested.delete(job.id);
    drawJobs();
  };

  // Presets (read-only here: they are the catalogue's, edited through the API).
  const drawPresets = () => {
    $("#gf-presets").innerHTML = table([
      { label: "Name", cell: p => html`<code>${p.name}</code>` },
      { label: "Printer", cell: p => p.printer_profile },
      { label: "Magnets", cell: p => p.magnets ? `${p.magnet_diameter_mm} × ${p.magnet_depth_mm} mm` : "no" },
      { label: "Connectors", cell: p => p.connector },
      { label: "Margin", cell: p => mm(p.margin_mm) },
      { label: "Brim", cell: p => p.brim_mm ? mm(p.brim_mm) : "none" },
      { label: "Filament", cell: p => String(p.filament).toUpperCase() },
      { label: "", cell: p => canPreview ? html`<button type="button" data-use="${p.name}"
          aria-label="Plan with preset ${p.name}">Plan with it</button>` : "" },
    ], presets, { empty: "No presets: orders use the tenant's GridFlock settings." });
  };
  const loadPresets = async () => {
    presets = await ctx.api.get("/gridflock/presets");
    drawPresets();
  };

  el.addEventListener("click", async event => {
    const tab = event.target.closest("[data-filter]");
    if (tab) {
      filter = tab.dataset.filter;
      for (const b of el.querySelectorAll("[data-filter]")) {
        b.setAttribute("aria-selected", String(b === tab));
      }
      drawJobs();
      return;
    }
    const retryButton = event.target.closest("[data-retry]");
    if (retryButton) {
      const job = jobs.find(j => j.id === retryButton.dataset.retry);
      if (!job) return;
      retryButton.disabled = true;
      await retry(ctx, job, requested);
      drawJobs();
      return;
    }
    const use = event.target.closest("[data-use]");
    if (use) {
      const preset = presets.find(p => p.name === use.dataset.use);
      if (!preset) return;
      Object.assign(form, { printer_profile: preset.printer_profile, magnets: preset.magnets,
                            connector: preset.connector });
      drawForm();
      $("#gf-form").elements.width_mm.focus();
      preview();
    }
  });

  const [planning] = await Promise.all([
    ctx.api.get("/gridflock/profiles"), loadJobs(), loadPresets()]);
  choices = planning;
  drawForm();
  if (canPreview) preview();
  ctx.follow(e => String(e.type).startsWith("gridflock.") &&
                  e.type !== "gridflock.preset-changed", loadJobs);
  ctx.follow(e => e.type === "gridflock.preset-changed", loadPresets);
}

// --- one job: steps, plan and plates -----------------------------------------------------------

async function renderJob(el, ctx, jobId) {
  const requested = new Set();
  let job = null;

  const draw = () => {
    const planned = new Map(((job.plan && job.plan.plates) || []).map(p => [p.number, p]));
    const made = new Map((job.plates || []).map(p => [p.number, p]));
    const numbers = [...new Set([...planned.keys(), ...made.keys()])].sort((a, b) => a - b);
    const rows = numbers.map(n => ({ number: n, plan: planned.get(n) || {}, file: made.get(n) || {} }));
    const hasPlan = job.plan && job.plan.placements && job.plan.placements.length;
    const downloads = r => {
      const stl = Boolean(r.file.stl_path), gcode = Boolean(r.file.gcode_path || r.file.file_id);
      return html`<span class="row">
        <button type="button" data-download="stl" data-plate="${r.number}" ${stl ? "" : "disabled"}
          aria-label="Download plate ${r.number} STL">STL</button>
        <button type="button" data-download="gcode" data-plate="${r.number}" ${gcode ? "" : "disabled"}
          aria-label="Download plate ${r.number} G-code">G-code</button></span>`;
    };
    el.innerHTML = html`
      <p><a href="#/gridflock">← GridFlock</a></p>
      <div class="row spread gf-job-head" data-job="${job.id}" data-status="${job.status}">
        <h1><code>${job.sku}</code> ${pill(job.status)}</h1>
        <div class="row">${retryControl(ctx, job, requested)}</div>
      </div>
      ${steps(job)}
      ${job.error ? html`<p class="error gf-job-error" role="alert">Failed at
        ${(STEPS.find(([s]) => s === job.failed_step) || [0, job.failed_step])[1]}: ${job.error}</p>` : ""}
      <dl class="gf-facts">
        <div><dt>Printer</dt><dd>${job.printer_profile}</dd></div>
        <div><dt>Retries</dt><dd data-attempts>${job.attempts}</dd></div>
        <div><dt>STL runs</dt><dd>${job.stl_runs}</dd></div>
        <div><dt>Slicer runs</dt><dd>${job.slice_runs}</dd></div>
        <div><dt>Created</dt><dd>${when(job.created_at)}</dd></div>
        <div><dt>Started</dt><dd>${when(job.started_at)}</dd></div>
        <div><dt>Completed</dt><dd>${when(job.completed_at)}</dd></div>
        ${job.mapping_id ? html`<div><dt>Product</dt><dd><a href="#/mappings/${job.mapping_id}">mapping</a></dd></div>` : ""}
      </dl>
      <div class="gf-preview">
        <div class="gf-drawing">${hasPlan ? drawPlan(job.plan) : html`<p class="muted">No plan recorded.</p>`}</div>
        <div class="gf-summary">${hasPlan ? planFacts(job.plan, "") : ""}</div>
      </div>
      <h2>Plates</h2>
      ${table([
        { label: "Plate", cell: r => html`<span class="gf-swatch" style="background:${plateFill(r.number)}"></span> ${r.number}` },
        { label: "Copies", cell: r => r.plan.count ?? r.file.count ?? "—" },
        { label: "Size", cell: r => r.plan.width_mm ? `${mm(r.plan.width_mm)} × ${mm(r.plan.depth_mm)}` : "—" },
        { label: "Print time", cell: r => r.file.print_seconds != null ? duration(r.file.print_seconds) : "—" },
        { label: "Filament", cell: r => r.file.filament_g != null ? `${Number(r.file.filament_g).toFixed(1)} g` : "—" },
        { label: "Files", cell: downloads },
      ], rows, { empty: "No plates yet." , rowAttrs: r => html`data-plate-row="${r.number}"` })}`;
  };

  const load = async () => {
    job = await ctx.api.get(`/gridflock/jobs/${encodeURIComponent(jobId)}`);
    if (job.status !== "FAILED") requested.clear();
    draw();
  };

  el.addEventListener("click", async event => {
    const retryButton = event.target.closest("[data-retry]");
    if (retryButton) {
      retryButton.disabled = true;
      await retry(ctx, job, requested);
      draw();
      return;
    }
    const button = event.target.closest("[data-download]");
    if (!button) return;
    const { download: kind, plate } = button.dataset;
    button.disabled = true;
    try {
      const response = await act(ctx.api.raw("GET",
        `/gridflock/jobs/${job.id}/plates/${plate}/${kind}`), null);
      await download(response, fileName(response,
        `${job.sku.toLowerCase()}-plate${plate}.${kind === "stl" ? "stl" : "gcode"}`));
    } catch {
      // act() showed the server's reason
    } finally {
      button.disabled = false;
    }
  });

  await load();
  ctx.follow(e => String(e.type).startsWith("gridflock.") && e.type !== "gridflock.preset-changed",
             load);
}
