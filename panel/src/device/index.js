// The phone device behind one interface: the ACS Calling SDK in Azure, the ACS emulator locally.
//
// createDevice(config, getAcsToken) -> { start(), onIncoming(cb), answer(ringId?), decline(ringId?),
//   mute(), unmute(), onEnded(cb), stop({ unloading }) }; cb gets { ringId, from, callId?, rejoin }.
// Also onRingEnded(cb): a ring stopped without being answered here (the caller gave up, the
// pool offered the call to the next agent, another device took it).
import { createEmulatorDevice } from "./emulator.js";

export async function createDevice(config, getAcsToken) {
  const device = config.device || { kind: "acs" };
  if (device.kind === "emulator") return createEmulatorDevice(device.url, getAcsToken);
  const { createAcsDevice } = await import("./acs.js"); // the SDK is loaded only here
  return createAcsDevice(getAcsToken);
}
