// The REST API of one summit, called with the grant from the invitation link.

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

export class Api {
  constructor(summitId, token) {
    this.summitId = summitId;
    this.token = token;
    this.base = `/api/v1/summits/${encodeURIComponent(summitId)}`;
  }

  /** The raw Response of a request; throws ApiError unless it is 2xx. */
  async raw(method, path, { json, body, contentType } = {}) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (contentType) {
      headers["Content-Type"] = contentType;
    }
    const url = path.startsWith("/api/") ? path : `${this.base}${path}`;
    let response;
    try {
      response = await fetch(url, { method, headers, body, cache: "no-store" });
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
    let zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch {
      /* no zone: the summit still comes back */
    }
    return this.get(zone ? `?tz=${encodeURIComponent(zone)}` : "");
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
