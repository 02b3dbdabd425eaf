// The web phone panel: start-up (§1.4), availability and pools (§1.2.1), the phone (§1.3),
// the call workflows (§2.1, §6) and the activity of §3. The code above the device and host
// adapters is the same in Azure and locally.
import { createApi } from "./lib/api.js";
import { createAuth, isAuthPopup } from "./lib/auth.js";
import { loadConfig } from "./lib/config.js";
import {
  $,
  $$,
  announce,
  esc,
  formatDateTime,
  formatDuration,
  formatNumber,
  formatTime,
  setText,
  show,
} from "./lib/dom.js";
import { connectHost } from "./cif/index.js";
import { createDevice } from "./device/index.js";
import { createWorkflows } from "./workflows/index.js";

const POLL_MS = 800;
const NOTES_DEBOUNCE_MS = 500;
const SESSION_KEY = "d365phone.session"; // this tab's session id: a reload takes its own place back
const DISMISSED_KEY = "d365phone.dismissed"; // calls whose wrap-up the agent closed

const ICON_CALL =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.6 10.8c1.4 2.8 3.8 5.1 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1C10.6 21 3 13.4 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.2.2 2.4.6 3.6.1.3 0 .7-.2 1z"/></svg>';
const ICON_CHECK = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z"/></svg>';
const ICON_IN = '<path d="M20 5.4 18.6 4 8 14.6V9H6v9h9v-2H9.4z"/>';
const ICON_OUT = '<path d="M9 5v2h6.6L4 18.6 5.4 20 17 8.4V15h2V5z"/>';
const KEYS = [
  ["1", ""], ["2", "ABC"], ["3", "DEF"], ["4", "GHI"], ["5", "JKL"], ["6", "MNO"],
  ["7", "PQRS"], ["8", "TUV"], ["9", "WXYZ"], ["*", ""], ["0", "+"], ["#", ""],
];

const state = {
  config: null,
  api: null,
  auth: null,
  host: null,
  device: null,
  session: null,
  availability: null,
  pools: [],
  callerIds: [],
  call: null, // the call view from GET /me/calls/current
  ring: null, // the device's ring being shown
  dialling: null, // callId of a click-to-dial we started (its agent leg is answered at once)
  declined: new Set(),
  handedOver: new Map(), // callId -> who took the customer (a transfer this agent completed)
  popped: new Set(), // calls whose record D365 opened
  sessionsStarted: new Set(),
  muted: false,
  held: false,
  consulting: null, // { label } while a consulted transfer is under way
  transferTarget: null,
  notesDirty: false,
  notesFor: null,
  dismissed: new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) || "[]")),
  view: "startup",
  stopped: false,
};

// ---------------------------------------------------------------------------- small helpers

let toastTimer = null;
function toast(text, kind = "info") {
  const box = $("#toast");
  box.dataset.kind = kind;
  box.textContent = text;
  show(box, true);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => show(box, false), kind === "error" ? 7000 : 4000);
}

async function attempt(what, fn) {
  try {
    return await fn();
  } catch (err) {
    toast(`${what}: ${err.message}`, "error");
    return undefined;
  }
}

function customerOf(call) {
  if (!call) return null;
  if (call.picked) return call.picked;
  if (call.screenPop?.record) return call.screenPop.record;
  return null;
}

function titleOf(call, ring) {
  const customer = customerOf(call);
  if (customer) return customer.name;
  if (call?.identification === "several") return `${call.candidates.length} possible callers`;
  return formatNumber(call?.customerNumber || ring?.from);
}

function rememberDismissed(callId) {
  state.dismissed.add(callId);
  localStorage.setItem(DISMISSED_KEY, JSON.stringify([...state.dismissed].slice(-50)));
}

// ---------------------------------------------------------------------------- start-up (§1.4)

const STEPS = ["signin", "session", "device", "status"];

function step(name) {
  const index = STEPS.indexOf(name);
  $$("#startup-steps li").forEach((li, i) => {
    li.dataset.state = i < index ? "done" : i === index ? "active" : "";
  });
  $("#startup-progress").setAttribute("aria-valuenow", String(index));
  $("#startup-bar").style.width = `${Math.max(4, (index / STEPS.length) * 100)}%`;
}

function startupFailed(message) {
  const box = $("#startup-error");
  box.textContent = message;
  show(box, true);
  show($("#retry"), true);
  $$("#startup-steps li[data-state='active']").forEach((li) => (li.dataset.state = ""));
}

async function start() {
  if (isAuthPopup()) {
    // The sign-in popup came back: MSAL in the panel that opened it reads this address.
    setText($("#startup-title"), "Completing sign-in…");
    return;
  }
  step("signin");
  try {
    state.config = await loadConfig();
    const framed = window.parent !== window;
    const [auth, host] = await Promise.all([
      createAuth(state.config.auth, { framed }),
      connectHost({ d365Url: state.config.d365Url }),
    ]);
    state.auth = auth;
    state.host = host;
    wireHost();
    setText($("#host-kind"), host.label);
    if (!auth.account()) {
      if (!framed) {
        await auth.signIn(); // redirects
        return;
      }
      const button = $("#signin");
      show(button, true);
      button.focus();
      await new Promise((resolve, reject) => {
        button.onclick = () => auth.signIn().then(resolve, reject);
      });
      show(button, false);
    }
    state.api = createApi(state.config.apiBase, () => auth.token());
    state.workflows = createWorkflows({
      api: state.api,
      toast,
      refreshCall: () => refreshCall().catch(() => {}),
      openRecord: (record) => state.host.openRecord(record),
    });
    await startSession(false);
  } catch (err) {
    startupFailed(`The phone could not start: ${err.message}`);
  }
}

