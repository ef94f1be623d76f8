// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  // Copy buttons: <button data-copy-target="ID" hidden> copies the text of element ID.
  function copyFrom(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) { return; }
    var text = (target.value !== undefined ? target.value : target.textContent).trim();
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  // Delegated handlers keep working for content swapped in by the auto-refresh.
  document.addEventListener("click", function (ev) {
    var el = ev.target instanceof Element ? ev.target : null;
    if (!el) { return; }
    var confirmer = el.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) {
      ev.preventDefault();
      return;
    }
    var copier = el.closest("[data-copy-target]");
    if (copier) { copyFrom(copier); }
  });

  document.addEventListener("change", function (ev) {
    var el = ev.target instanceof Element ? ev.target : null;
    if (!el) { return; }
    // <select data-autosubmit> submits its form when the choice changes; when the change
    // comes from arrow keys it waits for Enter or for focus to leave, so that moving through
    // the list with the keyboard does not reload the page at every step.
    if (el.matches("select[data-autosubmit]") && el.form) {
      if (el.dataset.keyboard) { el.dataset.changed = "1"; return; }
      el.form.submit();
    }
    // <input type=checkbox data-select-all="NAME"> toggles the checkboxes named NAME.
    if (el.matches("input[data-select-all]")) {
      var name = el.getAttribute("data-select-all");
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) {
        b.checked = el.checked;
      });
    }
    // App registration: prefill the auth-code redirect when "Native app" is chosen.
    if (el.matches("form[data-app-form] input[name=app_type]")) {
      var form = el.form;
      var uris = form.querySelector("textarea[name=redirect_uris]");
      var nativeDefault = form.getAttribute("data-native-default");
      if (uris && el.value === "native" && uris.value.trim() === "") { uris.value = nativeDefault; }
      if (uris && el.value === "confidential" && uris.value.trim() === nativeDefault) { uris.value = ""; }
    }
  });

  function enhance(root) {
    root.querySelectorAll("[data-copy-target][hidden]").forEach(function (b) { b.hidden = false; });
  }

  // Live progress: a region with data-live-url and data-refresh="SECONDS" polls a small JSON
  // document for its [data-live-task] rows and writes the values into their [data-field]
  // elements in place. Nothing is re-rendered, so keyboard focus and selection stay put.
  function setText(root, field, value) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) {
      var text = value === null || value === undefined || value === "" ? (el.tagName === "DD" ? "\u2014" : "") : String(value);
      if (el.textContent !== text) { el.textContent = text; }
    });
  }

  function showPart(root, field, visible) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) { el.hidden = !visible; });
  }

  function applyTask(row, values) {
    setText(row, "status_label", values.status_label);
    setText(row, "status_text", values.status_text);
    showPart(row, "status_text-part", !!values.status_text);
    ["bytes", "files", "rate", "eta", "total", "bytes_verified", "faults", "completed"].forEach(function (f) {
      setText(row, f, values[f]);
    });
    showPart(row, "rate-part", !!values.rate);
    showPart(row, "eta-part", !!values.eta);
    row.querySelectorAll('[data-field="bar"]').forEach(function (bar) {
      var width = values.percent === null ? (values.status === "FAILED" ? 100 : 4) : values.percent;
      var fill = bar.querySelector("span");
      if (fill) { fill.style.width = width + "%"; }
      if (values.percent === null) { bar.removeAttribute("aria-valuenow"); }
      else { bar.setAttribute("aria-valuenow", String(values.percent)); }
      bar.setAttribute("aria-valuetext", values.bytes || "");
      bar.classList.toggle("done", values.status === "SUCCEEDED");
      var cancelled = values.status_label === "Cancelled";
      bar.classList.toggle("failed", values.status === "FAILED" && !cancelled);
      bar.classList.toggle("canceled", cancelled);
    });
    var badge = row.querySelector('[data-field="status_label"]');
    if (badge) {
      badge.className = "status status-" + (values.status_label === "Cancelled" ? "CANCELED" : values.status);
    }
    if (values.cancel_requested) {
      row.querySelectorAll("[data-testid=cancel-task]").forEach(function (b) {
        b.disabled = true;
        b.textContent = "Canceling\u2026";
      });
    }
    row.setAttribute("data-status", values.status);
    // Counts the in-place updates, so tests (and curious people) can see them happen.
    row.setAttribute("data-updates", String((parseInt(row.getAttribute("data-updates"), 10) || 0) + 1));
  }

  function setupLive() {
    var region = document.querySelector("[data-live-url]");
    if (!region || region.getAttribute("data-live") !== "true") { return; }
    var seconds = parseFloat(region.getAttribute("data-refresh")) || 2;
    var tick = function () {
      var rows = region.querySelectorAll("[data-live-task][data-task-id]");
      if (!rows.length) { return; }
      var query = Array.prototype.map.call(rows, function (r) {
        return "id=" + encodeURIComponent(r.getAttribute("data-task-id"));
      }).join("&");
      var again = true;
      fetch(region.getAttribute("data-live-url") + "?" + query, {
        credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" }
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (doc) {
          if (!doc || !doc.tasks) { return; }
          setText(region, "as_of", doc.as_of);
          rows.forEach(function (row) {
            var values = doc.tasks[row.getAttribute("data-task-id")];
            if (!values) { return; }
            applyTask(row, values);
            if (!values.active) {
              row.removeAttribute("data-live-task");
              // The task page also lists files and events; once the task has ended, show
              // them complete with one reload (nothing left to act on while it ran).
              if (region.hasAttribute("data-reload-when-done")) {
                again = false;
                window.location.reload();
              }
            }
          });
        })
        .catch(function () { /* try again next tick */ })
        .finally(function () { if (again) { setTimeout(tick, seconds * 1000); } });
    };
    setTimeout(tick, seconds * 1000);
  }

  // <time datetime="ISO" data-local-time>UTC text</time>: add the reader's local time beside it.
  function localTimes(root) {
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      if (el.nextElementSibling && el.nextElementSibling.classList.contains("local-time")) { return; }
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) { return; }
      var local = document.createElement("span");
      local.className = "local-time";
      var pad = function (n) { return (n < 10 ? "0" : "") + n; };
      var text = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
        " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
      local.textContent = " (" + text + " local)";
      local.title = date.toString();
      el.insertAdjacentElement("afterend", local);
    });
  }

  // A page answering a POST (a new client secret, shown only in that response) names its
  // own address: the history entry becomes that plain GET, so reloading or coming back
  // shows the page without the secret instead of sending the form again.
  function replaceUrl() {
    var el = document.querySelector("[data-replace-url]");
    var url = el && el.getAttribute("data-replace-url");
    if (url && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", url);
    }
  }

  // Keyboard use of an auto-submitting <select>: arrows only move the choice; Enter, or
  // leaving the control, applies it.
  document.addEventListener("keydown", function (ev) {
    var el = ev.target instanceof Element ? ev.target : null;
    if (!el || !el.matches("select[data-autosubmit]")) { return; }
    if (ev.key === "Enter") {
      if (el.dataset.changed && el.form) { ev.preventDefault(); el.form.submit(); }
      return;
    }
    if (ev.key !== "Tab") { el.dataset.keyboard = "1"; }
  });
  document.addEventListener("focusout", function (ev) {
    var el = ev.target instanceof Element ? ev.target : null;
    if (el && el.matches("select[data-autosubmit]") && el.dataset.changed && el.form) {
      el.form.submit();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    replaceUrl();
    enhance(document);
    localTimes(document);
    setupLive();
  });
})();
