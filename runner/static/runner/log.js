// A step's output on the run page: the page draws only some of its lines; this fetches
// the others when asked ("Earlier lines", "Show all", unfolding a step, a #step-N-L120
// link), lists the lines a search finds, shows each line's time, folds groups, marks
// errors and warnings, and adds what a running step prints (run_live.js calls
// window.hookrunnerLog).
(function () {
  "use strict";
  const PAGE_LINES = 500;
  const TIMES_KEY = "hookrunner.logTimes";
  const timesChoice = document.getElementById("hr-times");
  let timesShown = window.localStorage.getItem(TIMES_KEY) === "elapsed" ? "elapsed" : "clock";

  function twoDigits(number) {
    return String(number).padStart(2, "0");
  }

  function elapsedText(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor(seconds / 60) % 60;
    const rest = twoDigits(seconds % 60);
    return "+" + (hours ? hours + ":" + twoDigits(minutes) : minutes) + ":" + rest;
  }

  // [first line, ms] per chunk (run_page.py): a line's time is its chunk's.
  function timeOf(pre, number) {
    let found = null;
    for (const [first, ms] of pre.hrTimes) {
      if (first > number) break;
      found = ms;
    }
    return found;
  }

  function stamp(pre, lines) {
    for (const line of lines) {
      const ms = timeOf(pre, Number(line.firstElementChild.dataset.n));
      if (ms === null) continue;
      line.dataset.t = timesShown === "elapsed" ?
        elapsedText(ms - Number(pre.dataset.started)) : new Date(ms).toISOString().slice(11, 19);
    }
  }

  // The lines just drawn: those without a time yet.
  function stampNew(pre) {
    stamp(pre, pre.querySelectorAll(".hr-line:not([data-t])"));
  }

  // GitHub Actions' workflow commands at the start of a line (log_lines.py's ANNOTATION).
  function kindOf(text) {
    if (text.startsWith("::group::")) return "group";
    if (text.startsWith("::endgroup::")) return "endgroup";
    const flag = /^::(error|warning)(?:[ \t]+[^:]*)?::/.exec(text);
    return flag ? flag[1] : "";
  }

  function setFolded(start, folded) {
    start.classList.toggle("hr-folded", folded);
    for (const member of start.parentElement.querySelectorAll('[data-group="' + start.id + '"]')) {
      member.hidden = folded;
    }
  }

  // Groups fold as in GitHub Actions: the ::group:: line stays, the lines to its
  // ::endgroup:: hide until it is clicked. Lines drawn after the others (`atEnd`) join a
  // group left open; lines drawn before the others cannot know of a group begun before
  // them, and a group of theirs that ends among the others is left unfolded.
  function markNew(pre, atEnd) {
    let group = atEnd ? pre.hrOpenGroup || null : null;
    const members = [];
    for (const line of pre.querySelectorAll(".hr-line:not([data-k])")) {
      const kind = kindOf(line.textContent);
      line.dataset.k = kind;
      if (kind === "group") {
        group = line;
        members.length = 0;
        line.classList.add("hr-group", "hr-folded");
        continue;
      }
      if (group) {
        members.push(line);
        line.dataset.group = group.id;
        line.hidden = true;
      }
      if (kind === "endgroup") group = null;
      if (kind === "error" || kind === "warning") line.classList.add("hr-" + kind);
    }
    if (atEnd) {
      pre.hrOpenGroup = group;
    } else if (group) {
      group.classList.remove("hr-group", "hr-folded");
      for (const member of members) {
        member.hidden = false;
        delete member.dataset.group;
      }
    }
  }

  function drawn(pre, atEnd) {
    stampNew(pre);
    markNew(pre, atEnd);
  }

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

  // Lines before those drawn, down to the line `fromOf` gives for the first one drawn once
  // earlier fetches are done: one fetch at a time per step, so two quick clicks on
  // "Earlier lines" draw two pages, and no line twice.
  function earlier(pre, fromOf) {
    const done = (pre.hrFetching || Promise.resolve()).then(() =>
      earlierNow(pre, Math.max(1, fromOf(Number(pre.dataset.first)))));
    pre.hrFetching = done.catch(() => undefined);
    return done;
  }

  function earlierNow(pre, from) {
    const first = Number(pre.dataset.first);
    if (first <= from || first <= 1) return Promise.resolve();
    return fetchLines(pre, from, first - 1).then((lines) => {
      const height = pre.scrollHeight;
      pre.insertAdjacentHTML("afterbegin", lines.html);
      pre.scrollTop += pre.scrollHeight - height;
      pre.dataset.first = lines.first;
      drawn(pre, false);
      showMore(pre);
      return earlierNow(pre, from);  // the server sends at most so many lines at a time
    });
  }

  // A folded step whose lines the page did not draw: its last ones, once unfolded. Fetched
  // once: a line link opens the step and fires its toggle too, and a second tail drawn
  // after the link's earlier lines would wipe them.
  function drawTail(pre) {
    const last = Number(pre.dataset.last);
    if (pre.hrTail) return pre.hrTail;
    if (Number(pre.dataset.first) <= last || last === 0) return Promise.resolve();
    pre.hrTail = fetchLines(pre, Math.max(1, last - PAGE_LINES + 1), last).then((lines) => {
      pre.innerHTML = lines.html;
      pre.dataset.first = lines.first;
      pre.hrOpenGroup = null;
      drawn(pre, true);
      pre.scrollTop = pre.scrollHeight;
      showMore(pre);
    }, (problem) => {
      pre.hrTail = null;
      throw problem;
    });
    return pre.hrTail;
  }

  function goToLine() {
    const target = /^#step-(\d+)-L(\d+)$/.exec(window.location.hash);
    const pre = target && document.getElementById("step-" + target[1]);
    if (!pre) return;
    const number = Number(target[2]);
    pre.closest("details").open = true;
    drawTail(pre)
      .then(() => earlier(pre, () => number - 20))
      .then(() => {
        const line = document.getElementById(window.location.hash.slice(1));
        if (!line) return;
        for (const old of document.querySelectorAll(".hr-target")) old.classList.remove("hr-target");
        line.classList.add("hr-target");
        if (line.hidden) setFolded(document.getElementById(line.dataset.group), false);
        line.scrollIntoView({ block: "center" });
      });
  }

  // Pieces of lines a running step printed, as the live view sends them (run_page.py).
  function addChunk(pre, chunk) {
    // Its new lines start after the last one drawn (its first piece may end that one).
    pre.hrTimes.push([Number(pre.dataset.last) + 1, chunk.at]);
    if (!pre.dataset.started) pre.dataset.started = chunk.at;
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
    drawn(pre, true);
  }

  // The lines of a step holding a text, found by the server, as links to each line.
  function search(form) {
    const pre = form.parentElement.querySelector(".hr-output");
    const query = form.elements.q.value;
    const url = form.dataset.searchUrl + "?q=" + encodeURIComponent(query);
    fetch(url, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((found) => {
        const count = found.matches.length;
        form.querySelector(".hr-search-found").textContent = query === "" ? "" :
          (found.more ? "the first " : "") + count + (count === 1 ? " line" : " lines");
        form.querySelector(".hr-matches").innerHTML = found.matches.map((match) => {
          const anchor = "step-" + pre.dataset.number + "-L" + match.line;
          return '<li><a href="#' + anchor + '">' + match.line + "</a> <code>" + match.html +
            "</code></li>";
        }).join("");
      });
  }

  for (const form of document.querySelectorAll("form.hr-search")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search(form);
    });
  }
  if (timesChoice) {
    timesChoice.value = timesShown;
    timesChoice.addEventListener("change", () => {
      timesShown = timesChoice.value;
      window.localStorage.setItem(TIMES_KEY, timesShown);
      for (const pre of document.querySelectorAll(".hr-output[data-times]")) {
        stamp(pre, pre.querySelectorAll(".hr-line"));
      }
    });
  }
  for (const pre of document.querySelectorAll(".hr-output[data-lines-url]")) {
    pre.hrTimes = JSON.parse(pre.dataset.times || "[]");
    drawn(pre, true);
    pre.addEventListener("click", (event) => {
      const start = event.target.closest(".hr-group");
      if (start && !event.target.closest(".hr-ln")) {
        setFolded(start, !start.classList.contains("hr-folded"));
      }
    });
    const more = pre.previousElementSibling;
    more.querySelector(".hr-earlier").addEventListener("click", () => {
      earlier(pre, (first) => first - PAGE_LINES);
    });
    more.querySelector(".hr-all").addEventListener("click", () => earlier(pre, () => 1));
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
