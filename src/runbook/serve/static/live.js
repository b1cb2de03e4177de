// runbook status page: follow the incident log live. Without JavaScript the page is complete,
// only not live. Server text is only ever set with textContent or taken from the server's own
// escaped HTML for <main>; the content security policy forbids inline scripts in any case.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !window.EventSource || !main.dataset.cursor) { return; }
  var state = document.getElementById("live-state");
  var announce = document.getElementById("announce");
  var pending = false, again = false;

  function refresh() {
    if (pending) { again = true; return; }
    pending = true;
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var next = fresh.getElementById("main");
        var stamp = fresh.querySelector(".as-of time");
        if (next) { main.innerHTML = next.innerHTML; main.dataset.cursor = next.dataset.cursor; }
        var now = document.querySelector(".as-of time");
        if (stamp && now) { now.textContent = stamp.textContent; now.setAttribute("datetime", stamp.getAttribute("datetime")); }
      })
      .catch(function () {})
      .then(function () { pending = false; if (again) { again = false; refresh(); } });
  }

  var source = new EventSource("/live?after=" + encodeURIComponent(main.dataset.cursor));
  source.addEventListener("open", function () { if (state) { state.hidden = false; state.textContent = "· live"; } });
  source.addEventListener("error", function () { if (state) { state.textContent = "· reconnecting"; } });
  source.addEventListener("change", function (message) {
    try {
      var data = JSON.parse(message.data);
      var mine = main.dataset.incident;  // an incident's page follows that incident; the front page all
      if (mine && mine !== data.incident) { return; }
      if (announce) { announce.textContent = data.line; }
    } catch (e) { /* a line we cannot read: refresh all the same */ }
    refresh();
  });
}());
