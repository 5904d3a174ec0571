/* The idle-timeout warning (issue 10 point 3). <body> says how many seconds the session has
   left (data-session-left-seconds), how many a person's request gives it again
   (data-session-idle-seconds) and how long before the end to warn (data-session-warn-seconds).
   Shortly before the end the #session-warning alertdialog appears; "Stay signed in" POSTs to
   the keep-alive URL (its form works without this file too, but stays hidden). At the end the
   page goes to the sign-in page, which brings the person back here. htmx requests of the
   person count as activity; those sent with X-Console-Background: 1 (polls) do not. */
(function () {
  "use strict";

  const body = document.body;
  const left = Number(body.dataset.sessionLeftSeconds);
  const idle = Number(body.dataset.sessionIdleSeconds);
  const warn = Number(body.dataset.sessionWarnSeconds);
  const dialog = document.getElementById("session-warning");
  if (!dialog || !Number.isFinite(left) || !Number.isFinite(idle) || !Number.isFinite(warn)) return;
  const form = dialog.querySelector("form[data-session-keep-alive]");
  const countdown = dialog.querySelector("[data-session-countdown]");
  const button = form.querySelector("button");
  const signInUrl = body.dataset.sessionSignInUrl;

  let deadline = Date.now() + left * 1000;
  let returnFocus = null;
  let timer = null;

  function describe(seconds) {
    if (seconds >= 90) return Math.round(seconds / 60) + " minutes";
    return seconds + (seconds === 1 ? " second" : " seconds");
  }

  function show(seconds) {
    countdown.textContent = describe(seconds);
    if (dialog.hidden) {
      returnFocus = document.activeElement;
      dialog.hidden = false;
      button.focus();
    }
  }

  function hide() {
    if (dialog.hidden) return;
    dialog.hidden = true;
    if (returnFocus && typeof returnFocus.focus === "function" && document.contains(returnFocus)) {
      returnFocus.focus();
    }
    returnFocus = null;
  }

  function toSignIn() {
    window.clearTimeout(timer);
    const here = window.location.pathname + window.location.search;
    window.location.assign(signInUrl + "?next=" + encodeURIComponent(here));
  }

  function tick() {
    const remaining = deadline - Date.now();
    // Half a second late, so that the server surely sees the session idle too.
    if (remaining < -500) {
      toSignIn();
      return;
    }
    const seconds = Math.max(0, Math.ceil(remaining / 1000));
    if (seconds <= warn) show(seconds);
    else hide();
    timer = window.setTimeout(tick, 250);
  }

  function extend(seconds) {
    deadline = Date.now() + seconds * 1000;
    hide();
  }

  // A person's htmx request counts as activity (the server moved its clock too).
  document.body.addEventListener("htmx:afterRequest", function (event) {
    const detail = event.detail || {};
    const headers = (detail.requestConfig && detail.requestConfig.headers) || {};
    const xhr = detail.xhr;
    if (headers["X-Console-Background"] === "1" || !xhr || xhr.status === 401) return;
    if (detail.successful || xhr.status < 500) extend(idle);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        const json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (!response.ok || !json) throw new Error("session ended");
        return response.json();
      })
      .then(function (data) {
        extend(Number(data.idle_seconds_left) || idle);
      })
      .catch(toSignIn)
      .finally(function () {
        button.disabled = false;
      });
  });

  tick();
})();