async function startSession(takeover) {
  step("session");
  const api = state.api;
  const mine = sessionStorage.getItem(SESSION_KEY);
  let lease;
  try {
    // A reload of this very tab takes its own place back (its old lease is not another window).
    lease = await api.startSession(takeover || !!mine);
  } catch (err) {
    if (err.status === 409) {
      showView("conflict");
      if (err.problem?.detail) setText($("#conflict-text"), err.problem.detail);
      $("#takeover").focus();
      return;
    }
    throw err;
  }
  state.session = lease;
  sessionStorage.setItem(SESSION_KEY, lease.sessionId);
  showView("startup");
  scheduleHeartbeat();
  step("device");
  if (!state.device) {
    state.device = await createDevice(state.config, () => api.acsToken());
    state.device.onIncoming(onRing);
    state.device.onRingEnded(({ ringId }) => {
      if (state.ring?.ringId !== ringId) return;
      state.ring = null;
      announce("The call stopped ringing");
      render();
    });
    state.device.onEnded(() => {
      // The agent's leg ended while the call goes on: a transfer handed the customer over.
      const call = state.call;
      if (call?.state === "connected" && (state.consulting || state.transferring)) {
        state.handedOver.set(call.callId, state.consulting?.label || state.transferring);
        state.consulting = null;
        state.transferring = null;
      }
      refreshCall();
    });
  }
  await state.device.start();
  step("status");
  await Promise.all([
    loadAvailability(),
    loadPools(),
    loadCallerIds(),
    loadHistory(),
    refreshCall(),
    state.workflows.loadEndpoint(),
  ]);
  const me = state.auth.account();
  setText($("#whoami"), me?.name || me?.username || "");
  show($("#footer"), true);
  show($("#presence"), true);
  state.stopped = false;
  state.view = "phone";
  await state.host.setClickToAct(true).catch(() => {});
  render();
  announce("Phone ready");
  pollCall();
}

let heartbeatTimer = null;
function scheduleHeartbeat() {
  clearTimeout(heartbeatTimer);
  const every = Math.max(5, Math.floor((state.session?.leaseSeconds || 60) / 3)) * 1000;
  heartbeatTimer = setTimeout(async () => {
    if (!state.session || state.stopped) return;
    try {
      state.session = await state.api.heartbeat(state.session.sessionId);
    } catch (err) {
      if (err.status === 409) return takenOver();
    }
    scheduleHeartbeat();
  }, every);
}

/** Another window took the phone over: this one stops ringing and says so. */
async function takenOver() {
  state.stopped = true;
  sessionStorage.removeItem(SESSION_KEY);
  await state.device?.stop();
  setText($("#conflict-title"), "Webphone is active in another window");
  setText(
    $("#conflict-text"),
    "The phone was activated in another Tab or Window, so it stopped here. Web Phone can be active in single-session only.",
  );
  showView("conflict");
}

// ---------------------------------------------------------------------------- availability and pools

let availabilityTimer = null;
async function loadAvailability() {
  const availability = await state.api.availability();
  state.availability = availability;
  renderAvailability();
  clearTimeout(availabilityTimer);
  // Lunch ends by itself: look again when it is due (and every half minute anyway).
  const due = availability.until ? Date.parse(availability.until) - Date.now() + 1500 : 30_000;
  availabilityTimer = setTimeout(() => loadAvailability().catch(() => {}), Math.max(1000, Math.min(due, 30_000)));
}

function renderAvailability() {
  const a = state.availability;
  if (!a) return;
  const select = $("#status");
  const options = a.statuses.map((s) => `<option value="${esc(s.name)}">${esc(s.name)}</option>`).join("");
  if (select.dataset.options !== options) {
    select.innerHTML = options;
    select.dataset.options = options;
  }
  select.value = a.status;
  $("#presence").dataset.type = a.type;
  const note = $("#status-note");
  if (a.until) {
    note.textContent = `${a.status} until ${formatTime(a.until)}${a.returnsTo ? `, then ${a.returnsTo}` : ""}.`;
  } else if (a.type === "DND") {
    note.textContent = a.forwardTo ? `Do not disturb: direct calls go to ${a.forwardTo}.` : "Do not disturb: no calls reach you.";
  } else if (a.type === "Offwork") {
    note.textContent = "Off work: you get direct calls, not queue calls.";
  } else {
    note.textContent = "";
  }
  show(note, !!note.textContent);
}

async function loadPools() {
  state.pools = (await state.api.pools()).pools;
  renderPools();
}

function renderPools() {
  const list = $("#pools");
  if (!state.pools.length) {
    list.innerHTML = '<li class="empty">You are not a member of any service pool.</li>';
    return;
  }
  list.innerHTML = state.pools
    .map(
      (p) => `<li><span class="row-main"><span id="pool-${esc(p.poolId)}" class="row-title">${esc(p.name)}</span>
        <span class="row-sub">${p.active ? "Taking its calls" : "Not taking its calls"}</span></span>
        <button type="button" class="switch" role="switch" data-pool="${esc(p.poolId)}"
          aria-checked="${p.active}" aria-labelledby="pool-${esc(p.poolId)}"></button></li>`,
    )
    .join("");
}

async function loadCallerIds() {
  const ids = await state.api.callerIds();
  state.callerIds = ids.callerIds;
  const select = $("#caller-id");
  select.innerHTML = ids.callerIds.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
  if (ids.default) select.value = ids.default;
  select.disabled = ids.callerIds.length < 2;
}

