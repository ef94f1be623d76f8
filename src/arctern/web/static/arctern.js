// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Copy buttons: <button data-copy-target="ID"> copies the text of element ID.
  function setupCopyButtons() {
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
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
      });
    });
  }

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

  // Auto-refresh: an element with data-refresh="SECONDS" is re-fetched from the same URL and
  // swapped in place while it carries data-live="true" (i.e. while something is still running).
  function setupRefresh() {
    var region = document.querySelector("[data-refresh]");
    if (!region || !region.id) { return; }
    var seconds = parseFloat(region.getAttribute("data-refresh")) || 3;
    var tick = function () {
      var current = document.getElementById(region.id);
      if (!current || current.getAttribute("data-live") !== "true") { return; }
      fetch(window.location.href, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(region.id);
          if (fresh) { current.replaceWith(fresh); }
        })
        .catch(function () { /* try again next tick */ })
        .finally(function () { setTimeout(tick, seconds * 1000); });
    };
    setTimeout(tick, seconds * 1000);
  }

  // "Select all" checkbox: <input type=checkbox data-select-all="NAME"> toggles inputs named NAME.
  function setupSelectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var name = box.getAttribute("data-select-all");
        document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) {
          b.checked = box.checked;
        });
      });
    });
  }

  // Confirmation for destructive buttons: <button data-confirm="Really?">.
  function setupConfirm() {
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("click", function (ev) {
        if (!window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  }

  // App type radio: show the redirect-URI default that fits the chosen type.
  function setupAppType() {
    var form = document.querySelector("form[data-app-form]");
    if (!form) { return; }
    var uris = form.querySelector("textarea[name=redirect_uris]");
    var nativeDefault = form.getAttribute("data-native-default");
    form.querySelectorAll("input[name=app_type]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        if (!uris) { return; }
        if (radio.value === "native" && uris.value.trim() === "") { uris.value = nativeDefault; }
        if (radio.value === "confidential" && uris.value.trim() === nativeDefault) { uris.value = ""; }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopyButtons();
    setupRefresh();
    setupSelectAll();
    setupConfirm();
    setupAppType();
  });
})();
