// Orders: the list (status tabs, search, dates, pages on the list query language), one order's
// page (line items with parts progress, print jobs, shipment with label and tracking, the
// timeline of its events; hold, release, cancel, retry shipping) and manual order entry.
// Both pages refetch when a committed event touches what they show.
import { act, ago, ask, download, duration, errorText, html, pill, raw, table, throttle, when } from "../ui.js";

const OPEN = ["PENDING", "AWAITING_PAYMENT", "PROCESSING", "READY_FOR_FULFILLMENT"];
const CLOSED = new Set(["FULFILLED", "CANCELLED"]);
const TABS = [
  { key: "all", label: "All", statuses: null },
  { key: "open", label: "Open", statuses: OPEN },
  { key: "hold", label: "On hold", statuses: ["ON_HOLD"] },
  { key: "failed", label: "Failed", statuses: ["FAILED"] },
  { key: "fulfilled", label: "Fulfilled", statuses: ["FULFILLED"] },
  { key: "cancelled", label: "Cancelled", statuses: ["CANCELLED"] },
];
const PAGE = 25;
const ORDER_SUBJECTS = new Set(["order", "print_job", "shipment"]);
const LABELS = {
  PENDING: "Received", AWAITING_PAYMENT: "Awaiting payment", PROCESSING: "Printing",
  READY_FOR_FULFILLMENT: "Ready to ship", FULFILLED: "Fulfilled", ON_HOLD: "On hold",
  FAILED: "Failed", CANCELLED: "Cancelled",
};

// The list's filters outlive a visit to an order's page, so "back" finds them as they were.
const state = { tab: "all", q: "", from: "", to: "", source: "", offset: 0 };

export default {
  name: "orders", title: "Orders", permission: "orders.read",
  render(view, ctx) {
    // Pages draw into their own root: once the operator leaves, late answers land nowhere.
    const el = view.appendChild(document.createElement("div"));
    const [first] = ctx.args;
    if (first === "new") return entryPage(el, ctx);
    if (first) return orderPage(el, ctx, first);
    return listPage(el, ctx);
  },
};

function statusPill(status) {
  return pill(status, LABELS[status] || status);
}

function progress(done, total, label) {
  const pct = total ? Math.round((100 * done) / total) : 0;
  return html`<span class="ord-progress" title="${label}">
    <span class="progress" role="progressbar" aria-label="${label}" aria-valuemin="0"
      aria-valuemax="${total}" aria-valuenow="${done}"><span style="width:${pct}%"></span></span>
    <span class="small muted">${done}/${total}</span></span>`;
}

function customer(order) {
  const address = order.shipping_address || {};
  return html`<div>${address.name || order.email || "—"}</div>
    ${address.name && order.email ? html`<div class="small muted">${order.email}</div>` : ""}`;
}

// --- the list ---------------------------------------------------------------------------------

function listFilter(statuses) {
  const parts = [];
  if (statuses) parts.push({ status: { in: statuses } });
  const q = state.q.trim();
  if (q) parts.push({ OR: [{ name: { contains: q } }, { email: { contains: q } },
                           { reference: { contains: q } }] });
  if (state.from) parts.push({ received_at: { gte: new Date(`${state.from}T00:00`).toISOString() } });
  if (state.to) {
    const end = new Date(`${state.to}T00:00`);
    end.setDate(end.getDate() + 1);
    parts.push({ received_at: { lt: end.toISOString() } });
  }
  if (state.source) parts.push({ source: state.source });
  return parts.length ? { AND: parts } : undefined;
}

