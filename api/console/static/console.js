// The console's only script, served by the app itself (no CDN, nothing to pin but this file).
// Without it every page still works; with it, countdowns tick and pages stay live.
"use strict";

(function () {
  const body = document.body;

  function span(ms) {
    const minutes = Math.floor(Math.abs(ms) / 60000);
    const days = Math.floor(minutes / 1440);
    const hours = Math.floor((minutes % 1440) / 60);
    const mins = minutes % 60;
    if (days > 0) return days + "d " + hours + "h";
    if (hours > 0) return hours + "h " + mins + "m";
    if (mins > 0) return mins + "m";
    return Math.floor(Math.abs(ms) / 1000) + "s";
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      const due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      const left = due - now;
      // A countdown may bring its own words ("expires in"); the page's are the default.
      const words = left < 0 ? el.dataset.overdue || body.dataset.overdue : el.dataset.dueIn || body.dataset.dueIn;
      el.textContent = left < 0 && el.dataset.overdue ? words : words + " " + span(left);
      el.classList.toggle("late", left < 0);
      el.title = new Date(due).toLocaleString();
    });
  }

  async function fetchText(url) {
    const answer = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (answer.redirected || !answer.ok) return null;
    return answer.text();
  }

  // The queue: redraw its rows, keeping the boxes the agent ticked.
  const rows = document.getElementById("queue-rows");
  if (rows) {
    setInterval(async function () {
      const ticked = new Set(Array.from(rows.querySelectorAll("input[name=case_id]:checked")).map(function (b) { return b.value; }));
      const html = await fetchText(rows.dataset.live);
      if (html === null) return;
      rows.innerHTML = html;
      rows.querySelectorAll("input[name=case_id]").forEach(function (b) { b.checked = ticked.has(b.value); });
      tick();
    }, 5000);
  }

  // A case: poll its revision; when the record moves, redraw the page's main part, unless
  // the agent is filling in a form (then say so, and keep what they typed).
  const main = document.getElementById("case-main");
  if (main) {
    let dirty = false;
    main.addEventListener("input", function () { dirty = true; });
    setInterval(async function () {
      const answer = await fetch(main.dataset.poll, { credentials: "same-origin" });
      if (!answer.ok) return;
      const state = await answer.json();
      if (String(state.revision) === main.dataset.revision) return;
      if (dirty) {
        let note = document.getElementById("case-changed");
        if (!note) {
          note = document.createElement("p");
          note.id = "case-changed";
          note.className = "notice";
          note.setAttribute("role", "status");
          note.textContent = body.dataset.changed;
          main.prepend(note);
        }
        return;
      }
      const html = await fetchText(main.dataset.fragment);
      if (html === null) return;
      main.innerHTML = html;
      main.dataset.revision = String(state.revision);
      tick();
    }, 2000);
  }

  // Canned replies fill the text of their form; the agent edits before sending.
  document.addEventListener("change", function (event) {
    const picker = event.target;
    if (!picker.matches || !picker.matches("select[data-canned]")) return;
    const option = picker.selectedOptions[0];
    const area = picker.form.querySelector("textarea[name=" + picker.dataset.canned + "]");
    if (area && option && option.dataset.text) area.value = option.dataset.text;
  });

  tick();
  setInterval(tick, 1000);
})();
