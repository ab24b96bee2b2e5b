// Small behaviours of the portal; no inline scripts, so a strict CSP stays possible.
document.addEventListener("DOMContentLoaded", () => {
  // One-time links: continue at once (the POST carries this host's CSRF token).
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => form.requestSubmit());
  // Ask before destructive buttons: <button data-confirm="...">.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  // Bulk actions: <input type="checkbox" data-select-all="FORM-ID"> checks every row box that
  // belongs to that form (form="FORM-ID"); the form's [data-bulk-count] says how many.
  document.querySelectorAll("[data-select-all]").forEach((all) => {
    const formId = all.dataset.selectAll;
    const form = document.getElementById(formId);
    const boxes = () =>
      Array.from(document.querySelectorAll(`input[type=checkbox][name=pk][form="${formId}"]`));
    const count = form && form.querySelector("[data-bulk-count]");
    const update = () => {
      const list = boxes();
      const checked = list.filter((b) => b.checked).length;
      all.checked = list.length > 0 && checked === list.length;
      all.indeterminate = checked > 0 && checked < list.length;
      if (count) count.textContent = checked ? `${checked} selected` : "None selected";
    };
    all.addEventListener("change", () => {
      boxes().forEach((b) => { b.checked = all.checked; });
      update();
    });
    boxes().forEach((b) => b.addEventListener("change", update));
    update();
  });

  // Copy buttons: <button data-copy="ELEMENT-ID"> copies that element's text; the page's
  // [data-copy-status] (role=status, aria-live) says what was copied, for everyone.
  const status = document.querySelector("[data-copy-status]");
  const say = (text) => {
    if (!status) return;
    status.textContent = text;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { status.textContent = ""; }, 4000);
  };
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const what = (button.getAttribute("aria-label") || "Copy").replace(/^Copy /, "");
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = "Copy"; }, 2000);
        say(`Copied ${what}.`);
      } catch (err) {
        // No clipboard (plain HTTP, or permission refused): select the text to copy by hand.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        say(`Could not copy ${what} automatically: it is selected, press Ctrl+C.`);
      }
    });
  });
});
