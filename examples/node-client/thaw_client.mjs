// A small client library for thawd's Pool service, on the generated code of
// rpc/thaw.capnp (npm run generate) and capnp-es's RPC. What a FaaS backend
// needs: list templates, acquire a clone, invoke, release, and errors that
// say which of the schema's kinds they are (FAILED, OVERLOADED,
// DISCONNECTED), so a caller can retry an OVERLOADED acquire and give up on
// a FAILED one without parsing messages.
import { Conn, Message } from "capnp-es";
import { Exception_Type, Message as RpcMessage, Return } from "capnp-es/capnp/rpc";
import { Pool } from "./gen/thaw.js";
import { UnixStreamTransport } from "./unix_stream_transport.mjs";

const KIND_NAMES = new Map([
  [Exception_Type.FAILED, "FAILED"],
  [Exception_Type.OVERLOADED, "OVERLOADED"],
  [Exception_Type.DISCONNECTED, "DISCONNECTED"],
  [Exception_Type.UNIMPLEMENTED, "UNIMPLEMENTED"],
]);

// An exception thawd sent: kind is the schema's error kind, reason its message.
export class ThawError extends Error {
  constructor(kind, reason, call) {
    super(`${call}: ${kind}: ${reason}`);
    this.kind = kind;
    this.reason = reason;
  }
}

// capnp-es 0.0.16 turns a returned exception into an Error that keeps only the
// reason, not the type: this keeps the type, which is the error contract.
class TypedErrorConn extends Conn {
  handleReturnMessage(m) {
    const ret = m.return;
    if (ret.which() !== Return.EXCEPTION) return super.handleReturnMessage(m);
    const id = ret.answerId;
    const question = this.popQuestion(id);
    if (!question) throw new Error(`thawd returned an answer to unknown question ${id}`);
    if (ret.releaseParamCaps) {
      for (let i = 0; i < question.paramCaps.length; i++) this.releaseExport(id, 1);
    }
    const exception = ret.exception;
    const kind = KIND_NAMES.get(exception.type) ?? `type ${exception.type}`;
    const call = question.method ? `${question.method.interfaceName}.${question.method.methodName}` : "bootstrap";
    question.reject(new ThawError(kind, exception.reason, call));
    const finish = new Message().initRoot(RpcMessage);
    const body = finish._initFinish();
    body.questionId = id;
    body.releaseResultCaps = true;
    this.sendMessage(finish);
  }
}

// A connection to thawd's socket: `pool` is the bootstrapped Pool capability.
export async function connect(socketPath) {
  const transport = await UnixStreamTransport.connect(socketPath);
  const conn = new TypedErrorConn(transport);
  return { pool: conn.bootstrap(Pool), close: () => conn.shutdown() };
}

export async function listTemplates(pool) {
  const { templates } = await pool.listTemplates().promise();
  return templates.map((t) => ({
    name: t.name,
    guest: t.spec.guest === 1 ? "linux" : "mini",
    program: t.spec.program,
    warm: t.warm,
    leased: t.leased,
    targetWarm: t.targetWarm,
    coldBootMs: t.coldBootMs,
  }));
}

// Acquires a clone of `template`, runs fn(vm, info) and releases the clone
// whatever fn does. leaseMs 0 is the daemon's default lease; timeoutMs is how
// long to wait for a warm clone before OVERLOADED.
export async function withVm(pool, template, { leaseMs = 0, timeoutMs = 1000 } = {}, fn) {
  const { vm } = await pool
    .acquire((p) => {
      p.template = template;
      p.leaseMs = BigInt(leaseMs);
      p.timeoutMs = BigInt(timeoutMs);
    })
    .promise();
  const info = await vm.info().promise();
  try {
    return await fn(vm, {
      leaseId: info.leaseId,
      cloneId: info.cloneId,
      seed: info.seed,
      acquireMs: info.acquireMs,
      poolHit: info.poolHit,
    });
  } finally {
    await vm.release().promise().catch(() => {});  // a destroyed clone has nothing to release
  }
}

// Runs `fn` in a leased clone: payload and result are bytes.
export async function invoke(vm, fn, payload, timeoutMs = 0) {
  const r = await vm
    .invoke((p) => {
      p.function = fn;
      p._initPayload(payload.length).copyBuffer(payload);
      p.timeoutMs = BigInt(timeoutMs);
    })
    .promise();
  return {
    status: r.status,
    payload: Buffer.from(r.payload.toUint8Array()),
    stderr: Buffer.from(r.stderr.toUint8Array()),
    totalMs: r.totalMs,
    guestMs: r.guestMs,
  };
}
