// Lists and the index show runs as they were when drawn: while one of them is queued or
// running (or a delivery on the deliveries list is still being processed, marked
// hr-unended), this reloads the page every few seconds, so the person sees it end. It
// waits while they are choosing rows or typing, which a reload would throw away.
(function () {
  "use strict";
  const SECONDS = 5;
  const UNENDED = ".hr-status-queued, .hr-status-running, .hr-unended";
  const TYPED = ["INPUT", "SELECT", "TEXTAREA"];

  function busy() {
    const typing = document.activeElement && TYPED.includes(document.activeElement.tagName);
    return typing || document.querySelector("input.action-select:checked") !== null;
  }

  function refresh() {
    if (!document.querySelector(UNENDED)) {
      return;
    }
    if (busy()) {
      setTimeout(refresh, SECONDS * 1000);
    } else {
      window.location.reload();
    }
  }

  setTimeout(refresh, SECONDS * 1000);
})();
