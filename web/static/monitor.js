// Live calls: keeps the table of /monitor/ up to date from the server's events.
// The server sends each call's row already rendered; this script puts rows in
// place, drops ended calls, and counts the seconds in each cell with data-since.
"use strict";

(function () {
  const table = document.getElementById("live-calls");
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const empty = document.getElementById("no-calls");
  const paused = document.getElementById("stream-down");
  let skew = 0; // the appliance's clock minus this browser's, in seconds

  function setClock(now) {
    if (now) skew = now - Date.now() / 1000;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const mm = String(Math.floor(s / 60) % 60).padStart(2, "0");
    const ss = String(s % 60).padStart(2, "0");
    return s >= 3600 ? Math.floor(s / 3600) + ":" + mm + ":" + ss : Math.floor(s / 60) + ":" + ss;
  }

  function tick() {
    const now = Date.now() / 1000 + skew;
    for (const cell of body.querySelectorAll("[data-since]")) {
      cell.textContent = clock(now - Number(cell.dataset.since));
    }
    empty.hidden = body.rows.length > 0;
  }

  function rowFrom(html) {
    const t = document.createElement("tbody");
    t.innerHTML = html;
    return t.firstElementChild;
  }

  function put(id, html) {
    const fresh = rowFrom(html);
    const old = document.getElementById("call-" + id);
    if (old) {
      // Keep what was chosen or typed in the row's forms (the extension to take it to, where to
      // move it, the place in the queue), and where the cursor was, while the row is replaced.
      const focused = old.contains(document.activeElement) ? document.activeElement : null;
      for (const field of old.querySelectorAll("select, input[type=number]")) {
        const form = field.closest("form");
        const same = form && fresh.querySelector('form[action="' + form.getAttribute("action") + '"] [name="' + field.name + '"]');
        if (!same) continue;
        if (field.dataset.touched) {
          same.value = field.value;
          same.dataset.touched = "1";
        }
        if (field === focused) setTimeout(() => same.focus(), 0);
      }
      old.replaceWith(fresh);
    } else {
      body.appendChild(fresh);
    }
  }

  // A field the user changed keeps its value through updates; the others show the call as it is now.
  body.addEventListener("input", (e) => { if (e.target.name) e.target.dataset.touched = "1"; });
  body.addEventListener("change", (e) => { if (e.target.name) e.target.dataset.touched = "1"; });

  setClock(Number(table.dataset.now));
  const events = new EventSource(table.dataset.events);
  events.addEventListener("snapshot", (e) => {
    const data = JSON.parse(e.data);
    setClock(data.now);
    body.innerHTML = data.html;
    paused.hidden = true;
    tick();
  });
  events.addEventListener("call", (e) => {
    const data = JSON.parse(e.data);
    setClock(data.now);
    put(data.id, data.html);
    tick();
  });
  events.addEventListener("ended", (e) => {
    const row = document.getElementById("call-" + JSON.parse(e.data).id);
    if (row) row.remove();
    tick();
  });
  events.addEventListener("down", () => { paused.hidden = false; });
  events.addEventListener("error", () => { paused.hidden = false; });
  setInterval(tick, 1000);
})();
