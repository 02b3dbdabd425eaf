// wallboard.html: the supervisors' wall screen (§9 2.4). Signs a supervisor in with MSAL.js (as
// the panel does), then reads GET /api/supervisor/wallboard every refreshSeconds and draws the
// pools' table. A failed read keeps the last figures on screen and says since when.
import { createApi } from "./lib/api.js";
import { createAuth, isAuthPopup } from "./lib/auth.js";
import { loadConfig } from "./lib/config.js";
import { $, esc, setText, show } from "./lib/dom.js";

// As a supervisor reads them across the room: the figure that is too high, in the column's words.
const ALARM_NAMES = {
  queueLength: "Queue length",
  maxWait: "Longest wait",
  nobodyServing: "Nobody serving",
  abandonRate: "Abandon rate",
};

export function waitText(seconds) {
  if (!seconds) return "0:00";
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function row(pool) {
  const alarmed = pool.alarms.length > 0;
  const has = (kind) => pool.alarms.some((a) => a.kind === kind);
  const cell = (value, hot, label) =>
    `<td class="num${hot ? " hot" : ""}"${label ? ` aria-label="${esc(label)}"` : ""}>${esc(value)}</td>`;
  const alarms = alarmed
    ? pool.alarms
        .map((a) => `<span class="alarm" title="${esc(a.text)}"><span aria-hidden="true">⚠ </span>${esc(ALARM_NAMES[a.kind] || a.kind)}</span>`)
        .join(" ")
    : `<span class="ok">OK</span>`;
  return `<tr class="${alarmed ? "alarmed" : ""}" data-pool="${esc(pool.poolId)}">
    <th scope="row" class="name">${esc(pool.name)}</th>
    ${cell(pool.waiting, has("queueLength"))}
    ${cell(waitText(pool.longestWaitSeconds), has("maxWait"), `${pool.longestWaitSeconds} seconds`)}
    ${cell(pool.serving, has("nobodyServing"))}
    ${cell(pool.free, false)}
    ${cell(pool.answeredToday, false)}
    ${cell(pool.abandonedToday, has("abandonRate"), `${pool.abandonedToday}, ${pool.abandonRatePercent} percent`)}
    <td class="alarms">${alarms}</td>
  </tr>`;
}

function draw(board) {
  $("#wb-rows").innerHTML = board.pools.map(row).join("");
  show($("#wb-table"), true);
  show($("#wb-status"), false);
  const alarms = board.pools.reduce((n, p) => n + p.alarms.length, 0);
  const count = $("#wb-alarm-count");
  setText(count, alarms ? `⚠ ${alarms} alarm${alarms > 1 ? "s" : ""}` : "");
  show(count, alarms > 0);
  const at = new Date(board.at);
  setText($("#wb-updated"), `Updated ${at.toLocaleTimeString([], { hour12: false })}`);
  show($("#wb-stale"), false);
  // Fewer rows get taller ones: the table fills the screen without scrolling.
  document.documentElement.style.setProperty("--rows", String(Math.max(board.pools.length, 4)));
}

function tickClock() {
  setText($("#wb-clock"), new Date().toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" }));
}

function fail(message) {
  setText($("#wb-status"), message);
  show($("#wb-status"), true);
}

async function main() {
  tickClock();
  setInterval(tickClock, 1000);
  if (isAuthPopup()) return fail("Completing sign-in…");
  const config = await loadConfig();
  const auth = await createAuth(config.auth, { framed: false, page: "wallboard.html" });
  if (!auth.account()) {
    if (/[#&](code|state)=/.test(location.hash)) return; // MSAL is taking us back
    await auth.signIn();
    return;
  }
  const api = createApi(config.apiBase, () => auth.token());
  let refresh = 5;
  let lastGood = null;
  async function load() {
    try {
      const board = await api.request("GET", "supervisor/wallboard");
      refresh = board.refreshSeconds || refresh;
      lastGood = new Date();
      draw(board);
    } catch (err) {
      if (err.status === 403) {
        return fail("This wallboard is for supervisors. Sign in with a supervisor account.");
      }
      if (!lastGood) fail(`The figures could not be loaded: ${err.message}`);
      const stale = $("#wb-stale");
      setText(stale, lastGood ? `Not updating since ${lastGood.toLocaleTimeString([], { hour12: false })}` : "");
      show(stale, !!lastGood);
    }
    setTimeout(load, refresh * 1000);
  }
  setText($("#wb-status"), "Loading the figures…");
  await load();
}

main().catch((err) => fail(`The wallboard could not start: ${err.message}`));