async function loadHistory() {
  const { calls } = await state.api.history(20);
  const list = $("#history");
  if (!calls.length) {
    list.innerHTML = '<li class="empty">No calls yet.</li>';
    return;
  }
  list.innerHTML = calls
    .map((c) => {
      const missed = c.direction === "inbound" && !c.answeredByYou;
      const icon = c.direction === "inbound" ? ICON_IN : ICON_OUT;
      const what = `${c.direction === "inbound" ? "Incoming" : "Outgoing"}${missed ? `, ${c.outcome}` : ""}`;
      const duration = c.durationSeconds != null ? ` · ${formatDuration(c.durationSeconds)}` : "";
      return `<li><svg class="${missed ? "dir-missed" : "dir-in"}" viewBox="0 0 24 24" role="img" aria-label="${esc(what)}">${icon}</svg>
        <span class="row-main"><span class="row-title">${esc(c.name || c.number)}</span>
        <span class="row-sub">${esc(c.name ? `${c.number} · ` : "")}${esc(formatTime(c.at))}${esc(duration)}</span></span>
        <button type="button" class="row-btn" data-dial="${esc(c.number)}" aria-label="Call ${esc(c.name || c.number)}">${ICON_CALL}</button></li>`;
    })
    .join("");
}

// ---------------------------------------------------------------------------- the call

let pollTimer = null;
async function pollCall() {
  clearTimeout(pollTimer);
  if (state.stopped) return;
  await refreshCall().catch(() => {});
  pollTimer = setTimeout(pollCall, POLL_MS);
}

let refreshing = null;
function refreshCall() {
  if (!refreshing) {
    refreshing = state.api
      .current()
      .then((call) => onCall(call))
      .finally(() => (refreshing = null));
  }
  return refreshing;
}

function onCall(call) {
  const before = state.call;
  state.call = call;
  if (call && before?.callId !== call.callId) {
    state.muted = false;
    state.held = false;
    state.consulting = null;
  }
  if (call && call.state === "connected" && before?.state !== "connected") onConnected(call);
  if (call && call.state === "transferred" && before?.callId === call.callId && before.state !== "transferred") {
    // The colleague has the call now: this agent's notes are closed (kept, attributed).
    state.notesDirty = false;
    state.consulting = null;
    state.transferring = null;
    announce(`Call transferred to ${handedTo(call)}`);
    loadHistory().catch(() => {});
    loadAvailability().catch(() => {});
  }
  if (call && call.state === "ended" && before && before.callId === call.callId && before.state !== "ended") {
    onEnded(call);
    if (!call.answeredAt && call.direction === "outbound") {
      toast(`No answer from ${titleOf(call)}.`);
      state.dialling = null;
    }
  }
  if (state.ring && (!call || call.state === "connected" || call.state === "ended")) {
    if (call?.callId === state.ring.callId || !state.ring.callId) state.ring = null;
  }
  render();
}

async function onRing(ring) {
  if (state.stopped) return;
  if (state.dialRequest) {
    const dialled = await state.dialRequest.catch(() => null);
    state.dialRequest = null;
    if (dialled) state.dialling = dialled.callId;
  }
  await refreshCall().catch(() => {});
  const call = state.call;
  const callId = ring.callId || call?.callId;
  const rejoin = ring.rejoin || !!call?.rejoin;
  if ((state.dialling && (!ring.callId || ring.callId === state.dialling)) || rejoin) {
    // Our own click-to-dial's leg, or the call this agent was in before a reload: take it.
    state.ring = null;
    await attempt("Could not connect the call", () => state.device.answer(ring.ringId));
    if (rejoin) toast(`Reconnected to your call with ${titleOf(call, ring)}.`);
    state.dialling = null;
    return refreshCall();
  }
  state.ring = { ...ring, callId };
  render();
  announce(`Incoming call from ${titleOf(call, ring)}${call?.poolName ? `, ${call.poolName}` : ""}`);
  if (document.hasFocus()) $("#answer").focus();
  state.host.maximise().catch(() => {});
  if (call && call.callId === callId) screenPop(call);
  const verdict = await state.host.notifyIncoming({
    name: titleOf(call, ring),
    number: call?.customerNumber || ring.from,
    pool: call?.poolName,
  });
  if (verdict === "accept" && state.ring?.ringId === ring.ringId) answer();
  if (verdict === "reject" && state.ring?.ringId === ring.ringId) decline();
}

/** §2.1.1 1b / §2.1.2 1b: open the record (or the candidates) once per call. */
async function screenPop(call) {
  // Outbound calls (§2.1.3, §2.1.4): "no action is taken"; the agent dialled from the record.
  if (!call || call.direction !== "inbound" || state.popped.has(call.callId)) return;
  const pop = call.screenPop || { action: "nothing" };
  let opened = false;
  if (pop.action === "openRecord" && pop.record) opened = await state.host.openRecord(pop.record);
  else if (pop.action === "showCandidates") opened = await state.host.showCandidates(pop.candidates || call.candidates);
  else opened = true; // nothing to open
  if (opened) state.popped.add(call.callId);
}

async function onConnected(call) {
  state.dialling = null;
  announce(`Connected with ${titleOf(call)}`);
  screenPop(call); // not done while ringing (D365 had unsaved changes, or an outbound call)
  if (!state.sessionsStarted.has(call.callId)) {
    state.sessionsStarted.add(call.callId);
    state.host.startSession({ ...call, title: titleOf(call) });
  }
  if (call.identification === "several" && !call.picked) selectTab("callwork", "caller");
  else selectTab("callwork", "notes");
  if (document.hasFocus()) setTimeout(() => $("#notes").focus(), 0);
}

function onEnded(call) {
  announce(`Call ended${call.activity?.needsCompletion ? ". Complete the Phone Call in D365." : ""}`);
  flushNotes();
  loadHistory().catch(() => {});
  loadAvailability().catch(() => {});
}

