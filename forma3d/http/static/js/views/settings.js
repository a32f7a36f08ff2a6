// Settings: the tenant's integrations, its settings, users and roles, API keys and outgoing
// webhooks. Each section needs its own permission, so the view is offered to a role holding any
// of them and shows only the sections the role holds; write controls need the write permission.
// Secrets (integration credentials, API keys, signing secrets) are never read back: a form's
// secret field starts empty, and a new key or signing secret is shown once, then forgotten.
import { act, ago, html, pill, table, toast, when } from "../ui.js";

const SECTIONS = [
  { id: "integrations", title: "Integrations", permission: "integrations.read", render: integrations },
  { id: "tenant", title: "Tenant settings", permission: "tenant.read", render: tenantSettings },
  { id: "users", title: "Users and roles", permission: ["users.read", "roles.read"], render: people },
  { id: "keys", title: "API keys", permission: "api_keys.read", render: apiKeys },
  { id: "webhooks", title: "Webhooks", permission: "webhook_subscriptions.read", render: webhooks },
];

export default {
  name: "settings",
  title: "Settings",
  permission: SECTIONS.flatMap(s => [s.permission].flat()),
  async render(el, ctx) {
    const sections = SECTIONS.filter(s => ctx.can(s.permission));
    const shown = sections.find(s => s.id === ctx.args[0]) || sections[0];
    el.innerHTML = html`<div class="settings">
      <h1>Settings</h1>
      <div class="tabs" role="tablist" aria-label="Settings sections">${sections.map(s => html`
        <button type="button" role="tab" id="settings-tab-${s.id}" data-section="${s.id}"
          aria-controls="settings-panel" aria-selected="${s === shown}"
          tabindex="${s === shown ? 0 : -1}">${s.title}</button>`)}</div>
      <section id="settings-panel" role="tabpanel" aria-labelledby="settings-tab-${shown.id}"></section>
    </div>`;
    const tabs = [...el.querySelectorAll('[role="tab"]')];
    for (const tab of tabs) {
      tab.addEventListener("click", () => ctx.navigate(`#/settings/${tab.dataset.section}`));
      tab.addEventListener("keydown", event => {  // arrow keys move between tabs
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
        next.focus();
        next.click();
      });
    }
    return shown.render(el.querySelector("#settings-panel"), ctx);
  },
};

// --- shared within the view ----------------------------------------------------------------

let schemaPromise = null;
/** The API's OpenAPI components: setting descriptions, field types and limits come from it. */
function schemas(ctx) {
  schemaPromise ??= ctx.api.get("/openapi.json").then(doc => doc.components.schemas)
    .catch(err => { schemaPromise = null; throw err; });
  return schemaPromise;
}

/** A field's input kind from its JSON schema (nullable unions unwrapped). */
function fieldOf(name, prop, all) {
  let p = prop, nullable = false;
  if (p.anyOf) {
    const rest = p.anyOf.filter(x => x.type !== "null");
    nullable = rest.length < p.anyOf.length;
    p = rest.length === 1 ? rest[0] : { type: "json" };
  }
  if (p.$ref) p = all[p.$ref.split("/").pop()] || { type: "json" };
  const base = { name, nullable, title: label(name), description: prop.description || "",
                 min: p.minimum ?? p.exclusiveMinimum, max: p.maximum ?? p.exclusiveMaximum };
  if (p.enum) return { ...base, kind: "enum", options: p.enum };
  if (p.type === "boolean") return { ...base, kind: "boolean" };
  if (p.type === "integer") return { ...base, kind: "integer" };
  if (p.type === "number") return { ...base, kind: "number" };
  if (p.type === "string") return { ...base, kind: "string", pattern: p.pattern };
  if (p.type === "array" && p.prefixItems) return { ...base, kind: "tuple" };
  if (p.type === "array" && p.items && p.items.type === "string" && !p.items.enum) {
    return { ...base, kind: "list" };
  }
  return { ...base, kind: "json" };
}