async function listPage(el, ctx) {
  el.innerHTML = html`
    <div class="row spread"><h1>Orders</h1>
      ${ctx.can("orders.create") ? html`<button type="button" class="primary" id="ord-new">New order</button>` : ""}</div>
    <div class="tabs ord-tabs" role="tablist" aria-label="Order status">${TABS.map(tab => html`
      <button type="button" role="tab" data-tab="${tab.key}" aria-selected="${tab.key === state.tab}">
        ${tab.label} <span class="count" data-count="${tab.key}"></span></button>`)}</div>
    <form class="row ord-filters" role="search" aria-label="Filter orders">
      <label class="grow">Search <input type="search" name="q" value="${state.q}"
        placeholder="Order number, email or reference"></label>
      <label>Received from <input type="date" name="from" value="${state.from}"></label>
      <label>to <input type="date" name="to" value="${state.to}"></label>
      <label>Source <select name="source">
        ${[["", "Any"], ["shopify", "Shopify"], ["manual", "Manual"]].map(([v, t]) =>
          html`<option value="${v}" ${raw(v === state.source ? "selected" : "")}>${t}</option>`)}
      </select></label>
    </form>
    <div id="ord-list" aria-live="polite"></div>
    <div class="row spread ord-pager">
      <span class="small muted" id="ord-range"></span>
      <span class="row"><button type="button" id="ord-prev">Previous</button>
        <button type="button" id="ord-next">Next</button></span>
    </div>`;
  const form = el.querySelector("form");
  const newButton = el.querySelector("#ord-new");
  if (newButton) newButton.addEventListener("click", () => ctx.navigate("#/orders/new"));
  let total = 0;
  let seq = 0;

  const load = async () => {
    const mine = ++seq;
    const tab = TABS.find(t => t.key === state.tab) || TABS[0];
    const page = await ctx.api.post("/orders/search", {
      filter: listFilter(tab.statuses), sort: "received_at:desc", limit: PAGE,
      offset: state.offset, meta: true, include: "line_items" });
    if (mine !== seq) return;  // a newer load is on its way
    total = page.total;
    el.querySelector("#ord-list").innerHTML = table([
      { label: "Order", cell: o => html`<a href="#/orders/${o.id}">${o.name}</a>
          ${o.source === "manual" ? html`<span class="small muted"> manual</span>` : ""}` },
      { label: "Customer", cell: customer },
      { label: "Items", cell: o => html`<span class="small">${o.line_items.map(li =>
          html`<div>${li.quantity} × ${li.sku || li.title}</div>`)}</span>` },
      { label: "Status", cell: o => statusPill(o.status) },
      { label: "Parts", cell: o => progress(o.parts_completed, o.parts_total, `Parts printed of ${o.name}`) },
      { label: "Received", cell: o => html`<span title="${when(o.received_at)}">${ago(o.received_at)}</span>` },
    ], page.data, { empty: "No orders match.", rowAttrs: o => html`data-order="${o.id}"` });
    const shown = page.data.length;
    el.querySelector("#ord-range").textContent = shown
      ? `${state.offset + 1}–${state.offset + shown} of ${total}` : "";
    el.querySelector("#ord-prev").disabled = state.offset === 0;
    el.querySelector("#ord-next").disabled = state.offset + shown >= total;
  };
  let countSeq = 0;
  const countTabs = async () => {
    const mine = ++countSeq;
    const counts = await Promise.all(TABS.map(t => ctx.api.post("/orders/search", {
      filter: listFilter(t.statuses), limit: 1, meta: true, fields: "id" })));
    if (mine !== countSeq) return;
    TABS.forEach((t, i) => {
      el.querySelector(`[data-count="${t.key}"]`).textContent = String(counts[i].total);
    });
  };
  // One count per tab: at most every 2 s while events keep coming (the page itself follows
  // faster), so an open list does not cost the API a burst of counts per event.
  const recount = throttle(countTabs, 2000);
  const showPage = () => load().catch(err => {
    el.querySelector("#ord-list").innerHTML = html`<p class="error" role="alert">${errorText(err)}</p>`;
  });
  const reload = () => { recount(); return showPage(); };

  el.querySelector(".tabs").addEventListener("click", event => {
    const button = event.target.closest("button[data-tab]");
    if (!button) return;
    state.tab = button.dataset.tab;
    state.offset = 0;
    for (const b of el.querySelectorAll("[data-tab]")) {
      b.setAttribute("aria-selected", String(b === button));
    }
    showPage();  // the counts do not depend on the tab
  });
  let typing = null;
  form.addEventListener("input", event => {
    state.q = form.elements.q.value;
    state.from = form.elements.from.value;
    state.to = form.elements.to.value;
    state.source = form.elements.source.value;
    state.offset = 0;
    clearTimeout(typing);
    typing = setTimeout(reload, event.target.name === "q" ? 250 : 0);
  });
  form.addEventListener("submit", event => { event.preventDefault(); reload(); });
  el.querySelector("#ord-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE); showPage();
  });
  el.querySelector("#ord-next").addEventListener("click", () => {
    state.offset += PAGE; showPage();
  });
  ctx.follow(ev => ORDER_SUBJECTS.has(ev.subject_type), reload);  // before the first read
  recount();
  await load();
  return () => clearTimeout(typing);
}

