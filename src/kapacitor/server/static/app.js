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

// Narrow screens: the ☰ button shows and hides the sidebar; Escape or a click
// beside it hides it.
(function () {
  function show(open) {
    document.body.classList.toggle("sidebar-open", open);
    document.querySelectorAll(".sidebar-toggle").forEach(function (b) { b.setAttribute("aria-expanded", String(open)); });
    if (open) {
      var box = document.getElementById("repo-filter");
      if (box) box.focus();
    }
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest(".sidebar-toggle")) {
      show(!document.body.classList.contains("sidebar-open"));
    } else if (document.body.classList.contains("sidebar-open") && !(e.target.closest && e.target.closest("#sidebar"))) {
      show(false);
    }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.body.classList.contains("sidebar-open")) show(false);
  });
})();

// Narrow screens: "More" shows the top bar's other links below it; Escape, a
// click beside it or on one of its links hides them.
(function () {
  function show(open) {
    document.body.classList.toggle("menu-open", open);
    document.querySelectorAll(".menu-toggle").forEach(function (b) { b.setAttribute("aria-expanded", String(open)); });
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest(".menu-toggle")) {
      show(!document.body.classList.contains("menu-open"));
    } else if (document.body.classList.contains("menu-open") && !(e.target.closest && e.target.closest("#toplinks form"))) {
      show(false);
    }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.body.classList.contains("menu-open")) show(false);
  });
})();
