// The REST API as the page sees it: same-origin /api/v1, the session cookie, the CSRF token
// echoed on every write, and problem+json turned into an ApiError with the server's words.
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function csrf() {
  const cookie = document.cookie.split("; ").find(c => c.startsWith("forma3d_csrf="));
  return cookie ? decodeURIComponent(cookie.slice("forma3d_csrf=".length)) : "";
}

export async function request(method, path, body, { raw = false, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET") init.headers["X-CSRF-Token"] = csrf();
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(API + path, init);
  if (!res.ok) {
    let problem;
    try { problem = await res.json(); } catch { problem = { title: res.statusText }; }
    throw new ApiError(res.status, problem);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return (res.headers.get("content-type") || "").includes("json") ? res.json() : res.text();
}

/** `params` as a query string for the list endpoints' query language (filters, sort, page). */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.append(key, value);
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

export const api = {
  get: (path, params) => request("GET", path + query(params)),
  post: (path, body) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  patch: (path, body) => request("PATCH", path, body),
  del: path => request("DELETE", path),
  raw: (method, path, body, options) => request(method, path, body, { ...options, raw: true }),
  /** A list endpoint's rows (`{data, total, ...}`). */
  list: async (path, params) => (await request("GET", path + query(params))),
};