async function answer() {
  const ring = state.ring;
  if (!ring) return;
  $("#answer").disabled = true;
  try {
    await state.device.answer(ring.ringId);
    state.ring = null;
    await refreshCall();
  } catch (err) {
    toast(`Could not answer: ${err.message}`, "error");
  } finally {
    $("#answer").disabled = false;
  }
}

async function decline() {
  const ring = state.ring;
  if (!ring) return;
  state.ring = null;
  if (ring.callId) state.declined.add(ring.callId);
  render();
  if (ring.callId) await attempt("Could not decline", () => state.api.decline(ring.callId));
  else await attempt("Could not decline", () => state.device.decline(ring.ringId));
  state.host.minimise().catch(() => {});
}

async function dial(number) {
  const target = String(number || "").trim();
  if (!target) {
    toast("Enter a number to call.", "error");
    $("#dial-number").focus();
    return;
  }
  if (busy()) {
    toast("Finish the current call first.", "error");
    return;
  }
  const callerId = $("#caller-id").value || undefined;
  try {
    // The agent's own leg may ring before the answer to this request arrives: onRing waits.
    state.dialRequest = state.api.dial(target, callerId);
    const call = await state.dialRequest;
    state.dialling = call.callId;
    state.host.maximise().catch(() => {});
    onCall(call);
    $("#dial-number").value = "";
  } catch (err) {
    state.dialRequest = null;
    const field = err.problem?.errors?.[0];
    toast(field ? `${err.message}` : `Could not call ${target}: ${err.message}`, "error");
  }
}

function busy() {
  const v = viewOf();
  return v === "ringing" || v === "incall";
}

async function hangup() {
  const call = state.call;
  if (!call) return;
  await flushNotes();
  const ended = await attempt("Could not end the call", () => state.api.hangup(call.callId));
  if (ended) onCall(ended);
}

async function toggleMute() {
  const call = state.call;
  if (!call) return;
  if (!state.muted) {
    await attempt("Could not mute", async () => {
      await state.device.mute();
      await state.api.mute(call.callId);
      state.muted = true;
    });
  } else {
    // ACS Call Automation has no server-side unmute: the microphone is the panel's own.
    await attempt("Could not unmute", async () => {
      await state.device.unmute();
      state.muted = false;
    });
  }
  announce(state.muted ? "Microphone muted" : "Microphone on");
  render();
}

async function toggleHold() {
  const call = state.call;
  if (!call) return;
  const next = !state.held;
  const done = await attempt(next ? "Could not hold" : "Could not take off hold", () =>
    next ? state.api.hold(call.callId) : state.api.unhold(call.callId),
  );
  if (done) {
    state.held = next;
    announce(next ? "Customer on hold" : "Customer back from hold");
  }
  render();
}

async function sendTone(tone) {
  const call = state.call;
  if (!call) return;
  const sent = $("#dtmf-sent");
  sent.textContent = (sent.textContent + tone).slice(-20);
  // One request at a time: tones pressed quickly reach the customer in the order pressed.
  toneQueue = toneQueue.then(() => attempt("Could not send the tone", () => state.api.dtmf(call.callId, tone)));
  await toneQueue;
}
let toneQueue = Promise.resolve();

// ---------------------------------------------------------------------------- transfers

let transferSearch = null;
function searchTransfer(q) {
  clearTimeout(transferSearch);
  const list = $("#transfer-results");
  const text = q.trim();
  state.transferTarget = /^[+0-9][0-9 ()-]{3,}$/.test(text) ? { number: text, label: text } : null;
  renderTransferTarget();
  if (text.length < 2) {
    list.innerHTML = "";
    return;
  }
  transferSearch = setTimeout(async () => {
    const found = await attempt("Search failed", () => state.api.directory(text));
    if (!found) return;
    const people = found.results.filter((r) => r.kind === "colleague" || r.phone);
    list.innerHTML = people
      .slice(0, 6)
      .map(
        (r) => `<li><span class="row-main"><span class="row-title">${esc(r.name)}<span class="kind">${esc(r.kind)}</span></span>
          <span class="row-sub">${numberLine(r, "")}</span></span>
          <button type="button" class="btn btn-secondary" data-target-kind="${esc(r.kind)}" data-target-id="${esc(r.id)}"
            data-target-phone="${esc(r.phone || "")}" data-target-name="${esc(r.name)}">Choose</button></li>`,
      )
      .join("");
  }, 250);
}

function renderTransferTarget() {
  const target = state.transferTarget;
  const line = $("#transfer-target");
  line.textContent = target ? `Transfer to ${target.label}` : "";
  show(line, !!target);
  $("#transfer-direct").disabled = !target;
  $("#transfer-consult").disabled = !target;
}

function targetBody(target) {
  return target.agentId ? { agentId: target.agentId } : { number: target.number };
}

async function transfer(consulted) {
  const call = state.call;
  const target = state.transferTarget;
  if (!call || !target) return;
  if (consulted) {
    const done = await attempt("Could not start the consultation", () => state.api.consult(call.callId, targetBody(target)));
    if (done) {
      state.consulting = { label: target.label };
      state.held = true;
      announce(`Calling ${target.label}. The customer is on hold.`);
    }
  } else {
    await flushNotes(); // closed to this agent once the colleague accepts
    const done = await attempt("Could not transfer", () => state.api.transfer(call.callId, targetBody(target)));
    if (done) {
      state.transferring = target.label;
      toast(`Transferring to ${target.label}…`);
      onCall(done);
    }
  }
  closeTransfer();
  render();
}

