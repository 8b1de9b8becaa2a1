// The REST API: a summit's, called with the grant from the invitation link, and the
// public page's, called with none. Every request the pages make goes through `send`.

import { VIEWER_ZONE } from "./ui.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0: the server could not be reached
    this.code = code;
  }

  get unreachable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/**
 * The raw Response of a request; throws ApiError unless it is 2xx. `keepalive`: the
 * request still goes out while the page is being closed.
 */
async function send(url, method, { token, json, body, contentType, keepalive = false } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (contentType) {
    headers["Content-Type"] = contentType;
  }
  let response;
  try {
    const lasting = keepalive ? { keepalive } : { cache: "no-store" };
    response = await fetch(url, { method, headers, body, ...lasting });
  } catch {
    throw new ApiError(0, "unreachable", "The summit server cannot be reached.");
  }
  if (!response.ok) {
    let code = "http_error";
    let message = `The server answered ${response.status}.`;
    try {
      const problem = await response.json();
      code = problem.error || code;
      message = problem.message || message;
    } catch {
      /* not JSON: keep the generic message */
    }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

/** `?tz=` with the browser's time zone, or nothing where it has none. */
function zoneQuery() {
  return VIEWER_ZONE ? `?tz=${encodeURIComponent(VIEWER_ZONE)}` : "";
}

export class Api {
  constructor(summitId, token) {
    this.summitId = summitId;
    this.token = token;
    this.base = `/api/v1/summits/${encodeURIComponent(summitId)}`;
  }

  /** The raw Response of a request; throws ApiError unless it is 2xx. */
  raw(method, path, { json, body, contentType, keepalive } = {}) {
    const url = path.startsWith("/api/") || path.includes("://") ? path : `${this.base}${path}`;
    return send(url, method, { token: this.token, json, body, contentType, keepalive });
  }

  async request(method, path, options) {
    const response = await this.raw(method, path, options);
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, json) {
    return this.request("POST", path, json === undefined ? {} : { json });
  }

  put(path, json) {
    return this.request("PUT", path, { json });
  }

  del(path) {
    return this.request("DELETE", path);
  }

  me() {
    return this.get("/api/v1/me");
  }

  summit() {
    return this.get(zoneQuery());
  }

  participants() {
    return this.get("/participants");
  }

  act(action, version) {
    return this.post(`/actions/${action}`, { version });
  }

  eventsTicket() {
    return this.post("/events/tickets");
  }

  eventsUrl(ticket) {
    return `${this.base}/events?ticket=${encodeURIComponent(ticket)}`;
  }
}

/** The public API of one summit (/s/<slug>): no grant, only what the public may see. */
export class PublicApi {
  constructor(slug) {
    this.base = `/api/v1/public/${encodeURIComponent(slug)}`;
  }

  /** The public view, with times in the browser's zone too (if the server knows that zone). */
  async view() {
    const query = zoneQuery();
    try {
      return await (await send(this.base + query, "GET")).json();
    } catch (error) {
      if (!(query && error instanceof ApiError && error.status === 422)) throw error;
    }
    return (await send(this.base, "GET")).json();
  }

  /** While live: TURN servers for the player, with a short-lived credential of its own. */
  async iceServers() {
    return (await (await send(`${this.base}/ice-servers`, "GET")).json()).ice_servers;
  }

  /** The WHEP offer to `url`; the Response carries the answer. */
  whep(url, sdp) {
    return send(url, "POST", { body: sdp, contentType: "application/sdp" });
  }

  /** Deletes a WHEP session, also while the page is being closed. */
  release(location) {
    return send(location, "DELETE", { keepalive: true });
  }

  eventsUrl() {
    return `${this.base}/events`;
  }
}
