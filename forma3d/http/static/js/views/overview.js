// At a glance: orders by status, jobs completed per hour (last 24 h), printer utilisation and the
// oldest waiting order, from GET /overview. Charts are inline SVG drawn here (no library); each
// has its figures beside it as text, so the numbers can be read as well as seen. Committed
// order, job and printer events refetch (at once, then throttled while events keep coming).
import { ago, html, pill, tone } from "../ui.js";

const PLACES = [["printing", "Printing"], ["idle", "Idle"], ["attention", "Needs attention"],
                ["disabled", "Disabled"], ["offline", "Offline"]];
const label = status => status.charAt(0) + status.slice(1).toLowerCase().replace(/_/g, " ");

/** Horizontal bars: rows of [key, label, value, toneClass]. */
function barChart(rows, title) {
  const max = Math.max(1, ...rows.map(r => r[2]));
  const rowH = 26, labelW = 150, barW = 260, numW = 44;
  const body = rows.map(([key, text, value, cls], i) => {
    const w = Math.round(barW * value / max);
    const y = i * rowH;
    return html`<g data-key="${key}"><text x="0" y="${y + 17}" class="lbl">${text}</text>
      <rect x="${labelW}" y="${y + 5}" width="${barW}" height="16" rx="3" class="track"></rect>
      <rect x="${labelW}" y="${y + 5}" width="${w}" height="16" rx="3" class="fill ${cls}"></rect>
      <text x="${labelW + barW + 8}" y="${y + 17}" class="num">${value}</text></g>`;
  });
  return html`<svg class="chart" viewBox="0 0 ${labelW + barW + numW} ${rows.length * rowH}"
    role="img" aria-label="${title}: ${rows.map(r => `${r[1]} ${r[2]}`).join(", ")}">${body}</svg>`;
}

/** Columns per hour, labelled every 6 hours. */
function columnChart(hours, title) {
  const max = Math.max(1, ...hours.map(h => h.completed));
  const colW = 18, gap = 4, h = 120, base = h + 4, pad = 16;
  const body = hours.map((hour, i) => {
    const x = pad + i * (colW + gap);
    const ch = Math.round(h * hour.completed / max);
    const at = new Date(hour.hour);
    const tick = i % 6 === 0 || i === hours.length - 1
      ? html`<text x="${x + colW / 2}" y="${base + 16}" class="tick" text-anchor="middle">${String(at.getHours()).padStart(2, "0")}:00</text>` : "";
    return html`<g><rect x="${x}" y="${base - ch}" width="${colW}" height="${Math.max(ch, 1)}" rx="2"
      class="fill busy${hour.completed ? "" : " zero"}"><title>${at.toLocaleString()}: ${hour.completed}</title></rect>${tick}</g>`;
  });
  const width = 2 * pad + hours.length * (colW + gap);
  return html`<svg class="chart" viewBox="0 -14 ${width} ${base + 34}" role="img"
    aria-label="${title}: ${hours.reduce((n, x) => n + x.completed, 0)} in ${hours.length} hours, at most ${max} in an hour">
    <text x="0" y="-2" class="tick">max ${max}/h</text>
    <line x1="0" x2="${width}" y1="${base}" y2="${base}" class="axis"></line>${body}</svg>`;
}

/** A ring split by share: parts are [key, label, value]. */
function donut(parts, title) {
  const total = parts.reduce((n, p) => n + p[2], 0);
  const r = 52, c = 2 * Math.PI * r;
  let offset = 0;
  const arcs = total ? parts.filter(p => p[2]).map(([key, , value]) => {
    const len = c * value / total;
    const arc = html`<circle r="${r}" cx="70" cy="70" class="arc p-${key}"
      stroke-dasharray="${len} ${c - len}" stroke-dashoffset="${-offset}"></circle>`;
    offset += len;
    return arc;
  }) : [html`<circle r="${r}" cx="70" cy="70" class="arc empty"></circle>`];
  return html`<svg class="chart donut" viewBox="0 0 140 140" role="img"
    aria-label="${title}: ${parts.map(p => `${p[1]} ${p[2]}`).join(", ")}">
    <g transform="rotate(-90 70 70)">${arcs}</g>
    <text x="70" y="68" text-anchor="middle" class="big">${total}</text>
    <text x="70" y="88" text-anchor="middle" class="tick">printers</text></svg>`;
}

