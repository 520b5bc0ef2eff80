(function () {
  "use strict";
  var DATA = {};
  try { DATA = JSON.parse(document.getElementById("browser-data").textContent); } catch (e) { DATA = {}; }
  var table = document.getElementById("captures");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-path]"));
  function rowOf(path) {
    for (var i = 0; i < rows.length; i++) { if (rows[i].getAttribute("data-path") === path) { return rows[i]; } }
    return null;
  }
  var seenRunning = false, timer = null;

  function show(job) {
    var tr = rowOf(job.path);
    if (!tr) { return; }
    var st = tr.querySelector(".status"), bar = tr.querySelector("progress"), btn = tr.querySelector("button.analyze");
    tr.classList.remove("running", "failed");
    if (job.state === "queued" || job.state === "running") {
      var pct = job.total ? Math.floor(100 * job.done / job.total) : 0;
      st.textContent = job.state === "queued" ? "queued" : "analysing " + pct + " %";
      bar.hidden = false; bar.value = pct; btn.disabled = true; tr.classList.add("running");
    } else if (job.state === "error") {
      st.textContent = "failed: " + (job.error || "?");
      bar.hidden = true; btn.disabled = false; tr.classList.add("failed");
    } else if (job.state === "done" && seenRunning) {
      st.textContent = "done"; bar.hidden = true; bar.value = 100;
    }
  }

  function poll() {
    fetch("/api/jobs", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (jobs) {
      var active = 0, finished = 0;
      Object.keys(jobs).forEach(function (k) {
        var j = jobs[k];
        show(j);
        if (j.state === "queued" || j.state === "running") { active += 1; } else if (j.state === "done") { finished += 1; }
      });
      document.getElementById("jobs-note").textContent = active ? active + " analysis job(s) running" : "";
      if (active) { seenRunning = true; timer = setTimeout(poll, 500); return; }
      timer = null;
      if (seenRunning && finished) { location.reload(); }
    }).catch(function () { timer = setTimeout(poll, 2000); });
  }

  function analyze(path) {
    var tr = rowOf(path);
    if (tr) { tr.querySelector(".status").textContent = "queued"; tr.querySelector("button.analyze").disabled = true; }
    seenRunning = true;
    return fetch("/api/analyze", {method: "POST", cache: "no-store",
      headers: {"Content-Type": "application/json", "X-CCS-Token": DATA.token || ""},
      body: JSON.stringify({path: path})}).then(function (r) {
      if (!r.ok && tr) { tr.querySelector(".status").textContent = "refused: " + r.status; }
      if (!timer) { poll(); }
    });
  }

  table.addEventListener("click", function (e) {
    var b = e.target instanceof Element ? e.target.closest("button.analyze") : null;
    if (b) { analyze(b.getAttribute("data-path")); }
  });
  var all = document.getElementById("analyze-missing");
  if (all) {
    all.addEventListener("click", function () {
      rows.forEach(function (tr) {
        var s = tr.getAttribute("data-status");
        if (s === "not analysed" || s === "stale") { analyze(tr.getAttribute("data-path")); }
      });
    });
  }
  var find = document.getElementById("find");
  if (find) {
    find.addEventListener("input", function () {
      var q = find.value.toLowerCase();
      rows.forEach(function (tr) { tr.hidden = q && tr.textContent.toLowerCase().indexOf(q) < 0; });
    });
  }
  poll();
})();
