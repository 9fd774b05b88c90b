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

// Times in the viewer's zone: the browser's zone goes to the server in the "tz"
// cookie (pages, date filters and live fragments use it from then on), and a page
// the server rendered in another zone (the first visit: UTC) has its times shown
// in the browser's zone straight away. "?tz=Area/City" in the URL wins over both.
(function () {
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) return;
  var saved = document.cookie.match(/(?:^|; )tz=([^;]*)/);
  if (!saved || saved[1] !== zone) {
    document.cookie = "tz=" + zone.replace(/[^A-Za-z0-9_+\-\/]/g, "") + "; path=/; max-age=31536000; samesite=lax";
  }
  if (new URLSearchParams(location.search).has("tz") || document.documentElement.dataset.tz === zone) return;
  var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
  });
  function show(el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) return;
    var p = {};
    parts.formatToParts(when).forEach(function (x) { p[x.type] = x.value; });
    var clock = p.hour + ":" + p.minute + " " + p.timeZoneName;
    el.textContent = el.dataset.format === "day"
      ? months[Number(p.month) - 1] + " " + p.day + ", " + clock
      : p.year + "-" + p.month + "-" + p.day + " " + clock;
  }
  function apply() {
    document.querySelectorAll("time[data-format]").forEach(show);
    document.querySelectorAll("[data-tz-name]").forEach(function (el) { el.textContent = zone; });
  }
  apply();
  document.addEventListener("kapacitor:refreshed", apply);
})();