// --- one order --------------------------------------------------------------------------------

const EVENT_TITLES = {
  "order.created": "Order received", "order.paid": "Paid", "order.status-changed": "Status",
  "order.held": "Held", "order.released": "Released", "order.cancelled": "Cancelled",
  "order.printing": "Printing started", "order.ready-for-fulfillment": "All parts ready",
  "order.shipped": "Shipped", "order.fulfilled": "Fulfilled", "order.delivered": "Delivered",
  "order.edited": "Edited by the shop", "order.refunded": "Refunded",
  "line-item.status-changed": "Line item", "line-item.skipped": "Line item skipped",
  "shipment.created": "Parcel and label created", "shipment.status-changed": "Shipment",
  "shipment.tracking-updated": "Tracking updated", "shipment.delivered": "Parcel delivered",
  "shipment.fulfilment-failed": "Shopify refused the fulfilment",
  "shipment.shopify-updated": "Shopify tracking updated",
};

function eventDetail(ev, skus) {
  const d = ev.data || {};
  const bits = [];
  if (ev.type === "order.created") bits.push(`${(d.line_items || []).length} line item(s)`);
  if (ev.type === "line-item.status-changed" || ev.type === "line-item.skipped") {
    bits.push(skus.get(d.line_item_id) || d.sku || "");
  }
  if (d.previous_status && d.new_status) bits.push(`${d.previous_status} → ${d.new_status}`);
  if (ev.type === "order.ready-for-fulfillment") bits.push(`${d.completed_parts}/${d.total_parts} parts`);
  if (d.tracking_number) bits.push(`tracking ${d.tracking_number}`);
  if (d.carrier) bits.push(d.carrier);
  if (d.by) bits.push(`by ${d.by}`);
  if (d.reason) bits.push(`“${d.reason}”`);
  return bits.filter(Boolean).join(" · ");
}

function timeline(events, skus) {
  if (!events.length) return html`<p class="muted" data-empty>No events yet.</p>`;
  return html`<ol class="ord-timeline" aria-label="Timeline">${events.map(ev => html`
    <li data-type="${ev.type}"><time datetime="${ev.occurred_at}">${when(ev.occurred_at)}</time>
      <strong>${EVENT_TITLES[ev.type] || ev.type}</strong>
      <span class="muted">${eventDetail(ev, skus)}</span></li>`)}</ol>`;
}

function addressBlock(a) {
  if (!a) return html`<span class="muted">No shipping address</span>`;
  const city = [a.zip, a.city].filter(Boolean).join(" ");
  return html`<address>${[a.name, a.company, a.address1, a.address2, city,
    [a.province_code, a.country_code].filter(Boolean).join(" "), a.phone]
    .filter(Boolean).map(line => html`${line}<br>`)}</address>`;
}

