// The dashboard shell: session, navigation and the hash router. Each view is a module in
// views/ (listed in views/index.js) with {name, title, permission, render(el, ctx)}; render
// may return a cleanup function, called when the operator leaves the view.
import { api, ApiError } from "./api.js";
import { Live } from "./live.js";
import { errorText, html, throttle } from "./ui.js";
import { VIEWS } from "./views/index.js";

const $ = id => document.getElementById(id);
const live = new Live($("live"));
let session = null;
let cleanups = [];

// A permission, or an array meaning "any of" (a view whose sections need different ones).
const can = permission => Array.isArray(permission) ? permission.some(can)
  : Boolean(session && session.permissions.includes(permission));

function visibleViews() {
  return VIEWS.filter(view => can(view.permission));
}

async function loadSession() {
  try {
    session = await api.get("/session");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    session = null;
  }
  return session;
}

function showSignIn() {
  live.stop();
  $("top").hidden = true;
  $("view").innerHTML = "";
  $("sign-in").hidden = false;
  $("sign-in-form").elements.tenant.focus();
}

function showShell() {
  $("sign-in").hidden = true;
  $("top").hidden = false;
  $("tenant-name").textContent = session.tenant_name || "";
  $("user-name").textContent = session.name;
  $("user-role").textContent = session.role || session.kind;
  $("nav").innerHTML = visibleViews().map(view =>
    html`<a href="#/${view.name}" data-view="${view.name}">${view.title}</a>`).join("");
  live.start();
}

function leave() {
  for (const fn of cleanups) {
    try { fn(); } catch (err) { console.error(err); }
  }
  cleanups = [];
}

async function route() {
  if (!session) return;
  leave();
  const [name, ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const views = visibleViews();
  const view = views.find(v => v.name === name) || views[0];
  if (!view) { $("view").textContent = "Your role can see nothing here."; return; }
  for (const link of $("nav").querySelectorAll("a")) {
    if (link.dataset.view === view.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${view.title} — Forma3D`;
  // Each render gets a fresh element: a slow render of the view just left writes into a
  // detached one instead of over this view.
  const el = document.createElement("div");
  el.dataset.view = view.name;
  $("view").replaceChildren(el);
  $("view").dataset.view = view.name;
  const ctx = {
    api, live, session, can, args,
    navigate: hash => { location.hash = hash; },
    /** Calls fn(kind, data) for live frames while this view is shown. */
    onLive: fn => { cleanups.push(live.on(fn)); },
    /** Refetches when a committed event passes `filter` (the first at once, then at most
     * every `ms` while they keep coming), and after the stream (re)connects, since events
     * committed while it was down were never sent. Follow before the first read. */
    follow: (filter, fn, ms = 300) => {
      const later = throttle(fn, ms);
      cleanups.push(live.on((kind, data) => {
        if ((kind === "event" && filter(data)) || kind === "connected") later();
      }));
    },
    /** Runs fn every `ms` while this view is shown (for clocks such as time left). */
    every: (ms, fn) => { const id = setInterval(fn, ms); cleanups.push(() => clearInterval(id)); },
  };
  try {
    const cleanup = await view.render(el, ctx);
    if (typeof cleanup === "function") cleanups.push(cleanup);
  } catch (err) {
    el.innerHTML = html`<p class="error" role="alert">${errorText(err)}</p>`;
  }
}

$("sign-in-form").addEventListener("submit", async event => {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    await api.post("/session", { tenant: form.elements.tenant.value.trim(),
                                 email: form.elements.email.value.trim(),
                                 password: form.elements.password.value });
  } catch (err) {
    $("sign-in-error").textContent = errorText(err);
    return;
  } finally {
    form.elements.password.value = "";
  }
  await loadSession();
  showShell();
  route();
});

$("sign-out").addEventListener("click", async () => {
  try { await api.del("/session"); } catch (err) { /* the session may have ended already */ }
  session = null;
  leave();
  showSignIn();
});

window.addEventListener("hashchange", route);

(async () => {
  if (await loadSession()) { showShell(); route(); } else { showSignIn(); }
})();
