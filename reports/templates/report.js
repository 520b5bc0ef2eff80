(function () {
  "use strict";
  function apply() {
    var on = {};
    document.querySelectorAll("input[data-filter]").forEach(function (cb) { on[cb.value] = cb.checked; });
    document.querySelectorAll("tr[data-severity]").forEach(function (tr) {
      tr.hidden = !on[tr.getAttribute("data-severity")];
    });
  }
  document.querySelectorAll("input[data-filter]").forEach(function (cb) { cb.addEventListener("change", apply); });
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var t = b.getAttribute("data-copy");
      if (navigator.clipboard) { navigator.clipboard.writeText(t); }
      b.textContent = "copied";
    });
  });
})();
