// The ACS Calling Web SDK: the agent's WebRTC device in Azure.
import { CallClient } from "@azure/communication-calling";
import { AzureCommunicationTokenCredential } from "@azure/communication-common";

export async function createAcsDevice(getAcsToken) {
  const client = new CallClient();
  let agent = null;
  let call = null;
  const rings = new Map(); // ringId -> IncomingCall
  const incoming = [];
  const ended = [];
  const ringEnded = [];

  function track(active) {
    call = active;
    active.on("stateChanged", () => {
      if (active.state === "Disconnected") {
        if (call === active) call = null;
        ended.forEach((cb) => cb({ reason: active.callEndReason }));
      }
    });
  }

  return {
    kind: "acs",
    async start() {
      const first = await getAcsToken();
      const credential = new AzureCommunicationTokenCredential({
        token: first.token,
        tokenRefresher: async () => (await getAcsToken()).token,
        refreshProactively: true,
      });
      const deviceManager = await client.getDeviceManager();
      await deviceManager.askDevicePermission({ audio: true, video: false }); // §1.2: allow the microphone
      agent = await client.createCallAgent(credential, { displayName: "D365 Phone" });
      agent.on("incomingCall", ({ incomingCall }) => {
        rings.set(incomingCall.id, incomingCall);
        incomingCall.on("callEnded", () => {
          rings.delete(incomingCall.id);
          ringEnded.forEach((cb) => cb({ ringId: incomingCall.id }));
        });
        const from = incomingCall.callerInfo?.identifier;
        const event = {
          ringId: incomingCall.id,
          from: from?.phoneNumber || from?.communicationUserId || from?.rawId || "",
          rejoin: false,
        };
        incoming.forEach((cb) => cb(event));
      });
    },
    onIncoming: (cb) => incoming.push(cb),
    onEnded: (cb) => ended.push(cb),
    onRingEnded: (cb) => ringEnded.push(cb),
    onFailure: () => {},
    async answer(ringId) {
      const ring = rings.get(ringId) || [...rings.values()][0];
      if (!ring) throw new Error("The call stopped ringing.");
      rings.delete(ring.id);
      track(await ring.accept({ audioOptions: { muted: false } }));
    },
    async decline(ringId) {
      const ring = rings.get(ringId) || [...rings.values()][0];
      if (ring) {
        rings.delete(ring.id);
        await ring.reject();
      }
    },
    mute: async () => call?.mute(),
    unmute: async () => call?.unmute(),
    async stop() {
      await agent?.dispose();
      agent = null;
    },
  };
}
