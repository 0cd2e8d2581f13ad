// systemd's readiness protocol (sd_notify(3)) without libsystemd: one
// datagram of "KEY=VALUE" lines to the unix datagram socket that
// $NOTIFY_SOCKET names ("@name" for an abstract socket). thawd says READY=1
// once its pools are filled, so that `Type=notify` units start what depends
// on it only when acquires hit warm clones, and STOPPING=1 when it drains.
#pragma once

#include <string>

namespace thaw {

class ServiceNotifier {
 public:
  // Reads $NOTIFY_SOCKET; inactive when it is unset or empty (not started by
  // a service manager that asked for notifications).
  static ServiceNotifier from_environment();
  // Sends to the socket at `socket_path`; "" is inactive.
  explicit ServiceNotifier(std::string socket_path);

  bool active() const { return !path_.empty(); }
  const std::string& socket_path() const { return path_; }

  // Sends `state` (e.g. "READY=1\nSTATUS=3 pools warm") as one datagram.
  // Nothing when inactive. Throws std::system_error naming the socket when
  // the path does not fit sun_path or the send fails.
  void notify(const std::string& state) const;

 private:
  std::string path_;
};

}  // namespace thaw
