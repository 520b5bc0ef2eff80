(function () {
  "use strict";
  // Data about frames and findings, embedded as JSON (never executed). Everything from it
  // reaches the page through textContent / createTextNode only.
  var DATA = {};
  try {
    DATA = JSON.parse(document.getElementById("report-data").textContent);
  } catch (e) { DATA = {frames: {}, marks: {}, findings: {}, cmd: {}}; }
  var FRAMES = DATA.frames || {}, MARKS = DATA.marks || {};

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    return n;
  }
  function shq(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }
  function quoteArg(s) { return /^[A-Za-z0-9_@%+=:,.\/-]+$/.test(s) ? s : shq(s); }

  // ------------------------------------------------------------------ copy buttons
  function copyText(text, btn) {
    function done(ok) {
      if (!btn) { return; }
      var old = btn.getAttribute("data-label") || btn.textContent;
      btn.setAttribute("data-label", old);
      btn.textContent = ok ? "copied" : "select + copy";
      setTimeout(function () { btn.textContent = old; }, 1200);
    }
    function fallback() {
      var ta = el("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "offscreen";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else { fallback(); }
  }
  function copyWidget(text, label) {
    var w = el("span", "copy");
    w.appendChild(el("code", null, text));
    var b = el("button", "cp", label || "copy");
    b.type = "button";
    b.setAttribute("data-copy", text);
    w.appendChild(b);
    return w;
  }

  // ------------------------------------------------------------------ decoded trees
  function isPhysical(v) {
    return v && typeof v === "object" && !Array.isArray(v) && typeof v.Value === "number" &&
      ("Multiplier" in v || "Exponent" in v);
  }
  function siOf(v) {
    var exp = ("Multiplier" in v) ? v.Multiplier : v.Exponent;
    var x = v.Value * Math.pow(10, exp);
    var u = v.Unit || "";
    if (u === "h") { x *= 3600; u = "s"; } else if (u === "m" || u === "min") { x *= 60; u = "s"; }
    return {x: Math.round(x * 1e6) / 1e6, unit: u};
  }
  function near(a, b) { return typeof a === "number" && typeof b === "number" && Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)); }

  // The values a finding judges (its "values": path "Message.Element", frame, actual,
  // expected / limit, unit) that lie in this event's tree: the elements to mark.
  function judgedIn(mk, frame, evName) {
    var out = [];
    (mk.values || []).forEach(function (v) {
      var head = evName + ".";
      if (typeof v.path !== "string" || v.path.indexOf(head) !== 0) { return; }
      if (v.frame !== undefined && v.frame !== null && v.frame !== frame) { return; }
      out.push({v: v, parts: v.path.slice(head.length).split(".")});
    });
    return out;
  }
  function endsWith(chain, parts) {
    if (parts.length > chain.length) { return false; }
    for (var i = 1; i <= parts.length; i++) {
      if (chain[chain.length - i] !== parts[parts.length - i]) { return false; }
    }
    return true;
  }
  function sameValue(v, actual) {
    if (isPhysical(v)) { return near(siOf(v).x, actual); }
    if (typeof actual === "number") { return near(v, actual); }
    return String(v) === (typeof actual === "string" ? actual : JSON.stringify(actual));
  }
  function showValue(x, unit) {
    var s = Array.isArray(x) ? x.map(function (y) { return typeof y === "string" ? y : JSON.stringify(y); }).join(", ")
      : (typeof x === "string" ? x : JSON.stringify(x));
    return s + (unit ? " " + unit : "");
  }
  function renderJudged(value, judged) {
    function node(key, v, chain) {
      var li = el("li");
      if (key !== null) { li.appendChild(el("span", "k", key)); li.appendChild(document.createTextNode(": ")); }
      var hits = judged.filter(function (j) { return endsWith(chain, j.parts); });
      if (v !== null && typeof v === "object" && !isPhysical(v)) {
        var ul = el("ul");
        if (Array.isArray(v)) {
          if (v.length === 0) { li.appendChild(el("span", "v", "[]")); }
          v.forEach(function (x, i) { ul.appendChild(node(key === null ? "[" + i + "]" : key + "[" + i + "]", x, chain)); });
        } else {
          var keys = Object.keys(v);
          if (keys.length === 0) { li.appendChild(el("span", "v", "{}")); }
          keys.forEach(function (k) { ul.appendChild(node(k, v[k], chain.concat([k]))); });
        }
        li.appendChild(ul);
        if (hits.length && !Array.isArray(v)) { li.className = "mark"; }
        return li;
      }
      if (isPhysical(v)) {
        var si = siOf(v);
        var unit = si.unit || (hits.length ? (hits[0].v.unit || "") : "");
        li.appendChild(el("span", "pv", si.x + (unit ? " " + unit : "")));
        var raw = [];
        Object.keys(v).forEach(function (k) { raw.push(k + " " + v[k]); });
        li.appendChild(el("span", "raw", "  (" + raw.join(", ") + ")"));
      } else {
        li.appendChild(el("span", "v", typeof v === "string" ? v : JSON.stringify(v)));
      }
      if (hits.length) {
        var hit = null;
        hits.forEach(function (j) { if (!hit && (!("actual" in j.v) || sameValue(v, j.v.actual))) { hit = j.v; } });
        li.className = "mark" + (hit ? " actual" : "");
        if (hit && "expected" in hit) {
          li.appendChild(el("span", "exp", "expected: " + showValue(hit.expected, hit.unit)));
        } else if (hit && "limit" in hit) {
          li.appendChild(el("span", "exp", "limit: " + showValue(hit.limit, hit.unit)));
        }
      }
      return li;
    }
    var box = el("div", "tree");
    var ul = el("ul");
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      Object.keys(value).forEach(function (k) { ul.appendChild(node(k, value[k], [k])); });
    } else { ul.appendChild(node(null, value, [])); }
    box.appendChild(ul);
    return box;
  }

  function renderTree(value, mk, frame, evName) {
    return renderJudged(value, mk ? judgedIn(mk, frame, evName) : []);
  }

  function describe(ev) {
    var bits = [ev.name];
    if (ev.dir) { bits.push(ev.dir); }
    if (typeof ev.t === "number") { bits.push("t = " + ev.t.toFixed(3) + " s"); }
    if (ev.proto) { bits.push(ev.proto); }
    return bits.join(" · ");
  }

  function renderPayload(box, frame, findingId) {
    box.textContent = "";
    var evs = FRAMES[String(frame)] || [];
    var head = el("div", "phd");
    head.appendChild(el("b", null, "frame " + frame + " "));
    if (!evs.length) {
      head.appendChild(document.createTextNode("— not part of a session's messages (see Wireshark)"));
      box.appendChild(head);
      return;
    }
    box.appendChild(head);
    evs.forEach(function (ev, i) {
      var h = i === 0 ? head : box.appendChild(el("div", "phd"));
      h.appendChild(document.createTextNode(describe(ev)));
      if (ev.first_frame) { h.appendChild(document.createTextNode(" · from frame " + ev.first_frame)); }
      if (ev.error) { box.appendChild(el("div", "err", ev.error)); }
      if (ev.tree !== undefined) {
        box.appendChild(renderTree(ev.tree, findingId ? MARKS[findingId] : null, frame, ev.name));
      } else if (!ev.no_tree) {
        box.appendChild(el("div", "note", "payload not embedded in this page (open the frame in Wireshark)"));
      }
      (ev.certs || []).forEach(function (ch) {
        var t = el("table", "certs");
        var cap = el("caption", null, "certificates in " + ch.element +
                     (ch.not_described ? " (" + ch.not_described + " more not described)" : "") +
                     (ch.trust ? " — " + ch.trust : ""));
        t.appendChild(cap);
        var hr = el("tr");
        ["#", "subject", "issuer", "not before", "not after", "key", "problem"].forEach(function (c) {
          hr.appendChild(el("th", null, c));
        });
        t.appendChild(hr);
        ch.rows.forEach(function (r) {
          var tr = el("tr");
          r.forEach(function (v, k) { tr.appendChild(el("td", k === 6 && v ? "err" : null, v)); });
          t.appendChild(tr);
        });
        box.appendChild(t);
      });
      if (ev.signature) {
        box.appendChild(el("div", ev.signature.ok === false ? "err" : "note", ev.signature.text));
      }
      if (ev.hex) {
        var hx = el("details");
        hx.appendChild(el("summary", "note", "payload bytes (hex)"));
        hx.appendChild(el("div", "hex", ev.hex));
        box.appendChild(hx);
      }
    });
  }

  // ------------------------------------------------------------------ frame panel
  var panel = document.getElementById("frame-panel");
  function openFrame(frame) {
    var body = document.getElementById("fp-body");
    document.getElementById("fp-title").textContent = "Frame " + frame;
    body.textContent = "";
    var f = el("div", "ws"); f.appendChild(document.createTextNode("filter "));
    f.appendChild(copyWidget("frame.number == " + frame)); body.appendChild(f);
    if (DATA.capture && DATA.capture.path) {
      var c = el("div", "ws"); c.appendChild(document.createTextNode("open "));
      c.appendChild(copyWidget("wireshark -r " + quoteArg(DATA.capture.path) + " -g " + frame)); body.appendChild(c);
    }
    if (DATA.annotated) {
      var a = el("div", "ws"); a.appendChild(document.createTextNode("annotated "));
      a.appendChild(copyWidget("wireshark -r " + quoteArg(DATA.annotated) + " -g " + frame)); body.appendChild(a);
    }
    var cites = [];
    Object.keys(DATA.findings || {}).forEach(function (id) {
      if ((DATA.findings[id].frames || []).indexOf(frame) >= 0) { cites.push(id); }
    });
    if (cites.length) {
      var fl = el("div", "ws"); fl.appendChild(document.createTextNode("cited by "));
      cites.forEach(function (id) {
        var x = el("a", "fmark", id); x.href = "#" + id; x.setAttribute("data-sev", DATA.findings[id].severity);
        x.title = DATA.findings[id].synopsis; fl.appendChild(x); fl.appendChild(document.createTextNode(" "));
      });
      body.appendChild(fl);
    }
    var p = el("div", "payload");
    body.appendChild(p);
    renderPayload(p, frame, cites.length ? cites[0] : null);
    panel.hidden = false;
  }
  document.getElementById("fp-close").addEventListener("click", function () { panel.hidden = true; });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { panel.hidden = true; } });

  // ------------------------------------------------------------------ findings
  function fillPayloads(det) {
    if (det.getAttribute("data-filled")) { return; }
    det.setAttribute("data-filled", "1");
    // the rule's page, written once in "Rules cited", copied into the finding
    det.querySelectorAll(".doc-slot[data-rule]").forEach(function (slot) {
      var src = document.getElementById("rule-" + slot.getAttribute("data-rule"));
      if (!src) { return; }
      var copy = src.cloneNode(true);
      copy.removeAttribute("id");
      var h = copy.querySelector("h3");
      if (h) { copy.removeChild(h); }
      slot.textContent = "";
      slot.appendChild(copy);
    });
    det.querySelectorAll(".payload[data-frame]").forEach(function (box) {
      renderPayload(box, parseInt(box.getAttribute("data-frame"), 10), box.getAttribute("data-finding"));
    });
  }
  var findings = Array.prototype.slice.call(document.querySelectorAll("details.finding"));
  findings.forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open) { fillPayloads(d); } });
  });

  var filters = document.getElementById("filters");
  function applyFilters() {
    if (!filters) { return; }
    var sev = {};
    filters.querySelectorAll("input[name=severity]").forEach(function (cb) { sev[cb.value] = cb.checked; });
    var cat = filters.querySelector("select[name=category]").value;
    var cul = filters.querySelector("select[name=culprit]").value;
    var ses = filters.querySelector("select[name=session]").value;
    var cons = filters.querySelector("input[name=consequences]").checked;
    var shown = 0;
    findings.forEach(function (d) {
      var ok = sev[d.getAttribute("data-severity")] &&
        (!cat || d.getAttribute("data-category") === cat) &&
        (!cul || d.getAttribute("data-culprit") === cul) &&
        (!ses || d.getAttribute("data-session") === ses) &&
        (cons || d.getAttribute("data-consequence") !== "1");
      d.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("shown-count").textContent = shown + " of " + findings.length + " shown";
  }
  if (filters) {
    filters.addEventListener("change", applyFilters);
    applyFilters();
    document.getElementById("expand-all").addEventListener("click", function (e) {
      var open = e.target.textContent === "expand all";
      findings.forEach(function (d) { if (!d.hidden) { d.open = open; } });
      e.target.textContent = open ? "collapse all" : "expand all";
    });
  }
  document.querySelectorAll("a.only-session").forEach(function (a) {
    a.addEventListener("click", function () {
      if (!filters) { return; }
      filters.querySelector("select[name=session]").value = a.getAttribute("data-session");
      applyFilters();
    });
  });

  function showHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!/^F[0-9]+$/.test(id)) { return; }
    var d = document.getElementById(id);
    if (!d) { return; }
    if (d.hidden && filters) {   // make sure a filtered-out finding can be seen
      filters.querySelectorAll("input[type=checkbox]").forEach(function (cb) { cb.checked = true; });
      filters.querySelectorAll("select").forEach(function (s) { s.value = ""; });
      applyFilters();
    }
    d.open = true;
    fillPayloads(d);
    d.scrollIntoView({block: "start"});
    d.classList.remove("flash"); void d.offsetWidth; d.classList.add("flash");
  }
  window.addEventListener("hashchange", showHash);
  showHash();

  // ------------------------------------------------------------------ clicks
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) { return; }
    var cp = t.closest("button.cp");
    if (cp) { e.preventDefault(); copyText(cp.getAttribute("data-copy"), cp); return; }
    var fr = t.closest("button.fr, button.mname");
    if (fr) {
      e.preventDefault();
      openFrame(parseInt(fr.getAttribute("data-frame"), 10));
    }
  });

  // served by `ccs-analyzer serve`: a way back to the folder's list
  if (location.protocol === "http:" && /^\/reports\//.test(location.pathname)) {
    var back = document.getElementById("back-to-list");
    if (back) { back.hidden = false; }
  }
})();
