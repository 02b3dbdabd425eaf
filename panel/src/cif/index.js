// The D365 host behind one interface: CIF 1.0 (single session), CIF 2.0 (multi-session,
// notifications) or stand-alone (no host: links open in a new tab).
//
// The CIF library is the org's own /webresources/Widget/msdyn_ciLibrary.js, loaded from the
// D365 page embedding us (CIF does not allow a copy of it).

const MINIMISED = 0;
const DOCKED = 1;

function orgUrl() {
  const asked = new URLSearchParams(location.search).get("crmUrl");
  if (asked) return asked.replace(/\/$/, "");
  if (window.parent === window) return null;
  const ancestor = location.ancestorOrigins?.[0];
  if (ancestor) return ancestor;
  try {
    return document.referrer ? new URL(document.referrer).origin : null;
  } catch {
    return null;
  }
}

function loadLibrary(org, timeoutMs) {
  return new Promise((resolve) => {
    const done = (ok) => {
      clearTimeout(timer);
      resolve(ok && window.Microsoft?.CIFramework ? window.Microsoft.CIFramework : null);
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    window.addEventListener("CIFInitDone", () => done(true), { once: true });
    const script = document.createElement("script");
    script.src = `${org}/webresources/Widget/msdyn_ciLibrary.js`;
    script.dataset.crmurl = org;
    script.dataset.cifid = "CIFMainLibrary";
    script.onerror = () => done(false);
    document.head.appendChild(script);
  });
}

const guid = (id) => String(id).replace(/[{}]/g, "").toLowerCase();

function recordUrl(base, entity, id) {
  if (!base) return null;
  return `${base}/main.aspx?pagetype=entityrecord&etn=${encodeURIComponent(entity)}&id=${encodeURIComponent(id)}`;
}

function standalone(d365Url) {
  return {
    kind: "standalone",
    label: "Stand-alone",
    onClickToAct() {},
    async setClickToAct() {},
    async maximise() {},
    async minimise() {},
    recordUrl: (entity, id) => recordUrl(d365Url, entity, id),
    async openRecord(customer) {
      const url = recordUrl(d365Url, customer.entity, customer.id);
      if (url) window.open(url, "_blank", "noopener");
      return !!url;
    },
    async showCandidates() {
      return false;
    },
    async openActivity(activityId) {
      const url = recordUrl(d365Url, "phonecall", activityId);
      if (url) window.open(url, "_blank", "noopener");
      return !!url;
    },
    async notifyIncoming() {
      return null;
    },
    async startSession() {},
    async endSession() {},
  };
}

function cif(api, org) {
  const multiSession = typeof api.createSession === "function";
  let sessionId = null;
  const clickHandlers = [];
  api.addHandler("onclicktoact", (raw) => {
    let params = raw;
    try {
      params = typeof raw === "string" ? JSON.parse(raw) : raw;
    } catch {
      params = { value: raw };
    }
    const number = params?.value ?? params?.phoneNumber ?? "";
    clickHandlers.forEach((cb) => cb(String(number), params));
    return Promise.resolve();
  });

  const filterFor = (entity, ids) => {
    const key = `${entity}id`;
    return `?$filter=${ids.map((id) => `${key} eq ${guid(id)}`).join(" or ")}`;
  };

  return {
    kind: multiSession ? "cif2" : "cif1",
    label: multiSession ? "CIF 2.0" : "CIF 1.0",
    onClickToAct: (cb) => clickHandlers.push(cb),
    setClickToAct: (on) => api.setClickToAct(on),
    maximise: () => api.setMode(DOCKED),
    minimise: () => api.setMode(MINIMISED),
    recordUrl: (entity, id) => recordUrl(org, entity, id),
    /** Opens the record in the main area; false when D365 did not (e.g. unsaved changes there). */
    async openRecord(customer) {
      try {
        await api.openForm(JSON.stringify({ entityName: customer.entity, entityId: guid(customer.id) }));
        return true;
      } catch {
        return false;
      }
    },
    async showCandidates(candidates) {
      const byEntity = new Map();
      for (const c of candidates) byEntity.set(c.entity, [...(byEntity.get(c.entity) || []), c.id]);
      // One search page: the entity with the most candidates (D365 shows one entity at a time).
      const [entity, ids] = [...byEntity.entries()].sort((a, b) => b[1].length - a[1].length)[0] || [];
      if (!entity) return false;
      try {
        await api.searchAndOpenRecords(entity, filterFor(entity, ids), false);
        return true;
      } catch {
        return false;
      }
    },
    async openActivity(activityId, values) {
      try {
        await api.openForm(
          JSON.stringify({ entityName: "phonecall", entityId: guid(activityId) }),
          values ? JSON.stringify(values) : undefined,
        );
        return true;
      } catch {
        return false;
      }
    },
    /** CIF 2.0: the incoming-call notification; resolves "accept", "reject" or null (no answer). */
    async notifyIncoming(call) {
      if (!multiSession || typeof api.notifyEvent !== "function") return null;
      try {
        const answer = await api.notifyEvent({
          templateName: "d365phone_incoming_call",
          templateParameters: {
            callerName: call.name || call.number,
            phoneNumber: call.number,
            pool: call.pool || "",
          },
        });
        const text = String(answer?.actionName ?? answer ?? "").toLowerCase();
        if (["accept", "true", "accepted"].includes(text)) return "accept";
        if (["reject", "false", "rejected", "decline"].includes(text)) return "reject";
        return null;
      } catch {
        return null;
      }
    },
    /** CIF 2.0: one session per answered call, titled by the customer. */
    async startSession(call) {
      if (!multiSession || sessionId) return;
      try {
        sessionId = await api.createSession({
          templateName: "d365phone_call_session",
          templateParameters: { callId: call.callId, phoneNumber: call.customerNumber, title: call.title },
        });
      } catch {
        sessionId = null;
      }
    },
    async endSession() {
      if (!multiSession || !sessionId) return;
      const id = sessionId;
      sessionId = null;
      try {
        await api.closeSession(id);
      } catch {
        /* the agent may have closed it in D365 already */
      }
    },
  };
}

export async function connectHost({ d365Url, timeoutMs = 4000 } = {}) {
  const org = orgUrl();
  if (!org || org === location.origin) return standalone(d365Url);
  const api = await loadLibrary(org, timeoutMs);
  return api ? cif(api, org) : standalone(d365Url);
}