function label(name) {
  const text = name.replace(/_/g, " ").replace(/\bmm\b/, "(mm)").replace(/\bcm\b/, "(cm)")
    .replace(/\bapi\b/gi, "API").replace(/\bsku\b/gi, "SKU").replace(/\burl\b/gi, "URL").replace(/\bid\b/gi, "ID");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The input for one field; `secret` fields are password inputs that never hold a value. */
function input(field, value, { secret = false, hint = "" } = {}) {
  const id = `f-${field.name}`;
  const described = field.description ? html`aria-describedby="${id}-d"` : "";
  const about = field.description || hint
    ? html`<small class="muted" id="${id}-d">${[field.description, hint].filter(Boolean).join(" ")}</small>` : "";
  let control;
  if (secret) {
    control = html`<input id="${id}" name="${field.name}" type="password" autocomplete="new-password"
      placeholder="${value ? `stored, ends …${value}: leave empty to keep` : ""}" ${described}>`;
  } else if (field.kind === "boolean") {
    return html`<div class="field check"><label class="inline" for="${id}"><input id="${id}"
      name="${field.name}" type="checkbox" ${value ? "checked" : ""} ${described}> ${field.title}</label>${about}</div>`;
  } else if (field.kind === "enum") {
    const options = field.nullable ? ["", ...field.options] : field.options;
    control = html`<select id="${id}" name="${field.name}" ${described}>${options.map(o => html`
      <option value="${o}" ${o === (value ?? "") ? "selected" : ""}>${o === "" ? "—" : o}</option>`)}</select>`;
  } else if (field.kind === "integer" || field.kind === "number") {
    control = html`<input id="${id}" name="${field.name}" type="number" inputmode="decimal"
      step="${field.kind === "integer" ? 1 : "any"}" ${field.min !== undefined ? html`min="${field.min}"` : ""}
      ${field.max !== undefined ? html`max="${field.max}"` : ""} value="${value ?? ""}" ${described}>`;
  } else if (field.kind === "json") {
    control = html`<textarea id="${id}" name="${field.name}" rows="3" spellcheck="false" class="mono"
      ${described}>${value === null || value === undefined ? "" : JSON.stringify(value, null, 1)}</textarea>`;
  } else {
    const text = Array.isArray(value) ? value.join(", ") : value ?? "";
    control = html`<input id="${id}" name="${field.name}" type="text" value="${text}"
      ${field.kind === "list" || field.kind === "tuple" ? html`placeholder="comma-separated"` : ""} ${described}>`;
  }
  return html`<div class="field"><label for="${id}">${field.title}</label>${control}${about}</div>`;
}

/** What an input holds, typed like its field (undefined: left empty). */
function valueOf(field, el) {
  if (field.kind === "boolean") return el.checked;
  const text = el.value.trim();
  if (text === "") {
    if (field.kind === "list") return [];
    return field.nullable ? null : undefined;
  }
  if (field.kind === "integer" || field.kind === "number") return Number(text);
  if (field.kind === "list") return text.split(",").map(s => s.trim()).filter(Boolean);
  if (field.kind === "tuple") return text.split(",").map(s => Number(s.trim()));
  if (field.kind === "json") {
    try { return JSON.parse(text); } catch { throw new Error(`${field.title}: not valid JSON`); }
  }
  return text;
}

/** A list endpoint's rows: a plain array, or {data, ...} when asked with meta. */
const rows = page => Array.isArray(page) ? page : page.data || [];

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** A destructive button asks once more: the first press arms it for a few seconds. */
function armed(button) {
  if (button.dataset.armed) return true;
  const text = button.textContent, name = button.getAttribute("aria-label");
  const confirm = words => `Confirm: ${words.charAt(0).toLowerCase()}${words.slice(1)}`;
  button.dataset.armed = "1";
  button.textContent = confirm(text);
  if (name) button.setAttribute("aria-label", confirm(name));
  setTimeout(() => {
    delete button.dataset.armed;
    button.textContent = text;
    if (name) button.setAttribute("aria-label", name);
  }, 4000);
  return false;
}

/** A secret shown this once, with a copy button; it lives only in this box. */
function secretBox(title, secret, note) {
  return html`<div class="card secret-once" role="status">
    <strong>${title}</strong>
    <div class="row"><code class="secret" data-secret>${secret}</code>
      <button type="button" data-copy aria-label="Copy ${title}">Copy</button></div>
    <p class="muted small">${note}</p>
    <button type="button" data-dismiss>I have stored it</button></div>`;
}

function wireSecretBox(box) {
  box.addEventListener("click", async event => {
    if (event.target.closest("[data-copy]")) {
      const secret = box.querySelector("[data-secret]").textContent;
      try { await navigator.clipboard.writeText(secret); toast("Copied"); }
      catch { toast("Select the text and copy it", "error"); }
    }
    if (event.target.closest("[data-dismiss]")) box.innerHTML = "";
  });
}

function onClick(el, handlers) {
  el.addEventListener("click", async event => {
    const button = event.target.closest("button[data-act]");
    if (!button || !el.contains(button) || !handlers[button.dataset.act]) return;
    button.disabled = true;
    try { await handlers[button.dataset.act](button); }
    catch (err) { if (!(err && err.status)) console.error(err); }  // act() toasted it
    finally { if (button.isConnected) button.disabled = false; }
  });
}

// --- integrations --------------------------------------------------------------------------

const SERVICES = {
  shopify: { title: "Shopify", about: "orders come in from the shop; fulfilments go back" },
  simplyprint: { title: "SimplyPrint", about: "the print farm: printers, files and jobs" },
  sendcloud: { title: "Sendcloud", about: "parcels, labels and tracking" },
};
// Mirrors secret_fields in forma3d/integrations/settings.py: entered, never shown.
const SECRET_FIELDS = {
  shopify: ["access_token", "webhook_secret"],
  simplyprint: ["api_key", "webhook_secret"],
  sendcloud: ["public_key", "secret_key", "webhook_secret"],
};
const FORMS = { shopify: "ShopifyIn", simplyprint: "SimplyPrintIn", sendcloud: "SendcloudIn" };
const ADVANCED = new Set(["base_url", "files_url", "api_version"]);
const tested = {};  // service -> the last test's answer in this page
const registered = {};  // service -> the webhook topics the last connect here registered

async function integrations(el, ctx) {
  const write = ctx.can("integrations.write");
  const [all, rows] = await Promise.all([schemas(ctx), ctx.api.get("/integrations")]);
  let current = rows;
  const open = new Set();

  const card = row => {
    const meta = SERVICES[row.service];
    const test = tested[row.service];
    const secrets = Object.entries(row.secrets || {}).filter(([, v]) => v);
    return html`<article class="card integration" data-service="${row.service}"
        aria-label="${meta.title}">
      <div class="row spread"><h2>${meta.title}</h2>${pill(row.state)}</div>
      <p class="muted small">${meta.about}</p>
      <dl class="facts">
        <dt>Account</dt><dd>${row.account || "—"}</dd>
        <dt>Last OK</dt><dd>${row.last_ok_at ? ago(row.last_ok_at) : "—"}</dd>
        ${row.webhooks && row.connected ? html`<dt>Webhooks</dt><dd>${registered[row.service]
          ? html`<span title="${registered[row.service].join(", ")}">registered at ${meta.title}
              (${registered[row.service].length} topics)</span>`
          : html`<span class="small" title="where ${meta.title} delivers">${row.webhooks.url}</span>`}</dd>` : ""}
        ${secrets.length ? html`<dt>Secrets</dt><dd>${secrets.map(([k, v]) =>
          html`<span class="pill" title="${k}">${label(k)} ${v}</span> `)}</dd>` : ""}
      </dl>
      ${row.last_error ? html`<p class="error small" role="alert">Last error ${ago(row.last_error_at)}: ${row.last_error}</p>` : ""}
      ${test ? html`<p class="test-result small" data-ok="${test.ok}">${pill(test.ok ? "healthy" : "failing",
          test.ok ? "healthy" : "test failed")} ${test.message}</p>` : ""}
      ${write ? html`<div class="row">
        <button type="button" data-act="edit" aria-expanded="${open.has(row.service)}"
          aria-label="${row.connected ? "Change" : "Connect"} ${meta.title}">${row.connected ? "Change" : "Connect"}</button>
        ${row.connected ? html`<button type="button" data-act="test" aria-label="Test ${meta.title}">Test</button>
        <button type="button" class="danger" data-act="disconnect" aria-label="Disconnect ${meta.title}">Disconnect</button>` : ""}
      </div>${open.has(row.service) ? form(row) : ""}` : ""}
    </article>`;
  };

  const form = row => {
    const model = all[FORMS[row.service]];
    const fields = Object.entries(model.properties).map(([n, p]) => fieldOf(n, p, all));
    const secret = SECRET_FIELDS[row.service];
    const draw = field => input(field, secret.includes(field.name) ? row.secrets?.[field.name]
      : row.config?.[field.name], { secret: secret.includes(field.name) });
    return html`<form class="integration-form" data-form="${row.service}"
        aria-label="${SERVICES[row.service].title} connection">
      ${fields.filter(f => !ADVANCED.has(f.name)).map(draw)}
      <details ${fields.some(f => ADVANCED.has(f.name) && row.config?.[f.name]) ? "open" : ""}>
        <summary>Advanced: API version and service address</summary>
        ${fields.filter(f => ADVANCED.has(f.name)).map(draw)}</details>
      <div class="row"><button type="submit" class="primary">Save and connect</button>
        <button type="button" data-act="close">Cancel</button></div>
    </form>`;
  };

  const draw = () => {
    el.innerHTML = html`<div class="integrations grid">${current.map(card)}</div>`;
  };
  const reload = async () => { current = await ctx.api.get("/integrations"); draw(); };
  draw();
  // Changed elsewhere (another operator, the CLI): redrawn, unless a form is being filled in.
  ctx.follow(e => String(e.type).startsWith("integration.") && !open.size, reload);

  const serviceOf = button => button.closest("[data-service]").dataset.service;
  onClick(el, {
    edit: async button => { const s = serviceOf(button); open.has(s) ? open.delete(s) : open.add(s); draw();
      el.querySelector(`[data-form="${s}"] input, [data-form="${s}"] select`)?.focus(); },
    close: async button => { open.delete(serviceOf(button)); draw(); },
    test: async button => {
      const service = serviceOf(button);
      try {
        const said = await ctx.api.post(`/integrations/${service}/test`);
        tested[service] = { ok: true, message: said.message };
        toast(`${SERVICES[service].title}: healthy`);
      } catch (err) {
        tested[service] = { ok: false, message: err.message };
        toast(err.message, "error");
      }
      await reload();
    },
    disconnect: async button => {
      if (!armed(button)) return;
      const service = serviceOf(button);
      await act(ctx.api.del(`/integrations/${service}`), `${SERVICES[service].title} disconnected`);
      delete tested[service];
      delete registered[service];
      await reload();
    },
  });
  el.addEventListener("submit", async event => {
    const formEl = event.target.closest("form[data-form]");
    if (!formEl) return;
    event.preventDefault();
    const service = formEl.dataset.form;
    const row = current.find(r => r.service === service);
    const model = all[FORMS[service]];
    const body = {};
    try {
      for (const [name, prop] of Object.entries(model.properties)) {
        const field = fieldOf(name, prop, all);
        const value = valueOf(field, formEl.elements[name]);
        if (SECRET_FIELDS[service].includes(name)) { if (value) body[name] = value; continue; }
        if (value === undefined || value === null && row.config?.[name] === undefined) continue;
        if (!same(value, row.config?.[name])) body[name] = value;
      }
    } catch (err) { toast(err.message, "error"); return; }
    const submit = formEl.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      const saved = await act(ctx.api.put(`/integrations/${service}`, body), `${SERVICES[service].title} saved`);
      if (saved.webhooks?.registered) registered[service] = saved.webhooks.subscriptions;
      open.delete(service);
      delete tested[service];
      await reload();
    } catch { submit.disabled = false; }
  });
}

