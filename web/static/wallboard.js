// The wallboard: keeps /wallboard/ current without a reload. The server sends the tiles already
// rendered: after each change of a live call (server-sent events) and, every data-refresh seconds,
// on request (today's figures and the missed calls change without a live call changing). Each
// second the longest wait counts on and its tile takes the colour of the thresholds it has passed.
"use strict";

(function () {
  const board = document.getElementById("board");
  if (!board) return;
  const paused = document.getElementById("stream-down");
  const wallClock = document.getElementById("wall-clock");
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

  function levelOf(tile, seconds) {
    const red = tile.dataset.red, amber = tile.dataset.amber;
    if (red !== undefined && seconds >= Number(red)) return "red";
    if (amber !== undefined && seconds >= Number(amber)) return "amber";
    return "ok";
  }

  function tick() {
    const now = Date.now() / 1000 + skew;
    for (const cell of board.querySelectorAll("[data-since]")) {
      const seconds = now - Number(cell.dataset.since);
      cell.textContent = clock(seconds);
      const tile = cell.closest(".tile");
      if (tile && (tile.dataset.red !== undefined || tile.dataset.amber !== undefined)) {
        tile.classList.remove("level-ok", "level-amber", "level-red");
        tile.classList.add("level-" + levelOf(tile, seconds));
      }
    }
    if (wallClock) {
      const t = new Date((now) * 1000);
      wallClock.textContent = String(t.getHours()).padStart(2, "0") + ":" + String(t.getMinutes()).padStart(2, "0");
    }
  }

  function show(data) {
    setClock(data.now);
    board.innerHTML = data.html;
    tick();
  }

  function refresh() {
    fetch(board.dataset.tiles, { credentials: "same-origin", cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => { if (data) show(data); })
      .catch(() => {});
  }

  setClock(Number(board.dataset.now));
  tick();
  setInterval(tick, 1000);
  setInterval(refresh, 1000 * (Number(board.dataset.refresh) || 30));
  if (!window.EventSource) return;
  const events = new EventSource(board.dataset.events);
  events.addEventListener("tiles", (e) => {
    show(JSON.parse(e.data));
    paused.hidden = true;
  });
  events.addEventListener("down", () => { paused.hidden = false; });
  events.addEventListener("error", () => { paused.hidden = false; });
})();
