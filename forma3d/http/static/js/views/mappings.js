// Product mappings: which printable parts make a SKU. The list with each product's print time
// and filament, the orders waiting on a SKU nobody mapped yet, and the editor, where print files
// dropped on the page (or chosen with the file input) become parts with their estimates.
import { act, duration, errorText, html, raw, table, when } from "../ui.js";

const ACCEPT = ".gcode,.gco,.bgcode,.3mf,.stl";
const WAITING = ["ON_HOLD", "FAILED"];  // an unmapped line item holds its order (unless it failed)

export default {
  name: "mappings", title: "Products", permission: "mappings.read",
  render(view, ctx) {
    // Pages draw into their own root: once the operator leaves, late answers land nowhere.
    const el = view.appendChild(document.createElement("div"));
    const [first, second] = ctx.args;
    if (first === "new") return editor(el, ctx, null, second || "");
    if (first) return editor(el, ctx, first, "");
    return listPage(el, ctx);
  },
};

/** Every print file's metadata by id (estimates for print time and grams); empty without
 * files.read. */
async function loadFiles(ctx) {
  const files = new Map();
  if (!ctx.can("files.read")) return files;
  const rows = await ctx.api.get("/print-files", {
    limit: 500, fields: "id,filename,estimated_seconds,grams,size_bytes" });
  for (const f of rows) files.set(f.id, f);
  return files;
}

function grams(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  return n >= 1000 ? `${(n / 1000).toFixed(2)} kg` : `${n.toFixed(n < 10 ? 1 : 0)} g`;
}

function fileFacts(file) {
  if (!file) return html`<span class="muted">no file</span>`;
  return html`<span class="map-file" data-file="${file.filename}"><span class="map-file-name">${file.filename}</span>
    <span class="map-est" data-print-time>${file.estimated_seconds === null ? "time unknown"
      : duration(file.estimated_seconds)}</span>
    <span class="map-est" data-grams>${file.grams === null ? "weight unknown" : grams(file.grams)}</span></span>`;
}

/** A mapping's totals: print time of all its copies (where files know it) and filament. */
function totals(mapping, files) {
  let seconds = 0, known = true, weight = 0;
  for (const part of mapping.parts) {
    const file = files.get(part.file_id);
    if (file && file.estimated_seconds !== null) seconds += file.estimated_seconds * part.quantity;
    else known = false;
    weight += Number(part.grams || (file && file.grams) || 0) * part.quantity;
  }
  return { time: known && mapping.parts.length ? duration(seconds) : (seconds ? `≥ ${duration(seconds)}` : "—"),
           grams: weight ? grams(weight) : "—" };
}

// --- the list ---------------------------------------------------------------------------------

