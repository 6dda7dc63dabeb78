// Headless Chromium on the demo page: a WAV file as the microphone, Start clicked, and the
// page's own state (window.remotemedia) read until the pipeline's events and audio arrive.
// Prints one JSON summary line; exits 1 if they did not arrive in time.
//
//   node demo_page.cjs <page URL> <WAV (absolute path)> [min events] [timeout s]
//
// Needs playwright-core (NODE_PATH) and Debian's chromium (CHROMIUM, default
// /usr/bin/chromium): full Chromium, since the headless shell refuses getUserMedia.
// TOKEN: typed into the page's token field (the page then gets TURN credentials too).

"use strict";
// CommonJS, so NODE_PATH finds playwright-core in its cache directory (ES modules ignore it).
const { chromium } = require("playwright-core");

async function main() {

const [url, wav, minEvents = "10", timeoutS = "30"] = process.argv.slice(2);
// TRUST_CERT: a server certificate (PEM) Chromium trusts by its public key, as a test CA's
// certificate would be trusted on a real machine.
const trust = [];
if (process.env.TRUST_CERT) {
  const crypto = require("crypto");
  const fs = require("fs");
  const spki = new crypto.X509Certificate(fs.readFileSync(process.env.TRUST_CERT)).publicKey
    .export({ type: "spki", format: "der" });
  const hash = crypto.createHash("sha256").update(spki).digest("base64");
  trust.push(`--ignore-certificate-errors-spki-list=${hash}`);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${wav}`,
    "--autoplay-policy=no-user-gesture-required",
    // Gather a 127.0.0.1 candidate too: the server under test listens on loopback, and on a
    // Kubernetes node kube-proxy drops packets to 127.0.0.0/8 from other addresses.
    "--allow-loopback-in-peer-connection",
    ...trust,
  ],
});
let summary = {};
let ok = false;
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(String(e)));
  await page.goto(url);
  if (process.env.TOKEN) await page.fill("#token", process.env.TOKEN);
  await page.click("#start");
  const deadline = Date.now() + Number(timeoutS) * 1000;
  const read = () => page.evaluate(() => ({
    state: window.remotemedia.state,
    events: window.remotemedia.events.length,
    levelEvents: window.remotemedia.events.filter((e) => e.node_id === "level").length,
    nodes: [...new Set(window.remotemedia.events.map((e) => e.node_id).filter(Boolean))],
    errors: window.remotemedia.errors,
    firstEvent: window.remotemedia.events[0] || null,
    maxRemoteRms: window.remotemedia.maxRemoteRms,
    // Browsers give the microphone only to secure contexts: loopback, or https.
    secureContext: window.isSecureContext,
    protocol: location.protocol,
    // The ICE servers the endpoint named, and the kind of local candidate media flowed
    // through ("relay": a TURN server).
    iceServers: window.remotemedia.iceServers,
    candidateType: window.remotemedia.candidateType,
  }));
  for (;;) {
    summary = await read();
    ok = summary.events >= Number(minEvents) && summary.maxRemoteRms > 0.01;
    if (ok || summary.errors.length || Date.now() > deadline) break;
    await page.waitForTimeout(100);
  }
  // A page that failed has stopped itself already.
  if (await page.isEnabled("#stop")) await page.click("#stop");
  await page.waitForFunction(() => window.remotemedia.session === null, null, { timeout: 5000 });
  summary.stateAfterStop = await page.evaluate(() => window.remotemedia.state);
  summary.deleteStatus = await page.evaluate(() => window.remotemedia.deleteStatus);
  summary.logs = logs.slice(-10);
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
