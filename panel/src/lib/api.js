// The app's HTTP API with the agent's bearer token; problem+json answers become ApiError.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `Request failed (${status})`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function createApi(base, getToken) {
  async function request(method, path, body, { raw = false, keepalive = false } = {}) {
    const headers = { Authorization: `Bearer ${await getToken()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let reply;
    try {
      reply = await fetch(`${base}/${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        keepalive,
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, { detail: "The phone service cannot be reached. Check your connection." });
    }
    if (raw) return reply;
    if (reply.status === 204) return null;
    const type = reply.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await reply.json().catch(() => null) : null;
    if (!reply.ok) throw new ApiError(reply.status, data);
    return data;
  }
  const call = (id, action, body) =>
    request("POST", `me/calls/${encodeURIComponent(id)}/${action}`, body ?? {});
  return {
    request,
    current: () => request("GET", "me/calls/current").then((r) => r.call),
    saveNotes: (id, notes) => request("PUT", `me/calls/${encodeURIComponent(id)}/notes`, { notes }),
    pick: (id, customer) => call(id, "customer", { entity: customer.entity, id: customer.id }),
    dial: (number, callerId) => request("POST", "me/calls", { number, ...(callerId ? { callerId } : {}) }),
    hangup: (id) => call(id, "hangup"),
    decline: (id) => call(id, "decline"),
    hold: (id) => call(id, "hold"),
    unhold: (id) => call(id, "unhold"),
    mute: (id) => call(id, "mute"),
    dtmf: (id, tones) => call(id, "dtmf", { tones }),
    transfer: (id, target) => call(id, "transfer", target),
    consult: (id, target) => call(id, "consult", target),
    completeConsult: (id) => call(id, "consult/complete"),
    cancelConsult: (id) => call(id, "consult/cancel"),
    history: (limit = 20) => request("GET", `me/calls?limit=${limit}`),
    callerIds: () => request("GET", "me/caller-ids"),
    directory: (q) => request("GET", `directory?q=${encodeURIComponent(q)}&limit=20`),
    availability: () => request("GET", "me/availability"),
    setAvailability: (status) => request("PUT", "me/availability", { status }),
    pools: () => request("GET", "me/pools"),
    setPool: (poolId, active) => request("PUT", "me/pools", { pools: [{ poolId, active }] }),
    startSession: (takeover) => request("POST", "me/session", takeover ? { takeover: true } : {}),
    heartbeat: (id) => request("PUT", `me/session/${encodeURIComponent(id)}`),
    endSession: (id, keepalive = false) =>
      request("DELETE", `me/session/${encodeURIComponent(id)}`, undefined, { keepalive }),
    acsToken: () => request("GET", "me/acs-token"),
    recording: (callId) => request("GET", `recordings/${encodeURIComponent(callId)}`, undefined, { raw: true }),
  };
}