async function finishConsult(complete) {
  const call = state.call;
  if (!call) return;
  if (complete) await flushNotes(); // the notes become read-only once the colleague has the call
  const done = await attempt(complete ? "Could not complete the transfer" : "Could not cancel the transfer", () =>
    complete ? state.api.completeConsult(call.callId) : state.api.cancelConsult(call.callId),
  );
  if (done) {
    // The agent's leg may have ended (onEnded) before this answer: its label is kept there.
    const who = state.consulting?.label || state.handedOver.get(call.callId) || "your colleague";
    state.consulting = null;
    state.held = false;
    if (complete) state.handedOver.set(call.callId, who);
    announce(complete ? `Customer handed to ${who}` : "Transfer cancelled; you are back with the customer");
    toast(complete ? `Customer transferred to ${who}.` : "Transfer cancelled. You are back with the customer.");
    onCall(done);
  }
  render();
}

function closeTransfer() {
  $("#transfer-q").value = "";
  $("#transfer-results").innerHTML = "";
  state.transferTarget = null;
  renderTransferTarget();
  show($("#transfer"), false);
  $("#transfer-toggle").setAttribute("aria-expanded", "false");
}

// ---------------------------------------------------------------------------- notes and candidates

let notesTimer = null;
let notesSaving = null;
function notesChanged() {
  state.notesDirty = true;
  state.notesFor = state.call?.callId;
  setText($("#notes-state"), "Editing…");
  renderNotesCount();
  clearTimeout(notesTimer);
  notesTimer = setTimeout(saveNotes, NOTES_DEBOUNCE_MS);
}

async function saveNotes() {
  clearTimeout(notesTimer);
  const callId = state.notesFor || state.call?.callId;
  if (!callId || !state.notesDirty) return;
  const text = $("#notes").value;
  state.notesDirty = false;
  setText($("#notes-state"), "Saving…");
  const saving = state.api.saveNotes(callId, text);
  notesSaving = saving;
  try {
    await saving;
    if (notesSaving === saving && !state.notesDirty) setText($("#notes-state"), "Saved");
    $("#notes-state").classList.remove("error");
  } catch (err) {
    state.notesDirty = true;
    $("#notes-state").classList.add("error");
    setText($("#notes-state"), `Not saved: ${err.message}`);
  }
}

async function flushNotes() {
  if (state.notesDirty) await saveNotes();
  else if (notesSaving) await notesSaving.catch(() => {});
}

// The activity's description holds 2,000 characters; longer notes are kept whole in a note on
// the activity (docs/phone-call-mapping.md), up to 100,000. After a transfer the activity's
// notes are the earlier agents' (as shown above) and then these: the count is of them all.
function renderNotesCount() {
  const own = $("#notes").value;
  const earlier = state.call?.earlierNotes || "";
  const length = earlier && own.trim() ? earlier.length + 2 + own.length : earlier.length || own.length;
  setText(
    $("#notes-count"),
    length > 2000 ? `${length} / 100000 (full notes attached to the activity)` : `${length} / 2000`,
  );
}

async function pick(candidate) {
  const call = state.call;
  if (!call) return;
  const picked = await attempt("Could not pick the caller", () => state.api.pick(call.callId, candidate));
  if (picked) {
    announce(`${candidate.name} picked as the caller`);
    onCall(picked);
  }
}

function renderCandidates(call) {
  const candidates = call?.candidates || [];
  const count = $("#caller-count");
  count.textContent = String(candidates.length);
  show(count, candidates.length > 1);
  const hint = $("#caller-hint");
  if (!candidates.length) hint.textContent = "The number matched no contact, account or lead in D365.";
  else if (candidates.length === 1) hint.textContent = "The caller was identified in D365.";
  else if (call.picked) hint.textContent = `${call.picked.name} is the caller: the Phone Call will be regarding it.`;
  else hint.textContent = "Several records have this number. Open one by its name; pick the caller with the check mark.";
  const key = JSON.stringify([candidates, call?.picked, call?.state]);
  const list = $("#candidates");
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  const canPick = candidates.length > 1 && call.state !== "ended";
  list.innerHTML = candidates
    .map((c, i) => {
      const isPicked = call.picked?.id === c.id;
      const url = state.host?.recordUrl(c.entity, c.id);
      return `<li><span class="row-main">
          <a class="row-link" href="${esc(url || "#")}" target="_blank" rel="noopener" data-open="${i}">${esc(c.name)}</a>
          <span class="row-sub">${esc(c.entity[0].toUpperCase() + c.entity.slice(1))}</span></span>
          ${
            canPick || isPicked
              ? `<button type="button" class="row-btn pick" data-pick="${i}" aria-pressed="${isPicked}"
                  aria-label="Pick ${esc(c.name)} as the caller" ${canPick ? "" : "disabled"}>${ICON_CHECK}</button>`
              : ""
          }</li>`;
    })
    .join("");
}

// ---------------------------------------------------------------------------- rendering

function viewOf() {
  if (state.view === "startup" || state.view === "conflict") return state.view;
  const call = state.call;
  if (state.ring) return "ringing";
  if (!call || state.dismissed.has(call.callId) || state.declined.has(call.callId)) return "idle";
  // Handed to a colleague: the call, its notes and its Phone Call are theirs; this agent is free.
  if (handedTo(call)) return "idle";
  if (call.state === "connected") return "incall";
  if (call.state === "ended") return call.answeredAt ? "wrapup" : "idle";
  if (call.direction === "outbound" && ["connecting", "waiting", "ringing"].includes(call.state)) return "incall";
  return "idle";
}

/** Who took the call from this agent (a completed transfer), or "". */
function handedTo(call) {
  if (!call) return "";
  if (call.state === "transferred") return call.transferredTo || state.handedOver.get(call.callId) || "a colleague";
  return state.handedOver.get(call.callId) || "";
}

function showView(name) {
  state.view = name;
  render();
}

