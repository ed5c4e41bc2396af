// The last ten minutes of the figures the admin page charts (issue 14): live
// sessions and heartbeat round trip per server, one sample a second, so a page
// opened now shows the recent past at once (GET /history).
//
// Series are aligned: sample i of every server was taken at the same time. A
// server first seen later has nulls before it; one no longer reported gets
// nulls, and its series is dropped once it holds nothing but nulls.
//
// Pure: the caller passes the time. Thread-safety: not thread-safe.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_STATUS_HISTORY_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_STATUS_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace cb::daemon {

class StatusHistory {
 public:
  static constexpr int64_t kIntervalMs = 1000;
  static constexpr std::size_t kSamples = 600;  // ten minutes

  struct Point {
    std::optional<uint64_t> sessions;
    std::optional<double> round_trip_ms;
  };

  StatusHistory() = default;
  StatusHistory(const StatusHistory&) = delete;
  StatusHistory& operator=(const StatusHistory&) = delete;

  // Whether a sample is due at `now_unix_ms` (kIntervalMs after the last one).
  bool Due(int64_t now_unix_ms) const;
  // Appends one sample taken at `now_unix_ms`: a point per server id.
  void Record(int64_t now_unix_ms, const std::map<std::string, Point>& points);

  // {"interval_ms": 1000, "end_unix_ms": <time of the last sample, 0 if none>,
  //  "servers": {"<id>": {"sessions": [n|null, ...], "rtt_ms": [ms|null, ...]}}},
  // oldest first.
  nlohmann::json Json() const;

 private:
  std::size_t samples_ = 0;  // in each series
  int64_t last_unix_ms_ = 0;
  std::map<std::string, std::deque<Point>> series_;
};

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_STATUS_HISTORY_H_
