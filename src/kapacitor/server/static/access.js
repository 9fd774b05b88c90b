// The visibility control on a session page: PUT the chosen value as JSON, with
// the page's CSRF token (a signed-in browser's state-changing requests need it).
(function () {
  document.addEventListener("change", function (e) {
    var select = e.target;
    if (select.id !== "visibility") return;
    var meta = document.querySelector('meta[name="csrf-token"]');
    var saved = select.parentNode.querySelector(".saved");
    if (saved) saved.hidden = true;
    fetch(select.dataset.url, {
      method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": meta ? meta.content : ""},
      body: JSON.stringify({visibility: select.value}),
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      if (saved) { saved.textContent = "saved"; saved.hidden = false; }
    }).catch(function (err) {
      if (saved) { saved.textContent = "not saved (" + err.message + ")"; saved.hidden = false; }
    });
  });
})();