function render() {
  const view = viewOf();
  const app = $("#app");
  const changed = app.dataset.view !== view;
  app.dataset.view = view;
  show($("#startup"), view === "startup");
  show($("#conflict"), view === "conflict");
  show($("#ringing"), view === "ringing");
  show($("#incall"), view === "incall");
  show($("#wrapup"), view === "wrapup");
  show($("#callwork"), view === "incall" || view === "wrapup");
  show($("#wrap-actions"), view === "wrapup");
  show($("#idle"), view === "idle");
  const call = state.call;
  const handed = view === "idle" && call && !state.dismissed.has(call.callId) ? handedTo(call) : "";
  setText($("#transferred-note"), handed ? `Transferred to ${handed}. The call, its notes and its Phone Call are theirs now.` : "");
  show($("#transferred-note"), !!handed);
  if (view === "ringing") renderRinging(call);
  if (view === "incall") renderInCall(call);
  if (view === "wrapup") renderWrapUp(call);
  if (view === "incall" || view === "wrapup") renderCallWork(call);
  if (changed && view === "idle") closeTransfer();
  state.workflows?.render(view, call);
}

function renderRinging(call) {
  const ring = state.ring;
  const same = call && call.callId === ring.callId;
  setText($("#ring-kind"), same && call.direction === "outbound" ? "Calling" : "Incoming call");
  setText($("#ring-name"), titleOf(same ? call : null, ring));
  const number = (same && call.customerNumber) || ring.from;
  setText($("#ring-number"), customerOf(same ? call : null) || (same && call.identification === "several") ? formatNumber(number) : "");
  show($("#ring-number"), !!$("#ring-number").textContent);
  const pool = same && call.poolName ? `Service pool: ${call.poolName}` : same && call.direction === "inbound" ? "Direct call" : "";
  setText($("#ring-pool"), pool);
  show($("#ring-pool"), !!pool);
  $("#answer").setAttribute("aria-label", `Answer call from ${titleOf(same ? call : null, ring)}`);
  $("#decline").setAttribute("aria-label", `Decline call from ${titleOf(same ? call : null, ring)}`);
}

function renderInCall(call) {
  const connected = call.state === "connected";
  const badge = $("#call-badge");
  let label = "Connected";
  let kind = "badge-connected";
  if (!connected) [label, kind] = ["Calling…", "badge-dialling"];
  else if (state.consulting) [label, kind] = ["Consulting", "badge-hold"];
  else if (state.held) [label, kind] = ["On hold", "badge-hold"];
  setText(badge, label);
  badge.className = `badge ${kind}`;
  setText($("#call-name"), titleOf(call));
  const customer = customerOf(call) || call.identification === "several";
  setText($("#call-number"), customer ? formatNumber(call.customerNumber) : call.direction === "outbound" ? "Outgoing call" : "Unknown caller");
  const pool = call.poolName ? `Service pool: ${call.poolName}` : call.direction === "inbound" ? "Direct call" : `From ${call.ourNumber || "your number"}`;
  setText($("#call-pool"), pool);
  show($("#call-pool"), true);
  $("#mute").setAttribute("aria-pressed", String(state.muted));
  setText($("#mute-label"), state.muted ? "Unmute" : "Mute");
  $("#hold").setAttribute("aria-pressed", String(state.held));
  setText($("#hold-label"), state.held ? "Resume" : "Hold");
  for (const id of ["mute", "hold", "keypad-toggle", "transfer-toggle"]) $(`#${id}`).disabled = !connected || (!!state.consulting && id !== "keypad-toggle");
  const consult = state.consulting;
  const banner = $("#consult-banner");
  banner.textContent = consult ? `Talking to ${consult.label}. The customer is on hold.` : "";
  show(banner, !!consult);
  show($("#consult-actions"), !!consult);
  setText($("#hangup span"), connected ? "End call" : "Cancel call");
  renderTimer();
}

function renderTimer() {
  const call = state.call;
  if (!call) return;
  const started = call.answeredAt || call.activity?.actualStart;
  const from = started ? Date.parse(started) : null;
  const to = call.endedAt ? Date.parse(call.endedAt) : state.handedOver.has(call.callId) ? (state.handedAt ||= Date.now()) : Date.now();
  const text = from ? formatDuration((to - from) / 1000) : "";
  setText($("#call-timer"), call.state === "connected" ? text : "");
  setText($("#wrap-duration"), call.state === "ended" || state.handedOver.has(call.callId) ? text : "");
}

function renderWrapUp(call) {
  setText($("#wrap-title"), titleOf(call));
  setText($("#wrap-number"), customerOf(call) || call.identification === "several" ? formatNumber(call.customerNumber) : "Not identified in D365");
  const direction = call.direction === "inbound" ? "Incoming" : "Outgoing";
  const handedTo = state.handedOver.get(call.callId);
  setText(
    $("#wrap-outcome"),
    handedTo
      ? `${direction} call${call.poolName ? ` · ${call.poolName}` : ""} · transferred to ${handedTo}`
      : `${direction} call${call.poolName ? ` · ${call.poolName}` : ""} · ended ${formatTime(call.endedAt)}`,
  );
  const activity = call.activity;
  show($("#activity-form"), !!activity?.needsCompletion);
  if (activity?.needsCompletion) {
    setText(
      $("#activity-hint"),
      `${call.direction === "inbound" ? "The caller was" : "The number was"} not identified, so the Phone Call has no Regarding or customer. Check the values and complete it in D365.`,
    );
    const minutes = activity.actualStart && activity.actualEnd
      ? formatDuration((Date.parse(activity.actualEnd) - Date.parse(activity.actualStart)) / 1000)
      : "—";
    const rows = [
      ["Subject", activity.subject],
      ["Regarding", activity.regarding?.name || "— (to choose)"],
      [call.direction === "inbound" ? "Call from" : "Call to", "— (to choose)"],
      ["Phone number", activity.phoneNumber],
      ["Direction", activity.directionCode ? "Outgoing" : "Incoming"],
      ["Actual start", formatDateTime(activity.actualStart)],
      ["Actual end", formatDateTime(activity.actualEnd)],
      ["Duration", minutes],
      ["Description", activity.description || "(no notes)"],
    ];
    const html = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
    if ($("#activity-fields").innerHTML !== html) $("#activity-fields").innerHTML = html;
  }
  const logged = $("#wrap-logged");
  const customer = customerOf(call);
  logged.textContent = state.handedOver.has(call.callId) && call.state !== "ended"
    ? "The Phone Call is written to D365 when the customer's call ends."
    : !activity?.needsCompletion && call.activityId
      ? `Phone Call saved in D365${customer ? ` for ${customer.name}` : ""}.`
      : !activity?.needsCompletion && call.answeredAt
        ? "The Phone Call is being saved in D365…"
        : "";
  show(logged, !!logged.textContent);
}

