// Stock: levels per product (on hand, reserved, available, min/max), count corrections and scrap
// with a reason, each product's stock plan, stock batches (print to stock now, cancel), the
// ledger newest first with its CSV export, and the tenant's Stock Management settings.
import { query } from "../api.js";
import { act, ago, ask, download, html, pill, table, when } from "../ui.js";

const LEDGER_PAGE = 50;
const TYPES = { PRODUCED: "Produced", CONSUMED: "Shipped", RESERVED: "Reserved",
                RELEASED: "Released", ADJUSTED: "Adjusted", SCRAPPED: "Scrapped",
                RETURNED: "Returned" };

const product = p => html`<span class="st-product"><strong>${p.sku}</strong>${p.variant_id
  ? html` <span class="muted">/ ${p.variant_id}</span>` : ""}${p.name && p.name !== p.sku
  ? html`<span class="muted small">${p.name}</span>` : ""}</span>`;

/** Where a product stands against its plan: below the minimum wants printing, above the
 * maximum has too much on the shelf. */
function standing(level) {
  if (level.minimum > 0 && level.available + level.in_production < level.minimum) {
    return html`<span class="pill warn" data-standing="low">Below minimum</span>`;
  }
  if (level.maximum !== null && level.on_hand > level.maximum) {
    return html`<span class="pill" data-standing="over">Over maximum</span>`;
  }
  return html`<span class="pill good" data-standing="ok">OK</span>`;
}

const int = value => (value === "" || value === null || value === undefined ? null : Number(value));

