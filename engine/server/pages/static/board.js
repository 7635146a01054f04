// The board's short polling: every few seconds the rows are fetched again from the
// server (the same rows the page was rendered with) and put in place. Without
// scripts the page still works; it is then reloaded by hand.
(function () {
  "use strict";
  var box = document.getElementById("board-rows");
  if (!box || !window.fetch) { return; }
  var every = (parseInt(box.getAttribute("data-refresh"), 10) || 15) * 1000;
  function tick() {
    fetch("/board/rows", { credentials: "same-origin", redirect: "manual" })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401) {
          window.location.href = "/signin?then=%2Fboard";  // the session ended
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () { /* the server is away for a moment: try again later */ })
      .then(function () { window.setTimeout(tick, every); });
  }
  window.setTimeout(tick, every);
}());
