// The journey builder without round trips for what only changes what is shown: a select with
// data-switch="NAME" shows the blocks marked data-when="NAME" whose data-show lists its value.
// Adding, removing and moving steps post the form (op=…), so everything works without this script.
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) return;

  function sync(select) {
    var name = select.getAttribute("data-switch");
    var blocks = form.querySelectorAll('[data-when="' + name + '"]');
    for (var i = 0; i < blocks.length; i++) {
      var shows = (blocks[i].getAttribute("data-show") || "").split(" ");
      blocks[i].hidden = shows.indexOf(select.value) < 0;
    }
  }

  // Two kinds of step choose a campaign (an email, an in-product message): only the shown one is sent.
  function campaigns() {
    var found = form.querySelectorAll('select[name$="-campaign"]');
    for (var i = 0; i < found.length; i++) found[i].disabled = !!found[i].closest("[hidden]");
  }

  var switches = form.querySelectorAll("select[data-switch]");
  for (var i = 0; i < switches.length; i++) {
    sync(switches[i]);
    switches[i].addEventListener("change", function (event) { sync(event.target); campaigns(); });
  }
  campaigns();

  // Removing a step that a branch jumps to: say so before the round trip.
  form.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-remove]") : null;
    if (!button) return;
    var step = form.querySelector('fieldset[data-step="' + button.getAttribute("data-remove") + '"]');
    var id = step ? step.getAttribute("data-step-id") : "";
    var targets = form.querySelectorAll('select[name$="-then"], select[name$="-else"]');
    for (var j = 0; j < targets.length; j++) {
      if (targets[j].value === id && !targets[j].closest("[hidden]")) {
        if (!window.confirm("A branch goes to “" + id + "”. Remove it anyway? The branch will need a new target.")) {
          event.preventDefault();
        }
        return;
      }
    }
  });
})();
