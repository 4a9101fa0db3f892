// peer_sdk_write.js - the digi.me Node SDK 8.x `write`, in a loop, for bench/peer_sdk.py.
//
//   DIGIME_SDK_V8=<built SDK 8.x folder> node bench/peer_sdk_write.js <config.json>
//
// The SDK is not part of this repository: it is loaded from $DIGIME_SDK_V8/dist/main/index.js.
// <config.json> (written by bench/peer_sdk.py) holds the sandbox URLs, the contract
// (application id, contract id, path of its PKCS#1 private key), one user's credential minted
// by the sandbox (access + refresh token, postbox id, postbox public key), the number of
// writes, their size, the concurrency and the warm-up count.
//
// Protocol on stdout, one JSON object a line:
//   {"event":"ready",...}  after the SDK is loaded and the warm-up writes are delivered.
//   Then each line "go K" on stdin runs the next K writes of the measured series (the series
//   may come in parts, e.g. before and after another measurement) and answers
//   {"event":"done",...}: process.cpuUsage() over that part only, its statuses and the
//   sha256 of every payload it wrote. When stdin closes the driver exits 0 (the parent
//   reads this process's CPU with psutil between the lines it sends).
// Any failure prints {"event":"error",...} and exits 1.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function describe(e) {
    const d = { name: e && e.name, message: e && e.message };
    if (e && e.error) d.error = e.error;
    if (e && e.code) d.code = e.code;
    if (e && e.response && e.response.statusCode) d.statusCode = e.response.statusCode;
    return d;
}

async function main() {
    const sdkDir = process.env.DIGIME_SDK_V8;
    if (!sdkDir) throw new Error("DIGIME_SDK_V8 is not set");
    const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
    const SDK = require(path.join(sdkDir, "dist", "main", "index.js"));
    const sdkVersion = require(path.join(sdkDir, "package.json")).version;

    const sdk = SDK.init({ applicationId: cfg.applicationId, baseUrl: cfg.baseUrl, onboardUrl: cfg.onboardUrl });
    const contractDetails = {
        contractId: cfg.contractId,
        privateKey: fs.readFileSync(cfg.privateKeyFile, "utf8"),
        redirectUri: "http://127.0.0.1:9/peer/return",
    };
    const userAccessToken = {
        accessToken: { value: cfg.accessToken.value, expiry: cfg.accessToken.expires_on },
        refreshToken: { value: cfg.refreshToken.value, expiry: cfg.refreshToken.expires_on },
    };
    // the descriptor datapost sends by default (DigimeWrite.descriptor)
    const fileDescriptor = { mimeType: "application/octet-stream", accounts: [] };

    // Payloads and their hashes are prepared before any CPU reading.
    const payloads = Array.from({ length: cfg.writes }, () => crypto.randomBytes(cfg.size));
    const hashes = payloads.map((p) => crypto.createHash("sha256").update(p).digest("hex"));

    const statuses = {};
    let refreshed = 0;
    async function loop(items, prefix) {
        let next = 0;
        async function lane() {
            for (;;) {
                const i = next++;
                if (i >= items.length) return;
                const res = await sdk.write({
                    contractDetails, userAccessToken, postboxId: cfg.postboxId, publicKey: cfg.publicKey,
                    data: { fileData: items[i], fileName: `${prefix}${i}.bin`, fileDescriptor },
                });
                statuses[res.status] = (statuses[res.status] || 0) + 1;
                if (res.userAccessToken.accessToken.value !== userAccessToken.accessToken.value) refreshed++;
            }
        }
        await Promise.all(Array.from({ length: Math.max(1, cfg.concurrency) }, lane));
    }

    // Warm-up: module loading is done; the first writes still pay for lazy initialisation
    // (JIT, first connection, key parsing caches). They are delivered but not measured.
    await loop(Array.from({ length: cfg.warmup }, () => crypto.randomBytes(cfg.size)), "peer-warmup-");
    const warmupStatuses = { ...statuses };
    for (const k of Object.keys(statuses)) delete statuses[k];

    const lines = readline.createInterface({ input: process.stdin });
    say({ event: "ready", sdkVersion, node: process.version, warmup: cfg.warmup, warmupStatuses });
    let offset = 0;
    for await (const line of lines) {
        const m = /^go (\d+)$/.exec(line.trim());
        if (!m) throw new Error(`unexpected command ${JSON.stringify(line)}`);
        const part = payloads.slice(offset, offset + Number(m[1]));
        const partHashes = hashes.slice(offset, offset + part.length);
        offset += part.length;
        refreshed = 0;
        const wall0 = process.hrtime.bigint();
        const cpu0 = process.cpuUsage();
        await loop(part, `peer-${offset - part.length}-`);
        const cpu = process.cpuUsage(cpu0);
        const wallNs = Number(process.hrtime.bigint() - wall0);
        say({
            event: "done", writes: part.length, size: cfg.size, concurrency: cfg.concurrency,
            cpuUserUs: cpu.user, cpuSystemUs: cpu.system, wallMs: wallNs / 1e6,
            statuses: { ...statuses }, refreshed, sha256: partHashes,
            rssMiB: process.memoryUsage().rss / 1048576,
        });
        for (const k of Object.keys(statuses)) delete statuses[k];
    }
}

main().catch((e) => {
    say({ event: "error", error: describe(e) });
    process.exit(1);
});
