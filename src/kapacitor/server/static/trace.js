// Trace tree: selecting a node (click, Enter or Space) shows its details in the
// side panel. The details are inert <template>s rendered (escaped) by the server;
// they are cloned, never parsed from strings. Clicking a row selects it; the ▸/▾
// twisty opens and closes it. Works for trees swapped in later (htmx, SSE).
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
    if (panel && template) panel.replaceChildren(template.content.cloneNode(true));
  }

  document.addEventListener("click", function (event) {
    var node = event.target.closest && event.target.closest("[data-trace] .tnode");
    if (!node) return;
    if (node.tagName === "SUMMARY" && !event.target.closest(".twisty")) event.preventDefault();
    select(node);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    var node = event.target.closest && event.target.closest("[data-trace] .tnode");
    if (!node) return;
    if (node.tagName !== "SUMMARY") event.preventDefault();
    select(node);
  });
})();
