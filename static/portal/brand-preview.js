// The branding page's live preview (templates/portal/branding/form.html): the mock top bar,
// button and e-mail header follow the form as the user types, picks or uploads, before saving.
// The contrast formulas are those of branding/colours.py (WCAG 2.x), which the server applies.
(() => {
  "use strict";
  const HEX = /^#[0-9a-fA-F]{6}$/;
  const BAR_DEFAULT = "#16202c";
  const ACCENT_DEFAULT = "#1f6feb";

  const channel = (c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const luminance = (hex) => {
    const [r, g, b] = rgb(hex).map(channel);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const textOn = (hex) => (contrast(hex, "#000000") >= contrast(hex, "#ffffff") ? "#000000" : "#ffffff");
  const ink = (hex) => {
    const [r, g, b] = rgb(hex);
    for (let step = 0; step <= 100; step++) {
      const keep = 1 - step / 100;
      const c = "#" + [r, g, b].map((v) => Math.round(v * keep).toString(16).padStart(2, "0")).join("");
      if (contrast(c, "#e8f0fe") >= 4.5) return c;
    }
    return "#000000";
  };
  const warning = (hex) => {
    if (!HEX.test(hex)) return "";
    const ratio = contrast(hex, "#ffffff");
    if (ratio >= 3) return "";
    const text = textOn(hex) === "#000000" ? "black" : "white";
    return `Low contrast: this colour stands out from the white page by only ${ratio.toFixed(1)}:1 ` +
      `(3:1 is the minimum for buttons). Text on it will be ${text}, and links will use the darker ${ink(hex)}.`;
  };

  function start() {
    const form = document.getElementById("brand-form");
    if (!form) return;
    const input = (name) => form.elements.namedItem(name);
    // A field's value, else what it inherits.
    const value = (name) => {
      const el = input(name);
      if (!el) return "";
      return el.value.trim() || el.dataset.inherited || "";
    };
    const colour = (name) => {
      const v = value(name);
      return HEX.test(v) ? v.toLowerCase() : "";
    };
    const $ = (id) => document.getElementById(id);
    const logo = $("preview-logo");
    let uploaded = null; // an object URL of the chosen logo file

    function update() {
      const name = value("product_name");
      $("preview-name").textContent = name;
      $("preview-mail-name").textContent = name;
      $("preview-subject").textContent = `Your ${name} account`;
      const sender = value("email_from_name") || name;
      const address = value("email_from_address") || form.dataset.defaultFrom;
      $("preview-from").textContent = `${sender} <${address}>`;
      const support = value("support_email");
      $("preview-support").textContent = support ? `Questions: ${support}` : "";
      $("preview-company").textContent = value("company_name");

      const bar = colour("primary_color") || BAR_DEFAULT;
      $("preview-bar").style.background = bar;
      $("preview-bar").style.color = textOn(bar);
      const accent = colour("accent_color") || colour("primary_color") || ACCENT_DEFAULT;
      $("preview-button").style.background = accent;
      $("preview-button").style.color = textOn(accent);

      for (const field of ["primary_color", "accent_color"]) {
        const el = input(field);
        const note = $(`${el.id}_warning`);
        const shown = el.value.trim();
        if (note) note.textContent = HEX.test(shown) ? warning(shown) : "";
      }

      const remove = input("remove_logo");
      const typed = input("logo_url").value.trim();
      let src = typed || logo.dataset.inherited;
      if (uploaded) src = uploaded;
      else if (logo.dataset.upload && !(remove && remove.checked)) src = logo.dataset.initial;
      if (src) {
        logo.src = src;
        logo.hidden = false;
      } else {
        logo.hidden = true;
      }
    }

    form.addEventListener("input", update);
    form.addEventListener("change", (event) => {
      if (event.target.name === "logo") {
        if (uploaded) URL.revokeObjectURL(uploaded);
        const file = event.target.files && event.target.files[0];
        uploaded = file ? URL.createObjectURL(file) : null;
      }
      update();
    });
    // The colour pickers write the hex text (the value sent); typing a hex moves the picker.
    form.querySelectorAll("input[type=color][data-picker-for]").forEach((picker) => {
      const text = document.getElementById(picker.dataset.pickerFor);
      picker.addEventListener("input", () => {
        text.value = picker.value;
        update();
      });
      text.addEventListener("input", () => {
        if (HEX.test(text.value.trim())) picker.value = text.value.trim().toLowerCase();
      });
    });
    form.querySelectorAll("[data-reset]").forEach((button) => {
      button.addEventListener("click", () => {
        const target = document.getElementById(button.dataset.reset);
        target.value = "";
        const picker = form.querySelector(`[data-picker-for="${target.id}"]`);
        if (picker && HEX.test(target.dataset.inherited || "")) picker.value = target.dataset.inherited;
        target.focus();
        update();
      });
    });
    update();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