// --- tenant settings -----------------------------------------------------------------------

const GROUPS = [
  ["Printing", /^(max_print|cancel_printing|stranded|stuck|print_authorized|ignored_sku)/],
  ["Shipping", /^(packaging|shipping|parcel|shipment)/],
  ["Stock", /^stock_/],
  ["GridFlock", /^gridflock_/],
  ["API and webhooks", /^(api_|webhook)/],
  ["Other", /.*/],
];

async function tenantSettings(el, ctx) {
  const write = ctx.can("tenant.configure");
  const [all, values] = await Promise.all([schemas(ctx), ctx.api.get("/tenant/settings")]);
  const fields = Object.entries(all.TenantSettings.properties).map(([n, p]) => fieldOf(n, p, all));
  const groupOf = field => GROUPS.find(([, test]) => test.test(field.name))[0];
  const groups = GROUPS.map(([title]) => [title, fields.filter(f => groupOf(f) === title)])
    .filter(([, list]) => list.length);
  const shown = (field, value) => field.kind === "boolean" ? (value ? "on" : "off")
    : value === null || value === undefined || (Array.isArray(value) && !value.length) ? "—"
      : typeof value === "object" && !Array.isArray(value) ? JSON.stringify(value)
        : Array.isArray(value) ? value.map(v => typeof v === "object" ? JSON.stringify(v) : v).join(", ")
          : String(value);
  if (!write) {
    el.innerHTML = html`<p class="muted">Your role can read these settings; changing them needs
      the tenant.configure permission.</p>${groups.map(([title, list]) => html`
      <section class="card setting-group"><h2>${title}</h2><dl class="settings-list">${list.map(f => html`
        <div class="setting" data-setting="${f.name}"><dt>${f.title}</dt><dd><strong>${shown(f, values[f.name])}</strong>
        <small class="muted">${f.description}</small></dd></div>`)}</dl></section>`)}`;
    return;
  }
  el.innerHTML = html`<form class="tenant-settings" aria-label="Tenant settings">
    <div class="row spread sticky-bar"><p class="muted small">Only the settings you change are saved;
      a value the server refuses is named and nothing changes.</p>
      <button type="submit" class="primary">Save changes</button></div>
    ${groups.map(([title, list]) => html`<fieldset class="card setting-group"><legend>${title}</legend>
      <div class="fields">${list.map(f => input(f, values[f.name]))}</div></fieldset>`)}
  </form>`;
  const formEl = el.querySelector("form");
  formEl.addEventListener("submit", async event => {
    event.preventDefault();
    const changes = {};
    try {
      for (const field of fields) {
        const value = valueOf(field, formEl.elements[field.name]);
        if (value !== undefined && !same(value, values[field.name])) changes[field.name] = value;
      }
    } catch (err) { toast(err.message, "error"); return; }
    if (!Object.keys(changes).length) { toast("Nothing changed"); return; }
    const saved = await act(ctx.api.patch("/tenant/settings", changes),
      `Saved: ${Object.keys(changes).join(", ")}`).catch(() => null);
    if (saved) Object.assign(values, saved);
  });
}

