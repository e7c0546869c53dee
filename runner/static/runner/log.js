// A step's output on the run page: the page draws only some of its lines; this fetches
// the others when asked ("Earlier lines", "Show all", unfolding a step, a #step-N-L120
// link), and adds what a running step prints (run_live.js calls window.hookrunnerLog).
(function () {
  "use strict";
  const PAGE_LINES = 500;

  function lineHtml(pre, number, html) {
    const anchor = "step-" + pre.dataset.number + "-L" + number;
    return '<span class="hr-line" id="' + anchor + '"><a class="hr-ln" href="#' + anchor +
      '" data-n="' + number + '"></a>' + html + "\n</span>";
  }

  function fetchLines(pre, first, last) {
    const url = pre.dataset.linesUrl + "?first=" + first + "&last=" + last;
    return fetch(url, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)));
  }

  function showMore(pre) {
    pre.previousElementSibling.hidden = Number(pre.dataset.first) <= 1;
  }

  // Lines before those drawn, down to line `from`: the page keeps its place meanwhile.
  function earlier(pre, from) {
    const first = Number(pre.dataset.first);
    if (first <= from || first <= 1) return Promise.resolve();
    return fetchLines(pre, from, first - 1).then((lines) => {
      const height = pre.scrollHeight;
      pre.insertAdjacentHTML("afterbegin", lines.html);
      pre.scrollTop += pre.scrollHeight - height;
      pre.dataset.first = lines.first;
      showMore(pre);
      return earlier(pre, from);  // the server sends at most so many lines at a time
    });
  }

  // A folded step whose lines the page did not draw: its last ones, once unfolded.
  function drawTail(pre) {
    const last = Number(pre.dataset.last);
    if (Number(pre.dataset.first) <= last || last === 0) return Promise.resolve();
    return fetchLines(pre, Math.max(1, last - PAGE_LINES + 1), last).then((lines) => {
      pre.innerHTML = lines.html;
      pre.dataset.first = lines.first;
      pre.scrollTop = pre.scrollHeight;
      showMore(pre);
    });
  }

  function goToLine() {
    const target = /^#step-(\d+)-L(\d+)$/.exec(window.location.hash);
    const pre = target && document.getElementById("step-" + target[1]);
    if (!pre) return;
    const number = Number(target[2]);
    pre.closest("details").open = true;
    drawTail(pre)
      .then(() => earlier(pre, Math.max(1, number - 20)))
      .then(() => {
        const line = document.getElementById(window.location.hash.slice(1));
        if (!line) return;
        for (const old of document.querySelectorAll(".hr-target")) old.classList.remove("hr-target");
        line.classList.add("hr-target");
        line.scrollIntoView({ block: "center" });
      });
  }

  // Pieces of lines a running step printed, as the live view sends them (run_page.py).
  function addChunk(pre, chunk) {
    const pieces = chunk.lines.slice();
    const open = pre.lastElementChild;
    if (pre.dataset.partial === "true" && open && pieces.length) {
      const link = open.querySelector(".hr-ln").outerHTML;
      const drawnOver = chunk.redraws || pre.dataset.returns === "true";
      const before = drawnOver ? "" : open.innerHTML.slice(link.length).replace(/\n$/, "");
      open.innerHTML = link + before + pieces.shift() + "\n";
    }
    let last = Number(pre.dataset.last);
    pre.insertAdjacentHTML("beforeend", pieces.map((html) => lineHtml(pre, ++last, html)).join(""));
    pre.dataset.last = last;
    pre.dataset.partial = String(!chunk.ends_line);
    pre.dataset.returns = String(chunk.returns);
  }

  for (const pre of document.querySelectorAll(".hr-output[data-lines-url]")) {
    const more = pre.previousElementSibling;
    more.querySelector(".hr-earlier").addEventListener("click", () => {
      earlier(pre, Math.max(1, Number(pre.dataset.first) - PAGE_LINES));
    });
    more.querySelector(".hr-all").addEventListener("click", () => earlier(pre, 1));
    pre.closest("details").addEventListener("toggle", (event) => {
      if (event.target.open) drawTail(pre);
    });
  }
  window.addEventListener("hashchange", goToLine);
  if (/^#step-\d+-L\d+$/.test(window.location.hash)) {
    goToLine();
  } else {
    // The page opens where it matters: at the last line of the step it opened.
    const opened = document.querySelector("details.hr-step[open] .hr-line:last-child");
    if (opened) opened.scrollIntoView({ block: "end" });
  }
  window.hookrunnerLog = { addChunk: addChunk };
})();
