/* The console's small behaviours. Every screen works without this file; it only adds shortcuts.
   The CSP forbids inline scripts and eval, so all behaviour is here, bound by event delegation
   (regions swapped in by htmx need no re-binding). CSRF for htmx requests comes from the
   hx-headers attribute on <body>. */
(function () {
  "use strict";

  // --- "/" focuses the search box --------------------------------------------------------------
  function isTyping(target) {
    if (!target || !(target instanceof Element)) return false;
    return target.closest("input, textarea, select, [contenteditable], [contenteditable='true']") !== null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) {
      return;
    }
    // The page's own search box (the list) wins over the global one in the top bar.
    const box = document.querySelector("[data-hotkey-primary]") || document.querySelector("[data-hotkey='/']");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });

  // --- failed htmx requests ------------------------------------------------------------------
  // htmx does not swap error responses, so without this a refused or failed click would look
  // like nothing happened.
  function flash(text) {
    const box = document.getElementById("messages");
    if (!box) return;
    const alert = document.createElement("div");
    alert.className = "alert alert-error";
    alert.setAttribute("role", "alert");
    alert.textContent = text;
    box.replaceChildren(alert);
    window.scrollTo({ top: 0 });
  }

  document.addEventListener("htmx:responseError", function (event) {
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    // The session ended (401/403 with HX-Redirect): htmx goes to sign in; no message here.
    if (event.detail.xhr && event.detail.xhr.getResponseHeader("HX-Redirect")) return;
    if (status === 403) {
      flash("You do not have permission for this action. Nothing was changed.");
    } else if (status === 404) {
      flash("Not found: the user may have been deleted, or the link is old. Reload the page.");
    } else if (status === 400) {
      flash("The request was not valid. Reload the page and try again.");
    } else {
      flash("The server could not complete the request (" + status + "). Reload the page and check before retrying.");
    }
  });

  document.addEventListener("htmx:sendError", function () {
    flash("The console could not reach the server. Check your connection and try again.");
  });

  // After a board move, keyboard users land on the result message instead of the page top.
  document.addEventListener("htmx:afterSettle", function (event) {
    const target = event.detail.target;
    const config = event.detail.requestConfig;
    if (!(target instanceof Element) || target.id !== "board" || !config || config.verb !== "post") return;
    // outerHTML swap: `target` is the element that was replaced; look up its successor.
    const board = document.getElementById("board");
    const note = board && board.querySelector(".board-errors");
    if (note) {
      note.setAttribute("tabindex", "-1");
      note.focus({ preventScroll: false });
    }
  });

  // --- focus after a swap (WCAG 2.4.3) ---------------------------------------------------------
  // A region replaced while the keyboard focus was in it would leave the focus on <body>. htmx
  // itself moves it to an element with the same id or to an [autofocus] one; otherwise, once
  // the new region has settled: after an action (POST) the region's error, else its message,
  // else [data-focus-after-swap], else the same control (same tag, text, name and value);
  // after a link (GET) [data-focus-after-swap] (what a Cancel returns to), the same control,
  // the error or message; then the region's heading, the region itself.
  const pendingFocus = new Map();

  document.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    if (!(target instanceof Element) || !target.id) return;
    const active = document.activeElement;
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    const inside = active && active !== document.body
      ? target.contains(active)
      : source instanceof Element && target.contains(source);
    if (!inside) return;
    const was = active && active !== document.body ? active : source;
    pendingFocus.set(target.id, {
      post: (event.detail.requestConfig.verb || "get") !== "get",
      tag: was.tagName,
      text: was.textContent.trim(),
      name: was.getAttribute("name"),
      value: was.getAttribute("value"),
    });
  });

  function visible(element) {
    return element.getClientRects().length > 0 && !element.closest("[hidden]");
  }

  function firstVisible(region, selector) {
    return Array.from(region.querySelectorAll(selector)).find(function (element) {
      return visible(element) && element.textContent.trim() !== "";
    }) || null;
  }

  function counterpart(region, was) {
    return Array.from(region.querySelectorAll(was.tag)).find(function (element) {
      return visible(element) && !element.disabled && element.textContent.trim() === was.text
        && element.getAttribute("name") === was.name && element.getAttribute("value") === was.value;
    }) || null;
  }

  function focusAfterSwap(region, was) {
    const news = firstVisible(region, "[role='alert']") || firstVisible(region, "[role='status']");
    const marked = firstVisible(region, "[data-focus-after-swap]");
    const candidates = (was.post
      ? [news, marked, counterpart(region, was)]
      : [marked, counterpart(region, was), news]
    ).concat([firstVisible(region, "h1, h2, h3"), region]);
    const element = candidates.find(Boolean);
    if (!element.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus();
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    const target = event.detail.target;
    if (!(target instanceof Element) || !pendingFocus.has(target.id)) return;
    const was = pendingFocus.get(target.id);
    pendingFocus.delete(target.id);
    const region = document.getElementById(target.id);
    const active = document.activeElement;
    if (!region || (active && active !== document.body && document.contains(active))) return;
    focusAfterSwap(region, was);
  });

  // --- bulk selection --------------------------------------------------------------------------
  function bulkScope(element) {
    return element.closest("[data-bulk]") || document;
  }

  function refreshBulk(scope) {
    const boxes = Array.from(scope.querySelectorAll("input[data-bulk-item]"));
    const checked = boxes.filter(function (box) { return box.checked; });
    boxes.forEach(function (box) {
      const row = box.closest("tr");
      if (row) row.classList.toggle("is-selected", box.checked);
    });
    const all = scope.querySelector("input[data-bulk-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked.length === boxes.length;
      all.indeterminate = checked.length > 0 && checked.length < boxes.length;
    }
    scope.querySelectorAll("[data-bulk-count]").forEach(function (el) {
      el.textContent = checked.length === 1 ? "1 selected" : checked.length + " selected";
    });
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (!(target instanceof HTMLInputElement)) return;
    if (target.matches("input[data-bulk-all]")) {
      const scope = bulkScope(target);
      scope.querySelectorAll("input[data-bulk-item]").forEach(function (box) {
        box.checked = target.checked;
      });
      refreshBulk(scope);
    } else if (target.matches("input[data-bulk-item]")) {
      refreshBulk(bulkScope(target));
    }
  });

  // A destructive bulk action with nothing selected would only produce an error; say so here.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("[data-bulk-form]")) return;
    const submitter = event.submitter;
    if (submitter && submitter.hasAttribute("data-bulk-needs-selection")) {
      const any = document.querySelector("input[data-bulk-item][form='" + form.id + "']:checked");
      if (!any) {
        event.preventDefault();
        event.stopImmediatePropagation();
        const note = form.querySelector("[data-bulk-count]") || document.querySelector("[data-bulk-count]");
        if (note) {
          note.textContent = "Select users first";
          note.classList.add("sla");
        }
      }
    }
  }, true);

  // --- status board: drag and drop --------------------------------------------------------------
  // Dropping a card fills in that card's own move form (the keyboard menu, which also works
  // without JavaScript) and submits it; a move that needs a reason code (off the flow, or into
  // failed or inactive) first asks for it in a <dialog>.
  let dragged = null;

  function columnOf(element) {
    return element instanceof Element ? element.closest("[data-drop-status]") : null;
  }

  function clearDropMarks() {
    document.querySelectorAll(".is-drop-target, .is-drop-recommended, .is-drop-off-flow").forEach(function (el) {
      el.classList.remove("is-drop-target", "is-drop-recommended", "is-drop-off-flow");
    });
  }

  // A card's status and recommended moves are its column's (the server prints them once
  // per column, not on each of up to 125 cards).
  function statusOf(card) {
    const column = columnOf(card);
    return column ? column.getAttribute("data-drop-status") : null;
  }

  function recommendedFor(card) {
    const column = columnOf(card);
    return ((column && column.getAttribute("data-recommended")) || "").split(" ").filter(Boolean);
  }

  document.addEventListener("dragstart", function (event) {
    const card = event.target instanceof Element ? event.target.closest("[data-card]") : null;
    if (!card) return;
    dragged = card;
    card.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-card"));
    const recommended = recommendedFor(card);
    document.querySelectorAll("[data-drop-status]").forEach(function (column) {
      const status = column.getAttribute("data-drop-status");
      if (status === statusOf(card)) return;
      column.classList.add(recommended.indexOf(status) >= 0 ? "is-drop-recommended" : "is-drop-off-flow");
    });
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("is-dragging");
    dragged = null;
    clearDropMarks();
  });

  document.addEventListener("dragover", function (event) {
    const column = columnOf(event.target);
    if (!dragged || !column || column.getAttribute("data-drop-status") === statusOf(dragged)) {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    document.querySelectorAll(".is-drop-target").forEach(function (el) {
      if (el !== column) el.classList.remove("is-drop-target");
    });
    column.classList.add("is-drop-target");
  });

  document.addEventListener("drop", function (event) {
    const column = columnOf(event.target);
    if (!dragged || !column) return;
    event.preventDefault();
    const card = dragged;
    const status = column.getAttribute("data-drop-status");
    clearDropMarks();
    if (status === statusOf(card)) return;
    moveCard(card, status);
  });

  // Moves into these statuses need a reason code (the server prints them on the board).
  function codedStatuses() {
    const board = document.querySelector("[data-coded-statuses]");
    return ((board && board.getAttribute("data-coded-statuses")) || "").split(" ").filter(Boolean);
  }

  function moveCard(card, status) {
    const form = card.querySelector("form[data-move-form]");
    if (!form) return;
    form.elements.namedItem("status").value = status;
    const needsCode = recommendedFor(card).indexOf(status) < 0 || codedStatuses().indexOf(status) >= 0;
    if (!needsCode) {
      form.elements.namedItem("reason").value = "";
      form.elements.namedItem("reason_code").value = "";
      form.requestSubmit();
      return;
    }
    askReason(card, form, status);
  }

  function askReason(card, form, status) {
    const dialog = document.getElementById("reason-dialog");
    if (!(dialog instanceof HTMLDialogElement)) {
      // No dialog on the page: open the card's own menu so the reason can be given there.
      const menu = card.querySelector("details");
      if (menu) menu.open = true;
      const code = form.elements.namedItem("reason_code");
      if (code) code.focus();
      return;
    }
    const label = dialog.querySelector("[data-reason-target]");
    if (label) {
      const option = form.querySelector("option[value='" + status + "']");
      label.textContent = (card.getAttribute("data-name") || "This user") + " → " + (option ? option.textContent.trim() : status);
    }
    const code = dialog.querySelector("select[name='reason_code']");
    const input = dialog.querySelector("textarea[name='reason']");
    code.value = "";
    input.value = "";
    dialog.querySelectorAll("[data-reason-error], [data-reason-code-error]").forEach(function (el) {
      el.hidden = true;
    });
    dialog.dataset.card = card.getAttribute("data-card");
    dialog.dataset.status = status;
    dialog.showModal();
    code.focus();
  }

  document.addEventListener("submit", function (event) {
    const dialogForm = event.target;
    if (!(dialogForm instanceof HTMLFormElement) || !dialogForm.matches("[data-reason-form]")) return;
    event.preventDefault();
    const dialog = dialogForm.closest("dialog");
    const submitter = event.submitter;
    if (submitter && submitter.value === "cancel") {
      dialog.close();
      return;
    }
    const codeInput = dialogForm.querySelector("select[name='reason_code']");
    const reasonInput = dialogForm.querySelector("textarea[name='reason']");
    const code = codeInput.value;
    const reason = reasonInput.value.trim();
    const codeError = dialogForm.querySelector("[data-reason-code-error]");
    const reasonError = dialogForm.querySelector("[data-reason-error]");
    if (codeError) codeError.hidden = !!code;
    if (!code) {
      codeInput.focus();
      return;
    }
    // The server says the same; asking here keeps the dialog open for the words.
    if (code === "OTHER" && !reason) {
      if (reasonError) reasonError.hidden = false;
      reasonInput.focus();
      return;
    }
    if (reasonError) reasonError.hidden = true;
    const card = document.querySelector("[data-card='" + dialog.dataset.card + "']");
    dialog.close();
    if (!card) return;
    const form = card.querySelector("form[data-move-form]");
    form.elements.namedItem("status").value = dialog.dataset.status;
    form.elements.namedItem("reason_code").value = code;
    form.elements.namedItem("reason").value = reason;
    form.requestSubmit();
  });
})();
