/*! tally.js 1 | page views for Tally, no cookies: see Tally's README, "Count visits on your site" */
(function () {
  "use strict";
  var script = document.currentScript, loc = location;
  if (!script || "disabled" in script.dataset) return;
  if (loc.protocol === "file:" || /(^|\.)localhost$/.test(loc.hostname)) return;
  try {
    if (localStorage.getItem("tally_ignore") === "1") return;
  } catch (e) {}
  var data = script.dataset;
  var url = (data.endpoint || new URL(script.src).origin).replace(/\/+$/, "") + "/visit";
  var last = null, first = true;

  function send() {
    var page = data.page || loc.pathname;
    if (page === last) return;
    last = page;
    var referrer = "";
    if (first && document.referrer) {
      try {
        referrer = new URL(document.referrer).hostname;
      } catch (e) {}
      if (referrer === loc.hostname) referrer = "";
    }
    first = false;
    var body = JSON.stringify({ page: page, referrer: referrer });
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, body))) {
      fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } })
        .catch(function () {});
    }
  }

  var push = history.pushState;
  history.pushState = function () {
    var result = push.apply(this, arguments);
    send();
    return result;
  };
  addEventListener("popstate", send);
  send();
})();
