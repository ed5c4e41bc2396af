#include "sidecar/daemon/status_history.h"

#include <gtest/gtest.h>

namespace cb::daemon {
namespace {

using Point = StatusHistory::Point;

TEST(StatusHistoryTest, SeriesStayAlignedAsServersComeAndGo) {
  StatusHistory history;
  EXPECT_TRUE(history.Due(0));
  history.Record(1'000, {{"a", Point{5, 0.5}}});
  EXPECT_FALSE(history.Due(1'999));
  EXPECT_TRUE(history.Due(2'000));
  history.Record(2'000, {{"a", Point{6, std::nullopt}}, {"b", Point{1, 0.25}}});
  const nlohmann::json json = history.Json();
  EXPECT_EQ(json["interval_ms"], 1000);
  EXPECT_EQ(json["end_unix_ms"], 2'000);
  EXPECT_EQ(json["servers"]["a"]["sessions"], nlohmann::json::parse("[5, 6]"));
  EXPECT_EQ(json["servers"]["a"]["rtt_ms"], nlohmann::json::parse("[0.5, null]"));
  EXPECT_EQ(json["servers"]["b"]["sessions"], nlohmann::json::parse("[null, 1]"));
}

TEST(StatusHistoryTest, KeepsTenMinutesAndDropsServersGoneForAllOfThem) {
  StatusHistory history;
  history.Record(0, {{"gone", Point{1, std::nullopt}}, {"kept", Point{0, std::nullopt}}});
  for (int64_t i = 1; i <= 700; ++i) {
    history.Record(i * 1000, {{"kept", Point{static_cast<uint64_t>(i), std::nullopt}}});
  }
  const nlohmann::json json = history.Json();
  EXPECT_FALSE(json["servers"].contains("gone"));
  const nlohmann::json& kept = json["servers"]["kept"]["sessions"];
  ASSERT_EQ(kept.size(), StatusHistory::kSamples);
  EXPECT_EQ(kept.front(), 101);
  EXPECT_EQ(kept.back(), 700);
}

}  // namespace
}  // namespace cb::daemon
