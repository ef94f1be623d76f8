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
    // <select data-autosubmit> submits its form when the choice changes.
    if (el.matches("select[data-autosubmit]") && el.form) { el.form.submit(); }
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

  // Auto-refresh: an element with an id and data-refresh="SECONDS" is re-fetched from the same
  // URL and swapped in place while it carries data-live="true" (something is still running).
  function setupRefresh() {
    var region = document.querySelector("[data-refresh][id]");
    if (!region) { return; }
    var id = region.id;
    var seconds = parseFloat(region.getAttribute("data-refresh")) || 3;
    var tick = function () {
      var current = document.getElementById(id);
      if (!current || current.getAttribute("data-live") !== "true") { return; }
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
          if (fresh) {
            current.replaceWith(fresh);
            enhance(fresh);
          }
        })
        .catch(function () { /* try again next tick */ })
        .finally(function () { setTimeout(tick, seconds * 1000); });
    };
    setTimeout(tick, seconds * 1000);
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

  document.addEventListener("DOMContentLoaded", function () {
    replaceUrl();
    enhance(document);
    setupRefresh();
  });
})();
