// Keyboard shortcuts of the review queue: m / n / u decide, j / → next pair, k / ← previous pair.
// m on a pair that would join disagreeing customers only focuses the confirmation box until it is ticked.
// A bulk decision asks for confirmation, naming how many pairs it marks.
(function () {
  "use strict";
  var bulk = document.getElementById("bulk-form");
  if (bulk) {
    bulk.addEventListener("submit", function (event) {
      var action = event.submitter && event.submitter.value === "match" ? "match" : "not a match";
      if (!window.confirm("Mark all " + bulk.dataset.count + " filtered pairs " + action + "?")) { event.preventDefault(); }
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) { return; }
    var key = event.key;
    var decide = { m: "match", n: "no_match", u: "unsure" }[key];
    if (decide) {
      var button = document.querySelector('#decide-form button[value="' + decide + '"]');
      var confirmJoin = document.querySelector('#decide-form input[name="confirm_join"]');
      if (decide === "match" && confirmJoin && !confirmJoin.checked) {
        event.preventDefault();  // a match that joins disagreeing customers needs the box ticked first
        confirmJoin.focus();
        return;
      }
      if (button) { event.preventDefault(); button.click(); }
      return;
    }
    var link = null;
    if (key === "j" || key === "ArrowRight") { link = document.getElementById("next"); }
    if (key === "k" || key === "ArrowLeft") { link = document.getElementById("prev"); }
    if (link) { event.preventDefault(); window.location.assign(link.href); }
  });
})();
