// Live updates: listen to /events (Server-Sent Events) and re-fetch the fragments
// a change touches. An element opts in with data-live-url (what to fetch) and
// data-live-session="<id>" (refresh when that session changed) or data-live-any
// (refresh on any change) or data-live-comments="<id>" (refresh when someone
// commented on or marked that session). The chat keeps its lazy-loading place: it re-fetches
// as many items as are already shown. Statuses also change with time alone
// (running turns idle after two quiet minutes), so the session header and the
// data-live-any parts refresh once a minute too. A part the viewer may no longer
// read (its session made private, their admin rights or token taken away: 404,
// 401, or sent to sign in) reloads the page, which the server then draws as it
// is for them now (the 404 page, the sign-in page): nothing they may not see stays.
// The stream to follow is the live indicator's data-events (an anonymous visitor
// follows only the public session whose page it is; see server/live.py).
(function () {
  function chatUrl(el) {
    var more = el.querySelector("[hx-get*='/chat?start=']");
    var shown = more ? new URL(more.getAttribute("hx-get"), location.href).searchParams.get("start") : "100000";
    return "/sessions/" + encodeURIComponent(el.dataset.liveSession) + "/chat?start=0&limit=" + shown;
  }
  function refresh(el) {
    var url = el.dataset.tab === "chat" ? chatUrl(el) : el.dataset.liveUrl;
    fetch(url, { headers: { "HX-Request": "true" } }).then(function (r) {
      if (r.status === 404 || r.status === 401 || (r.redirected && new URL(r.url).pathname === "/login")) {
        location.reload();
        return null;
      }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html === null) return;
      el.innerHTML = html;
      if (window.htmx) htmx.process(el);
      el.dispatchEvent(new CustomEvent("kapacitor:refreshed", { bubbles: true }));
    });
  }
  function touched(el, change) {
    if (el.dataset.liveComments) return change.all || (change.comments || []).indexOf(el.dataset.liveComments) >= 0;
    if (change.all || el.hasAttribute("data-live-any")) return true;
    return change.sessions.indexOf(el.dataset.liveSession) >= 0;
  }
  function connect() {
    var indicator = document.getElementById("live-indicator");
    var url = indicator ? indicator.dataset.events : "/events";  // "" when this page has no stream to follow
    if (!url) return;
    var source = new EventSource(url);
    source.addEventListener("hello", function () { if (indicator) indicator.classList.add("connected"); });
    source.addEventListener("change", function (e) {
      var change = JSON.parse(e.data);
      document.querySelectorAll("[data-live-url]").forEach(function (el) {
        if (touched(el, change)) refresh(el);
      });
    });
    source.onerror = function () { if (indicator) indicator.classList.remove("connected"); };
  }
  function tick() {
    document.querySelectorAll("[data-live-any], #session-head[data-live-url]").forEach(refresh);
  }
  document.addEventListener("DOMContentLoaded", function () {
    connect();
    setInterval(tick, 60000);
  });
})();