function shipmentCard(order, ctx) {
  const s = order.shipment;
  if (!s) {
    const why = CLOSED.has(order.status) ? "No parcel was made."
      : "A parcel is made when every part is printed.";
    return html`<p class="muted" data-empty>${why}</p>`;
  }
  const tracking = s.tracking_number
    ? (s.tracking_url ? html`<a href="${s.tracking_url}" target="_blank" rel="noopener noreferrer"
        data-tracking>${s.tracking_number}</a>` : html`<span data-tracking>${s.tracking_number}</span>`)
    : html`<span class="muted">not yet</span>`;
  return html`<dl class="ord-facts">
      <dt>Status</dt><dd data-shipment-status>${pill(s.status)}</dd>
      <dt>Carrier</dt><dd>${s.carrier || "—"}${s.shipping_method ? html` · ${s.shipping_method}` : ""}</dd>
      <dt>Tracking</dt><dd>${tracking}</dd>
      <dt>Weight</dt><dd>${s.weight_kg ? `${s.weight_kg} kg` : "—"}</dd>
      ${s.error ? html`<dt>Error</dt><dd class="error">${s.error}</dd>` : ""}
      ${s.fulfilment_error ? html`<dt>Shopify</dt><dd class="error">${s.fulfilment_error}</dd>` : ""}
    </dl>
    ${s.has_label && ctx.can("shipments.read") ? html`<button type="button" data-action="label">
      Download label (PDF)</button>` : ""}`;
}

function canRetryShipping(order) {
  if (order.status !== "READY_FOR_FULFILLMENT") return false;
  const s = order.shipment;
  return !s || s.status === "FAILED" || Boolean(s.error || s.fulfilment_error);
}