// --- users and roles -----------------------------------------------------------------------

const BUILTIN = ["owner", "admin", "operator", "catalogue_manager", "viewer"];

async function people(el, ctx) {
  const manage = ctx.can("users.manage");
  const readUsers = ctx.can("users.read"), readRoles = ctx.can("roles.read");
  el.innerHTML = html`<div id="people-secret"></div><div id="people-users"></div><div id="people-roles"></div>`;
  const secretEl = el.querySelector("#people-secret");
  wireSecretBox(secretEl);
  let roles = [];

  const loadRoles = async () => {
    if (!readRoles) return;
    roles = await ctx.api.get("/roles");
    el.querySelector("#people-roles").innerHTML = html`<h2>Roles</h2>${table([
      { label: "Role", cell: r => html`<strong>${r.name}</strong>` },
      { label: "Kind", cell: r => r.builtin ? "built in" : "the tenant's own" },
      { label: "Description", cell: r => r.description },
      { label: "Permissions", cell: r => html`<details><summary>${r.permissions.length} permissions</summary>
        <ul class="perms">${r.permissions.map(p => html`<li><code>${p}</code></li>`)}</ul></details>` },
    ], roles)}`;
  };
  const roleNames = () => roles.length ? roles.map(r => r.name) : BUILTIN;
  const roleSelect = (name, selected, aria) => html`<select name="${name}" aria-label="${aria}">${
    roleNames().map(r => html`<option ${r === selected ? "selected" : ""}>${r}</option>`)}</select>`;

  const loadUsers = async () => {
    if (!readUsers) return;
    const users = await ctx.api.get("/users");
    const me = ctx.session.id;
    el.querySelector("#people-users").innerHTML = html`
      ${manage ? html`<form class="card inline-form" id="invite" aria-label="Invite a user">
        <h2>Invite a user</h2>
        <div class="row">
          <label>Email <input name="email" type="email" required autocomplete="off"></label>
          <label>Name <input name="name" required autocomplete="off"></label>
          <label>Role ${roleSelect("role", "operator", "Role of the invited user")}</label>
          <button type="submit" class="primary">Invite</button></div></form>` : ""}
      <h2>Users</h2>${table([
        { label: "Name", cell: u => html`${u.name}${u.id === me ? html` <span class="muted small">(you)</span>` : ""}` },
        { label: "Email", cell: u => u.email },
        { label: "Role", cell: u => manage && u.id !== me
          ? roleSelect("role", u.role, `Role of ${u.email}`) : u.role },
        { label: "Status", cell: u => u.invited ? pill("PENDING", "invited")
          : u.locked_until && new Date(u.locked_until) > new Date() ? pill("failed", "locked") : pill("ok", "active") },
        { label: "Since", cell: u => when(u.created_at) },
        ...(manage ? [{ label: "Actions", cell: u => u.id === me ? "" : html`<div class="row">
          <button type="button" data-act="reset" aria-label="Password reset for ${u.email}">Reset password</button>
          <button type="button" class="danger" data-act="remove" aria-label="Remove ${u.email}">Remove</button></div>` }] : []),
      ], users, { rowAttrs: u => html`data-user="${u.id}" data-email="${u.email}"` })}`;
  };
  await loadRoles();
  await loadUsers();

  const userOf = node => node.closest("[data-user]");
  const showLink = (title, answer) => {
    secretEl.innerHTML = secretBox(title, new URL(answer.link, location.origin).href,
      `Send this link to ${answer.email}; it is shown only now and works until ${when(answer.expires_at)}.`);
  };
  if (!manage) return;
  el.addEventListener("submit", async event => {
    if (event.target.id !== "invite") return;
    event.preventDefault();
    const f = event.target.elements;
    const body = { email: f.email.value.trim(), name: f.name.value.trim(), role: f.role.value };
    try {
      const answer = await act(ctx.api.post("/invitations", body), `Invited ${body.email}`);
      showLink(`Invitation link for ${answer.email}`, answer);
      await loadUsers();
    } catch { /* act() showed the reason */ }
  });
  el.addEventListener("change", async event => {
    const select = event.target.closest("select[name=role]");
    const row = select && userOf(select);
    if (!row) return;
    try {
      await act(ctx.api.patch(`/users/${row.dataset.user}`, { role: select.value }),
        `${row.dataset.email} is now ${select.value}`);
    } catch { /* act() showed the reason */ }
    await loadUsers();
  });
  onClick(el, {
    remove: async button => {
      if (!armed(button)) return;
      const row = userOf(button);
      await act(ctx.api.del(`/users/${row.dataset.user}`), `Removed ${row.dataset.email}`);
      await loadUsers();
    },
    reset: async button => {
      const row = userOf(button);
      const answer = await act(ctx.api.post(`/users/${row.dataset.user}/password-reset`),
        "Password reset link issued");
      showLink(`Password reset link for ${answer.email}`, answer);
    },
  });
}

