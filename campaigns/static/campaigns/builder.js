/* The campaign builder: add and remove audience conditions and content blocks, count the audience
   and preview the message while editing. Plain JavaScript; the page works without it (the
   Preview and Send test buttons post the form). */
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) return;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function renumber(container, selector, prefix) {
    container.querySelectorAll(selector).forEach(function (item, i) {
      item.querySelectorAll("[name^='" + prefix + "-']").forEach(function (field) {
        field.name = field.name.replace(new RegExp("^" + prefix + "-\\d+-"), prefix + "-" + i + "-");
      });
      item.setAttribute(selector.slice(1, -1), i);
    });
  }
  function renumberAll() {
    renumber(document.getElementById("rows"), "[data-row]", "a");
    renumber(document.getElementById("blocks"), "[data-block]", "b");
  }
  function fromTemplate(id, n) {
    var html = document.getElementById(id).innerHTML.replace(/__N__/g, String(n));
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }
  function post(url) {
    renumberAll();
    return fetch(url, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}
    }).then(function (r) { return r.json(); });
  }

  // --- the audience and its live count ---
  var rows = document.getElementById("rows");
  var timer = null;
  function count() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var live = document.getElementById("audience-live");
      live.classList.add("counting");
      post(form.dataset.countUrl).then(function (body) {
        live.classList.remove("counting");
        var error = document.getElementById("audience-error");
        if (body.error) { error.textContent = body.error.label + ": " + body.error.detail; return; }
        error.textContent = "";
        live.textContent = body.count.toLocaleString();
        document.getElementById("audience-reading").textContent = body.reading;
        document.getElementById("no-consent-wrap").innerHTML = body.count ?
          ", <span id='no-consent'>" + body.no_consent.toLocaleString() + " of them without email consent (they get nothing)</span>" : "";
      });
    }, 300);
  }
  document.getElementById("add-row").addEventListener("click", function () {
    rows.appendChild(fromTemplate("row-trait", rows.children.length));
    count();
  });
  rows.addEventListener("change", function (event) {
    if (event.target.classList.contains("row-kind")) {
      var row = event.target.closest("[data-row]");
      var fresh = fromTemplate("row-" + event.target.value, row.dataset.row);
      row.replaceWith(fresh);
    }
    count();
  });
  rows.addEventListener("input", count);
  rows.addEventListener("click", function (event) {
    if (event.target.matches("[data-remove]")) { event.target.closest("[data-row]").remove(); count(); }
  });
  form.querySelector("select[name=match]").addEventListener("change", count);
  count();

  // --- content blocks ---
  var blocks = document.getElementById("blocks");
  document.getElementById("add-block").addEventListener("click", function () {
    var type = document.getElementById("block-type").value;
    blocks.appendChild(fromTemplate("block-" + type, blocks.children.length));
  });
  blocks.addEventListener("click", function (event) {
    var block = event.target.closest("[data-block]");
    if (!block) return;
    if (event.target.matches("[data-remove]")) block.remove();
    else if (event.target.matches("[data-up]") && block.previousElementSibling) blocks.insertBefore(block, block.previousElementSibling);
    else if (event.target.matches("[data-down]") && block.nextElementSibling) blocks.insertBefore(block.nextElementSibling, block);
  });

  // --- preview, and the code view kept in step with the blocks ---
  function blocksMode() {
    var chosen = form.querySelector("input[name=content_mode]:checked");
    return !chosen || chosen.value === "blocks";
  }
  function showCode(code) {
    if (!code || !blocksMode()) return;
    form.querySelector("textarea[name=html]").value = code.html;
    form.querySelector("textarea[name=text]").value = code.text;
  }
  document.getElementById("preview-button").addEventListener("click", function (event) {
    event.preventDefault();
    var error = document.getElementById("preview-error");
    error.textContent = "Rendering…";
    post(form.dataset.previewUrl).then(function (body) {
      showCode(body.code);
      if (body.error) { error.textContent = body.error.label + ": " + body.error.detail; return; }
      error.textContent = "";
      document.getElementById("preview-result").hidden = false;
      document.getElementById("pv-to").textContent = body.to || "";
      document.getElementById("pv-subject").textContent = body.subject || "";
      document.getElementById("pv-preheader").textContent = body.preheader || "";
      var suppressed = document.getElementById("pv-suppressed");
      suppressed.hidden = !body.suppressed;
      suppressed.textContent = body.suppressed ? "Would not be sent: " + body.suppressed : "";
      document.getElementById("pv-html").srcdoc = body.html || "";
      document.getElementById("pv-text").textContent = body.text || "";
    });
  });
  document.getElementById("code-view").addEventListener("toggle", function (event) {
    if (event.target.open && blocksMode()) post(form.dataset.previewUrl).then(function (body) { showCode(body.code); });
  });
  form.addEventListener("submit", renumberAll);
})();
