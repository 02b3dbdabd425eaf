// The phone workflows in the panel (docs/workflows.md), kept out of main.js:
// - CaseDialog: the identified customer's open cases; link the call to one or create a case;
//   without a customer, the call's candidates or a directory search come first;
// - Contact&Account: no activity by itself; "Save Phone Call" makes one;
// - where calls ring: this web phone or the agent's mobile (PUT /me/endpoint).
import { $, esc, show, setText, announce, formatDateTime } from "../lib/dom.js";

const STATUS = { 1: "In progress", 2: "On hold", 3: "Waiting for details", 4: "Researching" };

export function createWorkflows({ api, toast, refreshCall, openRecord }) {
  const ui = { callId: null, customer: null, dialog: null, loading: false };

  // ------------------------------------------------------------------ markup, added once
  $("#callwork").insertAdjacentHTML(
    "afterbegin",
    `<section id="case-dialog" class="case-dialog" aria-labelledby="case-title" hidden>
      <h2 id="case-title" class="section-title">Case</h2>
      <p id="case-linked" class="notice notice-success" role="status" hidden></p>
      <p id="case-customer" class="hint"></p>
      <ul id="case-list" class="results" aria-label="Open cases"></ul>
      <div id="case-find" hidden>
        <label for="case-q" class="field-label">Find the customer</label>
        <input id="case-q" class="input" type="search" autocomplete="off" placeholder="Name or number">
        <ul id="case-people" class="results" aria-label="Customers"></ul>
      </div>
      <form id="case-new" class="case-new" autocomplete="off">
        <label for="case-new-title" class="field-label">New case</label>
        <div class="case-new-row">
          <input id="case-new-title" class="input" maxlength="200" placeholder="Title of the new case">
          <button type="submit" id="case-create" class="btn btn-primary">Create</button>
        </div>
      </form>
    </section>`,
  );
  $("#wrapup").insertAdjacentHTML(
    "beforeend",
    `<div id="save-activity-box" class="activity" hidden>
      <p class="hint">This call's workflow saves no Phone Call by itself.</p>
      <button type="button" id="save-activity" class="btn btn-secondary btn-block">Save a Phone Call in D365</button>
    </div>`,
  );
  $("#pane-queues").insertAdjacentHTML(
    "beforeend",
    `<fieldset id="endpoint" class="endpoint">
      <legend class="section-title">My calls ring on</legend>
      <label class="choice"><input type="radio" name="endpoint" value="webPhone" id="endpoint-web"> This web phone</label>
      <label class="choice"><input type="radio" name="endpoint" value="mobile" id="endpoint-mobile"> My mobile</label>
      <label for="endpoint-number" class="sr-only">Mobile number</label>
      <input id="endpoint-number" class="input" type="tel" inputmode="tel" placeholder="+358401234567" autocomplete="tel">
      <button type="button" id="endpoint-save" class="btn btn-primary btn-block">Save</button>
      <p id="endpoint-state" class="hint" aria-live="polite"></p>
    </fieldset>`,
  );

  // ------------------------------------------------------------------ CaseDialog
  async function loadDialog(call, customer = ui.customer) {
    const q = customer ? `?customerEntity=${customer.entity}&customerId=${encodeURIComponent(customer.id)}` : "";
    ui.loading = true;
    try {
      ui.dialog = await api.request("GET", `me/calls/${encodeURIComponent(call.callId)}/cases${q}`);
    } finally {
      ui.loading = false;
    }
    renderDialog(call);
  }

  function renderDialog(call) {
    const d = ui.dialog;
    if (!d) return;
    const linked = call.case;
    setText($("#case-linked"), linked ? `Linked to ${linked.ticketNumber}: ${linked.title}. The Phone Call regards this case.` : "");
    show($("#case-linked"), !!linked);
    const who = d.customer;
    setText(
      $("#case-customer"),
      who ? `Open cases of ${who.name || ui.customer?.name || "the chosen customer"}` : "No customer identified: choose one to see their cases.",
    );
    $("#case-list").innerHTML = who
      ? d.cases.length
        ? d.cases
            .map(
              (c) => `<li><span class="row-main"><span class="row-title">${esc(c.title)}</span>
              <span class="row-sub">${esc(c.ticketNumber)} · ${esc(STATUS[c.status] || "Active")} · ${esc(formatDateTime(c.createdOn))}</span></span>
              <button type="button" class="btn btn-secondary btn-small" data-open-case="${esc(c.caseId)}" aria-label="Open ${esc(c.title)}">Open</button>
              <button type="button" class="btn ${linked?.caseId === c.caseId ? "btn-secondary" : "btn-primary"} btn-small" data-link-case="${esc(c.caseId)}"
                aria-label="Link the call to ${esc(c.title)}" ${linked?.caseId === c.caseId ? "disabled" : ""}>${linked?.caseId === c.caseId ? "Linked" : "Link"}</button></li>`,
            )
            .join("")
        : '<li class="empty">No open cases.</li>'
      : (d.candidates || [])
          .filter((c) => c.entity !== "lead")
          .map(personRow)
          .join("");
    show($("#case-find"), !who);
    $("#case-create").disabled = !who;
  }

  function personRow(p) {
    return `<li><span class="row-main"><span class="row-title">${esc(p.name)}</span>
      <span class="row-sub">${esc(p.entity === "account" ? "Account" : "Contact")}${p.phone ? ` · ${esc(p.phone)}` : ""}</span></span>
      <button type="button" class="btn btn-secondary btn-small" data-choose="${esc(p.entity)}:${esc(p.id)}" data-name="${esc(p.name)}"
        aria-label="Choose ${esc(p.name)}">Choose</button></li>`;
  }

  async function act(what, fn) {
    try {
      return await fn();
    } catch (err) {
      toast(`${what}: ${err.message}`, "error");
      return null;
    }
  }

  $("#case-dialog").addEventListener("click", async (e) => {
    const call = ui.call;
    if (!call) return;
    const link = e.target.closest("[data-link-case]");
    const open = e.target.closest("[data-open-case]");
    const choose = e.target.closest("[data-choose]");
    if (link) {
      const updated = await act("The call could not be linked", () =>
        api.request("PUT", `me/calls/${encodeURIComponent(call.callId)}/case`, { caseId: link.dataset.linkCase }),
      );
      if (updated) {
        announce(`Linked to ${updated.case.title}`);
        ui.call = updated;
        renderDialog(updated);
        refreshCall();
      }
    } else if (open) {
      openRecord({ entity: "incident", id: open.dataset.openCase });
    } else if (choose) {
      const [entity, id] = choose.dataset.choose.split(":");
      ui.customer = { entity, id, name: choose.dataset.name };
      await act("The cases could not be loaded", () => loadDialog(call));
    }
  });

  let searchTimer = null;
  $("#case-q").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    const q = e.target.value.trim();
    if (q.length < 2) return;
    searchTimer = setTimeout(async () => {
      const found = await act("The search failed", () => api.directory(q));
      if (!found) return;
      const people = found.results.filter((r) => r.kind === "contact" || r.kind === "account");
      $("#case-people").innerHTML = people.length
        ? people.map((r) => personRow({ entity: r.kind, id: r.id, name: r.name, phone: r.phone })).join("")
        : '<li class="empty">No contacts or accounts found.</li>';
    }, 250);
  });
  $("#case-new").addEventListener("submit", async (e) => {
    e.preventDefault();
    const call = ui.call;
    const title = $("#case-new-title").value.trim();
    if (!call || !title) return;
    const customer = ui.dialog?.customer;
    const body = { title, ...(customer ? { customerEntity: customer.entity, customerId: customer.id } : {}) };
    const made = await act("The case could not be created", () =>
      api.request("POST", `me/calls/${encodeURIComponent(call.callId)}/cases`, body),
    );
    if (made) {
      $("#case-new-title").value = "";
      toast(`Case ${made.case.ticketNumber} created and linked.`);
      ui.call = made;
      await act("The cases could not be loaded", () => loadDialog(made));
      refreshCall();
    }
  });

  // ------------------------------------------------------------------ Contact&Account
  $("#save-activity").addEventListener("click", async () => {
    const call = ui.call;
    if (!call) return;
    const saved = await act("The Phone Call could not be saved", () =>
      api.request("POST", `me/calls/${encodeURIComponent(call.callId)}/activity`),
    );
    if (saved) {
      toast(saved.activityId ? "Phone Call saved in D365." : "The Phone Call is saved when the call ends.");
      refreshCall();
    }
  });

  // ------------------------------------------------------------------ the endpoint
  async function loadEndpoint() {
    renderEndpoint(await api.request("GET", "me/endpoint"));
  }

  function renderEndpoint(ep) {
    $("#endpoint-web").checked = ep.kind === "webPhone";
    $("#endpoint-mobile").checked = ep.kind === "mobile";
    $("#endpoint-web").disabled = !ep.webPhone;
    if (ep.mobileNumber) $("#endpoint-number").value = ep.mobileNumber;
    show($("#endpoint-number"), ep.kind === "mobile" || !ep.webPhone);
    setText($("#endpoint-state"), ep.kind === "mobile" ? `Calls ring your mobile ${ep.mobileNumber}.` : "Calls ring this web phone.");
  }

  $("#endpoint").addEventListener("change", () => show($("#endpoint-number"), $("#endpoint-mobile").checked));
  $("#endpoint-save").addEventListener("click", async () => {
    const mobile = $("#endpoint-mobile").checked;
    const body = mobile ? { kind: "mobile", mobileNumber: $("#endpoint-number").value.trim() } : { kind: "webPhone" };
    const ep = await act("Not saved", () => api.request("PUT", "me/endpoint", body));
    if (ep) renderEndpoint(ep); // #endpoint-state is a live region: it says so
  });

  // ------------------------------------------------------------------ called by main.js's render()
  function render(view, call) {
    const inCall = call && (view === "incall" || view === "wrapup");
    ui.call = inCall ? call : null;
    const caseDialog = inCall && call.workflow === "caseDialog" && !!call.answeredAt;
    show($("#case-dialog"), caseDialog);
    if (caseDialog && ui.callId !== call.callId) {
      ui.callId = call.callId;
      ui.customer = null;
      ui.dialog = null;
      setText($("#case-customer"), "Loading cases…");
      $("#case-list").innerHTML = "";
      act("The cases could not be loaded", () => loadDialog(call));
    } else if (caseDialog && !ui.loading) {
      renderDialog(call);
    }
    show(
      $("#save-activity-box"),
      view === "wrapup" && call?.workflow === "contactAccount" && !!call.answeredAt && !call.activityId,
    );
  }

  return { render, loadEndpoint };
}