function renderCallWork(call) {
  const notes = $("#notes");
  if (state.notesFor !== call.callId) {
    state.notesFor = call.callId;
    state.notesDirty = false;
    notes.value = call.notes || "";
    setText($("#notes-state"), call.notes ? "Saved" : "");
  } else if (!state.notesDirty && !notesSaving && document.activeElement !== notes && notes.value !== (call.notes || "")) {
    notes.value = call.notes || "";
  }
  const earlier = call.earlierNotes || "";
  setText($("#earlier-notes-text"), earlier);
  show($("#earlier-notes"), !!earlier);
  renderNotesCount();
  renderCandidates(call);
  show($("#tab-caller"), (call.candidates || []).length > 0);
}

function selectTab(group, name) {
  const root = group === "idle" ? $("#idle") : $("#callwork");
  $$('[role="tab"]', root).forEach((tab) => {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    show($(`#${tab.getAttribute("aria-controls")}`), on);
  });
}

// ---------------------------------------------------------------------------- wiring

function keypadHtml(prefix) {
  return KEYS.map(
    ([k, letters]) =>
      `<button type="button" class="key" data-${prefix}="${k}"><span>${k}</span><small aria-hidden="true">${letters}</small></button>`,
  ).join("");
}

// A directory row's number: the one the search matched, with where it is ("mobile"), else the
// record's number to call.
function numberLine(r, none) {
  if (r.matchedNumber) {
    return `<span class="matched" data-matched="${esc(r.matchedColumn || "")}">${esc(r.matchedLabel || "")}</span> ${esc(r.matchedNumber)}`;
  }
  return esc(r.phone || none);
}

let directoryTimer = null;
function searchDirectory(q) {
  clearTimeout(directoryTimer);
  const list = $("#dir-results");
  const text = q.trim();
  if (text.length < 2) {
    list.innerHTML = "";
    setText($("#dir-hint"), "Contacts, accounts, leads and colleagues.");
    return;
  }
  directoryTimer = setTimeout(async () => {
    const found = await attempt("Search failed", () => state.api.directory(text));
    if (!found) return;
    setText($("#dir-hint"), found.results.length ? "" : `Nothing found for “${text}”.`);
    list.innerHTML = found.results
      .map((r) => {
        const url = r.kind === "colleague" ? null : state.host.recordUrl(r.entity || r.kind, r.id);
        const name = url
          ? `<a class="row-link" href="${esc(url)}" target="_blank" rel="noopener" data-record="${esc(r.kind)}:${esc(r.id)}">${esc(r.name)}</a>`
          : `<span class="row-title">${esc(r.name)}</span>`;
        return `<li><span class="row-main"><span>${name}<span class="kind">${esc(r.kind)}</span></span>
          <span class="row-sub">${numberLine(r, "No number")}</span></span>
          ${r.phone ? `<button type="button" class="row-btn" data-dial="${esc(r.phone)}" aria-label="Call ${esc(r.name)}">${ICON_CALL}</button>` : ""}</li>`;
      })
      .join("");
  }, 250);
}

function wireTabs(group, root) {
  const tabs = $$('[role="tab"]', root);
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => {
      selectTab(group, tab.id.replace("tab-", ""));
      if (tab.id === "tab-history") loadHistory().catch(() => {});
    });
    tab.addEventListener("keydown", (e) => {
      const visible = tabs.filter((t) => !t.hidden);
      const at = visible.indexOf(tab);
      let next = null;
      if (e.key === "ArrowRight") next = visible[(at + 1) % visible.length];
      if (e.key === "ArrowLeft") next = visible[(at - 1 + visible.length) % visible.length];
      if (e.key === "Home") next = visible[0];
      if (e.key === "End") next = visible[visible.length - 1];
      if (next) {
        e.preventDefault();
        next.click();
        next.focus();
      }
    });
  });
}

