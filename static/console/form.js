// Detail and edit screens: the few behaviours HTML and htmx do not give. Loaded with
// <script src defer>; no inline script, no eval (the CSP forbids both). Every screen works
// without this file; it only adds conveniences.
(function () {
  "use strict";

  // Controls that only make sense with JavaScript are rendered `hidden data-js`.
  function revealScriptedControls(root) {
    root.querySelectorAll("[data-js][hidden]").forEach(function (el) {
      el.hidden = false;
    });
  }

  // After a save was refused, put the keyboard where the problem is: the conflict panel,
  // else the first input with an error.
  function focusProblem(root) {
    var conflict = root.querySelector(".conflict[data-focus-on-load]");
    var invalid = root.querySelector(".field.has-error input:not([readonly]), .field.has-error select, .field.has-error textarea");
    var target = conflict || invalid;
    if (target) {
      target.focus();
      target.scrollIntoView({ block: "center" });
    }
  }

  // The IBAN hint offers the BIC schwifty knows: one click fills the bank id.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fill-bic]");
    if (!button) return;
    var form = button.closest("form");
    var bankId = form && form.querySelector("[name=bank_id]");
    var bankIdType = form && form.querySelector("[name=bank_id_type]");
    if (!bankId) return;
    bankId.value = button.getAttribute("data-fill-bic");
    if (bankIdType) bankIdType.value = "BIC";
    button.hidden = true;
    bankId.focus();
    // As if typed: the bank id is checked against the IBAN like any edited input.
    bankId.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // A field check that answers after the whole form was re-rendered (a submit) has nowhere to
  // go: its wrapper is gone. Drop it instead of letting htmx fail on a detached element.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && !document.body.contains(target)) event.detail.shouldSwap = false;
  });

  function init() {
    revealScriptedControls(document);
    var form = document.getElementById("user-form");
    if (form) focusProblem(form);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }

  // Once every marked field has been fixed (checked on blur), the "Not saved" summary of the
  // last submit no longer tells the truth: take it away.
  function dropStaleSummary(form) {
    var summary = form.querySelector("[data-error-summary=fields]");
    if (summary && !form.querySelector(".field.has-error")) {
      summary.remove();
    }
  }

  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail.elt;
    revealScriptedControls(elt);
    if (elt.classList && elt.classList.contains("field")) {
      var form = elt.closest("form");
      if (form) dropStaleSummary(form);
    }
    // Only a whole re-rendered form moves focus; a field checked on blur never does.
    if (elt.id === "user-form") focusProblem(elt);
  });
})();
