// recording.html?callId=...: the link D365 holds. Signs the viewer in, fetches the audio with
// the bearer token (a clicked link never sends one) and plays it; 403 says so plainly.
import { createApi } from "./lib/api.js";
import { createAuth, isAuthPopup } from "./lib/auth.js";
import { loadConfig } from "./lib/config.js";
import { $, setText, show } from "./lib/dom.js";

function fail(message) {
  const box = $("#rec-error");
  box.textContent = message;
  show(box, true);
  show($("#rec-status"), false);
}

async function main() {
  if (isAuthPopup()) return setText($("#rec-status"), "Completing sign-in…");
  const config = await loadConfig();
  // Back from Entra, MSAL first returns to the address the sign-in started from (with callId).
  const auth = await createAuth(config.auth, { framed: window.parent !== window, page: "recording.html" });
  const callId = new URLSearchParams(location.search).get("callId");
  if (!callId) {
    if (/[#&](code|state)=/.test(location.hash)) return; // MSAL is taking us back
    return fail("This link names no call. Open the recording from the Phone Call in D365.");
  }
  setText($("#rec-sub"), `Call ${callId}`);
  if (!auth.account()) {
    await auth.signIn();
    return;
  }
  setText($("#rec-status"), "Loading the recording…");
  const api = createApi(config.apiBase, () => auth.token());
  const reply = await api.recording(callId);
  if (reply.status === 403) {
    return fail("You do not have access to this recording. Only the call's agents, supervisors and people who may read its Phone Call in D365 can play it.");
  }
  if (reply.status === 404) return fail("There is no recording for this call (yet). Recordings arrive shortly after the call ends.");
  if (reply.status === 401) return fail("You are not signed in. Reload the page to sign in again.");
  if (!reply.ok) return fail(`The recording could not be loaded (${reply.status}).`);
  const blob = await reply.blob();
  const url = URL.createObjectURL(blob);
  const player = $("#player");
  player.src = url;
  show(player, true);
  const download = $("#rec-download");
  download.href = url;
  download.download = `call-${callId}${blob.type.includes("wav") ? ".wav" : ""}`;
  show(download, true);
  const who = auth.account();
  setText($("#rec-status"), `Signed in as ${who?.name || who?.username}. ${Math.round(blob.size / 1024)} kB.`);
}

main().catch((err) => fail(`The recording could not be loaded: ${err.message}`));