export default {
  name: "stock",
  title: "Stock",
  permission: "stock.read",
  async render(view, ctx) {
    // Our own element: its listeners go with it when the operator leaves the view.
    const el = document.createElement("div");
    view.replaceChildren(el);
    const canAdjust = ctx.can("stock.adjust");
    const canPlan = ctx.can("stock.write");
    const canPrint = ctx.can("stock.print");
    const canSettings = ctx.can("stock.settings");
    const manages = canAdjust || canPlan || canPrint;
    let levels = [];
    let untracked = [];
    let ledger = [];
    let batches = [];
    let settings = null;
    let settingsDirty = false;
    let ledgerFor = "";
    let ledgerLimit = LEDGER_PAGE;
    let open = null;  // the product the manage panel shows

    el.innerHTML = html`
      <div class="row spread"><h1>Stock</h1><div id="st-totals" class="st-totals"></div></div>
      <section class="card st-settings" id="st-settings" aria-labelledby="st-settings-title"></section>
      <section aria-labelledby="st-levels-title">
        <div class="row spread">
          <h2 id="st-levels-title">Levels</h2>
          <div id="st-add" class="row"></div>
        </div>
        <div id="st-levels"></div>
      </section>
      <section class="card st-panel" id="st-panel" aria-labelledby="st-panel-title" hidden></section>
      <section aria-labelledby="st-batches-title">
        <h2 id="st-batches-title">Batches</h2>
        <div id="st-print"></div>
        <div id="st-batches"></div>
      </section>
      <section aria-labelledby="st-ledger-title">
        <div class="row spread">
          <h2 id="st-ledger-title">Ledger</h2>
          <div class="row">
            <label class="inline">Product <select id="st-ledger-for" aria-label="Ledger of product"></select></label>
            <button type="button" id="st-export">Export CSV</button>
          </div>
        </div>
        <div id="st-ledger"></div>
      </section>`;
    const $ = sel => el.querySelector(sel);
    const bySku = () => new Map([...levels, ...untracked].map(p => [p.mapping_id, p]));

    // --- levels ---------------------------------------------------------------------------
    const drawLevels = () => {
      const low = levels.filter(l => l.minimum > 0 && l.available + l.in_production < l.minimum);
      const sum = key => levels.reduce((n, l) => n + l[key], 0);
      $("#st-totals").innerHTML = html`
        <span><strong>${levels.length}</strong> products</span>
        <span><strong>${sum("on_hand")}</strong> on hand</span>
        <span><strong>${sum("available")}</strong> available</span>
        <span><strong>${sum("in_production")}</strong> printing</span>
        <span class="${low.length ? "st-low" : ""}"><strong>${low.length}</strong> below minimum</span>`;
      $("#st-levels").innerHTML = table([
        { label: "Product", cell: product },
        { label: "On hand", cell: l => html`<span class="num" data-col="on_hand">${l.on_hand}</span>` },
        { label: "Reserved", cell: l => html`<span class="num" data-col="reserved">${l.reserved}</span>` },
        { label: "Available", cell: l => html`<span class="num strong" data-col="available">${l.available}</span>` },
        { label: "Printing", cell: l => html`<span class="num" data-col="in_production">${l.in_production}</span>` },
        { label: "Min / max", cell: l => html`<span class="num" data-col="min_max">${l.minimum} / ${l.maximum ?? "—"}</span>` },
        { label: "Priority", cell: l => html`<span class="num" data-col="priority">${l.priority}</span>` },
        { label: "Batch", cell: l => html`<span class="num" data-col="batch_size">${l.batch_size}</span>` },
        { label: "State", cell: standing },
        { label: "", cell: l => html`<span class="row nowrap">
            <button type="button" data-ledger-of="${l.mapping_id}" aria-label="Ledger of ${l.sku}">Ledger</button>
            ${manages ? html`<button type="button" data-manage="${l.mapping_id}"
              aria-label="Manage ${l.sku}" aria-expanded="${open && open.mapping_id === l.mapping_id}">Manage</button>` : ""}</span>` },
      ], levels, { empty: "No product is stocked yet.",
                   rowAttrs: l => html`data-sku="${l.sku}" data-mapping="${l.mapping_id}"
                     class="${open && open.mapping_id === l.mapping_id ? "selected" : ""}"` });
      if (manages && ctx.can("mappings.read")) {
        $("#st-add").innerHTML = untracked.length ? html`<label class="inline">Stock another product
          <select id="st-add-which" aria-label="Product to stock">${untracked.map(m => html`<option
            value="${m.mapping_id}">${m.sku}${m.variant_id ? ` / ${m.variant_id}` : ""}</option>`)}</select></label>
          <button type="button" id="st-add-go">Manage</button>` : "";
      }
      const options = [html`<option value="">All products</option>`, ...levels.map(l => html`<option
        value="${l.mapping_id}" ${l.mapping_id === ledgerFor ? "selected" : ""}>${l.sku}${l.variant_id ? ` / ${l.variant_id}` : ""}</option>`)];
      $("#st-ledger-for").innerHTML = html`${options}`;
      drawPrintForm();
      refreshPanel();
    };
    const loadLevels = async () => {
      levels = await ctx.api.list("/stock", { limit: 500 });
      if (manages && ctx.can("mappings.read")) {
        const tracked = new Set(levels.map(l => l.mapping_id));
        const mappings = await ctx.api.list("/product-mappings",
          { limit: 500, fields: "sku,variant_id,name" });
        untracked = mappings.filter(m => !tracked.has(m.id)).map(m => ({
          mapping_id: m.id, sku: m.sku, variant_id: m.variant_id, name: m.name, on_hand: 0,
          reserved: 0, available: 0, in_production: 0, minimum: 0, maximum: null, priority: 0,
          batch_size: 1 }));
      }
      drawLevels();
    };

    // --- the manage panel: count, scrap, plan ---------------------------------------------
    const figures = p => html`<span data-col="on_hand">${p.on_hand}</span> on hand ·
      <span data-col="reserved">${p.reserved}</span> reserved ·
      <span data-col="available">${p.available}</span> available ·
      <span>${p.in_production}</span> printing`;
    const refreshPanel = () => {
      if (!open) return;
      const fresh = levels.find(l => l.mapping_id === open.mapping_id);
      if (fresh) open = fresh;
      const line = $("#st-panel-figures");
      if (line) line.innerHTML = figures(open);
    };
    const openPanel = (mappingId, focus = true) => {
      open = levels.find(l => l.mapping_id === mappingId) ||
        untracked.find(m => m.mapping_id === mappingId);
      if (!open) return;
      const panel = $("#st-panel");
      panel.hidden = false;
      panel.innerHTML = html`
        <div class="row spread">
          <h2 id="st-panel-title">${product(open)}</h2>
          <button type="button" id="st-panel-close" aria-label="Close ${open.sku}">Close</button>
        </div>
        <p class="st-figures" id="st-panel-figures">${figures(open)}</p>
        <div class="st-forms">
          ${canAdjust ? html`
          <form class="st-form" id="st-adjust" aria-label="Correct the count">
            <h3>Correct the count</h3>
            <label>Change (+ adds, − removes) <input name="quantity" type="number" step="1"
              required inputmode="numeric"></label>
            <button type="submit" class="primary">Adjust…</button>
          </form>
          <form class="st-form" id="st-scrap" aria-label="Scrap units">
            <h3>Scrap</h3>
            <label>Units to scrap <input name="quantity" type="number" min="1" step="1" required
              inputmode="numeric"></label>
            <button type="submit" class="danger">Scrap…</button>
          </form>` : ""}
          ${canPlan ? html`
          <form class="st-form st-plan" id="st-plan" aria-label="Stock plan">
            <h3>Stock plan</h3>
            <div class="st-pair">
              <label>Minimum <input name="minimum" type="number" min="0" step="1" value="${open.minimum}"></label>
              <label>Maximum <input name="maximum" type="number" min="0" step="1"
                value="${open.maximum ?? ""}" placeholder="none"></label>
            </div>
            <div class="st-pair">
              <label>Priority <input name="priority" type="number" step="1" value="${open.priority}"></label>
              <label>Batch size <input name="batch_size" type="number" min="1" step="1" value="${open.batch_size}"></label>
            </div>
            <button type="submit" class="primary">Save plan</button>
          </form>` : ""}
          ${canPrint ? html`<div class="st-form"><h3>Print to stock</h3>
            <p class="muted small">Queue a batch of this product now.</p>
            <button type="button" id="st-print-this">Print to stock…</button></div>` : ""}
        </div>`;
      if (focus) {
        panel.scrollIntoView({ block: "nearest" });
        const first = panel.querySelector("input");
        if (first) first.focus();
      }
      drawLevels();
    };
    const closePanel = () => {
      open = null;
      $("#st-panel").hidden = true;
      $("#st-panel").innerHTML = "";
      drawLevels();
    };
    const changed = async () => {
      await loadLevels();  // first: the ledger and batches name products from it
      await Promise.all([loadLedger(), loadBatches()]);
    };

    el.addEventListener("submit", async event => {
      const f = event.target;
      if (!["st-adjust", "st-scrap", "st-plan", "st-print-form", "st-settings-form"].includes(f.id)) return;
      event.preventDefault();
      if (f.id === "st-settings-form") { await saveSettings(f); return; }
      if (f.id === "st-print-form") { await printToStock(f); return; }
      const target = open;
      if (!target) return;
      const button = f.querySelector("button[type=submit]");
      if (f.id === "st-plan") {
        const patch = { minimum: int(f.elements.minimum.value), priority: int(f.elements.priority.value),
                        batch_size: int(f.elements.batch_size.value) };
        const maximum = int(f.elements.maximum.value);
        if (maximum === null) patch.clear_maximum = target.maximum !== null;
        else patch.maximum = maximum;
        for (const key of Object.keys(patch)) if (patch[key] === null) delete patch[key];
        if (!patch.clear_maximum) delete patch.clear_maximum;
        button.disabled = true;
        try {
          open = await act(ctx.api.patch(`/stock/${target.mapping_id}`, patch),
                           `Stock plan of ${target.sku} saved`);
        } catch { /* act() showed the server's reason */ } finally { button.disabled = false; }
        await changed();
        return;
      }
      const quantity = int(f.elements.quantity.value);
      if (!Number.isInteger(quantity) || quantity === 0 || (f.id === "st-scrap" && quantity < 0)) {
        f.elements.quantity.setCustomValidity(f.id === "st-scrap" ? "Scrap at least one unit"
          : "Give a whole number other than 0: + adds, − removes");
        f.elements.quantity.reportValidity();
        f.elements.quantity.addEventListener("input", () => f.elements.quantity.setCustomValidity(""),
                                             { once: true });
        return;
      }
      const scrap = f.id === "st-scrap";
      const title = scrap ? `Scrap ${quantity} × ${target.sku}`
        : `${quantity > 0 ? "Add" : "Remove"} ${Math.abs(quantity)} × ${target.sku}`;
      const reason = await ask(title, { label: scrap ? "Why are they scrapped?" : "Reason for the correction" });
      if (reason === null) return;
      button.disabled = true;
      try {
        open = await act(ctx.api.post(`/stock/${target.mapping_id}/${scrap ? "scrap" : "adjustments"}`,
                                      { quantity, reason }),
                         scrap ? `Scrapped ${quantity} × ${target.sku}` : `Count of ${target.sku} corrected`);
        f.reset();
      } catch { /* act() showed the server's reason */ } finally { button.disabled = false; }
      await changed();
    });

    // --- batches ----------------------------------------------------------------------------
    let printFor = null;  // the product list the print form was drawn for
    const drawPrintForm = () => {
      if (!canPrint) return;
      const slot = $("#st-print");
      const key = [...levels, ...untracked].map(p => p.mapping_id).join();
      if (key === printFor) return;  // keep what the operator is typing
      printFor = key;
      const chosen = slot.querySelector("select") ? slot.querySelector("select").value : "";
      const units = slot.querySelector("[name=units]") ? slot.querySelector("[name=units]").value : "";
      const note = slot.querySelector("[name=reason]") ? slot.querySelector("[name=reason]").value : "";
      const products = [...levels, ...untracked];
      slot.innerHTML = products.length ? html`<form class="st-print row" id="st-print-form"
          aria-label="Print to stock now">
        <label>Product <select name="mapping_id">${products.map(p => html`<option value="${p.mapping_id}"
          ${p.mapping_id === chosen ? "selected" : ""}>${p.sku}${p.variant_id ? ` / ${p.variant_id}` : ""}</option>`)}</select></label>
        <label>Units <input name="units" type="number" min="1" max="10000" step="1" required value="${units}"
          inputmode="numeric"></label>
        <label class="grow">Note <input name="reason" maxlength="500" value="${note}" placeholder="optional"></label>
        <button type="submit" class="primary">Print to stock now</button>
      </form>` : "";
    };
    const printToStock = async f => {
      const mappingId = f.elements.mapping_id.value;
      const units = int(f.elements.units.value);
      const p = bySku().get(mappingId);
      const body = { mapping_id: mappingId, units };
      if (f.elements.reason.value.trim()) body.reason = f.elements.reason.value.trim();
      const button = f.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await act(ctx.api.post("/stock-batches", body), `Printing ${units} × ${p ? p.sku : "product"} to stock`);
        f.reset();
      } catch { /* act() showed the server's reason */ } finally { button.disabled = false; }
      await changed();
    };
    const drawBatches = () => {
      const names = bySku();
      $("#st-batches").innerHTML = table([
        { label: "Created", cell: b => html`<span title="${when(b.created_at)}">${ago(b.created_at)}</span>` },
        { label: "Product", cell: b => names.get(b.mapping_id) ? product(names.get(b.mapping_id)) : b.mapping_id },
        { label: "Units", cell: b => html`<span class="num">${b.units}</span>` },
        { label: "Made", cell: b => html`<span class="num">${b.units_produced ?? "—"}</span>` },
        { label: "Status", cell: b => pill(b.status, b.status.replace("_", " ").toLowerCase()) },
        { label: "Origin", cell: b => b.origin === "REPLENISHMENT" ? "replenishment" : "by hand" },
        { label: "Note", cell: b => b.reason || "" },
        { label: "By", cell: b => b.created_by || "" },
        { label: "", cell: b => canPrint && b.status === "IN_PROGRESS" ? html`<button type="button"
            class="danger" data-cancel="${b.id}" aria-label="Cancel batch of ${b.units} × ${names.get(b.mapping_id) ? names.get(b.mapping_id).sku : ""}">Cancel</button>` : "" },
      ], batches, { empty: "No stock batches.", rowAttrs: b => html`data-batch="${b.id}" data-status="${b.status}"` });
    };
    const loadBatches = async () => {
      batches = await ctx.api.list("/stock-batches", { limit: 50 });
      drawBatches();
    };

    // --- ledger -----------------------------------------------------------------------------
    const reference = e => {
      if (e.reference_type === "ORDER" || e.reference_type === "LINE_ITEM") {
        return e.order_id ? html`<a href="#/orders/${e.order_id}">order</a>` : e.reference_type.toLowerCase();
      }
      if (e.reference_type === "STOCK_BATCH") return html`batch <code>${String(e.stock_batch_id || e.reference_id || "").slice(0, 8)}</code>`;
      return "by hand";
    };
    const drawLedger = () => {
      const names = bySku();
      const more = ledger.length >= ledgerLimit;
      $("#st-ledger").innerHTML = html`${table([
        { label: "When", cell: e => html`<span title="${when(e.created_at)}">${ago(e.created_at)}</span>` },
        { label: "Product", cell: e => names.get(e.mapping_id) ? names.get(e.mapping_id).sku : "" },
        { label: "Type", cell: e => html`<span class="st-type ${e.entry_type.toLowerCase()}" data-type="${e.entry_type}">${TYPES[e.entry_type] || e.entry_type}</span>` },
        { label: "Qty", cell: e => html`<span class="num st-qty ${e.direction === "IN" ? "in" : "out"}" data-direction="${e.direction}">${e.direction === "IN" ? "+" : "−"}${e.quantity}</span>` },
        { label: "On hand after", cell: e => html`<span class="num">${e.on_hand_after}</span>` },
        { label: "Reserved after", cell: e => html`<span class="num">${e.reserved_after}</span>` },
        { label: "Reference", cell: reference },
        { label: "Reason", cell: e => html`<span data-col="reason">${e.reason || ""}</span>` },
        { label: "By", cell: e => e.created_by || "" },
      ], ledger, { empty: "No movements yet.", rowAttrs: e => html`data-entry="${e.id}"` })}
      ${more ? html`<p><button type="button" id="st-ledger-more">Show ${LEDGER_PAGE} more</button></p>` : ""}`;
    };
    const ledgerQuery = () => (ledgerFor ? { mapping_id: ledgerFor } : {});
    const loadLedger = async () => {
      ledger = await ctx.api.list("/stock/ledger", { ...ledgerQuery(), sort: "id:desc", limit: ledgerLimit });
      drawLedger();
    };

    // --- Stock Management settings -------------------------------------------------------------
    const drawSettings = () => {
      const s = settings;
      const section = $("#st-settings");
      if (!canSettings) {
        section.innerHTML = html`<h2 id="st-settings-title">Stock Management</h2>
          <dl class="st-facts">
            <div><dt>Replenishment</dt><dd data-setting="enabled">${s.stock_management_enabled ? "On" : "Off"}</dd></div>
            <div><dt>Quiet hours</dt><dd data-setting="quiet">${s.stock_quiet_start}–${s.stock_quiet_end} (${s.stock_time_zone})</dd></div>
            <div><dt>Parts of cancelled orders</dt><dd>${s.stock_cancelled_parts === "STOCK" ? "go on the shelf" : "are scrapped"}</dd></div>
          </dl>`;
        return;
      }
      section.innerHTML = html`<h2 id="st-settings-title">Stock Management</h2>
        <form id="st-settings-form" class="st-settings-form">
          <label class="inline"><input type="checkbox" name="stock_management_enabled"
            ${s.stock_management_enabled ? "checked" : ""}> Replenish below minimum automatically</label>
          <label>Quiet hours from <input name="stock_quiet_start" type="time" required value="${s.stock_quiet_start}"></label>
          <label>until <input name="stock_quiet_end" type="time" required value="${s.stock_quiet_end}"></label>
          <label>Time zone <input name="stock_time_zone" required value="${s.stock_time_zone}" list="st-zones"></label>
          <label>Parts of cancelled orders <select name="stock_cancelled_parts">
            <option value="STOCK" ${s.stock_cancelled_parts === "STOCK" ? "selected" : ""}>go on the shelf</option>
            <option value="SCRAP" ${s.stock_cancelled_parts === "SCRAP" ? "selected" : ""}>are scrapped</option>
          </select></label>
          <button type="submit" class="primary">Save settings</button>
        </form>
        <p class="muted small">Replenishment batches products below their minimum during the quiet hours.</p>`;
    };
    const loadSettings = async () => {
      settings = await ctx.api.get("/stock/settings");
      if (!settingsDirty) drawSettings();
    };
    const saveSettings = async f => {
      const body = {
        stock_management_enabled: f.elements.stock_management_enabled.checked,
        stock_quiet_start: f.elements.stock_quiet_start.value.slice(0, 5),
        stock_quiet_end: f.elements.stock_quiet_end.value.slice(0, 5),
        stock_time_zone: f.elements.stock_time_zone.value.trim(),
        stock_cancelled_parts: f.elements.stock_cancelled_parts.value,
      };
      const button = f.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        settings = await act(ctx.api.patch("/stock/settings", body), "Stock Management settings saved");
        settingsDirty = false;
        drawSettings();
      } catch { /* act() showed the server's reason */ } finally { button.disabled = false; }
    };
    el.addEventListener("input", event => {
      if (event.target.closest("#st-settings-form")) settingsDirty = true;
    });

    // --- clicks -------------------------------------------------------------------------------
    el.addEventListener("click", async event => {
      const t = event.target;
      const manage = t.closest("[data-manage]");
      if (manage) {
        if (open && open.mapping_id === manage.dataset.manage) closePanel();
        else openPanel(manage.dataset.manage);
        return;
      }
      if (t.closest("#st-panel-close")) { closePanel(); return; }
      if (t.closest("#st-add-go")) { openPanel($("#st-add-which").value); return; }
      if (t.closest("#st-print-this") && open) {
        const f = $("#st-print-form");
        if (!f) return;
        f.elements.mapping_id.value = open.mapping_id;
        if (!f.elements.units.value) f.elements.units.value = open.batch_size;
        f.scrollIntoView({ block: "nearest" });
        f.elements.units.focus();
        return;
      }
      const ledgerOf = t.closest("[data-ledger-of]");
      if (ledgerOf) {
        ledgerFor = ledgerOf.dataset.ledgerOf;
        $("#st-ledger-for").value = ledgerFor;
        ledgerLimit = LEDGER_PAGE;
        await loadLedger();
        $("#st-ledger-title").scrollIntoView({ block: "start" });
        return;
      }
      if (t.closest("#st-ledger-more")) { ledgerLimit += LEDGER_PAGE; await loadLedger(); return; }
      if (t.closest("#st-export")) {
        try {
          const response = await act(ctx.api.raw("GET", "/stock/ledger.csv" +
            query({ ...ledgerQuery(), sort: "id:asc" })), null);
          const p = bySku().get(ledgerFor);
          await download(response, p ? `stock-ledger-${p.sku.toLowerCase()}.csv` : "stock-ledger.csv");
        } catch { /* act() showed the server's reason */ }
        return;
      }
      const cancel = t.closest("[data-cancel]");
      if (cancel) {
        const batch = batches.find(b => b.id === cancel.dataset.cancel);
        const p = batch && bySku().get(batch.mapping_id);
        const reason = await ask(`Cancel the batch of ${batch ? batch.units : ""} × ${p ? p.sku : "product"}`,
                                 { label: "Why is it cancelled?" });
        if (reason === null) return;
        cancel.disabled = true;
        try {
          await act(ctx.api.post(`/stock-batches/${cancel.dataset.cancel}/cancel`, { reason }),
                    "Batch cancelled");
        } catch { cancel.disabled = false; }
        await changed();
      }
    });
    $("#st-ledger-for").addEventListener("change", async event => {
      ledgerFor = event.target.value;
      ledgerLimit = LEDGER_PAGE;
      await loadLedger();
    });

    await Promise.all([loadSettings(), loadLevels(), loadBatches()]);
    await loadLedger();
    ctx.follow(e => String(e.type).startsWith("stock."), async () => {
      await Promise.all([changed(), loadSettings()]);
    });
  },
};
