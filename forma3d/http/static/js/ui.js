// Small building blocks every view shares: escaping templates, status pills, tables, toasts,
// the reason dialog and formatting. Views build HTML with `html` so every value is escaped.

class Raw { constructor(text) { this.text = text; } toString() { return this.text; } }

/** Marks trusted markup (already built by `html`) so it is not escaped again. */
export const raw = text => new Raw(String(text));

export function esc(value) {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return value.map(esc).join("");
  return String(value ?? "").replace(/[&<>"']/g, c => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

/** A template tag: interpolated values are escaped unless they are `raw` (or nested `html`). */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => { out += esc(value) + strings[i + 1]; });
  return new Raw(out);
}

const TONES = {
  good: ["FULFILLED", "COMPLETED", "DELIVERED", "SHIPPED", "READY", "OPERATIONAL", "LIVE", "OK",
         "FROM_STOCK", "ready", "idle", "operational", "connected", "healthy", "delivered"],
  busy: ["PRINTING", "PROCESSING", "QUEUED", "IN_PROGRESS", "PENDING", "ON_PRINTER", "RUNNING",
         "SLICING", "PLANNING", "LABEL_CREATED", "printing", "queued", "running"],
  warn: ["ON_HOLD", "NEEDS_MAPPING", "PAUSED", "AWAITING_BED_CLEAR", "READY_FOR_FULFILLMENT",
         "PARTIALLY_FULFILLED", "paused", "awaiting_bed_clear", "degraded", "needs attention"],
  bad: ["FAILED", "EXCEPTION", "ERROR", "CANCELLED", "OFFLINE", "failed", "error", "offline",
        "disconnected", "failing"],
};
const TONE_OF = new Map(Object.entries(TONES).flatMap(([tone, names]) => names.map(n => [n, tone])));

export function tone(status) { return TONE_OF.get(String(status)) || ""; }

export function pill(status, label = status) {
  return html`<span class="pill ${tone(status)}" data-status="${status}">${label ?? "—"}</span>`;
}

/** columns: [{label, cell: row => value}]; rows: objects. An empty list says so. */
export function table(columns, rows, { empty = "Nothing here yet.", rowAttrs = () => "" } = {}) {
  if (!rows.length) return html`<p class="muted" data-empty>${empty}</p>`;
  const head = columns.map(c => html`<th scope="col">${c.label}</th>`);
  const body = rows.map(row => html`<tr ${raw(rowAttrs(row))}>${
    columns.map(c => html`<td>${c.cell(row)}</td>`)}</tr>`);
  return html`<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = document.createElement("div");
  item.className = `toast ${kind}`;
  item.textContent = message;
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** The server's words for a failed call (problem+json detail, with field errors). */
export function errorText(err) {
  const problem = err && err.problem;
  if (!problem) return String(err && err.message || err);
  const fields = (problem.errors || []).map(e => `${(e.loc || []).join(".")}: ${e.msg}`);
  return [problem.detail || problem.title, ...fields].filter(Boolean).join(" — ");
}

/** Runs a write and reports it: a toast on success, the server's reason on failure. */
export async function act(promise, done = "Done") {
  try {
    const result = await promise;
    if (done) toast(done);
    return result;
  } catch (err) {
    toast(errorText(err), "error");
    throw err;
  }
}

/** Asks for a line of text (a reason) in a modal dialog; resolves null when cancelled. */
export function ask(title, { label = "Reason", value = "", required = true } = {}) {
  const dialog = document.getElementById("ask");
  const input = document.getElementById("ask-input");
  document.getElementById("ask-title").textContent = title;
  document.querySelector("#ask-label span").textContent = label;
  input.value = value;
  input.required = required;
  return new Promise(resolve => {
    const form = document.getElementById("ask-form");
    const cancel = document.getElementById("ask-cancel");
    const finish = result => {
      form.onsubmit = null; cancel.onclick = null; dialog.oncancel = null;
      dialog.close();
      resolve(result);
    };
    form.onsubmit = e => { e.preventDefault(); if (input.value.trim() || !required) finish(input.value.trim()); };
    cancel.onclick = () => finish(null);
    dialog.oncancel = () => finish(null);
    dialog.showModal();
    input.focus();
  });
}

export function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }

export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return seconds < 60 ? `${Math.round(seconds)} s ago` : seconds < 3600
    ? `${Math.round(seconds / 60)} min ago` : seconds < 86400
    ? `${Math.round(seconds / 3600)} h ago` : `${Math.round(seconds / 86400)} d ago`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min` : `${s} s`;
}

/** Calls `fn` at most once per `ms` after the last call: many live events, one refetch. */
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Fetches a file through the session and hands it to the browser as a download. */
export async function download(response, filename) {
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Runs `fn` at once, then at most once per `ms` while calls keep coming, never two at a time:
 * unlike a debounce, a busy farm's steady stream of events cannot starve the refresh. */
export function throttle(fn, ms = 300) {
  let busy = false, pending = false;
  const fire = async () => {
    if (busy) { pending = true; return; }
    busy = true;
    try { await fn(); } catch (err) { console.warn(err); }
    await new Promise(resolve => setTimeout(resolve, ms));
    busy = false;
    if (pending) { pending = false; fire(); }
  };
  return fire;
}
