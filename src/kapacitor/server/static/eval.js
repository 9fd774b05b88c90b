// The Evaluation tab's Run eval button: POST queues a job on the server, whose
// progress (one message per question started, answered, retried or failed, then
// the retrospective) streams over Server-Sent Events into the tab; when the job
// is done the tab reloads to show the new eval (and when the viewer may no longer
// see the session, "gone", the page reloads as it is for them now). Delegated, so
// it works on tab bodies swapped in later.
(function () {
  "use strict";

  function line(log, text, cls) {
    var li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    log.appendChild(li);
  }

  function describe(m) {
    var q = m.question_id || "retrospective";
    if (m.state === "started") return q + ": asking the judge…";
    if (m.state === "done" && m.score !== undefined) return q + ": " + m.score + " (" + m.verdict + ")" + (m.total ? " · " + m.done + "/" + m.total : "");
    if (m.state === "done") return q + ": written";
    if (m.state === "retry") return q + ": retrying (" + m.error + ")";
    return q + ": failed (" + (m.error || "") + ")";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-eval-run]");
    if (!button) return;
    var tab = button.closest(".eval-tab");
    var box = tab.querySelector(".eval-job");
    var state = box.querySelector(".eval-job-state");
    var log = box.querySelector(".eval-job-log");
    button.disabled = true;
    box.hidden = false;
    log.replaceChildren();
    state.className = "eval-job-state";
    state.textContent = "Queued…";
    var csrf = document.querySelector('meta[name="csrf-token"]');  // a signed-in browser's POST must carry it
    fetch(button.dataset.evalRun, { method: "POST", headers: { "Accept": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" } })
      .then(function (r) {
        if (r.ok) return r.json();
        // the server's one-line reason (429: too many evals of theirs queued), else the status
        return r.json().then(function (body) { return Promise.reject(body.detail || r.status); },
                             function () { return Promise.reject(r.status); });
      })
      .then(function (job) {
        var source = new EventSource(job.events);
        state.textContent = "Running…";
        source.addEventListener("progress", function (e) {
          var m = JSON.parse(e.data);
          line(log, describe(m), m.state === "failed" ? "failed" : "");
        });
        source.addEventListener("done", function () {
          source.close();
          state.textContent = "Done.";
          window.location.reload();
        });
        source.addEventListener("gone", function () {
          // They may no longer see this session: the page as it is for them now
          // (the 404 page, the sign-in page), as live.js does for the other parts.
          source.close();
          window.location.reload();
        });
        source.addEventListener("failed", function (e) {
          source.close();
          button.disabled = false;
          state.className = "eval-job-state failed";
          state.textContent = "The eval failed: " + (JSON.parse(e.data).error || "");
        });
      })
      .catch(function (why) {
        button.disabled = false;
        state.className = "eval-job-state failed";
        state.textContent = typeof why === "string" ? "Could not start the eval: " + why + "." : "Could not start the eval (" + why + ").";
      });
  });

  // Picking another eval shows it (the CSP allows no inline handler).
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches(".eval-pick select")) event.target.form.submit();
  });
})();