async function orderPage(el, ctx, orderId) {
  el.innerHTML = html`<p class="muted">Loading order…</p>`;
  const partNames = new Map();   // part id -> name, from the mappings (when readable)
  const printers = new Map();    // printer id -> name
  let order = null;
  let jobIds = new Set();
  let shipmentId = null;

  if (ctx.can("printers.read")) {
    ctx.api.get("/printers", { fields: "id,name", limit: 500 }).then(rows => {
      for (const p of rows) printers.set(p.id, p.name);
    }).catch(() => {});
  }
  const loadParts = async items => {
    if (!ctx.can("mappings.read")) return;
    const missing = [...new Set(items.map(li => li.mapping_id).filter(Boolean))]
      .filter(id => !partNames.has(`mapping:${id}`));
    await Promise.all(missing.map(async id => {
      partNames.set(`mapping:${id}`, true);
      try {
        const mapping = await ctx.api.get(`/product-mappings/${id}`);
        for (const part of mapping.parts) partNames.set(part.id, part.name);
      } catch { /* a deleted mapping: the job shows its part id */ }
    }));
  };

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const [detail, events] = await Promise.all([
      ctx.api.get(`/orders/${orderId}`),
      ctx.can("events.read") ? ctx.api.get(`/orders/${orderId}/events`, { limit: 500 }) : null,
    ]);
    await loadParts(detail.line_items);
    if (mine !== seq) return;  // a newer answer is on its way: never draw an older one over it
    order = detail;
    jobIds = new Set(order.print_jobs.map(j => j.id));
    shipmentId = order.shipment && order.shipment.id;
    draw(events);
  };

  const draw = events => {
    const o = order;
    const skus = new Map(o.line_items.map(li => [li.id, li.sku || li.title]));
    const closed = CLOSED.has(o.status);
    const actions = [
      !closed && !o.hold_reason && ctx.can("orders.hold")
        ? html`<button type="button" data-action="hold">Hold</button>` : "",
      (o.hold_reason || o.status === "ON_HOLD") && !closed && ctx.can("orders.release")
        ? html`<button type="button" data-action="release">Release</button>` : "",
      canRetryShipping(o) && ctx.can("shipments.retry")
        ? html`<button type="button" data-action="ship">Retry shipping</button>` : "",
      !closed && ctx.can("orders.cancel")
        ? html`<button type="button" class="danger" data-action="cancel">Cancel order</button>` : "",
    ];
    const reason = o.hold_reason || o.reason;
    el.innerHTML = html`
      <p class="small"><a href="#/orders">← Orders</a></p>
      <div class="row spread ord-head">
        <div class="row"><h1>Order ${o.name}</h1><span id="ord-status">${statusPill(o.status)}</span></div>
        <div class="row" role="group" aria-label="Order actions">${actions}</div>
      </div>
      ${reason ? html`<p class="ord-reason ${o.hold_reason ? "warn" : ""}" id="ord-reason">
        ${o.hold_reason ? "Held: " : ""}${reason}</p>` : ""}
      <div class="ord-grid">
        <section class="card" aria-labelledby="ord-h-summary">
          <h2 id="ord-h-summary">Summary</h2>
          <dl class="ord-facts">
            <dt>Customer</dt><dd>${customer(o)}</dd>
            <dt>Ship to</dt><dd>${addressBlock(o.shipping_address)}</dd>
            <dt>Source</dt><dd>${o.source === "manual" ? "Entered by hand" : "Shopify"}${
              o.reference ? html` · ${o.reference}` : ""}</dd>
            <dt>Payment</dt><dd>${o.financial_status || "—"}${o.total_price !== null
              ? html` · ${o.total_price} ${o.currency || ""}` : ""}</dd>
            <dt>Parts</dt><dd>${progress(o.parts_completed, o.parts_total, "Parts printed")}</dd>
            <dt>Received</dt><dd>${when(o.received_at)}</dd>
            ${o.ready_at ? html`<dt>Printed</dt><dd>${when(o.ready_at)}</dd>` : ""}
            ${o.fulfilled_at ? html`<dt>Fulfilled</dt><dd>${when(o.fulfilled_at)}</dd>` : ""}
            ${o.cancelled_at ? html`<dt>Cancelled</dt><dd>${when(o.cancelled_at)}</dd>` : ""}
          </dl>
        </section>
        <section class="card" aria-labelledby="ord-h-shipment">
          <h2 id="ord-h-shipment">Shipment</h2>
          <div id="ord-shipment">${shipmentCard(o, ctx)}</div>
        </section>
      </div>
      <section aria-labelledby="ord-h-items">
        <h2 id="ord-h-items">Line items</h2>
        ${table([
          { label: "SKU", cell: li => html`<strong>${li.sku || "—"}</strong>
              <div class="small muted">${li.title}</div>` },
          { label: "Qty", cell: li => li.quantity },
          { label: "Status", cell: li => pill(li.status) },
          { label: "Parts", cell: li => progress(li.parts_completed, li.parts_total, `Parts printed for ${li.sku || li.title}`) },
          { label: "Note", cell: li => li.reason ? html`<span class="small">${li.reason}</span>` : "" },
        ], o.line_items, { empty: "No line items.", rowAttrs: li => html`data-line="${li.sku}"` })}
      </section>
      <section aria-labelledby="ord-h-jobs">
        <h2 id="ord-h-jobs">Print jobs <span class="small muted">${
          o.print_jobs.filter(j => j.status === "COMPLETED").length}/${o.print_jobs.length} done</span></h2>
        <div id="ord-jobs">${table([
          { label: "Part", cell: j => html`${partNames.get(j.part_id) || "part"}
              <span class="small muted">#${j.copy_number}</span>
              <div class="small muted">${skus.get(j.line_item_id) || ""}</div>` },
          { label: "Status", cell: j => html`${pill(j.status)}${j.held ? html` ${pill("ON_HOLD", "held")}` : ""}` },
          { label: "Printer", cell: j => printers.get(j.printer_id) || (j.printer_id ? "…" : "—") },
          { label: "Attempts", cell: j => `${j.attempts}/${j.max_attempts}` },
          { label: "Started", cell: j => j.started_at ? when(j.started_at) : "—" },
          { label: "Took", cell: j => j.started_at && j.completed_at
              ? duration((new Date(j.completed_at) - new Date(j.started_at)) / 1000) : "—" },
          { label: "Error", cell: j => j.error ? html`<span class="small error">${j.error}</span>` : "" },
        ], o.print_jobs, { empty: "No print jobs yet.", rowAttrs: j => html`data-job="${j.id}"` })}</div>
      </section>
      ${events ? html`<section aria-labelledby="ord-h-timeline">
        <h2 id="ord-h-timeline">Timeline</h2>${timeline(events, skus)}</section>` : ""}`;
  };

  const reload = () => load().catch(err => {
    if (err.status === 404) el.innerHTML = html`<p class="error" role="alert">${errorText(err)}</p>`;
    else console.warn(err);
  });

  el.addEventListener("click", async event => {
    const button = event.target.closest("button[data-action]");
    if (!button || !order) return;
    const name = order.name;
    const action = button.dataset.action;
    button.disabled = true;
    try {
      if (action === "hold") {
        const reason = await ask(`Hold order ${name}`, { label: "Why hold it?" });
        if (reason === null) return;
        await act(ctx.api.post(`/orders/${orderId}/hold`, { reason }), `Order ${name} held`);
      } else if (action === "release") {
        await act(ctx.api.post(`/orders/${orderId}/release`), `Order ${name} released`);
      } else if (action === "cancel") {
        const reason = await ask(`Cancel order ${name}`, { label: "Why cancel it? (kept in the timeline)" });
        if (reason === null) return;
        await act(ctx.api.post(`/orders/${orderId}/cancel`, { reason }), `Order ${name} is being cancelled`);
      } else if (action === "ship") {
        await act(ctx.api.post(`/orders/${orderId}/ship`), "Shipping again");
      } else if (action === "label") {
        const res = await act(ctx.api.raw("GET", `/shipments/${shipmentId}/label`), null);
        const cd = res.headers.get("content-disposition") || "";
        const match = cd.match(/filename="?([^";]+)"?/);
        await download(res, match ? match[1] : `label-${name}.pdf`);
        return;
      }
      await reload();
    } catch { /* act has told the operator */ } finally {
      button.disabled = false;
    }
  });

  // Followed before the first read, so nothing committed while it is on its way is missed.
  ctx.follow(ev => (ev.subject_type === "order" && ev.subject_id === orderId)
    || (ev.subject_type === "print_job" && jobIds.has(ev.subject_id))
    || (ev.subject_type === "shipment" && ev.subject_id === shipmentId)
    // new jobs of this order are not known yet: any job event refetches while none is known
    || (ev.subject_type === "print_job" && order && !CLOSED.has(order.status) && jobIds.size === 0),
  reload);
  await load();
}

