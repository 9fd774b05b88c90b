// The timeline's filter form always says what the URL says. htmx pushes each
// filtered view's URL into the history, and Back/Forward restore the page from
// htmx's snapshot, whose form fields still hold their first values (a snapshot
// keeps markup, not what was typed or chosen): the next filter would then send
// those and silently drop the others. So after every history restore, and after
// every new URL htmx pushes (a sort header's link changes it too), each field is set from
// the URL: absent means empty, unchecked or the first option. The field being
// typed in is left alone after a push (its newer text is still to be sent).
(function () {
  function sync(keepFocused) {
    var form = document.getElementById("filters");
    if (!form) return;
    var params = new URLSearchParams(location.search);
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "submit" || el.type === "button") return;
      if (keepFocused && el === document.activeElement) return;
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = params.getAll(el.name).indexOf(el.value) >= 0;
      } else if (el.tagName === "SELECT") {
        el.value = params.get(el.name) || "";
        if (el.selectedIndex < 0) el.selectedIndex = 0;
      } else {
        el.value = params.get(el.name) || "";
      }
    });
  }
  document.addEventListener("htmx:historyRestore", function () { sync(false); });
  document.addEventListener("htmx:pushedIntoHistory", function () { sync(true); });
  window.addEventListener("popstate", function () { setTimeout(function () { sync(false); }, 0); });
  window.addEventListener("pageshow", function () { sync(false); });  // also the browser's own form restore
})();

// A filter left empty stays out of the URL: "/?repo=acme/api", not "/?q=&repo=acme/api&user=".
document.addEventListener("htmx:configRequest", function (e) {
  if (!e.detail.elt.closest || !e.detail.elt.closest("#filters")) return;
  var params = e.detail.parameters;
  Object.keys(params).forEach(function (name) { if (params[name] === "") delete params[name]; });
});

// Filter (or Enter) on the view the URL already shows would push a second,
// identical history entry, and Back would then seem to do nothing: htmx replaces
// the current entry instead (its history update is ours to change before it runs).
document.addEventListener("htmx:beforeHistoryUpdate", function (e) {
  var history = e.detail.history;
  if (history && history.type === "push" && new URL(history.path, location.href).href === location.href) {
    history.type = "replace";
  }
});
