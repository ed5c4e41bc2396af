#include "sidecar/clusterctl/drain_wait.h"

#include <gtest/gtest.h>

#include <deque>
#include <sstream>

namespace cb {
namespace {

nlohmann::json StatusWith(const std::string& state, nlohmann::json sessions) {
  return {{"servers",
           {{{"id", "s0"}, {"state", "up"}, {"sessions", 5}},
            {{"id", "s4"}, {"state", state}, {"sessions", sessions}}}}};
}

// A scripted sidecar and a fake clock that each sleep moves on.
struct Script {
  std::deque<Result<nlohmann::json>> answers;
  std::chrono::steady_clock::time_point clock{};
  int sleeps = 0;

  DrainWaitHooks Hooks() {
    return {[this]() -> Result<nlohmann::json> {
              Result<nlohmann::json> next = answers.front();
              if (answers.size() > 1) answers.pop_front();
              return next;
            },
            [this] { return clock; },
            [this](std::chrono::milliseconds step) {
              clock += step;
              ++sleeps;
            }};
  }
};

int Wait(Script& script, std::ostringstream& out, std::ostringstream& err,
         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return WaitForDrain("s4", timeout, std::chrono::milliseconds(100), script.Hooks(), out, err);
}

TEST(DrainWaitTest, PrintsTheCountAsItFallsAndEndsAtZero) {
  Script script;
  script.answers = {StatusWith("draining", nullptr), StatusWith("draining", 200),
                    StatusWith("draining", 200),     StatusWith("draining", 3),
                    StatusWith("draining", 1),       StatusWith("draining", 0)};
  std::ostringstream out, err;
  EXPECT_EQ(Wait(script, out, err), 0);
  EXPECT_EQ(out.str(),
            "s4: waiting for the triad's session count\n"
            "s4: 200 live sessions\n"
            "s4: 3 live sessions\n"
            "s4: 1 live session\n"
            "s4: drained, no live session left\n");
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(script.sleeps, 5);
}

TEST(DrainWaitTest, TimeoutSaysHowManyRemain) {
  Script script;
  script.answers = {StatusWith("draining", 7)};
  std::ostringstream out, err;
  EXPECT_EQ(Wait(script, out, err, std::chrono::seconds(1)), kDrainWaitTimedOut);
  EXPECT_EQ(err.str(), "clusterctl: s4: timed out with 7 live sessions remaining\n");
  EXPECT_EQ(script.sleeps, 10);
}

TEST(DrainWaitTest, DownEndsTheWaitEnabledAgainOrUnknownIsAnError) {
  {
    Script script;
    script.answers = {StatusWith("down", 12)};
    std::ostringstream out, err;
    EXPECT_EQ(Wait(script, out, err), 0);
    EXPECT_EQ(out.str(), "s4: down; its sessions go to their backups\n");
  }
  {
    // A spoke shows the drain once the triad's view comes back: "up" first is fine.
    Script script;
    script.answers = {StatusWith("up", 2), StatusWith("up", 2), StatusWith("draining", 0)};
    std::ostringstream out, err;
    EXPECT_EQ(Wait(script, out, err), 0);
    EXPECT_EQ(out.str(),
              "s4: waiting for the drain to reach the view\n"
              "s4: drained, no live session left\n");
  }
  {
    Script script;
    script.answers = {StatusWith("draining", 2), StatusWith("up", 2)};
    std::ostringstream out, err;
    EXPECT_EQ(Wait(script, out, err), 1);
    EXPECT_NE(err.str().find("s4 is up again"), std::string::npos) << err.str();
  }
  {
    Script script;
    script.answers = {nlohmann::json{{"servers", nlohmann::json::array()}}};
    std::ostringstream out, err;
    EXPECT_EQ(Wait(script, out, err), 1);
    EXPECT_NE(err.str().find("no such server"), std::string::npos) << err.str();
  }
}

TEST(DrainWaitTest, AFailingSidecarIsRetriedUntilTheTimeout) {
  Script script;
  script.answers = {Status::IoError("connection refused"), StatusWith("draining", 0)};
  std::ostringstream out, err;
  EXPECT_EQ(Wait(script, out, err), 0);
  Script failing;
  failing.answers = {Status::IoError("connection refused")};
  std::ostringstream out2, err2;
  EXPECT_EQ(Wait(failing, out2, err2, std::chrono::milliseconds(300)), 1);
  EXPECT_NE(err2.str().find("connection refused"), std::string::npos) << err2.str();
}

TEST(DrainWaitTest, ObserveDrainIsLenient) {
  EXPECT_FALSE(ObserveDrain(nlohmann::json("x"), "s4").known);
  EXPECT_FALSE(ObserveDrain({{"servers", 3}}, "s4").known);
  EXPECT_FALSE(
      ObserveDrain(nlohmann::json::parse(R"({"servers": [{"id": 4, "state": 1}]})"), "s4").known);
  EXPECT_EQ(
      ObserveDrain(nlohmann::json::parse(R"({"servers": [{"id": "s4", "state": 1}]})"), "s4").state,
      "");
  const DrainObservation seen = ObserveDrain(StatusWith("draining", "many"), "s4");
  EXPECT_TRUE(seen.known);
  EXPECT_FALSE(seen.sessions.has_value());
}

}  // namespace
}  // namespace cb