async function listPage(el, ctx) {
  const writer = ctx.can("mappings.write");
  el.innerHTML = html`
    <div class="row spread"><h1>Products</h1>
      ${writer ? html`<button type="button" class="primary" id="map-new">New mapping</button>` : ""}</div>
    ${ctx.can("orders.read") ? html`<section class="card map-waiting" aria-labelledby="map-h-waiting">
      <h2 id="map-h-waiting">Orders waiting on a mapping</h2><div id="map-waiting"></div></section>` : ""}
    <section aria-labelledby="map-h-list">
      <div class="row spread"><h2 id="map-h-list">Product mappings</h2>
        <label class="inline">Search <input type="search" id="map-q" placeholder="SKU or name"></label></div>
      <div id="map-list"></div>
    </section>`;
  let files = new Map();
  let seq = 0, waitSeq = 0;

  const loadList = async () => {
    const mine = ++seq;
    const q = el.querySelector("#map-q").value.trim();
    const filter = q ? { OR: [{ sku: { contains: q } }, { name: { contains: q } }] } : undefined;
    const rows = await ctx.api.post("/product-mappings/search", { filter, limit: 500 });
    if (mine !== seq) return;
    el.querySelector("#map-list").innerHTML = table([
      { label: "SKU", cell: m => html`<a href="#/mappings/${m.id}"><strong>${m.sku}</strong></a>${
          m.variant_id ? html`<div class="small muted">variant ${m.variant_id}</div>` : ""}` },
      { label: "Name", cell: m => m.name },
      { label: "Parts", cell: m => html`<span class="small">${m.parts.map(p => html`<div>${p.quantity} × ${p.name}${
          p.required_tags.length ? html` <span class="muted">[${p.required_tags.join(", ")}]</span>` : ""}</div>`)}</span>` },
      { label: "Print time", cell: m => html`<span data-print-time>${totals(m, files).time}</span>` },
      { label: "Filament", cell: m => html`<span data-grams>${totals(m, files).grams}</span>` },
      { label: "Updated", cell: m => when(m.updated_at) },
      { label: "", cell: m => html`<button type="button" data-edit="${m.id}"
          aria-label="${writer ? "Edit" : "Open"} ${m.sku}">${writer ? "Edit" : "Open"}</button>` },
    ], rows, { empty: "No product mappings match.", rowAttrs: m => html`data-sku="${m.sku}"` });
  };

  const loadWaiting = async () => {
    const box = el.querySelector("#map-waiting");
    if (!box) return;
    const mine = ++waitSeq;
    const orders = await ctx.api.post("/orders/search", {
      filter: { status: { in: WAITING } }, include: "line_items", sort: "received_at:asc",
      limit: 500 });
    if (mine !== waitSeq) return;
    const bySku = new Map();
    for (const order of orders) {
      for (const li of order.line_items) {
        if (li.status !== "NEEDS_MAPPING") continue;
        const key = `${li.sku || ""}\u0000${li.variant_id || ""}`;
        if (!bySku.has(key)) bySku.set(key, { sku: li.sku || "", variant: li.variant_id || "",
                                             title: li.title, reason: li.reason, orders: [], units: 0 });
        const entry = bySku.get(key);
        if (!entry.orders.includes(order)) entry.orders.push(order);
        entry.units += li.quantity;
      }
    }
    const rows = [...bySku.values()];
    box.innerHTML = rows.length ? table([
      { label: "Unknown SKU", cell: r => html`<strong>${r.sku || "(no SKU)"}</strong>
          <div class="small muted">${r.title}</div>` },
      { label: "Units", cell: r => r.units },
      { label: "Orders", cell: r => html`${r.orders.map((o, i) => html`${i ? ", " : ""}<a
          href="#/orders/${o.id}">${o.name}</a>`)}` },
      { label: "Waiting since", cell: r => when(r.orders[0].received_at) },
      { label: "", cell: r => writer && r.sku ? html`<button type="button" class="primary"
          data-map-sku="${r.sku}" aria-label="Map ${r.sku}">Create mapping</button>`
          : html`<span class="small muted">${r.reason || ""}</span>` },
    ], rows, { rowAttrs: r => html`data-waiting-sku="${r.sku}"` })
      : html`<p class="muted" data-empty>No order waits on a mapping.</p>`;
  };

  const showError = err => { el.querySelector("#map-list").innerHTML =
    html`<p class="error" role="alert">${errorText(err)}</p>`; };
  // Controls answer from the moment they are drawn, before the first read returns.
  el.querySelector("#map-q").addEventListener("input", () => loadList().catch(showError));
  el.addEventListener("click", event => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.id === "map-new") ctx.navigate("#/mappings/new");
    else if (target.dataset.edit) ctx.navigate(`#/mappings/${target.dataset.edit}`);
    else if (target.dataset.mapSku) ctx.navigate(`#/mappings/new/${encodeURIComponent(target.dataset.mapSku)}`);
  });
  // A mapping made here (or elsewhere) releases held orders: their events refresh both lists,
  // followed before the first read so nothing committed meanwhile is missed (throttled, not
  // debounced: a busy farm's steady events must not starve the refresh).
  ctx.follow(ev => ev.subject_type === "order",
             () => Promise.all([loadList(), loadWaiting()]).catch(showError));
  files = await loadFiles(ctx);
  await Promise.all([loadList(), loadWaiting()]);
}

// --- the editor -------------------------------------------------------------------------------

function tagsText(tags) { return (tags || []).join(", "); }

function partRow(part, index, files, writable) {
  const n = index + 1;
  const file = files.get(part.file_id);
  const options = [...files.values()].sort((a, b) => a.filename.localeCompare(b.filename));
  if (part.file_id && !file) options.unshift({ id: part.file_id, filename: `file ${part.file_id.slice(0, 8)}` });
  return html`<fieldset class="map-part" data-part="${index}">
    <legend>Part ${n}</legend>
    <div class="map-part-grid">
      <label>Name <input name="name" required maxlength="120" value="${part.name}"
        aria-label="Name of part ${n}"></label>
      <label>Quantity <input name="quantity" type="number" min="1" max="1000" required
        value="${part.quantity}" aria-label="Quantity of part ${n}"></label>
      <label class="map-wide">Print file <select name="file_id" required aria-label="Print file of part ${n}">
        <option value="">Choose a file…</option>
        ${options.map(f => html`<option value="${f.id}" ${raw(f.id === part.file_id ? "selected" : "")}>${f.filename}</option>`)}
      </select></label>
      <label>Grams per copy <input name="grams" type="number" min="0" step="0.01"
        value="${part.grams}" aria-label="Grams per copy of part ${n}"></label>
      <label>Print profile <input name="print_profile" maxlength="120" value="${part.print_profile || ""}"
        aria-label="Print profile of part ${n}"></label>
      <label class="map-wide">Required tags <input name="required_tags" value="${tagsText(part.required_tags)}"
        placeholder="e.g. PLA, red, 0.4mm" aria-label="Required tags of part ${n}"></label>
    </div>
    <div class="row spread"><span class="small" data-part-file>${fileFacts(file)}</span>
      ${writable ? html`<button type="button" data-remove-part="${index}"
        aria-label="Remove part ${n}">Remove part</button>` : ""}</div>
  </fieldset>`;
}

