// Times in the viewer's zone, decided by the server: this script (in the head,
// before the page is drawn) sends the browser's zone in the "tz" cookie, and
// when it has just set or changed it and the page was drawn in another zone
// (the first visit: UTC), loads the page again in the browser's zone, once. So
// every time, day and zone name on a page comes from the server, in one zone
// with one name. "?tz=Area/City" in the URL wins over the cookie.
(function () {
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) return;
  zone = zone.replace(/[^A-Za-z0-9_+\-\/]/g, "");
  var saved = document.cookie.match(/(?:^|; )tz=([^;]*)/);
  if (saved && saved[1] === zone) return;
  document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
  var utc = /^(Etc\/)?(UTC|UCT|GMT|Universal|Zulu|Greenwich)$/;
  var drawn = document.documentElement.dataset.tz || "UTC";
  var kept = (document.cookie.match(/(?:^|; )tz=([^;]*)/) || [])[1] === zone;
  if (kept && drawn !== zone && !(utc.test(drawn) && utc.test(zone)) && !new URLSearchParams(location.search).has("tz")) {
    location.reload();
  }
})();
