// The journey page's counts and measures, refreshed in place every few seconds from /journeys/KEY/counts;
// archiving asks first.
(function () {
  "use strict";
  var confirming = document.querySelectorAll("form[data-confirm]");
  for (var c = 0; c < confirming.length; c++) {
    confirming[c].addEventListener("submit", function (event) {
      if (!window.confirm(event.target.getAttribute("data-confirm"))) event.preventDefault();
    });
  }
  var flow = document.getElementById("flow");
  if (!flow || !window.fetch) return;
  var url = flow.getAttribute("data-url");

  function set(el, value) {
    var text = String(value);
    if (el && el.textContent !== text) {
      el.textContent = text;
      el.classList.add("changed");
    }
  }

  function words(node, said) {
    if (!node || !said) return;
    ["conversion", "revenue"].forEach(function (name) {
      set(node.querySelector('[data-measure="' + name + '"]'), said[name]);
    });
  }

  function refresh() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        set(flow.querySelector('[data-total="total"]'), body.total);
        ["held_out", "active", "done", "exited"].forEach(function (state) {
          var found = flow.querySelectorAll('[data-total="' + state + '"]');
          for (var i = 0; i < found.length; i++) set(found[i], body.entries[state] || 0);
        });
        body.steps.forEach(function (step) {
          var node = flow.querySelector('[data-step="' + step.id + '"]');
          if (!node) return;
          ["entered", "waiting", "moved_on", "exited"].forEach(function (name) {
            set(node.querySelector('[data-count="' + name + '"]'), step[name]);
          });
          var parts = [];
          Object.keys(step.exited_by_reason).forEach(function (k) { parts.push(k + ": " + step.exited_by_reason[k]); });
          Object.keys(step.outcomes).forEach(function (k) { parts.push(k + ": " + step.outcomes[k]); });
          if (step.finished) parts.push("finished after it: " + step.finished);
          var reasons = node.querySelector("[data-reasons]");
          if (reasons) reasons.textContent = parts.join(" · ");
          words(node, body.words[step.id]);
        });
        words(document.getElementById("journey-holdout"), body.journey_words);
      })
      .catch(function () {});
  }

  setInterval(refresh, 3000);
})();
