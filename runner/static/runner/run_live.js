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
  // The server's clock less this browser's: a running step's duration is the server's.
  let clockSkew = Number(page.dataset.now) - Date.now();

  // As runner/config/text.py's duration_words says it: "4.2s", "3m 07s", "1h 05m".
  function durationWords(ms) {
    const seconds = Math.max(0, ms / 1000);
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const minutes = Math.floor(Math.round(seconds) / 60);
    const pad = (number) => String(number).padStart(2, "0");
    if (minutes < 60) return minutes + "m " + pad(Math.round(seconds) % 60) + "s";
    return Math.floor(minutes / 60) + "h " + pad(minutes % 60) + "m";
  }

  function tick() {
    for (const took of document.querySelectorAll(".hr-step-took[data-running-since]")) {
      took.textContent = durationWords(Date.now() + clockSkew - Number(took.dataset.runningSince));
    }
  }

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
      const took = section.querySelector(".hr-step-took");
      if (step.running_since === null) {
        delete took.dataset.runningSince;
        took.textContent = step.took;
      } else {
        took.dataset.runningSince = step.running_since;
      }
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
    clockSkew = update.now - Date.now();
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
  tick();
  setInterval(tick, POLL_MS);
})();
