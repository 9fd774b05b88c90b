// The repository filter box: hide sidebar entries whose name does not contain the
// text typed, and say so when none does (also after a live refresh or a swap of
// the list).
(function () {
  function apply() {
    var box = document.getElementById("repo-filter");
    if (!box) return;
    var text = box.value.trim().toLowerCase();
    var shown = 0;
    document.querySelectorAll("#repo-list li[data-name]").forEach(function (li) {
      li.hidden = text !== "" && li.dataset.name.indexOf(text) < 0;
      if (!li.hidden) shown += 1;
    });
    var none = document.getElementById("repo-none");
    if (none) {
      none.hidden = text === "" || shown > 0;
      none.querySelector("span").textContent = box.value.trim();
    }
  }
  document.addEventListener("input", function (e) { if (e.target.id === "repo-filter") apply(); });
  document.addEventListener("kapacitor:refreshed", apply);
  document.addEventListener("htmx:afterSettle", apply);
})();

// Narrow screens: the ☰ button shows and hides the sidebar, "More" the top bar's
// other links; Escape or a click beside the open one hides it (a click on a
// link in the menu too: it leaves the page).
(function () {
  function panel(bodyClass, button, inside, onOpen) {
    function show(open) {
      document.body.classList.toggle(bodyClass, open);
      document.querySelectorAll(button).forEach(function (b) { b.setAttribute("aria-expanded", String(open)); });
      if (open && onOpen) onOpen();
    }
    document.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest(button)) {
        show(!document.body.classList.contains(bodyClass));
      } else if (document.body.classList.contains(bodyClass) && !(e.target.closest && e.target.closest(inside))) {
        show(false);
      }
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && document.body.classList.contains(bodyClass)) show(false);
    });
  }
  panel("sidebar-open", ".sidebar-toggle", "#sidebar", function () {
    var box = document.getElementById("repo-filter");
    if (box) box.focus();
  });
  panel("menu-open", ".menu-toggle", "#toplinks form");
})();
