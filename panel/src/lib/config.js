// The panel's settings, served by the app itself at /api/panel/config.json.

export async function loadConfig() {
  const reply = await fetch(new URL("config.json", document.baseURI), { cache: "no-store" });
  if (!reply.ok) throw new Error(`The phone's settings could not be loaded (${reply.status}).`);
  return reply.json();
}
