/* thaw-mini function runtime: clocks and randomness.
 *
 * CLOCK_REALTIME = the control page's wall clock (taken at the ready point,
 * i.e. at the start of each request) plus TSC time since then; before the
 * ready point the wall clock read at boot (0 without a control page).
 * CLOCK_MONOTONIC (and BOOTTIME, the CPU-time clocks) = TSC time since boot,
 * continued across the snapshot. nanosleep does not wait: it advances both
 * clocks by the requested time and returns at once (a request should not
 * idle a clone, and a program that measures its sleep still sees it).
 *
 * getrandom: SplitMix64 over (seed ^ counter), the seed taken from the
 * control page at the ready point, so clones with different seeds never
 * return the same bytes for the same call. */
#include "program_arch.h"
#include "program_runtime.h"

#define NS_PER_SECOND 1000000000ull
#define CLOCK_REALTIME 0
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_REALTIME_ALARM 8
#define CLOCK_TAI 11
#define TIMER_ABSTIME 1
#define BOOT_SEED 0x5eed5eed5eed5eedull /* before the ready point: the same in every clone anyway */

static uint64_t control_field(const struct program_runtime *rt, unsigned offset) {
  return rt->control[offset / 8];
}

static uint64_t tsc_to_ns(const struct program_runtime *rt, uint64_t ticks) {
  if (rt->tsc_khz == 0) return 0;
  /* Split so that ticks * 10^6 cannot overflow: kHz = ticks per ms. */
  return ticks / rt->tsc_khz * 1000000ull + ticks % rt->tsc_khz * 1000000ull / rt->tsc_khz;
}

void time_init(struct program_runtime *rt) {
  rt->tsc_base = program_arch_tsc();
  rt->mono_base_ns = 0;
  rt->wall_base_ns = 0;
  rt->random_seed = BOOT_SEED;
  if (control_field(rt, CONTROL_OFF_MAGIC) == CONTROL_MAGIC) {
    rt->wall_base_ns = control_field(rt, CONTROL_OFF_WALL_CLOCK_NS);
    rt->random_seed = control_field(rt, CONTROL_OFF_SEED);
  }
}

uint64_t monotonic_ns(struct program_runtime *rt) {
  return rt->mono_base_ns + tsc_to_ns(rt, program_arch_tsc() - rt->tsc_base) + rt->slept_ns;
}

uint64_t realtime_ns(struct program_runtime *rt) {
  return rt->wall_base_ns + tsc_to_ns(rt, program_arch_tsc() - rt->tsc_base) + rt->slept_ns;
}

void time_at_ready(struct program_runtime *rt) {
  /* Monotonic time continues from the snapshot; the TSC may not. */
  rt->mono_base_ns = monotonic_ns(rt) - rt->slept_ns;
  rt->wall_base_ns = realtime_ns(rt) - rt->slept_ns;
  rt->tsc_base = program_arch_tsc();
  if (control_field(rt, CONTROL_OFF_MAGIC) == CONTROL_MAGIC) {
    rt->wall_base_ns = control_field(rt, CONTROL_OFF_WALL_CLOCK_NS) - rt->slept_ns;
    rt->random_seed = control_field(rt, CONTROL_OFF_SEED);
  }
  rt->random_counter = 0;
}

static int is_realtime(uint64_t clock) {
  return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_REALTIME_ALARM ||
         clock == CLOCK_TAI;
}

static int64_t put_pair(struct program_runtime *rt, uint64_t addr, uint64_t first, uint64_t second) {
  if (!user_range_ok(rt, addr, 16)) return -PERR_FAULT;
  uint64_t pair[2] = {first, second};
  __builtin_memcpy(user_ptr(rt, addr), pair, sizeof pair);
  return 0;
}

int64_t sys_clock_gettime(struct program_runtime *rt, uint64_t clock, uint64_t ts) {
  if (clock > CLOCK_TAI) return -PERR_INVAL;
  uint64_t ns = is_realtime(clock) ? realtime_ns(rt) : monotonic_ns(rt);
  return put_pair(rt, ts, ns / NS_PER_SECOND, ns % NS_PER_SECOND);
}

int64_t sys_clock_getres(struct program_runtime *rt, uint64_t clock, uint64_t ts) {
  if (clock > CLOCK_TAI) return -PERR_INVAL;
  return ts ? put_pair(rt, ts, 0, 1) : 0;
}

int64_t sys_gettimeofday(struct program_runtime *rt, uint64_t tv) {
  if (!tv) return 0;
  uint64_t ns = realtime_ns(rt);
  return put_pair(rt, tv, ns / NS_PER_SECOND, ns % NS_PER_SECOND / 1000);
}

int64_t sys_time(struct program_runtime *rt, uint64_t out) {
  uint64_t seconds = realtime_ns(rt) / NS_PER_SECOND;
  if (out) {
    if (!user_range_ok(rt, out, 8)) return -PERR_FAULT;
    __builtin_memcpy(user_ptr(rt, out), &seconds, 8);
  }
  return (int64_t)seconds;
}

/* Reads a timespec: its nanoseconds, or -errno. */
static int64_t read_timespec(struct program_runtime *rt, uint64_t addr, uint64_t *ns) {
  if (!user_range_ok(rt, addr, 16)) return -PERR_FAULT;
  int64_t pair[2];
  __builtin_memcpy(pair, user_ptr(rt, addr), sizeof pair);
  if (pair[0] < 0 || pair[1] < 0 || pair[1] >= (int64_t)NS_PER_SECOND) return -PERR_INVAL;
  *ns = (uint64_t)pair[0] * NS_PER_SECOND + (uint64_t)pair[1];
  return 0;
}

int64_t sys_nanosleep(struct program_runtime *rt, uint64_t req, uint64_t rem) {
  uint64_t ns;
  int64_t error = read_timespec(rt, req, &ns);
  if (error) return error;
  (void)rem; /* never interrupted: *rem is left alone, as Linux does */
  rt->slept_ns += ns;
  return 0;
}

int64_t sys_clock_nanosleep(struct program_runtime *rt, uint64_t clock, uint64_t flags, uint64_t req,
                            uint64_t rem) {
  if (clock > CLOCK_TAI) return -PERR_INVAL;
  uint64_t ns;
  int64_t error = read_timespec(rt, req, &ns);
  if (error) return error;
  (void)rem;
  if (flags & TIMER_ABSTIME) {
    uint64_t now = is_realtime(clock) ? realtime_ns(rt) : monotonic_ns(rt);
    if (ns > now) rt->slept_ns += ns - now;
  } else {
    rt->slept_ns += ns;
  }
  return 0;
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int64_t sys_getrandom(struct program_runtime *rt, uint64_t buf, uint64_t len) {
  if (len > 0x2000000) len = 0x2000000; /* Linux's per-call cap: 32 MiB */
  if (!user_range_ok(rt, buf, len)) return -PERR_FAULT;
  uint8_t *out = (uint8_t *)user_ptr(rt, buf);
  /* A bijection of seed ^ f(counter): equal counters, different seeds,
   * different words. Random reads are small (seeds, keys): a word loop. */
  uint64_t done = 0;
  while (done < len) {
    uint64_t word = splitmix64(rt->random_seed ^ splitmix64(rt->random_counter++));
    uint64_t n = len - done < 8 ? len - done : 8;
    __builtin_memcpy(out + done, &word, n);
    done += n;
  }
  return (int64_t)len;
}
