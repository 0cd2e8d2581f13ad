#!/usr/bin/env node
// thaw-node: thawd's Pool service from Node.js, as an example of a client in
// another language (see README.md here). Prints JSON on stdout.
import { parseArgs } from "node:util";
import { connect, invoke, listTemplates, ThawError, withVm } from "./thaw_client.mjs";

const USAGE = `usage: thaw-node.mjs [--socket PATH] COMMAND
  templates                      list templates with their warm and leased clones
  invoke TEMPLATE FUNCTION       acquire a clone, run FUNCTION in it, release it
      [--payload TEXT]           the request bytes (default: empty)
      [--lease-ms N]             lease length, 0 = the daemon's default
      [--timeout-ms N]           wait this long for a warm clone (default 1000)
      [--invoke-timeout-ms N]    the invoke's limit, 0 = the daemon's default
options:
  --socket PATH                  thawd's socket (default /run/thaw/thaw.sock)
exit status: 0 ok, 1 usage or connection error, 2 FAILED (bad argument or no
such template), 3 OVERLOADED (no warm clone in time: retry later),
4 DISCONNECTED (the daemon or the guest went away), 5 anything else`;

const EXIT_FOR_KIND = { FAILED: 2, OVERLOADED: 3, DISCONNECTED: 4 };

// Bytes as text where they are UTF-8 ({name: text}), else as base64 ({nameBase64: ...}).
function bytesField(name, bytes) {
  try {
    return { [name]: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { [`${name}Base64`]: bytes.toString("base64") };
  }
}

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      socket: { type: "string", default: "/run/thaw/thaw.sock" },
      payload: { type: "string", default: "" },
      "lease-ms": { type: "string", default: "0" },
      "timeout-ms": { type: "string", default: "1000" },
      "invoke-timeout-ms": { type: "string", default: "0" },
      help: { type: "boolean", short: "h" },
    },
  });
  for (const key of ["lease-ms", "timeout-ms", "invoke-timeout-ms"]) {
    if (!/^\d{1,10}$/.test(values[key])) throw new Error(`--${key} must be a whole number of ms, not '${values[key]}'`);
  }
  return { values, positionals };
}

async function run({ values, positionals }) {
  const [command, ...rest] = positionals;
  if (values.help) return console.log(USAGE);
  const expected = { templates: 0, invoke: 2 }[command];
  if (expected === undefined || rest.length !== expected) throw new Error(`bad command line\n${USAGE}`);
  const { pool, close } = await connect(values.socket);
  try {
    if (command === "templates") {
      console.log(JSON.stringify(await listTemplates(pool)));
      return;
    }
    const [template, fn] = rest;
    const lease = { leaseMs: Number(values["lease-ms"]), timeoutMs: Number(values["timeout-ms"]) };
    const result = await withVm(pool, template, lease, async (vm, info) => {
      const r = await invoke(vm, fn, Buffer.from(values.payload), Number(values["invoke-timeout-ms"]));
      return { template, cloneId: info.cloneId.toString(), poolHit: info.poolHit, acquireMs: info.acquireMs,
               status: r.status, ...bytesField("payload", r.payload), ...bytesField("stderr", r.stderr),
               totalMs: r.totalMs, guestMs: r.guestMs };
    });
    console.log(JSON.stringify(result));
  } finally {
    close();
  }
}

let args;
try {
  args = parse(process.argv.slice(2));
} catch (err) {
  console.error(`thaw-node: ${err.message}`);
  process.exit(1);
}
run(args).then(
  () => process.exit(0),
  (err) => {
    if (err instanceof ThawError) {
      console.log(JSON.stringify({ error: err.kind, reason: err.reason }));
      console.error(`thaw-node: ${err.message}`);
      process.exit(EXIT_FOR_KIND[err.kind] ?? 5);
    }
    console.error(`thaw-node: ${err.message ?? err}`);
    process.exit(1);
  },
);
