#include "sidecar/daemon/status_history.h"

#include <algorithm>

namespace cb::daemon {

bool StatusHistory::Due(int64_t now_unix_ms) const {
  return samples_ == 0 || now_unix_ms - last_unix_ms_ >= kIntervalMs;
}

void StatusHistory::Record(int64_t now_unix_ms, const std::map<std::string, Point>& points) {
  for (const auto& [id, point] : points) {
    auto [it, inserted] = series_.try_emplace(id);
    if (inserted) it->second.assign(samples_, Point{});
  }
  for (auto it = series_.begin(); it != series_.end();) {
    std::deque<Point>& series = it->second;
    const auto point = points.find(it->first);
    series.push_back(point == points.end() ? Point{} : point->second);
    if (series.size() > kSamples) series.pop_front();
    const bool empty = std::all_of(series.begin(), series.end(), [](const Point& p) {
      return !p.sessions.has_value() && !p.round_trip_ms.has_value();
    });
    it = empty && point == points.end() ? series_.erase(it) : std::next(it);
  }
  samples_ = std::min(samples_ + 1, kSamples);
  last_unix_ms_ = now_unix_ms;
}

nlohmann::json StatusHistory::Json() const {
  nlohmann::json servers = nlohmann::json::object();
  for (const auto& [id, series] : series_) {
    nlohmann::json sessions = nlohmann::json::array();
    nlohmann::json round_trips = nlohmann::json::array();
    for (const Point& point : series) {
      sessions.push_back(point.sessions ? nlohmann::json(*point.sessions) : nlohmann::json());
      round_trips.push_back(point.round_trip_ms ? nlohmann::json(*point.round_trip_ms)
                                                : nlohmann::json());
    }
    servers[id] = {{"sessions", std::move(sessions)}, {"rtt_ms", std::move(round_trips)}};
  }
  return {{"interval_ms", kIntervalMs}, {"end_unix_ms", last_unix_ms_}, {"servers", servers}};
}

}  // namespace cb::daemon
