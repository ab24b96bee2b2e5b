// The portal's layout on small screens and for keyboard users: the menu button that opens the
// side menu on a phone, and wide tables that scroll inside their own (focusable) box instead of
// making the whole page scroll sideways.
(function () {
  "use strict";

  function setUpMenu() {
    var button = document.querySelector(".menubutton");
    var nav = document.getElementById("mainnav");
    if (!button || !nav) return;
    button.hidden = false;
    document.body.classList.add("has-menubutton");
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      nav.classList.toggle("is-open", open);
      if (open) {
        var first = nav.querySelector("a");
        if (first) first.focus();
      }
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && nav.classList.contains("is-open")) {
        button.setAttribute("aria-expanded", "false");
        nav.classList.remove("is-open");
        button.focus();
      }
    });
  }

  function label(table) {
    var caption = table.querySelector("caption");
    if (caption) return caption.textContent.trim();
    var heading = document.querySelector("main h1");
    return heading ? heading.textContent.trim() : "Table";
  }

  function wrapTables(root) {
    var tables = (root || document).querySelectorAll("table.list, table.compact");
    Array.prototype.forEach.call(tables, function (table) {
      if (table.parentElement && table.parentElement.classList.contains("tablewrap")) return;
      var box = document.createElement("div");
      box.className = "tablewrap";
      // A scrolling box is reachable with the keyboard (arrow keys scroll it) and named.
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", label(table));
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
  }

  function focusablePre(root) {
    // Preformatted samples scroll sideways too: reachable with the keyboard as well.
    Array.prototype.forEach.call((root || document).querySelectorAll("pre"), function (pre) {
      if (!pre.hasAttribute("tabindex")) pre.tabIndex = 0;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpMenu();
    wrapTables(document);
    focusablePre(document);
  });
  document.addEventListener("htmx:load", function (event) {
    wrapTables(event.target);
  });
})();