// --- manual entry -----------------------------------------------------------------------------

function lineRow(i) {
  return html`<div class="row ord-line" data-line-row>
    <label class="grow">SKU <input name="sku" required list="ord-skus" autocomplete="off"
      aria-label="SKU of line ${i}"></label>
    <label>Quantity <input name="quantity" type="number" min="1" max="10000" value="1" required
      aria-label="Quantity of line ${i}"></label>
    <button type="button" data-remove-line aria-label="Remove line ${i}">Remove</button>
  </div>`;
}

async function entryPage(el, ctx) {
  if (!ctx.can("orders.create")) {
    el.innerHTML = html`<p class="error" role="alert">Your role cannot enter orders.</p>`;
    return;
  }
  const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  el.innerHTML = html`
    <p class="small"><a href="#/orders">← Orders</a></p>
    <h1>New order</h1>
    <p class="muted small">A sale outside Shopify: printed, packed and shipped like any order.</p>
    <form class="ord-entry" id="ord-entry" novalidate>
      <section class="card"><h2>Order</h2>
        <div class="ord-fields">
          <label>Reference <input name="reference" required maxlength="100" value="manual-${stamp}"></label>
          <label>Order number shown <input name="name" maxlength="100" placeholder="the reference"></label>
          <label>Customer email <input name="email" type="email" maxlength="254"></label>
          <label>Payment <select name="financial_status">
            <option value="paid">Paid</option><option value="authorized">Authorized</option>
            <option value="pending">Pending</option></select></label>
          <label>Total <input name="total_price" type="number" min="0" step="0.01"></label>
          <label>Currency <input name="currency" value="EUR" pattern="[A-Z]{3}" maxlength="3"></label>
        </div>
      </section>
      <section class="card"><h2>Ship to</h2>
        <div class="ord-fields">
          <label>Name <input name="addr_name" required maxlength="200" autocomplete="name"></label>
          <label>Company <input name="company" maxlength="200"></label>
          <label>Street and number <input name="address1" required maxlength="200"></label>
          <label>Address line 2 <input name="address2" maxlength="200"></label>
          <label>Postcode <input name="zip" required maxlength="20"></label>
          <label>City <input name="city" required maxlength="100"></label>
          <label>Country code <input name="country_code" required pattern="[A-Za-z]{2}" maxlength="2"
            placeholder="NL"></label>
          <label>Phone <input name="phone" maxlength="40" type="tel"></label>
        </div>
      </section>
      <section class="card"><h2>Lines</h2>
        <div id="ord-lines">${lineRow(1)}</div>
        <datalist id="ord-skus"></datalist>
        <button type="button" id="ord-add-line">Add line</button>
      </section>
      <p class="error" id="ord-entry-error" role="alert"></p>
      <div class="row"><button type="submit" class="primary">Create order</button>
        <a href="#/orders">Cancel</a></div>
    </form>`;
  const form = el.querySelector("form");
  const lines = el.querySelector("#ord-lines");
  if (ctx.can("mappings.read")) {
    ctx.api.get("/product-mappings", { limit: 500, fields: "id,sku,name" }).then(rows => {
      el.querySelector("#ord-skus").innerHTML = html`${rows.map(m =>
        html`<option value="${m.sku}">${m.name}</option>`)}`.toString();
    }).catch(() => {});
  }
  el.querySelector("#ord-add-line").addEventListener("click", () => {
    lines.insertAdjacentHTML("beforeend", String(lineRow(lines.children.length + 1)));
    lines.lastElementChild.querySelector("input").focus();
  });
  lines.addEventListener("click", event => {
    if (event.target.closest("[data-remove-line]") && lines.children.length > 1) {
      event.target.closest("[data-line-row]").remove();
    }
  });
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const error = el.querySelector("#ord-entry-error");
    error.textContent = "";
    if (!form.checkValidity()) {
      form.reportValidity();
      error.textContent = "Fill in the marked fields.";
      return;
    }
    const f = form.elements;
    const opt = name => f[name].value.trim() || null;
    const body = {
      reference: f.reference.value.trim(),
      name: opt("name"),
      email: opt("email"),
      currency: f.currency.value.trim().toUpperCase() || "EUR",
      financial_status: f.financial_status.value,
      total_price: f.total_price.value === "" ? null : f.total_price.value,
      shipping_address: {
        name: f.addr_name.value.trim(), company: opt("company"), address1: f.address1.value.trim(),
        address2: opt("address2"), city: f.city.value.trim(), zip: f.zip.value.trim(),
        country_code: f.country_code.value.trim().toUpperCase(), phone: opt("phone"),
      },
      line_items: [...lines.querySelectorAll("[data-line-row]")].map(row => ({
        sku: row.querySelector("[name=sku]").value.trim(),
        quantity: Number(row.querySelector("[name=quantity]").value),
      })),
    };
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const made = await act(ctx.api.post("/orders", body), "Order created");
      ctx.navigate(`#/orders/${made.id}`);
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  form.elements.addr_name.focus();
}
