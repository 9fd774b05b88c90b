// Trace tree: selecting a node (click, Enter or Space) shows its details in the
// side panel. The details are inert <template>s rendered (escaped) by the server
// and cloned. A large tree has none in the page: its container names a
// data-detail-url, and a node's details (the same server-escaped HTML) are
// fetched once when it is first selected and kept as its template. Clicking a
// row selects it; the ▸/▾ twisty opens and closes it. Works for trees swapped
// in later (htmx, SSE).
(function () {
  "use strict";

  function select(node) {
    var trace = node.closest("[data-trace]");
    if (!trace) return;
    var panel = trace.querySelector(".trace-detail");
    var item = node.closest("li");
    var template = item && item.querySelector(":scope > template.tdetail");
    trace.querySelectorAll(".tnode.selected").forEach(function (n) { n.classList.remove("selected"); });
    node.classList.add("selected");
    if (!panel || !item) return;
    if (template) {
      panel.replaceChildren(template.content.cloneNode(true));
    } else if (trace.dataset.detailUrl) {
      fetchDetail(trace.dataset.detailUrl, node, item, panel);
    }
  }

  function fetchDetail(url, node, item, panel) {
    fetch(url + "?node=" + encodeURIComponent(node.dataset.id))
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var template = document.createElement("template");
        template.className = "tdetail";
        template.innerHTML = html;
        item.appendChild(template);
        if (node.classList.contains("selected")) panel.replaceChildren(template.content.cloneNode(true));
      })
      .catch(function () {
        if (node.classList.contains("selected")) panel.textContent = "The details could not be loaded.";
      });
  }

  document.addEventListener("click", function (event) {
    var node = event.target.closest && event.target.closest("[data-trace] .tnode");
    if (!node) return;
    if (node.tagName === "SUMMARY" && !event.target.closest(".twisty")) event.preventDefault();
    select(node);
  });

  // /sessions/{id}/trace#node=ID (an eval's evidence link): open the way to that node and select it
  function selectFromHash() {
    var match = /^#node=(.+)$/.exec(window.location.hash);
    if (!match) return;
    var id = decodeURIComponent(match[1]);
    var node = Array.prototype.find.call(document.querySelectorAll("[data-trace] .tnode"), function (n) { return n.dataset.id === id; });
    if (!node) return;
    for (var d = node.parentElement; d; d = d.parentElement) if (d.tagName === "DETAILS") d.open = true;
    select(node);
    node.scrollIntoView({ block: "center" });
  }
  document.addEventListener("DOMContentLoaded", selectFromHash);
  window.addEventListener("hashchange", selectFromHash);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    var node = event.target.closest && event.target.closest("[data-trace] .tnode");
    if (!node) return;
    if (node.tagName !== "SUMMARY") event.preventDefault();
    select(node);
  });
})();
