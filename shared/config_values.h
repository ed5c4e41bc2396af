// Parsers for the value types an operator writes in the cluster file: durations
// ("250ms", "3s", "15m", "2h"), byte sizes ("512", "64KiB", "1MiB") and addresses
// ("10.0.0.10:6800", "[::1]:6800", "app-a.internal:6800"). Each error message says
// what was expected. Pure functions; thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_CONFIG_VALUES_H_
#define CLUSTER_BALANCE_SHARED_CONFIG_VALUES_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace cb {

struct HostPort {
  std::string host;  // as written, without the brackets of an IPv6 literal
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 literal.
  std::string ToString() const;
  bool operator==(const HostPort&) const = default;
};

// A host name or IPv4 literal, or a bracketed IPv6 literal, then ':' and a port
// 1..65535. No white space.
Result<HostPort> ParseHostPort(std::string_view text);

// Longest duration accepted: far beyond any sensible setting, and small enough
// that the sidecar can convert it to nanoseconds or add it to the time of day
// without overflow.
inline constexpr std::chrono::milliseconds kMaxDuration{int64_t{87600} * 60 * 60 * 1000};
// The longest slow start (warm-up) the cluster file or a web server module accepts.
inline constexpr std::chrono::milliseconds kMaxSlowStart{24 * 60 * 60 * 1000};

// A non-negative whole number followed by one unit: ms, s, m, h, at most
// kMaxDuration. A bare number is refused (is "3" seconds or milliseconds?).
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// A whole number of bytes, optionally followed by B, KiB, MiB or GiB.
Result<uint64_t> ParseByteSize(std::string_view text);

// "3s", "250ms", "15m": the shortest exact spelling, as ParseDuration reads it.
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_CONFIG_VALUES_H_
