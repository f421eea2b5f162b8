/* While a campaign's messages are prepared in the background, move the progress bar; reload the
   page when the preparation is done, so the results show. */
(function () {
  "use strict";
  var box = document.getElementById("preparing");
  if (!box) return;
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return setTimeout(poll, 3000);
        document.getElementById("progress-bar").style.width = Math.round(body.share * 100) + "%";
        box.querySelector("[role=progressbar]").setAttribute("aria-valuenow", Math.round(body.share * 100));
        document.getElementById("progress-text").textContent = body.made.toLocaleString() + " of about " + body.total.toLocaleString();
        if (body.done) window.location.reload();
        else setTimeout(poll, 1000);
      });
  }
  poll();
})();
