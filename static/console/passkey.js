// The enrolment page: once django-otp-webauthn has registered the passkey, go on to the page
// that shows the recovery codes (the button's data-done-url).
"use strict";
document.addEventListener("otp_webauthn.register_complete", (event) => {
  const button = document.getElementById("passkey-register-button");
  if (button && button.dataset.doneUrl) {
    window.location.assign(button.dataset.doneUrl);
  }
});
