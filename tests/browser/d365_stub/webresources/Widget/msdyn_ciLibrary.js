// Stub of D365's Channel Integration Framework library (CIF 1.0 and 2.0), loaded by the panel
// from the "org" exactly as the real one is. Each API call goes to the stub host page (the
// parent window), which records it and acts like D365; events come back the same way.
(function () {
  "use strict";
  var parentWindow = window.parent;
  var pending = {};
  var handlers = {};
  var next = 1;
  var version = null;

  function call(method, args) {
    return new Promise(function (resolve, reject) {
      var id = next++;
      pending[id] = { resolve: resolve, reject: reject };
      parentWindow.postMessage({ cifStub: "call", id: id, method: method, args: args }, "*");
    });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== parentWindow || !event.data || !event.data.cifStub) return;
    var msg = event.data;
    if (msg.cifStub === "reply" && pending[msg.id]) {
      var p = pending[msg.id];
      delete pending[msg.id];
      if (msg.error) p.reject(new Error(msg.error));
      else p.resolve(msg.result);
    }
    if (msg.cifStub === "event") {
      (handlers[msg.name] || []).forEach(function (fn) {
        Promise.resolve(fn(msg.data)).catch(function () {});
      });
    }
    if (msg.cifStub === "hello") {
      version = msg.version;
      build();
    }
  });

  function build() {
    var api = {
      setClickToAct: function (value) { return call("setClickToAct", [value]); },
      getClickToAct: function () { return call("getClickToAct", []); },
      setMode: function (mode) { return call("setMode", [mode]); },
      getMode: function () { return call("getMode", []); },
      setWidth: function (width) { return call("setWidth", [width]); },
      getEnvironment: function () { return call("getEnvironment", []); },
      openForm: function (options, params) { return call("openForm", [options, params]); },
      searchAndOpenRecords: function (entity, query, searchOnly) {
        return call("searchAndOpenRecords", [entity, query, searchOnly]);
      },
      retrieveRecord: function (entity, id, query) { return call("retrieveRecord", [entity, id, query]); },
      createRecord: function (entity, data) { return call("createRecord", [entity, data]); },
      addHandler: function (name, fn) {
        (handlers[name] = handlers[name] || []).push(fn);
        call("addHandler", [name]);
      },
      removeHandler: function (name, fn) {
        handlers[name] = (handlers[name] || []).filter(function (h) { return h !== fn; });
        call("removeHandler", [name]);
      },
    };
    if (version === 2) {
      // CIF 2.0 (multi-session apps): sessions, tabs and notifications.
      api.createSession = function (input) { return call("createSession", [input]); };
      api.getFocusedSession = function () { return call("getFocusedSession", []); };
      api.requestFocusSession = function (id) { return call("requestFocusSession", [id]); };
      api.closeSession = function (id) { return call("closeSession", [id]); };
      api.createTab = function (input) { return call("createTab", [input]); };
      api.notifyEvent = function (input) { return call("notifyEvent", [input]); };
    }
    window.Microsoft = window.Microsoft || {};
    window.Microsoft.CIFramework = api;
    window.dispatchEvent(new Event("CIFInitDone"));
  }

  parentWindow.postMessage({ cifStub: "ready" }, "*");
})();
