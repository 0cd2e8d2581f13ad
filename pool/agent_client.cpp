#include "pool/agent_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>

#include "base/unix_socket.h"
#include "pool/invoke_protocol.h"

namespace thaw::pool {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSlice = std::chrono::milliseconds(20);  // how often the guest's state is checked

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// One connection to the agent, with the call's deadline on every wait.
class Conn {
 public:
  Conn(const AgentCall& call, int fd) : call_(call), fd_(fd) {}

  void wait(short events, const char* what) {
    while (true) {
      if (std::string why = call_.why_gone ? call_.why_gone() : std::string(); !why.empty()) {
        throw GuestGone(std::string("invoke: ") + why + " (while " + what + ")");
      }
      auto now = Clock::now();
      if (now >= call_.deadline) throw GuestGone(std::string("invoke: timed out ") + what);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(call_.deadline - now) + std::chrono::milliseconds(1);
      pollfd p{fd_, events, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::min<std::chrono::milliseconds>(left, kSlice).count()));
      if (n < 0 && errno != EINTR) throw GuestGone(std::string("invoke: poll failed ") + what + ": " + std::strerror(errno));
      if (n > 0) return;  // readable, writable, or closed: the next call says which
    }
  }

  // The connection ended under us: say so, and why when the guest stopped
  // (a stop closes its streams a moment after the vCPU exits).
  [[noreturn]] void closed(const char* what, ssize_t n) {
    std::string message = std::string("invoke: connection closed ") + what + (n < 0 ? std::string(": ") + std::strerror(errno) : "");
    for (int i = 0; i < 5 && call_.why_gone; ++i) {
      if (std::string why = call_.why_gone(); !why.empty()) {
        message += " (" + why + ")";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw GuestGone(message);
  }

  void send_all(std::span<const uint8_t> bytes, const char* what) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        wait(POLLOUT, what);
      } else {
        closed(what, n);
      }
    }
  }

  void recv_all(uint8_t* dst, size_t len, const char* what) {
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::recv(fd_, dst + done, len - done, MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        wait(POLLIN, what);
      } else {
        closed(what, n);
      }
    }
  }

  std::string recv_line(const char* what) {
    std::string line;
    while (line.size() < 64) {
      uint8_t c;
      recv_all(&c, 1, what);
      if (c == '\n') return line;
      line.push_back(static_cast<char>(c));
    }
    throw GuestGone(std::string("invoke: no line end ") + what);
  }

 private:
  const AgentCall& call_;
  int fd_;
};

UniqueFd connect_agent(const AgentCall& call) {
  int error = 0;
  while (true) {
    UniqueFd sock = connect_unix(call.socket_path, &error);
    if (sock) return sock;
    if (error == EAGAIN && Clock::now() < call.deadline) {  // the listener's backlog is full
      ::usleep(1000);
      continue;
    }
    throw GuestGone("invoke: connecting to " + call.socket_path + ": " + std::strerror(error));
  }
}

}  // namespace

std::vector<uint8_t> encode_invoke_request(const std::string& function, std::span<const uint8_t> payload) {
  if (function.empty() || function.size() > 255) {
    throw BadArgument("invoke: function name must be 1 to 255 characters (it is " + std::to_string(function.size()) + ")");
  }
  if (!std::all_of(function.begin(), function.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    throw BadArgument("invoke: function name '" + function + "' is not printable ASCII");
  }
  uint64_t length = 2 + function.size() + payload.size();
  if (length > kMaxInvokeBytes) {
    throw BadArgument("invoke: request of " + std::to_string(length) + " bytes is over the limit of " +
                      std::to_string(kMaxInvokeBytes));
  }
  std::vector<uint8_t> out;
  out.reserve(4 + length);
  put_u32(out, static_cast<uint32_t>(length));
  out.push_back(static_cast<uint8_t>(function.size()));
  out.push_back(static_cast<uint8_t>(function.size() >> 8));
  out.insert(out.end(), function.begin(), function.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

InvokeResponseHeader decode_invoke_response_header(std::span<const uint8_t, kInvokeResponseHeaderBytes> bytes) {
  InvokeResponseHeader h;
  h.length = get_u32(bytes.data());
  h.status = get_u32(bytes.data() + 4);
  h.guest_us = get_u32(bytes.data() + 8);
  if (h.length < 8 || h.length > kMaxInvokeBytes + 8) {
    throw GuestGone("invoke: the guest agent sent a response length of " + std::to_string(h.length));
  }
  return h;
}

InvokeResult call_agent(const AgentCall& call) {
  auto start = Clock::now();
  auto request = encode_invoke_request(call.function, call.payload);  // BadArgument before any I/O
  UniqueFd sock = connect_agent(call);
  if (call.on_socket && !call.on_socket(sock.get())) throw GuestGone("invoke: the lease was released");
  struct Unregister {
    const AgentCall& call;
    ~Unregister() {
      if (call.on_socket) call.on_socket(-1);
    }
  } unregister{call};

  Conn conn(call, sock.get());
  std::string hello = "CONNECT " + std::to_string(call.port ? call.port : kAgentPort) + "\n";
  conn.send_all({reinterpret_cast<const uint8_t*>(hello.data()), hello.size()}, "sending CONNECT");
  std::string reply = conn.recv_line("waiting for the guest to accept the connection");
  if (!reply.starts_with("OK ")) throw GuestGone("invoke: the vsock device answered '" + reply + "' to CONNECT");

  conn.send_all(request, "sending the request");
  std::array<uint8_t, kInvokeResponseHeaderBytes> header_bytes{};
  conn.recv_all(header_bytes.data(), header_bytes.size(), "waiting for the response");
  auto header = decode_invoke_response_header(header_bytes);
  InvokeResult result;
  result.status = header.status;
  result.guest_ms = header.guest_us / 1000.0;
  result.payload.resize(header.payload_bytes());
  conn.recv_all(result.payload.data(), result.payload.size(), "reading the response payload");
  result.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return result;
}

}  // namespace thaw::pool
