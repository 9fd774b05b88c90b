// Keyboard use of the session list: j and k move through the rows (the current
// row is marked and its link focused), Enter opens it (a focused link opens by
// itself). Keys typed into a field, or with a modifier, are left alone. The
// current row is kept across live refreshes and swaps of the list.
(function () {
  var current = "";
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.session-row")); }
  function mark(row, focus) {
    document.querySelectorAll("tr.session-row.current").forEach(function (r) { r.classList.remove("current"); });
    if (!row) return;
    row.classList.add("current");
    current = row.dataset.session;
    if (focus) {
      row.querySelector(".title a").focus();
      row.scrollIntoView({ block: "nearest" });
    }
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    var target = e.target;
    if (target.closest && target.closest("input, select, textarea, [contenteditable]")) return;
    var list = rows();
    if (!list.length) return;
    var at = list.findIndex(function (r) { return r.dataset.session === current; });
    if (e.key === "j" || e.key === "k") {
      var next = at < 0 ? 0 : Math.max(0, Math.min(list.length - 1, at + (e.key === "j" ? 1 : -1)));
      mark(list[next], true);
      e.preventDefault();
    } else if (e.key === "Enter" && at >= 0 && !(target.closest && target.closest("a, button, summary"))) {
      list[at].querySelector(".title a").click();
      e.preventDefault();
    }
  });
  function remark() {
    if (!current) return;
    var row = rows().find(function (r) { return r.dataset.session === current; });
    if (row) mark(row, false);
  }
  document.addEventListener("kapacitor:refreshed", remark);
  document.addEventListener("htmx:afterSettle", remark);
})();
