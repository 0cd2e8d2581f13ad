#include "bench/pool_load.h"

#include <atomic>
#include <cmath>
#include <latch>
#include <mutex>
#include <thread>

#include "rpc/convert.h"
#include "rpc/pool_client.h"

namespace thaw::bench {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}


// Start times of every request, phase after phase.
std::vector<Clock::time_point> schedule(const std::vector<LoadPhase>& phases, Clock::time_point t0) {
  std::vector<Clock::time_point> slots;
  double phase_start = 0;
  for (const auto& p : phases) {
    auto n = p.rate_per_s > 0 ? static_cast<size_t>(std::floor(p.rate_per_s * p.seconds)) : 0;
    for (size_t k = 0; k < n; ++k) {
      double t = phase_start + static_cast<double>(k) / p.rate_per_s;
      slots.push_back(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t)));
    }
    phase_start += p.seconds;
  }
  return slots;
}

double offered_rate_at(const std::vector<LoadPhase>& phases, double t) {
  double start = 0;
  for (const auto& p : phases) {
    if (t < start + p.seconds) return p.rate_per_s;
    start += p.seconds;
  }
  return 0;
}

class Recorder {
 public:
  void add(double acquire, double in_thawd, double invoke, double guest, double release, bool late) {
    std::lock_guard lock(mutex_);
    result_.acquire_ms.push_back(acquire);
    result_.acquire_in_thawd_ms.push_back(in_thawd);
    if (invoke >= 0) result_.invoke_ms.push_back(invoke);
    if (guest >= 0) result_.guest_ms.push_back(guest);
    result_.release_ms.push_back(release);
    if (late) ++result_.late;
  }
  void crashed() {
    std::lock_guard lock(mutex_);
    ++result_.crashes;
  }
  void fail(const std::string& why) {
    std::lock_guard lock(mutex_);
    if (result_.failures++ == 0) result_.first_failure = why;
  }
  LoadResult take() { return std::move(result_); }

 private:
  std::mutex mutex_;
  LoadResult result_;
};

void one_request(const LoadSpec& spec, rpc::PoolConnection& conn, Clock::time_point slot, Recorder& out) {
  auto& ws = conn.wait_scope();
  auto t0 = Clock::now();
  bool late = ms_between(slot, t0) > 1.0;
  auto acq = conn.pool().acquireRequest();
  acq.setTemplate(spec.template_name);
  acq.setLeaseMs(30000);
  acq.setTimeoutMs(spec.acquire_timeout_ms);
  auto vm = acq.send().wait(ws).getVm();
  auto t1 = Clock::now();
  double acquire_ms = ms_between(t0, t1);
  double in_thawd_ms = vm.infoRequest().send().wait(ws).getAcquireMs();  // not in the timings
  t1 = Clock::now();
  double invoke_ms = -1, guest_ms = -1;
  if (!spec.function.empty()) {
    auto inv = vm.invokeRequest();
    inv.setFunction(spec.function);
    if (spec.function == "hash") {
      uint64_t n = 65536;
      inv.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(&n), sizeof n));
    } else {
      kj::byte payload[64] = {};
      inv.setPayload(kj::arrayPtr(payload, sizeof payload));
    }
    inv.setTimeoutMs(10000);
    auto reply = inv.send().wait(ws);
    if (reply.getStatus() != 0) throw std::runtime_error("invoke status " + std::to_string(reply.getStatus()));
    invoke_ms = ms_between(t1, Clock::now());
    guest_ms = reply.getGuestMs();
  }
  if (spec.hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(spec.hold_ms));
  auto t2 = Clock::now();
  vm.releaseRequest().send().wait(ws);
  out.add(acquire_ms, in_thawd_ms, invoke_ms, guest_ms, ms_between(t2, Clock::now()), late);
}

// An injected guest crash: the invoke must fail as DISCONNECTED (the guest
// is gone) and the lease with it; anything else is a failure.
void one_crash(const LoadSpec& spec, rpc::PoolConnection& conn, Recorder& out) {
  auto& ws = conn.wait_scope();
  auto acq = conn.pool().acquireRequest();
  acq.setTemplate(spec.template_name);
  acq.setLeaseMs(30000);
  acq.setTimeoutMs(spec.acquire_timeout_ms);
  auto vm = acq.send().wait(ws).getVm();
  auto inv = vm.invokeRequest();
  inv.setFunction("crash");
  inv.setTimeoutMs(10000);
  try {
    inv.send().wait(ws);
  } catch (const kj::Exception& e) {
    if (e.getType() != kj::Exception::Type::DISCONNECTED) {
      throw std::runtime_error(std::string("crash: expected DISCONNECTED, got ") + e.getDescription().cStr());
    }
    out.crashed();
    return;  // the lease went with the guest: nothing to release
  }
  throw std::runtime_error("crash: the guest answered instead of crashing");
}

}  // namespace

pool::PoolStats::PerTemplate template_stats(rpc::PoolConnection& conn, const std::string& name) {
  auto reply = conn.pool().statsRequest().send().wait(conn.wait_scope());
  for (const auto& t : rpc::from_schema(reply.getStats()).templates) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("thawd has no template '" + name + "'");
}

