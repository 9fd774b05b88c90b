// The repository filter box: hide sidebar entries whose name does not contain the
// text typed (also after a live refresh of the list).
(function () {
  function apply() {
    var box = document.getElementById("repo-filter");
    if (!box) return;
    var text = box.value.trim().toLowerCase();
    document.querySelectorAll("#repo-list li[data-name]").forEach(function (li) {
      li.hidden = text !== "" && li.dataset.name.indexOf(text) < 0;
    });
  }
  document.addEventListener("input", function (e) { if (e.target.id === "repo-filter") apply(); });
  document.addEventListener("kapacitor:refreshed", apply);
})();