// --- API keys ------------------------------------------------------------------------------

async function apiKeys(el, ctx) {
  const manage = ctx.can("api_keys.manage");
  const roles = ctx.can("roles.read") ? (await ctx.api.get("/roles")).map(r => r.name) : BUILTIN;
  el.innerHTML = html`<div id="key-secret"></div>
    ${manage ? html`<form class="card inline-form" id="new-key" aria-label="Create an API key">
      <h2>Create an API key</h2>
      <div class="row">
        <label>Name <input name="name" required autocomplete="off" placeholder="e.g. warehouse scanner"></label>
        <label>Role <select name="role">${roles.map(r => html`<option ${r === "viewer" ? "selected" : ""}>${r}</option>`)}</select></label>
        <label>Expires (optional) <input name="expires" type="date"></label>
        <button type="submit" class="primary">Create key</button></div></form>` : ""}
    <h2>Keys</h2><div id="key-list"></div>`;
  const secretEl = el.querySelector("#key-secret");
  wireSecretBox(secretEl);
  const showKey = (title, key) => {
    secretEl.innerHTML = secretBox(title, key, "Copy it now: it is shown only this once and cannot be read back.");
  };
  const load = async () => {
    const keys = await ctx.api.get("/api-keys");
    el.querySelector("#key-list").innerHTML = table([
      { label: "Name", cell: k => html`<strong>${k.name}</strong>` },
      { label: "Key", cell: k => html`<code>${k.prefix}…</code>` },
      { label: "Scope", cell: k => k.role ? k.role : `${(k.permissions || []).length} permissions` },
      { label: "Created", cell: k => when(k.created_at) },
      { label: "Last used", cell: k => k.last_used_at ? ago(k.last_used_at) : "never" },
      { label: "Expires", cell: k => k.expires_at ? when(k.expires_at) : "never" },
      { label: "State", cell: k => k.revoked_at ? pill("CANCELLED", "revoked")
        : k.expires_at && new Date(k.expires_at) < new Date() ? pill("failed", "expired") : pill("ok", "active") },
      ...(manage ? [{ label: "Actions", cell: k => k.revoked_at ? "" : html`<div class="row">
        <button type="button" data-act="rotate" aria-label="Rotate ${k.name}">Rotate</button>
        <button type="button" class="danger" data-act="revoke" aria-label="Revoke ${k.name}">Revoke</button></div>` }] : []),
    ], keys, { empty: "No API keys yet.", rowAttrs: k => html`data-key="${k.id}" data-name="${k.name}"` });
  };
  await load();
  if (!manage) return;
  el.querySelector("#new-key").addEventListener("submit", async event => {
    event.preventDefault();
    const f = event.target.elements;
    const body = { name: f.name.value.trim(), role: f.role.value };
    if (f.expires.value) body.expires_at = new Date(`${f.expires.value}T23:59:59`).toISOString();
    try {
      const created = await act(ctx.api.post("/api-keys", body), `Created key ${body.name}`);
      showKey(`New key ${created.name}`, created.key);
      event.target.reset();
      await load();
    } catch { /* act() showed the reason */ }
  });
  const keyOf = node => node.closest("[data-key]");
  onClick(el, {
    rotate: async button => {
      if (!armed(button)) return;
      const row = keyOf(button);
      const rotated = await act(ctx.api.post(`/api-keys/${row.dataset.key}/rotate`),
        `Rotated ${row.dataset.name}: the old secret no longer works`);
      showKey(`New secret for ${row.dataset.name}`, rotated.key);
    },
    revoke: async button => {
      if (!armed(button)) return;
      const row = keyOf(button);
      await act(ctx.api.del(`/api-keys/${row.dataset.key}`), `Revoked ${row.dataset.name}`);
      await load();
    },
  });
}

