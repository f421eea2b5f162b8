// The surface editor's enhancements: sliders mirror their number fields, item pickers search the
// catalogue by title, and cold-start rules can be added. Without it every field still posts.
(function () {
  "use strict";

  function mirrorSliders(root) {
    root.querySelectorAll("input[type=range][data-mirror]").forEach(function (slider) {
      var number = document.getElementById(slider.dataset.mirror);
      if (!number) return;
      slider.addEventListener("input", function () { number.value = slider.value; });
      number.addEventListener("input", function () { slider.value = number.value; });
    });
  }

  function chip(name, item) {
    var li = document.createElement("li");
    li.className = "chip";
    li.dataset.item = item.id;
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = name;
    hidden.value = item.id;
    li.appendChild(hidden);
    li.appendChild(document.createTextNode(item.title + " "));
    var category = document.createElement("span");
    category.className = "muted small";
    category.textContent = item.category || "";
    li.appendChild(category);
    li.appendChild(document.createTextNode(" "));
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link remove";
    remove.dataset.remove = "";
    remove.setAttribute("aria-label", "Remove " + item.title);
    remove.textContent = "×";
    li.appendChild(remove);
    return li;
  }

  function setUpPicker(picker) {
    var name = picker.dataset.picker;
    var picked = picker.querySelector(".picked");
    var search = picker.querySelector(".picker-search");
    var results = picker.querySelector(".picker-results");
    var timer = null;
    var asked = 0;

    picked.addEventListener("click", function (event) {
      if (event.target.matches("[data-remove]")) event.target.closest("li").remove();
    });

    function show(items) {
      results.innerHTML = "";
      items.forEach(function (item) {
        var li = document.createElement("li");
        li.tabIndex = 0;
        li.dataset.item = item.id;
        li.textContent = item.title + (item.category ? " · " + item.category : "") + (item.servable ? "" : " (not shown now: out of stock or inactive)");
        if (!item.servable) li.className = "unavailable";
        function pick() {
          if (!picked.querySelector('li[data-item="' + CSS.escape(item.id) + '"]')) picked.appendChild(chip(name, item));
          results.hidden = true;
          search.value = "";
          search.focus();
        }
        li.addEventListener("click", pick);
        li.addEventListener("keydown", function (event) { if (event.key === "Enter") { event.preventDefault(); pick(); } });
        results.appendChild(li);
      });
      if (!items.length) {
        var none = document.createElement("li");
        none.className = "unavailable";
        none.textContent = "No item's title contains that.";
        results.appendChild(none);
      }
      results.hidden = false;
    }

    search.addEventListener("keydown", function (event) { if (event.key === "Enter") event.preventDefault(); });
    search.addEventListener("input", function () {
      clearTimeout(timer);
      var query = search.value.trim();
      if (query.length < 2) { results.hidden = true; return; }
      timer = setTimeout(function () {
        var mine = ++asked;
        fetch("/surfaces/items?q=" + encodeURIComponent(query), { credentials: "same-origin" })
          .then(function (response) { return response.json(); })
          .then(function (body) { if (mine === asked) show(body.items || []); });
      }, 200);
    });
  }

  function setUpRules(form) {
    var button = form.querySelector("[data-add-rule]");
    var rules = form.querySelector("[data-rules]");
    var count = form.querySelector("[data-rule-count]");
    if (!button || !rules || !count) return;
    var template = rules.lastElementChild;  // the empty row the server always adds
    if (!template) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var n = parseInt(count.value, 10);
      var row = template.cloneNode(true);
      row.dataset.rule = String(n);
      row.querySelectorAll("[name]").forEach(function (input) {
        input.name = input.name.replace(/^cs\d+_/, "cs" + n + "_");
        if (input.type !== "hidden") input.value = "";
      });
      row.querySelectorAll("[data-picker]").forEach(function (picker) {
        picker.dataset.picker = "cs" + n + "_items";
        picker.querySelector(".picked").innerHTML = "";
        setUpPicker(picker);
      });
      row.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
      rules.appendChild(row);
      count.value = String(n + 1);
    });
  }

  document.querySelectorAll("form.editor").forEach(function (form) {
    mirrorSliders(form);
    form.querySelectorAll("[data-picker]").forEach(setUpPicker);
    setUpRules(form);
  });
})();
