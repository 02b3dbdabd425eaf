// A stub Dynamics 365 page hosting the phone panel through CIF 1.0 or 2.0 (?cif=2), recording
// every call the panel makes (window.stub.calls) and acting on it the way D365 does.
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var version = params.get("cif") === "2" ? 2 : 1;
  var frame = document.getElementById("cif-panel");
  var pane = document.getElementById("cif-pane");
  var sessionsBox = document.getElementById("sessions");
  var mode = 1;
  var clickToAct = false;
  var sessions = [];
  var focused = null;

  var stub = {
    version: version,
    calls: [],
    records: {}, // id -> {entity, name, phone}: what the fake forms show
    openFormFails: false, // true: like a form with unsaved changes, D365 opens nothing
    notificationAnswer: "manual", // or "accept" / "reject" at once
    clickToDial: function (number, entity, id) {
      send({ cifStub: "event", name: "onclicktoact", data: JSON.stringify({
        value: number, name: "mobilephone", format: "Phone", entityLogicalName: entity || "contact", entityId: id || "",
      }) });
    },
    showRecord: function (entity, id) { showRecord(entity, id); },
    expand: function () { handlers.setMode(1); }, // the agent opens the minimised pane
    callsOf: function (method) { return stub.calls.filter(function (c) { return c.method === method; }); },
  };
  window.stub = stub;
  document.getElementById("cif-version").textContent = "Channel Integration Framework " + (version === 2 ? "2.0" : "1.0");
  if (version === 2) {
    document.getElementById("layout").classList.add("cif2");
    sessionsBox.hidden = false;
  }

  function send(message) { frame.contentWindow.postMessage(message, "*"); }

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function showRecord(entity, id) {
    var record = stub.records[id] || {};
    var title = document.getElementById("page-title");
    var body = document.getElementById("page-body");
    var label = entity.charAt(0).toUpperCase() + entity.slice(1);
    title.textContent = record.name ? record.name : label;
    var phone = record.phone
      ? esc(record.phone) + ' <button type="button" class="c2d" id="c2d" aria-label="Call ' + esc(record.phone) + '"' +
        (clickToAct ? "" : " disabled") + '><svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><path fill="currentColor" d="M6.6 10.8c1.4 2.8 3.8 5.1 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1C10.6 21 3 13.4 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.2.2 2.4.6 3.6.1.3 0 .7-.2 1z"/></svg></button>'
      : "—";
    body.innerHTML = '<p class="muted">' + esc(label) + " · Information</p>" +
      '<dl class="form" id="record-form" data-entity="' + esc(entity) + '" data-id="' + esc(id) + '">' +
      "<dt>Record</dt><dd>" + esc(entity) + " " + esc(id) + "</dd>" +
      "<dt>Mobile phone</dt><dd>" + phone + "</dd></dl>";
    var button = document.getElementById("c2d");
    if (button) button.onclick = function () { stub.clickToDial(record.phone, entity, id); };
  }

  function renderSessions() {
    sessionsBox.innerHTML = "<strong>Sessions</strong>" + sessions.map(function (s) {
      return '<div class="session">' + esc(s.title) + "</div>";
    }).join("");
  }

  function notify(input) {
    return new Promise(function (resolve) {
      if (stub.notificationAnswer !== "manual") return resolve(stub.notificationAnswer === "accept" ? "Accept" : "Reject");
      var box = document.createElement("div");
      box.className = "toast";
      box.setAttribute("role", "alert");
      var p = (input && input.templateParameters) || {};
      box.innerHTML = "<strong>Incoming call</strong><div>" + esc(p.callerName) + "</div><div class='muted'>" + esc(p.pool) + "</div>" +
        '<button type="button" data-a="Accept">Accept</button><button type="button" data-a="Reject">Reject</button>';
      box.onclick = function (e) {
        var a = e.target.getAttribute("data-a");
        if (!a) return;
        box.remove();
        resolve(a);
      };
      document.getElementById("notifications").appendChild(box);
    });
  }

  var handlers = {
    setClickToAct: function (value) {
      clickToAct = !!value;
      var b = document.getElementById("c2d");
      if (b) b.disabled = !clickToAct;
      return true;
    },
    getClickToAct: function () { return clickToAct; },
    setMode: function (value) {
      mode = value;
      pane.dataset.mode = String(value);
      return true;
    },
    getMode: function () { return mode; },
    setWidth: function () { return true; },
    getEnvironment: function () {
      return JSON.stringify({ appId: "stub-app", pagetype: "entitylist", clientUrl: location.origin, cifVersion: version });
    },
    openForm: function (options, formParams) {
      if (stub.openFormFails) throw new Error("The form has unsaved changes.");
      var o = JSON.parse(options);
      showRecord(o.entityName, o.entityId);
      return JSON.stringify({ savedEntityReference: [{ entityType: o.entityName, id: o.entityId }] });
    },
    searchAndOpenRecords: function (entity, query) {
      if (stub.openFormFails) throw new Error("The form has unsaved changes.");
      document.getElementById("page-title").textContent = "Search: " + entity;
      document.getElementById("page-body").innerHTML = "<p class='muted'>" + esc(decodeURIComponent(query)) + "</p>";
      return JSON.stringify({});
    },
    retrieveRecord: function () { return "{}"; },
    createRecord: function () { return "{}"; },
    addHandler: function () { return true; },
    removeHandler: function () { return true; },
    createSession: function (input) {
      var id = "session-" + (sessions.length + 1);
      var p = (input && input.templateParameters) || {};
      sessions.push({ id: id, title: p.title || p.phoneNumber || id });
      focused = id;
      renderSessions();
      return id;
    },
    getFocusedSession: function () { return focused; },
    requestFocusSession: function (id) { focused = id; return true; },
    closeSession: function (id) {
      sessions = sessions.filter(function (s) { return s.id !== id; });
      renderSessions();
      return true;
    },
    createTab: function () { return "tab-1"; },
    notifyEvent: notify,
  };

  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || !event.data || !event.data.cifStub) return;
    var msg = event.data;
    if (msg.cifStub === "ready") return send({ cifStub: "hello", version: version });
    if (msg.cifStub !== "call") return;
    stub.calls.push({ method: msg.method, args: msg.args, at: Date.now() });
    var handler = handlers[msg.method];
    Promise.resolve()
      .then(function () {
        if (!handler) throw new Error("Not supported by this host: " + msg.method);
        return handler.apply(null, msg.args || []);
      })
      .then(function (result) { send({ cifStub: "reply", id: msg.id, result: result }); },
            function (err) { send({ cifStub: "reply", id: msg.id, error: String(err.message || err) }); });
  });

  document.getElementById("expand").onclick = function () { stub.expand(); };
  frame.src = params.get("panel");
})();
