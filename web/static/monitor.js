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
      // Keep the extension chosen in the take form while the row is replaced.
      const chosen = old.querySelector("select");
      const select = fresh.querySelector("select");
      if (chosen && select) select.value = chosen.value;
      old.replaceWith(fresh);
    } else {
      body.appendChild(fresh);
    }
  }

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
