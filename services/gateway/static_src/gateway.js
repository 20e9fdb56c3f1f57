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
  // USWDS binds the openers present when the page loads (and makes those links role
  // "button"); one htmx swapped in later opens the modal through its hidden opener, and
  // focus comes back to it when the modal closes
  if (opener.tagName === "A" && opener.getAttribute("role") !== "button") {
    var proxy = document.querySelector('[data-modal-proxy][aria-controls="' + modal.id + '"]');
    if (!proxy) { return; }
    event.preventDefault();
    event.stopPropagation();
    proxy.click();
    if (!opener.id) { opener.id = "opener-" + Math.floor(Math.random() * 1e9); }
    modal.setAttribute("data-opener", opener.id);
  }
}, true);
