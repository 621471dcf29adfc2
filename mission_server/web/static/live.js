// A run in progress updates itself: the page is fetched again every few seconds and its
// <main> swapped in (no reload); it stops once the run has finished (no data-live any more).
(function () {
  "use strict";
  function schedule(main) {
    var ms = parseInt(main && main.getAttribute("data-live"), 10);
    if (ms > 0) { window.setTimeout(refresh, ms); }
  }
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var current = document.getElementById("page");
        if (!html || !current) { schedule(current); return; }
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("page");
        if (!next) { return; }
        var open = [];
        current.querySelectorAll("details[id][open]").forEach(function (d) { open.push(d.id); });
        open.forEach(function (id) {
          var d = next.querySelector("#" + id);
          if (d) { d.setAttribute("open", ""); }
        });
        current.replaceWith(next);
        schedule(next);
      })
      .catch(function () { schedule(document.getElementById("page")); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    schedule(document.getElementById("page"));
  });
})();