// --- webhook subscriptions -----------------------------------------------------------------

async function webhooks(el, ctx) {
  const write = ctx.can("webhook_subscriptions.write");
  const types = await ctx.api.get("/webhook-event-types");
  let subs = [], editing = null, selected = ctx.args[1] || null;
  el.innerHTML = html`<div id="hook-secret"></div><div id="hook-form"></div>
    <h2>Subscriptions</h2><div id="hook-list"></div><div id="hook-deliveries"></div>`;
  const secretEl = el.querySelector("#hook-secret");
  wireSecretBox(secretEl);

  const typeSelect = chosen => html`<select name="event_types" multiple size="7"
      aria-label="Event types" required>
    <option value="*" ${chosen.includes("*") ? "selected" : ""}>all events (*)</option>
    ${types.map(t => html`<option ${chosen.includes(t) ? "selected" : ""}>${t}</option>`)}</select>`;
  const drawForm = () => {
    const box = el.querySelector("#hook-form");
    if (!write) { box.innerHTML = ""; return; }
    const sub = subs.find(s => s.id === editing);
    box.innerHTML = html`<form class="card inline-form" id="hook" aria-label="${sub ? "Edit subscription" : "New subscription"}">
      <h2>${sub ? "Edit subscription" : "Subscribe a URL"}</h2>
      <div class="row align-top">
        <label class="grow">URL <input name="url" type="url" required value="${sub ? sub.url : ""}"
          placeholder="https://hooks.example.com/forma3d"></label>
        <label>Event types ${typeSelect(sub ? sub.event_types : ["*"])}</label>
        <div class="stack">
          <label>Description <input name="description" value="${sub?.description || ""}"></label>
          <label class="inline"><input type="checkbox" name="enabled" ${!sub || sub.enabled ? "checked" : ""}> Enabled</label>
          <div class="row"><button type="submit" class="primary">${sub ? "Save" : "Subscribe"}</button>
          ${sub ? html`<button type="button" data-act="cancel-edit">Cancel</button>` : ""}</div>
        </div></div></form>`;
  };
  const loadDeliveries = async () => {
    const box = el.querySelector("#hook-deliveries");
    const sub = subs.find(s => s.id === selected);
    if (!sub) { box.innerHTML = ""; return; }
    const page = await ctx.api.list(`/webhook-subscriptions/${sub.id}/deliveries`, { limit: 50 });
    box.innerHTML = html`<h2>Deliveries to ${sub.url}</h2>${table([
      { label: "Event", cell: d => html`<code>${d.event_type}</code>` },
      { label: "Subject", cell: d => d.subject },
      { label: "Status", cell: d => pill(d.status) },
      { label: "Attempts", cell: d => d.attempts },
      { label: "Answer", cell: d => d.last_status ?? (d.last_error || "—") },
      { label: "Created", cell: d => when(d.created_at) },
      { label: "Delivered", cell: d => d.delivered_at ? ago(d.delivered_at) : "—" },
      ...(write ? [{ label: "", cell: () => html`<button type="button" data-act="redeliver">Redeliver</button>` }] : []),
    ], rows(page), { empty: "No deliveries yet.", rowAttrs: d => html`data-delivery="${d.id}"` })}`;
  };
  const load = async () => {
    subs = rows(await ctx.api.list("/webhook-subscriptions", { limit: 100 }));
    el.querySelector("#hook-list").innerHTML = table([
      { label: "URL", cell: s => html`<code>${s.url}</code>${s.description ? html`<div class="muted small">${s.description}</div>` : ""}` },
      { label: "Events", cell: s => s.event_types.includes("*") ? "all" : s.event_types.join(", ") },
      { label: "State", cell: s => s.enabled ? (s.consecutive_failures ? pill("failing", `failing ×${s.consecutive_failures}`)
        : pill("ok", "enabled")) : pill("PAUSED", s.disabled_reason ? `off: ${s.disabled_reason}` : "off") },
      { label: "Created", cell: s => when(s.created_at) },
      { label: "Actions", cell: s => html`<div class="row">
        <button type="button" data-act="deliveries" aria-pressed="${s.id === selected}">Deliveries</button>
        ${write ? html`<button type="button" data-act="edit">Edit</button>
        <button type="button" class="danger" data-act="delete" aria-label="Delete ${s.url}">Delete</button>` : ""}</div>` },
    ], subs, { empty: "No subscriptions yet.",
               rowAttrs: s => html`data-sub="${s.id}" ${s.id === selected ? html`class="selected"` : ""}` });
    drawForm();
    await loadDeliveries();
  };
  await load();
  ctx.follow(() => Boolean(selected), loadDeliveries, 500);

  const subOf = node => node.closest("[data-sub]")?.dataset.sub;
  onClick(el, {
    deliveries: async button => { const id = subOf(button); selected = selected === id ? null : id; await load(); },
    edit: async button => { editing = subOf(button); drawForm(); el.querySelector("#hook input")?.focus(); },
    "cancel-edit": async () => { editing = null; drawForm(); },
    delete: async button => {
      if (!armed(button)) return;
      const id = subOf(button);
      await act(ctx.api.del(`/webhook-subscriptions/${id}`), "Subscription deleted");
      if (selected === id) selected = null;
      await load();
    },
    redeliver: async button => {
      const delivery = button.closest("[data-delivery]").dataset.delivery;
      await act(ctx.api.post(`/webhook-subscriptions/${selected}/deliveries/${delivery}/redeliver`),
        "Queued for redelivery");
      await loadDeliveries();
    },
  });
  el.addEventListener("submit", async event => {
    if (event.target.id !== "hook") return;
    event.preventDefault();
    const f = event.target.elements;
    const chosen = [...f.event_types.selectedOptions].map(o => o.value);
    const body = { url: f.url.value.trim(), event_types: chosen.includes("*") ? ["*"] : chosen,
                   description: f.description.value.trim() || null, enabled: f.enabled.checked };
    try {
      if (editing) {
        const sub = subs.find(s => s.id === editing);
        const changes = Object.fromEntries(Object.entries(body).filter(([k, v]) => !same(v, sub[k])));
        if (!Object.keys(changes).length) { toast("Nothing changed"); return; }
        await act(ctx.api.patch(`/webhook-subscriptions/${editing}`, changes), "Subscription saved");
        editing = null;
      } else {
        const created = await act(ctx.api.post("/webhook-subscriptions", body), "Subscribed");
        secretEl.innerHTML = secretBox(`Signing secret for ${created.url}`, created.secret,
          "Verify the webhook-signature header with it. It is shown only now.");
      }
      await load();
    } catch { /* act() showed the reason */ }
  });
}
