// The pages' own small script (no build step): focus the error summary so a screen
// reader announces it, the Print button, and filling a shared confirmation modal.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
});

// One confirmation modal serves every row of a table: the row's opener carries
// data-fill-<name> attributes; the modal's hidden field data-fill-target="<name>" takes
// the value and its data-fill-text="<name>" words show it. Delegated, so rows htmx
// swaps in work too.
document.addEventListener("click", function (event) {
  var opener = event.target.closest && event.target.closest("[data-open-modal][aria-controls]");
  if (!opener) { return; }
  var modal = document.getElementById(opener.getAttribute("aria-controls"));
  if (!modal) { return; }
  Array.prototype.forEach.call(opener.attributes, function (attr) {
    if (attr.name.indexOf("data-fill-") !== 0) { return; }
    var name = attr.name.slice("data-fill-".length);
    modal.querySelectorAll('[data-fill-target="' + name + '"]').forEach(function (f) { f.value = attr.value; });
    modal.querySelectorAll('[data-fill-text="' + name + '"]').forEach(function (t) { t.textContent = attr.value; });
  });
}, true);
