// Typed input survives a session that ends mid-work (issue 10.4). Loaded from base.html with
// <script src defer>; no inline script, no eval (the CSP forbids both).
//
// When an htmx request is answered 401/403 with HX-Redirect (the session ended: the server
// sends the person to sign in, back to this page), the values of every `form[data-keep]` on
// the page are put in this tab's sessionStorage, keyed by the page path. When that page opens
// again (after signing in), they are put back into the form, with a note and a button to
// discard them; the copy is removed as soon as it is restored, and after a successful save.
// The hidden `expected_version` is kept too: if the record changed meanwhile, the save shows
// the conflict screen instead of overwriting the other person's change.
(function () {
  "use strict";

  var PREFIX = "console.keep:";
  var SKIP = { csrfmiddlewaretoken: true };

  function key() {
    return PREFIX + window.location.pathname;
  }

  function forms() {
    return Array.prototype.slice.call(document.querySelectorAll("form[data-keep][id]"));
  }

  function read(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || SKIP[el.name] || el.disabled || el.readOnly) return;
      if (el.type === "file" || el.type === "submit" || el.type === "button") return;
      if (el.type === "hidden" && el.name !== "expected_version") return;
      var list = values[el.name] || (values[el.name] = []);
      if (el.type === "checkbox" || el.type === "radio") {
        if (el.checked) list.push(el.value);
      } else if (el.tagName === "SELECT" && el.multiple) {
        Array.prototype.forEach.call(el.selectedOptions, function (o) { list.push(o.value); });
      } else {
        list.push(el.value);
      }
    });
    return values;
  }

  function write(form, values) {
    var seen = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !Object.prototype.hasOwnProperty.call(values, el.name)) return;
      if (SKIP[el.name] || el.disabled || el.readOnly || el.type === "file") return;
      var list = values[el.name];
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = list.indexOf(el.value) !== -1;
      } else if (el.tagName === "SELECT" && el.multiple) {
        Array.prototype.forEach.call(el.options, function (o) { o.selected = list.indexOf(o.value) !== -1; });
      } else {
        var i = seen[el.name] || 0;
        if (i < list.length) el.value = list[i];
        seen[el.name] = i + 1;
      }
    });
  }

  function save() {
    var kept = {};
    forms().forEach(function (form) { kept[form.id] = read(form); });
    if (!Object.keys(kept).length) return;
    try {
      window.sessionStorage.setItem(key(), JSON.stringify(kept));
    } catch (e) {
      // Storage full or refused: nothing to keep, the server side still answers correctly.
    }
  }

  function clear() {
    try {
      window.sessionStorage.removeItem(key());
    } catch (e) {
      // Storage refused: nothing was kept.
    }
  }

  function note(form) {
    var box = document.createElement("div");
    box.className = "alert alert-info kept-note";
    box.setAttribute("role", "status");
    var text = document.createElement("p");
    text.textContent = "Your unsaved changes were restored; check them and save.";
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "btn";
    discard.textContent = "Discard restored changes";
    discard.addEventListener("click", function () {
      clear();
      window.location.reload();
    });
    box.appendChild(text);
    box.appendChild(discard);
    form.parentNode.insertBefore(box, form);
  }

  function restore() {
    var raw = null;
    try {
      raw = window.sessionStorage.getItem(key());
    } catch (e) {
      return;
    }
    if (!raw) return;
    var kept;
    try {
      kept = JSON.parse(raw);
    } catch (e) {
      clear();
      return;
    }
    var restored = false;
    forms().forEach(function (form) {
      if (kept && kept[form.id]) {
        write(form, kept[form.id]);
        if (!restored) note(form);
        restored = true;
      }
    });
    // Only once: the values are in the form now; a second session end keeps them again.
    if (restored) clear();
  }

  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr) return;
    var redirect = xhr.getResponseHeader("HX-Redirect");
    if ((xhr.status === 401 || xhr.status === 403) && redirect) {
      save();
    } else if (xhr.status < 300 && redirect) {
      // A kept form saved (its answer sends to the saved record): nothing left to restore.
      var elt = event.detail.elt;
      if (elt && elt.closest && elt.closest("form[data-keep]")) clear();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", restore);
  } else {
    restore();
  }
})();
