// A running run's page follows it: new output and statuses, without reloading, until
// the run ends. The server sends what was stored after the last chunk this page shows.
(function () {
  "use strict";
  const page = document.getElementById("hr-run");
  if (!page || page.dataset.finished === "true") return;
  // Cancelling cannot be undone: the button asks first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  const POLL_MS = 1000;
  let after = Number(page.dataset.after);

  function replaceHtml(element, html) {
    if (element && element.innerHTML !== html) element.innerHTML = html;
  }

  function showSteps(steps) {
    if (steps.length && !document.querySelector(".hr-step")) {
      window.location.reload();  // the steps were created after this page was drawn
      return false;
    }
    for (const step of steps) {
      const section = document.getElementById("hr-step-" + step.id);
      if (!section) continue;
      replaceHtml(section.querySelector(".hr-step-status"), step.status);
      section.querySelector(".hr-step-exit").textContent =
        step.exit_code === null ? "" : "exit " + step.exit_code;
      section.querySelector(".hr-step-took").textContent = step.took;
    }
    return true;
  }

  function appendOutput(chunks) {
    for (const chunk of chunks) {
      const output = document.querySelector('.hr-output[data-step="' + chunk.step + '"]');
      if (output) {
        const following = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
        window.hookrunnerLog.addChunk(output, chunk);
        if (following) output.scrollTop = output.scrollHeight;
      }
      after = chunk.id;
    }
  }

  function show(update) {
    replaceHtml(document.getElementById("hr-run-status"), update.status);
    document.getElementById("hr-run-detail").textContent = update.detail;
    document.getElementById("hr-run-took").textContent = update.took;
    if (!showSteps(update.steps)) return false;
    appendOutput(update.chunks);
    if (update.finished) {
      const cancel = document.getElementById("hr-cancel");
      if (cancel) cancel.remove();
      page.dataset.finished = "true";
      return false;
    }
    return true;
  }

  function poll() {
    fetch(page.dataset.liveUrl + "?after=" + after, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((update) => { if (show(update)) setTimeout(poll, POLL_MS); })
      .catch(() => setTimeout(poll, POLL_MS * 5));
  }

  setTimeout(poll, POLL_MS);
})();
