// The JSON API, with the key and namespace of this tab's session.

const KEY = "stagewise.apiKey";
const NAMESPACE = "stagewise.namespace";

// sessionStorage only: the key lives as long as the tab, never in localStorage or a cookie.
export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  get namespace() {
    return sessionStorage.getItem(NAMESPACE);
  },
  signIn(key) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.removeItem(NAMESPACE);
  },
  useNamespace(id) {
    sessionStorage.setItem(NAMESPACE, id);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(NAMESPACE);
  },
};

/** An error answer in the API's one shape: {success, status, error: {message, type, code, details}}. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type || "";
    this.code = error.code || "";
    this.details = error.details || {};
  }
}

// The API sits beside /ui/ (under any root path the server is mounted at).
const BASE = new URL("../", document.baseURI);

export async function api(method, path, { body, query, namespace = true, signal } = {}) {
  const url = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (session.key) headers.Authorization = `Bearer ${session.key}`;
  if (namespace && session.namespace) headers["X-Namespace"] = session.namespace;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, {
      message: `The server could not be reached (${exc.message})`,
      type: "NetworkError",
      code: "network_error",
    });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error =
      data && typeof data.error === "object" && data.error !== null
        ? data.error
        : { message: text.slice(0, 300) || response.statusText, type: "HttpError", code: "http_error" };
    throw new ApiError(response.status, error);
  }
  return data;
}

export const enc = encodeURIComponent;