function partName(filename) {
  return filename.replace(/\.(gcode|gco|bgcode|3mf|stl)$/i, "").replace(/[-_]+/g, " ").trim() || filename;
}

async function editor(el, ctx, mappingId, presetSku) {
  const writable = ctx.can("mappings.write");
  const uploader = writable && ctx.can("files.write");
  const [files, mapping] = await Promise.all([
    loadFiles(ctx), mappingId ? ctx.api.get(`/product-mappings/${mappingId}`) : null]);
  const parts = mapping ? mapping.parts.map(p => ({ ...p, required_tags: [...p.required_tags] })) : [];
  const m = mapping || { sku: presetSku, variant_id: "", name: "", packaging_grams: "0", packaging_cm: null };
  const box = m.packaging_cm || ["", "", ""];
  el.innerHTML = html`
    <p class="small"><a href="#/mappings">← Products</a></p>
    <h1>${mapping ? html`Mapping ${mapping.sku}` : "New product mapping"}</h1>
    <form id="map-form" novalidate>
      <fieldset class="card map-product" ${raw(writable ? "" : "disabled")}>
        <legend>Product</legend>
        <div class="map-product-grid">
          <label>SKU <input name="sku" required maxlength="255" value="${m.sku}"></label>
          <label>Variant ID <input name="variant_id" maxlength="64" value="${m.variant_id}"
            placeholder="any variant"></label>
          <label class="map-wide">Name <input name="name" required maxlength="255" value="${m.name}"></label>
          <label>Packaging grams <input name="packaging_grams" type="number" min="0" step="0.01"
            value="${m.packaging_grams}"></label>
          <span class="map-box"><span class="small muted">Box (cm, optional)</span>
            <span class="row">
              <input name="box_l" type="number" min="0" step="0.1" value="${box[0]}" aria-label="Box length in cm"
                placeholder="L"> ×
              <input name="box_w" type="number" min="0" step="0.1" value="${box[1]}" aria-label="Box width in cm"
                placeholder="W"> ×
              <input name="box_h" type="number" min="0" step="0.1" value="${box[2]}" aria-label="Box height in cm"
                placeholder="H">
            </span></span>
        </div>
      </fieldset>
      <section aria-labelledby="map-h-parts">
        <div class="row spread"><h2 id="map-h-parts">Parts</h2>
          <span class="small muted" id="map-totals"></span></div>
        ${uploader ? html`<div class="map-drop" id="map-drop" aria-describedby="map-drop-help">
          <strong>Drop print files here</strong>
          <span id="map-drop-help" class="small muted">G-code, binary G-code, 3MF or STL — each file becomes a part;
            G-code shows its print time and grams.</span>
          <label class="map-pick">Choose print files <input type="file" id="map-file-input" multiple
            accept="${ACCEPT}"></label>
          <span class="small" id="map-upload-status" role="status"></span>
        </div>` : ""}
        <fieldset id="map-parts" ${raw(writable ? "" : "disabled")}></fieldset>
        ${writable ? html`<button type="button" id="map-add-part">Add part from an uploaded file</button>` : ""}
      </section>
      <p class="error" id="map-error" role="alert"></p>
      ${writable ? html`<div class="row">
        <button type="submit" class="primary">${mapping ? "Save mapping" : "Create mapping"}</button>
        <a href="#/mappings">Cancel</a>
        ${mapping ? html`<span class="map-grow"></span><button type="button" class="danger" id="map-delete">Delete mapping</button>` : ""}
      </div>` : ""}
    </form>`;
  const form = el.querySelector("#map-form");
  const partsBox = el.querySelector("#map-parts");
  // Parts have a "name" too: the product's own fields are looked up in their fieldset.
  const product = field => el.querySelector(`.map-product [name="${field}"]`);

  const drawTotals = () => {
    const t = totals({ parts: parts.filter(p => p.file_id) }, files);
    el.querySelector("#map-totals").textContent = parts.length
      ? `All copies: ${t.time} · ${t.grams}` : "";
  };
  const drawParts = () => {
    partsBox.innerHTML = parts.length ? parts.map((p, i) => partRow(p, i, files, writable)).join("")
      : String(html`<p class="muted" data-empty>No parts yet${uploader ? ": drop a print file above" : ""}.</p>`);
    drawTotals();
  };
  const addFile = file => {
    parts.push({ name: partName(file.filename), file_id: file.id, quantity: 1,
                 grams: file.grams ?? "0", print_profile: "", required_tags: [] });
  };

  partsBox.addEventListener("input", event => {
    const row = event.target.closest("[data-part]");
    if (!row) return;
    const part = parts[Number(row.dataset.part)];
    const { name, value } = event.target;
    if (name === "required_tags") part.required_tags = value.split(",").map(t => t.trim()).filter(Boolean);
    else if (name === "quantity") part.quantity = Number(value);
    else part[name] = value;
    if (name === "file_id") {
      const file = files.get(value);
      if (file && file.grams !== null && (!part.grams || Number(part.grams) === 0)) {
        part.grams = file.grams;
        row.querySelector("[name=grams]").value = file.grams;
      }
      row.querySelector("[data-part-file]").innerHTML = String(fileFacts(file));
    }
    drawTotals();
  });
  partsBox.addEventListener("click", event => {
    const button = event.target.closest("[data-remove-part]");
    if (!button) return;
    parts.splice(Number(button.dataset.removePart), 1);
    drawParts();
  });
  const addButton = el.querySelector("#map-add-part");
  if (addButton) addButton.addEventListener("click", () => {
    parts.push({ name: "", file_id: "", quantity: 1, grams: "0", print_profile: "", required_tags: [] });
    drawParts();
    partsBox.querySelector("fieldset:last-of-type [name=name]").focus();
  });

  if (uploader) {
    const drop = el.querySelector("#map-drop");
    const status = el.querySelector("#map-upload-status");
    const upload = async list => {
      const chosen = [...list];
      if (!chosen.length) return;
      drop.classList.add("busy");
      let done = 0;
      for (const file of chosen) {
        status.textContent = `Uploading ${file.name}…`;
        try {
          const stored = await act(ctx.api.post(
            `/print-files?filename=${encodeURIComponent(file.name)}`, file), null);
          files.set(stored.id, stored);
          addFile(stored);
          done += 1;
        } catch { /* act showed the server's reason */ }
      }
      drop.classList.remove("busy");
      status.textContent = done ? `${done} file${done === 1 ? "" : "s"} uploaded` : "Nothing uploaded";
      drawParts();
    };
    drop.addEventListener("dragover", event => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", event => {
      event.preventDefault();
      drop.classList.remove("over");
      upload(event.dataTransfer ? event.dataTransfer.files : []);
    });
    const input = el.querySelector("#map-file-input");
    input.addEventListener("change", () => { upload(input.files).finally(() => { input.value = ""; }); });
  }

  form.addEventListener("submit", async event => {
    event.preventDefault();
    const error = el.querySelector("#map-error");
    error.textContent = "";
    if (!form.checkValidity()) {
      form.reportValidity();
      error.textContent = "Fill in the marked fields.";
      return;
    }
    if (!parts.length) { error.textContent = "A mapping needs at least one part."; return; }
    const dims = ["box_l", "box_w", "box_h"].map(n => product(n).value);
    const body = {
      sku: product("sku").value.trim(), variant_id: product("variant_id").value.trim(),
      name: product("name").value.trim(), packaging_grams: product("packaging_grams").value || "0",
      packaging_cm: dims.every(v => v !== "") ? dims : null,
      parts: parts.map(p => ({
        ...(p.id ? { id: p.id } : {}), name: p.name.trim(), file_id: p.file_id,
        quantity: Number(p.quantity), grams: String(p.grams === "" ? "0" : p.grams),
        print_profile: (p.print_profile || "").trim() || null, required_tags: p.required_tags,
      })),
    };
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await act(mapping ? ctx.api.put(`/product-mappings/${mapping.id}`, body)
                        : ctx.api.post("/product-mappings", body),
                mapping ? `Mapping ${body.sku} saved` : `Mapping ${body.sku} created`);
      ctx.navigate("#/mappings");
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  const del = el.querySelector("#map-delete");
  if (del) del.addEventListener("click", async () => {
    if (del.dataset.armed !== "yes") {
      del.dataset.armed = "yes";
      del.textContent = `Really delete ${mapping.sku}?`;
      return;
    }
    try {
      await act(ctx.api.del(`/product-mappings/${mapping.id}`), `Mapping ${mapping.sku} deleted`);
      ctx.navigate("#/mappings");
    } catch { /* act showed why (orders use it) */ }
  });
  drawParts();
  if (writable) (product("sku").value ? product("name") : product("sku")).focus();
}
