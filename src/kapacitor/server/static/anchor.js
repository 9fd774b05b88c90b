// A link to a chat item (#e-<event id>, from search hits and facts) may point past
// the slices loaded so far: load the next slice until the item is there, then show it.
(function () {
  function seek(tries) {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!id || id.indexOf("e-") !== 0) return;
    var target = document.getElementById(id);
    if (target) {
      var fold = target.closest("details");
      while (fold) { fold.open = true; fold = fold.parentElement && fold.parentElement.closest("details"); }
      target.scrollIntoView({ block: "center" });
      target.classList.add("anchored");
      return;
    }
    var more = document.querySelector(".chat-more");
    if (!more || tries <= 0 || !window.htmx) return;
    htmx.trigger(more, "revealed");
    setTimeout(function () { seek(tries - 1); }, 150);
  }
  document.addEventListener("DOMContentLoaded", function () { seek(100); });
  window.addEventListener("hashchange", function () { seek(100); });
})();
