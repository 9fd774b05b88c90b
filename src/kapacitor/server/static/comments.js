// Comments on a session page (templates/_collab.html): a "comment" button on every chat
// item and trace node (with the number of comments when it has some) that points
// the comment form at that item; the counts come from the comment list the
// server renders (data-counts) and are re-applied whenever the list or the chat
// or trace is swapped (htmx, live refresh). Also: every state-changing htmx
// request carries the page's CSRF token (a signed-in browser's must).
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.verb === "get") return;
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) e.detail.headers["X-CSRF-Token"] = meta.content;
  });

  function counts() {
    var list = document.querySelector("#comment-list [data-counts]");
    return list ? JSON.parse(list.dataset.counts) : {};
  }

  function button(item, kind, anchor, label, n) {
    // a folded item (<details>) carries it in its summary, shown while closed
    var host = item.tagName === "DETAILS" ? item.querySelector(":scope > summary") || item : item;
    var btn = host.querySelector(":scope > .comment-btn");
    if (!btn) {
      btn = document.createElement("button");
      btn.type = "button";
      btn.className = "comment-btn";
      btn.dataset.kind = kind;
      btn.dataset.anchor = anchor;
      btn.dataset.label = label;
      host.appendChild(btn);
    }
    btn.textContent = n ? n + (n === 1 ? " comment" : " comments") : "comment";
    btn.classList.toggle("has-comments", n > 0);
    btn.title = n ? "show its comments, or add one" : "comment on this " + (kind === "chat" ? "item" : "node");
  }

  function decorate() {
    if (!document.getElementById("comments")) return;
    var c = counts();
    document.querySelectorAll(".chat-item[id^='e-']").forEach(function (item) {
      var anchor = item.id.slice(2);
      var who = item.querySelector(".who, summary");
      var label = (item.dataset.kind || "item").replace(/_/g, " ") + (who ? ": " + who.textContent.trim().slice(0, 50) : "");
      button(item, "chat", anchor, label, c["chat:" + anchor] || 0);
    });
    document.querySelectorAll("[data-trace] .tnode[data-id]").forEach(function (node) {
      var label = node.querySelector(".tlabel");
      button(node, "trace", node.dataset.id, "trace node: " + (label ? label.textContent.slice(0, 50) : node.dataset.id), c["trace:" + node.dataset.id] || 0);
    });
    var total = document.querySelector("#comment-list [data-total]");
    var panel = document.getElementById("comments");
    var shown = panel.querySelector(".comment-total");
    var count = total ? Number(total.dataset.total) : 0;
    if (shown) shown.textContent = count ? "(" + count + ")" : "";
    // open once there are some, where there is room for them above the tabs
    if (count && !panel.dataset.opened && !matchMedia("(max-width: 600px)").matches) panel.open = panel.dataset.opened = true;
  }

  function aim(kind, anchor, label) {
    var form = document.getElementById("comment-form");
    var panel = document.getElementById("comments");
    document.querySelectorAll(".commented-on").forEach(function (el) { el.classList.remove("commented-on"); });
    document.querySelectorAll("#comment-list .comment").forEach(function (el) {
      el.classList.toggle("highlight", kind !== "session" && el.dataset.target === kind + ":" + anchor);
    });
    if (panel) panel.open = true;
    if (!form) return;
    form.elements.kind.value = kind;
    form.elements.anchor.value = anchor;
    form.querySelector(".comment-on-label").textContent = kind === "session" ? "the session" : label;
    form.querySelector(".comment-on-clear").hidden = kind === "session";
    if (kind !== "session") {
      form.scrollIntoView({ block: "nearest" });
      form.elements.text.focus();
    }
  }

  // capture phase: before the trace's own click handler selects (and toggles) the node
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest(".comment-btn");
    if (btn) {
      e.preventDefault();
      e.stopPropagation();
      var host = btn.closest(".chat-item, .tnode");
      aim(btn.dataset.kind, btn.dataset.anchor, btn.dataset.label);
      if (host) host.classList.add("commented-on");
      return;
    }
    if (e.target.closest && e.target.closest(".comment-on-clear")) aim("session", "", "");
  }, true);

  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!form || form.id !== "comment-form") return;
    var error = form.querySelector(".comment-error");
    if (e.detail.successful) {
      form.elements.text.value = "";
      error.textContent = "";
      aim("session", "", "");
    } else {
      var detail = "";
      try { detail = JSON.parse(e.detail.xhr.responseText).detail; } catch (err) { detail = e.detail.xhr.statusText; }
      error.textContent = "Not saved: " + (detail || "HTTP " + e.detail.xhr.status);
    }
  });

  document.addEventListener("htmx:afterSettle", decorate);
  document.addEventListener("kapacitor:refreshed", decorate);
  document.addEventListener("DOMContentLoaded", decorate);
})();
