// The host side of the invoke protocol (pool/invoke_protocol.h) over a
// clone's vsock device: the device's unix socket takes `CONNECT <port>\n`,
// answers `OK <host port>\n` once the guest accepted, then carries the
// stream. Every step has the caller's deadline; a closed connection, a
// timeout or a guest that stopped running is GuestGone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pool/pool_types.h"

namespace thaw::pool {

// Request frame: u32 length, u16 name length, name, payload. BadArgument for
// an empty or over-long name (1..255 printable ASCII) or a frame over
// kMaxInvokeBytes.
std::vector<uint8_t> encode_invoke_request(const std::string& function, std::span<const uint8_t> payload);

struct InvokeResponseHeader {
  uint32_t length = 0;  // of status, guest time and payload
  uint32_t status = 0;
  uint32_t guest_us = 0;
  uint32_t payload_bytes() const { return length - 8; }
};
inline constexpr size_t kInvokeResponseHeaderBytes = 12;
// GuestGone for a length below 8 or above kMaxInvokeBytes + 8 (a guest
// that says nonsense is treated as gone).
InvokeResponseHeader decode_invoke_response_header(std::span<const uint8_t, kInvokeResponseHeaderBytes> bytes);

struct AgentCall {
  std::string socket_path;  // the clone's vsock unix socket
  uint32_t port = 0;        // kAgentPort unless told
  std::string function;
  std::span<const uint8_t> payload;
  std::chrono::steady_clock::time_point deadline;
  // Checked between waits: returns why the guest cannot answer any more
  // ("" while it runs).
  std::function<std::string()> why_gone;
  // Told the connected socket before any byte is sent and -1 when done, so
  // another thread can cut the call short with shutdown(). Returns false to
  // abort (GuestGone).
  std::function<bool(int fd)> on_socket;
};

InvokeResult call_agent(const AgentCall& call);

}  // namespace thaw::pool
