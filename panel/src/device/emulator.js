// The ACS emulator's browser device API (plain HTTP on loopback, the ACS user token as bearer).
const POLL_MS = 400;

export function createEmulatorDevice(baseUrl, getAcsToken) {
  const base = baseUrl.replace(/\/$/, "");
  let token = null;
  let timer = null;
  let stopped = false;
  let seen = new Set();
  let wasConnected = false;
  let ringing = [];
  const incoming = [];
  const ended = [];
  const ringEnded = [];
  const failures = [];

  async function bearer() {
    if (!token || Date.parse(token.expiresOn) - Date.now() < 60_000) token = await getAcsToken();
    return token.token;
  }

  async function send(path, body, { keepalive = false } = {}) {
    const reply = await fetch(`${base}/devices/me/${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${await bearer()}`, "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      keepalive,
    });
    if (!reply.ok) {
      const problem = await reply.json().catch(() => ({}));
      throw new Error(problem.error?.message || problem.detail || `The phone device refused (${reply.status}).`);
    }
  }

  async function poll() {
    if (stopped) return;
    try {
      const reply = await fetch(`${base}/devices/me`, {
        headers: { Authorization: `Bearer ${await bearer()}` },
        cache: "no-store",
      });
      if (reply.status === 401) token = null;
      if (reply.ok) {
        const state = await reply.json();
        ringing = state.ringing || [];
        const now = new Set(ringing.map((r) => r.ringId));
        for (const ring of ringing) {
          if (!seen.has(ring.ringId)) {
            const event = { ringId: ring.ringId, from: ring.from, callId: ring.callId, rejoin: !!ring.rejoin };
            incoming.forEach((cb) => cb(event));
          }
        }
        for (const ringId of seen) {
          if (!now.has(ringId)) ringEnded.forEach((cb) => cb({ ringId }));
        }
        seen = now;
        if (wasConnected && !state.connected) ended.forEach((cb) => cb({}));
        wasConnected = !!state.connected;
      }
    } catch (err) {
      failures.forEach((cb) => cb(err));
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  const ringOf = (ringId) => ringId || ringing[0]?.ringId;

  return {
    kind: "emulator",
    async start() {
      stopped = false;
      await bearer();
      await poll();
    },
    onIncoming: (cb) => incoming.push(cb),
    onEnded: (cb) => ended.push(cb),
    onRingEnded: (cb) => ringEnded.push(cb),
    onFailure: (cb) => failures.push(cb),
    async answer(ringId) {
      await send("answer", { ringId: ringOf(ringId) });
      wasConnected = true;
    },
    decline: (ringId) => send("decline", { ringId: ringOf(ringId) }),
    mute: () => send("mute"),
    unmute: () => send("unmute"),
    /** Stops the device; when the page unloads the agent's leg drops, as a closed browser's does. */
    async stop({ unloading = false } = {}) {
      stopped = true;
      clearTimeout(timer);
      if (unloading && token) {
        fetch(`${base}/devices/me/leave`, {
          method: "POST",
          headers: { Authorization: `Bearer ${token.token}`, "Content-Type": "application/json" },
          body: "{}",
          keepalive: true,
        }).catch(() => {});
      }
    },
  };
}