LoadResult run_load(const LoadSpec& spec) {
  rpc::PoolConnection control(spec.socket);
  auto before = template_stats(control, spec.template_name);
  Recorder recorder;
  const bool closed_loop = spec.closed_loop_requests > 0;
  std::atomic<size_t> next{0}, finished{0};
  std::atomic<bool> done{false};
  size_t total = 0;  // requests in all; set before the clients go
  // The clients connect first (a connection owns its thread's event loop),
  // so connection set-up is not in the figures; the schedule starts when
  // all are connected.
  std::latch connected(spec.clients);
  std::latch go(1);
  Clock::time_point t0;
  std::vector<Clock::time_point> slots;
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < spec.clients; ++c) {
    const std::string& socket =
        spec.client_sockets.empty() ? spec.socket : spec.client_sockets[c % spec.client_sockets.size()];
    threads.emplace_back([&, socket] {
      std::unique_ptr<rpc::PoolConnection> conn;
      try {
        conn = std::make_unique<rpc::PoolConnection>(socket);
      } catch (const kj::Exception& e) {
        recorder.fail(std::string("connect: ") + e.getDescription().cStr());
      }
      connected.count_down();
      go.wait();
      if (!conn) return;
      for (;;) {
        size_t i = next.fetch_add(1);
        if (i >= total) return;
        auto slot = closed_loop ? Clock::now() : slots[i];
        std::this_thread::sleep_until(slot);
        try {
          if (spec.crash_every > 0 && (i + 1) % spec.crash_every == 0) {
            one_crash(spec, *conn, recorder);
          } else {
            one_request(spec, *conn, slot, recorder);
          }
        } catch (const kj::Exception& e) {
          recorder.fail(e.getDescription().cStr());
        } catch (const std::exception& e) {
          recorder.fail(e.what());
        }
        // Done with the VM: send what dropping it queued (the Finish of the
        // last call, the Release of the Vm capability) now, as a client
        // whose event loop keeps running would, instead of in front of the
        // next acquire, whose time would then count this request's clean-up.
        conn->wait_scope().poll();
        if (spec.on_progress) spec.on_progress(finished.fetch_add(1) + 1, total);
      }
    });
  }
  connected.wait();
  t0 = Clock::now() + std::chrono::milliseconds(20);
  if (!closed_loop) slots = schedule(spec.phases, t0);
  total = closed_loop ? spec.closed_loop_requests : slots.size();

  std::vector<TimelinePoint> timeline;
  std::thread sampler;
  if (spec.timeline_period.count() > 0) {
    sampler = std::thread([&] {
      rpc::PoolConnection conn(spec.socket);
      auto last = before;
      auto tick = t0;
      while (!done.load()) {
        tick += spec.timeline_period;
        std::this_thread::sleep_until(tick);
        auto now = template_stats(conn, spec.template_name);
        TimelinePoint p;
        p.t_seconds = std::chrono::duration<double>(tick - t0).count();
        p.offered_rate = offered_rate_at(spec.phases, p.t_seconds - 1e-9);
        p.acquires = now.acquires - last.acquires;
        p.misses = now.misses - last.misses;
        p.warm = now.warm;
        p.leased = now.leased;
        p.target = now.target_warm;
        timeline.push_back(p);
        last = now;
      }
    });
  }

  go.count_down();
  for (auto& t : threads) t.join();
  auto end = Clock::now();
  // Phases may end with idle time (rate 0): the timeline covers it too.
  double total_seconds = 0;
  if (!closed_loop) {
    for (const auto& p : spec.phases) total_seconds += p.seconds;
  }
  std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(total_seconds)));
  done = true;
  if (sampler.joinable()) sampler.join();

  auto after = template_stats(control, spec.template_name);
  LoadResult result = recorder.take();
  result.sent = total;
  double seconds = std::chrono::duration<double>(end - t0).count();
  result.achieved_rate = seconds > 0 ? static_cast<double>(result.acquire_ms.size()) / seconds : 0;
  result.hits = after.hits - before.hits;
  result.misses = after.misses - before.misses;
  result.timeline = std::move(timeline);
  return result;
}

std::vector<double> null_rpc_round_trips(const std::string& socket, const std::string& template_name, size_t count,
                                         std::chrono::milliseconds gap) {
  std::vector<double> out;
  std::thread([&] {  // a connection owns its thread's event loop
    rpc::PoolConnection conn(socket);
    auto& ws = conn.wait_scope();
    auto acq = conn.pool().acquireRequest();
    acq.setTemplate(template_name);
    acq.setLeaseMs(600000);
    acq.setTimeoutMs(5000);
    auto vm = acq.send().wait(ws).getVm();
    for (size_t i = 0; i < count; ++i) {
      std::this_thread::sleep_for(gap);
      auto t0 = Clock::now();
      vm.infoRequest().send().wait(ws);
      out.push_back(ms_between(t0, Clock::now()));
      ws.poll();  // the Finish goes out now, as in run_load, not with the next call
    }
    vm.releaseRequest().send().wait(ws);
  }).join();
  return out;
}

}  // namespace thaw::bench