export default {
  name: "overview",
  title: "Overview",
  permission: "orders.read",
  async render(el, ctx) {
    const load = async () => {
      const o = await ctx.api.get("/overview");
      if (el.dataset.view !== "overview") return;  // the operator has moved on meanwhile
      const statuses = Object.entries(o.orders_by_status);
      const orders = statuses.reduce((n, [, v]) => n + v, 0);
      const done = o.jobs_completed_per_hour.reduce((n, h) => n + h.completed, 0);
      const places = PLACES.map(([key, text]) => [key, text, o.printers_by_place[key] || 0]);
      const printers = places.reduce((n, p) => n + p[2], 0);
      const oldest = o.oldest_waiting_order;
      el.innerHTML = html`<h1>Overview</h1>
        <div class="ov-kpis">
          <div class="card kpi" data-kpi="waiting"><span class="muted small">Waiting orders</span><strong>${o.waiting_orders}</strong></div>
          <div class="card kpi" data-kpi="completed"><span class="muted small">Jobs completed, 24 h</span><strong>${done}</strong></div>
          <div class="card kpi" data-kpi="printing"><span class="muted small">Printers printing</span><strong>${o.printers_by_place.printing || 0} / ${printers}</strong></div>
          <div class="card kpi ${o.printers_by_place.attention ? "warn" : ""}" data-kpi="attention"><span class="muted small">Printers needing attention</span><strong>${o.printers_by_place.attention || 0}</strong></div>
        </div>
        <div class="ov-grid">
          <section class="card" aria-labelledby="ov-orders" data-chart="orders">
            <h2 id="ov-orders">Orders by status <span class="muted">${orders}</span></h2>
            ${barChart(statuses.map(([s, v]) => [s, label(s), v, tone(s)]), "Orders by status")}
          </section>
          <section class="card" aria-labelledby="ov-jobs" data-chart="jobs">
            <h2 id="ov-jobs">Jobs completed per hour <span class="muted">last 24 h</span></h2>
            ${columnChart(o.jobs_completed_per_hour, "Jobs completed per hour")}
          </section>
          <section class="card" aria-labelledby="ov-printers" data-chart="printers">
            <h2 id="ov-printers">Printer utilisation</h2>
            <div class="row ov-donut">${donut(places, "Printers")}
              <ul class="legend">${places.map(([key, text, n]) => html`<li data-place="${key}">
                <span class="dot p-${key}" aria-hidden="true"></span>${text} <strong>${n}</strong></li>`)}</ul></div>
          </section>
          <section class="card" aria-labelledby="ov-oldest" data-oldest>
            <h2 id="ov-oldest">Oldest waiting order</h2>
            ${oldest ? html`<p class="ov-oldest"><a href="#/orders/${oldest.id}">${oldest.name}</a> ${pill(oldest.status, label(oldest.status))}</p>
              <p class="muted">received ${ago(oldest.received_at)} · ${new Date(oldest.received_at).toLocaleString()}</p>`
              : html`<p class="muted" data-empty>No order is waiting.</p>`}
          </section>
        </div>
        <p class="muted small">As of ${new Date(o.at).toLocaleTimeString()}</p>`;
    };
    await load();
    ctx.follow(e => ["order", "print_job", "printer"].includes(e.subject_type)
      || /^(order|print-job|printer)\./.test(String(e.type)), load);
    ctx.every(60_000, load);  // the hours move on and "received … ago" ages
  },
};
