// A capnp-es RPC transport over a stream socket (thawd's unix socket).
// Cap'n Proto's stream framing: a little-endian u32 segment count minus one,
// one u32 word count per segment, padding to 8 bytes, then the segments.
// Messages are queued as they arrive, so none is lost when several come in
// one read (capnp-es's DeferredTransport holds only one).
import net from "node:net";
import { Message } from "capnp-es";
import { Message as RpcMessage } from "capnp-es/capnp/rpc";

// Refuse frames larger than thawd would ever send (its limit is 64 MiB).
const MAX_FRAME_BYTES = 64 * 1024 * 1024 + 4096;

// The byte length of the first whole frame in `buf`, or 0 if it is not all there.
export function frameLength(buf) {
  if (buf.length < 4) return 0;
  const segments = buf.readUInt32LE(0) + 1;
  if (segments > 512) throw new Error(`a frame declares ${segments} segments`);
  const headerBytes = (4 * (1 + segments) + 7) & ~7;
  if (buf.length < headerBytes) return 0;
  let words = 0;
  for (let i = 0; i < segments; i++) words += buf.readUInt32LE(4 * (1 + i));
  const total = headerBytes + 8 * words;
  if (total > MAX_FRAME_BYTES) throw new Error(`a frame declares ${total} bytes`);
  return buf.length >= total ? total : 0;
}

export class UnixStreamTransport {
  constructor(socket) {
    this.socket = socket;
    this.pending = Buffer.alloc(0);
    this.messages = [];  // decoded, not yet asked for
    this.waiters = [];   // asked for, not yet arrived
    this.failure = null;
    socket.on("data", (chunk) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("thawd closed the connection")));
  }

  static connect(path) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      socket.once("connect", () => resolve(new UnixStreamTransport(socket)));
      socket.once("error", (err) => reject(new Error(`cannot connect to ${path}: ${err.message}`)));
    });
  }

  onData(chunk) {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    try {
      for (let n; (n = frameLength(this.pending)) > 0; this.pending = this.pending.subarray(n)) {
        const frame = this.pending.subarray(0, n);
        // Copy: capnp-es keeps views into the buffer it is given.
        const bytes = frame.buffer.slice(frame.byteOffset, frame.byteOffset + n);
        this.deliver(new Message(bytes, false).getRoot(RpcMessage));
      }
    } catch (err) {
      this.fail(err);
      this.socket.destroy();
    }
  }

  deliver(message) {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(message);
    else this.messages.push(message);
  }

  fail(err) {
    if (this.failure) return;
    this.failure = err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }

  sendMessage(message) {
    const m = new Message();
    m.setRoot(message);
    this.socket.write(Buffer.from(m.toArrayBuffer()));
  }

  recvMessage() {
    if (this.messages.length) return Promise.resolve(this.messages.shift());
    // capnp-es ends its receive loop on a rejection without a value.
    if (this.failure) return Promise.reject();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject: () => reject() }));
  }

  close() {
    this.fail(new Error("closed"));
    this.socket.end();
  }
}
