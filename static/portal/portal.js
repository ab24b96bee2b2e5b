// Small behaviours of the portal; no inline scripts, so a strict CSP stays possible.
document.addEventListener("DOMContentLoaded", () => {
  // One-time links: continue at once (the POST carries this host's CSRF token).
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => form.requestSubmit());
  // Ask before destructive buttons: <button data-confirm="...">.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
});
