// Konsol: small enhancements only; every page works without this file.
"use strict";

// Forms that record something are sent once; print buttons where printing works.
function enhance(root) {
  // A second click while the first post is under way does nothing (the form's event id
  // makes a retry harmless anyway).
  root.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent === "1") {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-busy", "true");
      });
    });
  });
  // A filter form leaves out its empty choices ("all"): shorter links, no redirect.
  root.querySelectorAll("form[method=get]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[name], select[name]").forEach(function (field) {
        if (field.value === "") { field.disabled = true; field.dataset.emptied = "1"; }
      });
    });
  });
  // Back to a page kept in the history cache: its fields usable again.
  window.addEventListener("pageshow", function () {
    root.querySelectorAll("[data-emptied]").forEach(function (field) {
      field.disabled = false;
      delete field.dataset.emptied;
    });
  });
  root.querySelectorAll(".print-button").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
}

// Live refresh: a page marked data-live listens to the session's notices (/langsung) and,
// when one concerns it, fetches itself again at that position. The answer replaces the
// page only if it is not older than what is shown (position, and the entity's version),
// and never while someone is typing in one of its forms: then a note offers a reload.
function follow(main) {
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var wanted = 0; // the highest notice position that concerns this page
  var busy = false;
  var timer = null;
  var typing = false;
  main.addEventListener("input", function () { typing = true; });

  function concerns(notice) {
    if (main.dataset.stream) return notice.stream_id === main.dataset.stream;
    return notice.stream_id.indexOf(main.dataset.prefix || "") === 0;
  }

  function newer(fresh) {
    if (Number(fresh.dataset.position) < Number(main.dataset.position)) return false;
    if (main.dataset.version !== undefined && fresh.dataset.version !== undefined) {
      return Number(fresh.dataset.version) >= Number(main.dataset.version);
    }
    return true;
  }

  function editing() {
    var active = document.activeElement;
    return typing || (active && active !== main && main.contains(active) &&
      /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
  }

  function refresh() {
    timer = null;
    if (busy || wanted <= Number(main.dataset.position)) return;
    if (editing()) {
      main.querySelector(".live-note").hidden = false;
      return;
    }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("min_position", String(wanted));
    url.searchParams.delete("saved");
    window.fetch(url.toString(), { credentials: "same-origin", redirect: "error" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        busy = false;
        if (html === null) return schedule(5000); // not there yet (503): try again later
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main[data-live]");
        if (!fresh || !newer(fresh) || editing()) {
          if (fresh && editing()) main.querySelector(".live-note").hidden = false;
          return;
        }
        var scroll = window.scrollY;
        var next = document.importNode(fresh, true);
        main.replaceWith(next);
        window.scrollTo(0, scroll);
        enhance(next);
        next.addEventListener("input", function () { typing = true; });
        main = next;
        document.body.dataset.liveRefreshed = String((Number(document.body.dataset.liveRefreshed) || 0) + 1);
      })
      .catch(function () { busy = false; });
  }

  function schedule(delay) {
    if (timer === null) timer = window.setTimeout(refresh, delay);
  }

  var source = new EventSource(main.dataset.live + "?after=" + encodeURIComponent(main.dataset.position));
  source.onmessage = function (message) {
    var notice;
    try { notice = JSON.parse(message.data); } catch (e) { return; }
    if (!concerns(notice)) return;
    wanted = Math.max(wanted, Number(message.lastEventId));
    schedule(1000); // several events at once make one refresh
  };
  window.addEventListener("pagehide", function () { source.close(); });
  document.body.dataset.liveListening = "1";
}

document.addEventListener("DOMContentLoaded", function () {
  enhance(document);
  var main = document.querySelector("main[data-live]");
  if (main) follow(main);
});
