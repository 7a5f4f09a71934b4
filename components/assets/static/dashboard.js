// The dashboard (served at /dashboard/app.js): reads /stats, /stats/history,
// /visits/{page}/history, /metrics and /summary with fetch and draws them with uPlot
// (/dashboard/uplot.js). Nothing is loaded from anywhere but this Tally.
"use strict";
window.__tallyStarted = performance.now();
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var VISITS = "#2f6fde", UNIQUES = "#18a57b";
  // Whole-number steps for axes of counts: 1, 2, 5, 10, 20, 50, …
  var COUNT_STEPS = [];
  for (var step = 1; step < 1e13; step *= 10) COUNT_STEPS.push(step, 2 * step, 5 * step);
  // The admin key, when the deployment asks for one: kept in this variable only.
  var key = null, pageShown = null, charts = {};
  // What is drawn, by element id (the browser test compares it with the API's answers).
  window.__tallyCharts = charts;
  window.__tallyErrors = [];
  window.addEventListener("error", function (e) { window.__tallyErrors.push(String(e.message)); });
  window.addEventListener("unhandledrejection", function (e) { window.__tallyErrors.push(String(e.reason)); });
  document.addEventListener("securitypolicyviolation", function (e) {
    window.__tallyErrors.push("CSP: " + e.violatedDirective + " " + e.blockedURI);
  });

  // This script runs before the charting library (both are deferred, in that order), so the
  // first reads are on their way while the library is still being compiled; answers are
  // handled once the document, and with it the library, is ready.
  var ready = new Promise(function (resolve) {
    if (window.uPlot) resolve(); else document.addEventListener("DOMContentLoaded", resolve);
  });
  function api(path) {
    var headers = key ? { Authorization: "Bearer " + key } : {};
    return Promise.all([fetch(path, { headers: headers }), ready]).then(function (done) {
      var r = done[0];
      if (r.status === 401 || r.status === 403) {
        // Asked once: the form opens again only when the key is missing or wrong.
        key = null;
        $("key").className = "open";
        return r.json().then(function (p) { throw new Error(p.detail || "this dashboard needs the admin key"); });
      }
      if (!r.ok) {
        return r.json().then(function (p) { throw new Error(p.detail || p.title || String(r.status)); },
          function () { throw new Error("HTTP " + r.status); });
      }
      return r.json();
    });
  }
  function day(d) { return d.toISOString().slice(0, 10); }
  // The query for the chosen range (`from=…&to=…`, UTC days ending today).
  function range() {
    var choice = $("range").value, to = new Date(), from = new Date();
    $("custom").hidden = choice !== "custom";
    if (choice === "custom" && $("from").value && $("to").value) {
      return "from=" + $("from").value + "&to=" + $("to").value;
    }
    from.setUTCDate(to.getUTCDate() - (choice === "custom" ? 30 : +choice) + 1);
    return "from=" + day(from) + "&to=" + day(to);
  }
  function historyQuery() { return $("interval").value === "hour" ? "interval=hour" : range(); }
  function text(value) {
    return value == null ? "–" : Number(value).toLocaleString("en", { maximumFractionDigits: 2 });
  }
  function el(tag, attrs, content) {
    var node = document.createElement(tag);
    for (var name in attrs) node.setAttribute(name, attrs[name]);
    if (content != null) node.textContent = content;
    return node;
  }
  function width(target) { return Math.max(200, target.clientWidth || 300); }

  // Draws points ([{t, visits, uniques}]) into `target` as a visits and uniques time chart,
  // replacing the chart drawn there before.
  function timeChart(target, points) {
    var hourly = points.length > 0 && points[0].t.length > 10;
    var data = [
      points.map(function (p) { return Date.parse(p.t) / 1000; }),
      points.map(function (p) { return p.visits; }),
      points.map(function (p) { return p.uniques; })
    ];
    if (charts[target.id]) charts[target.id].destroy();
    charts[target.id] = new uPlot({
      width: width(target),
      height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      series: [
        { label: hourly ? "hour" : "day", value: hourly ? "{YYYY}-{MM}-{DD} {HH}:00 UTC" : "{YYYY}-{MM}-{DD}" },
        { label: "visits", stroke: VISITS, width: 2, fill: "rgba(47,111,222,.08)", value: function (u, v) { return text(v); } },
        { label: "unique visitors", stroke: UNIQUES, width: 2, value: function (u, v) { return text(v); } }
      ],
      axes: [{}, { size: 60, incrs: COUNT_STEPS, values: function (u, ticks) { return ticks.map(text); } }]
    }, data, target);
  }
  function sparkline(target, values) {
    new uPlot({
      width: 120, height: 32, class: "spark",
      cursor: { show: false }, legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: VISITS, width: 1.5 }]
    }, [values.map(function (v, i) { return i; }), values], target);
  }
  function table(target, rows, onClick) {
    target.replaceChildren();
    if (!rows.length) target.appendChild(el("tr", {})).appendChild(el("td", { class: "muted" }, "nothing yet"));
    rows.forEach(function (row) {
      var tr = el("tr", onClick ? { class: "pick" } : {});
      tr.appendChild(el("td", {}, row[0]));
      tr.appendChild(el("td", { class: "n" }, text(row[1])));
      if (onClick) tr.addEventListener("click", function () { showPage(row[0]); });
      target.appendChild(tr);
    });
  }
  function showPage(page) {
    pageShown = page;
    return api("/visits/" + encodeURIComponent(page) + "/history?" + historyQuery()).then(function (points) {
      $("page-section").hidden = false;
      $("page-title").textContent = "History of " + page;
      timeChart($("page-chart"), points);
    });
  }
  // Every metric type among the newest 1,000 samples, with its daily summary and a sparkline.
  function metrics() {
    return api("/metrics?limit=1000").then(function (list) {
      var byType = {};
      list.metrics.forEach(function (m) { (byType[m.type] = byType[m.type] || []).unshift(m.value); });
      var types = Object.keys(byType).sort();
      if (!types.length) { $("metrics").replaceChildren(el("p", { class: "muted" }, "no metrics yet")); return null; }
      return Promise.all(types.map(function (t) {
        return api("/summary?type=" + encodeURIComponent(t) + "&period=daily");
      })).then(function (summaries) {
        $("metrics").replaceChildren();
        summaries.forEach(function (s, i) {
          var row = el("div", { class: "metric" }), label = el("div", {}), spark = el("div", {});
          label.appendChild(el("b", {}, s.type));
          label.appendChild(el("span", { class: "muted" }, "  count " + text(s.count) + " · avg " +
            text(s.average_value) + " · min " + text(s.min_value) + " · max " + text(s.max_value) +
            " · latest " + text(s.latest_value)));
          row.appendChild(label);
          row.appendChild(spark);
          $("metrics").appendChild(row);
          sparkline(spark, byType[types[i]]);
        });
      });
    });
  }
  function load() {
    $("error").textContent = "";
    var query = range();
    var series = api("/stats/history?" + historyQuery()).then(function (site) {
      timeChart($("chart"), site.points);
      if (site.unavailable_shards.length) {
        $("error").textContent = "not counted (shard unavailable): " + site.unavailable_shards.join(", ");
      }
    });
    var stats = api("/stats?" + query).then(function (s) {
      $("visits").textContent = text(s.visits);
      $("uniques").textContent = text(s.uniques);
      table($("pages"), s.top_pages.map(function (p) { return [p.page, p.count]; }), true);
      table($("sources"), s.top_sources.map(function (p) { return [p.host, p.count]; }), false);
    });
    return Promise.all([series, stats]).then(function () {
      if (window.__tallyRendered == null) window.__tallyRendered = performance.now();
      return Promise.all([metrics(), pageShown ? showPage(pageShown) : null]);
    }).then(function () { window.__tallyLoaded = (window.__tallyLoaded || 0) + 1; })
      .catch(function (e) { $("error").textContent = e.message; window.__tallyFailed = e.message; });
  }
  ["range", "interval", "from", "to"].forEach(function (id) { $(id).addEventListener("change", load); });
  $("key").addEventListener("submit", function (e) {
    e.preventDefault();
    key = $("secret").value;
    $("secret").value = "";
    $("key").className = "";
    load();
  });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].setSize({ width: width($(id)), height: 240 }); });
  });
  load();
})();