function wire() {
  $("#dial-keys").innerHTML = keypadHtml("key");
  $("#dtmf .keypad").innerHTML = keypadHtml("tone");
  wireTabs("idle", $("#idle"));
  wireTabs("callwork", $("#callwork"));

  $("#retry").addEventListener("click", () => location.reload());
  $("#conflict-toggle").addEventListener("click", (e) => {
    const open = e.currentTarget.getAttribute("aria-expanded") === "true";
    e.currentTarget.setAttribute("aria-expanded", String(!open));
    e.currentTarget.textContent = open ? "See more" : "See less";
    show($("#conflict-text"), !open);
  });
  $("#takeover").addEventListener("click", () =>
    startSession(true).catch((err) => {
      showView("startup");
      startupFailed(`The phone could not start: ${err.message}`);
    }),
  );

  $("#status").addEventListener("change", async (e) => {
    const status = e.target.value;
    const set = await attempt("Could not change your status", () => state.api.setAvailability(status));
    if (set) {
      state.availability = set;
      announce(`Status: ${set.status}`);
      loadAvailability().catch(() => {});
    }
    renderAvailability();
  });
  $("#pools").addEventListener("click", async (e) => {
    const button = e.target.closest("[data-pool]");
    if (!button) return;
    const active = button.getAttribute("aria-checked") !== "true";
    const set = await attempt("Could not change the pool", () => state.api.setPool(button.dataset.pool, active));
    if (set) {
      state.pools = set.pools;
      renderPools();
      $(`[data-pool="${CSS.escape(button.dataset.pool)}"]`)?.focus();
    }
  });

  const number = $("#dial-number");
  $("#dial-keys").addEventListener("click", (e) => {
    const key = e.target.closest("[data-key]");
    if (!key) return;
    number.value += key.dataset.key;
  });
  $("#dial-back").addEventListener("click", () => {
    number.value = number.value.slice(0, -1);
    number.focus();
  });
  $("#dial-form").addEventListener("submit", (e) => {
    e.preventDefault();
    dial(number.value);
  });
  document.addEventListener("click", (e) => {
    const target = e.target.closest("[data-dial]");
    if (target) dial(target.dataset.dial);
    const record = e.target.closest("[data-record]");
    if (record && state.host.kind !== "standalone") {
      e.preventDefault();
      const [entity, id] = record.dataset.record.split(":");
      state.host.openRecord({ entity, id });
    }
  });
  $("#dir-q").addEventListener("input", (e) => searchDirectory(e.target.value));

  $("#answer").addEventListener("click", answer);
  $("#decline").addEventListener("click", decline);
  $("#hangup").addEventListener("click", hangup);
  $("#mute").addEventListener("click", toggleMute);
  $("#hold").addEventListener("click", toggleHold);
  $("#keypad-toggle").addEventListener("click", (e) => {
    const open = e.currentTarget.getAttribute("aria-expanded") !== "true";
    e.currentTarget.setAttribute("aria-expanded", String(open));
    show($("#dtmf"), open);
    if (open) closeTransfer();
  });
  $("#dtmf").addEventListener("click", (e) => {
    const key = e.target.closest("[data-tone]");
    if (key) sendTone(key.dataset.tone);
  });
  $("#transfer-toggle").addEventListener("click", (e) => {
    const open = e.currentTarget.getAttribute("aria-expanded") !== "true";
    if (!open) return closeTransfer();
    e.currentTarget.setAttribute("aria-expanded", "true");
    show($("#transfer"), true);
    show($("#dtmf"), false);
    $("#keypad-toggle").setAttribute("aria-expanded", "false");
    $("#transfer-q").focus();
  });
  $("#transfer-q").addEventListener("input", (e) => searchTransfer(e.target.value));
  $("#transfer-results").addEventListener("click", (e) => {
    const b = e.target.closest("[data-target-id]");
    if (!b) return;
    state.transferTarget =
      b.dataset.targetKind === "colleague"
        ? { agentId: b.dataset.targetId, label: b.dataset.targetName }
        : { number: b.dataset.targetPhone, label: `${b.dataset.targetName} (${b.dataset.targetPhone})` };
    renderTransferTarget();
    $("#transfer-consult").focus();
  });
  $("#transfer-direct").addEventListener("click", () => transfer(false));
  $("#transfer-consult").addEventListener("click", () => transfer(true));
  $("#consult-complete").addEventListener("click", () => finishConsult(true));
  $("#consult-cancel").addEventListener("click", () => finishConsult(false));

  $("#notes").addEventListener("input", notesChanged);
  $("#notes").addEventListener("blur", () => flushNotes());
  $("#candidates").addEventListener("click", (e) => {
    const call = state.call;
    const open = e.target.closest("[data-open]");
    if (open && call) {
      const candidate = call.candidates[Number(open.dataset.open)];
      if (state.host.kind !== "standalone") {
        e.preventDefault();
        state.host.openRecord(candidate);
      }
    }
    const pickButton = e.target.closest("[data-pick]");
    if (pickButton && call) pick(call.candidates[Number(pickButton.dataset.pick)]);
  });

  $("#activity-open").addEventListener("click", async () => {
    const activity = state.call?.activity;
    if (!activity) return;
    const opened = await state.host.openActivity(activity.activityId, {
      subject: activity.subject,
      phonenumber: activity.phoneNumber,
      description: activity.description,
    });
    if (!opened) toast("D365 did not open the Phone Call form.", "error");
  });
  $("#close-call").addEventListener("click", async () => {
    const call = state.call;
    if (!call) return;
    await flushNotes();
    rememberDismissed(call.callId);
    state.host.endSession().catch(() => {});
    state.host.minimise().catch(() => {}); // §2.1.1 4: close minimises the pane
    render();
    $("#tab-keypad").focus();
  });

  setInterval(() => {
    if (viewOf() === "incall" || viewOf() === "wrapup") renderTimer();
  }, 1000);

  window.addEventListener("pagehide", () => {
    // The WebRTC leg ends with the page (the customer keeps waiting on hold music); the lease
    // ends so the reloaded page starts at once and is rung back into the call.
    state.device?.stop({ unloading: true });
    if (state.session) state.api?.endSession(state.session.sessionId, true).catch(() => {});
  });
}

function wireHost() {
  state.host.onClickToAct((number) => {
    state.host.maximise().catch(() => {});
    if (!state.api || state.view === "startup" || state.view === "conflict") {
      toast("The phone is not ready yet.", "error");
      return;
    }
    selectTab("idle", "keypad");
    dial(number);
  });
}

wire();
state.view = "startup";
start().catch((err) => startupFailed(`The phone could not start: ${err.message}`));
