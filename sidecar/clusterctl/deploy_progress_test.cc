#include "sidecar/clusterctl/deploy_progress.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace cb {
namespace {

using nlohmann::json;

const std::string kShop = "production/webapp/default/shop";
const std::string kNew = "1111111111222222222233333333334444444444";
const std::string kOld = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd";

// A GET /status answer: servers as (id, state, commit, error).
json Status(const std::vector<std::vector<std::string>>& servers) {
  json status = {{"id", "app-a"}, {"servers", json::array()}};
  int index = 0;
  for (const auto& s : servers) {
    json row = {{"id", s[0]}, {"index", index++}, {"state", s[1]}};
    if (!s[2].empty() || !s[3].empty()) {
      row["deployed"] = {{kShop, {{"commit", s[2]}, {"error", s[3]}}}};
    }
    status["servers"].push_back(row);
  }
  return status;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string LineStartingWith(const std::string& text, const std::string& prefix) {
  for (const std::string& line : Lines(text)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

TEST(ConvergenceTest, CountsUpAndDrainingServersOnly) {
  const Convergence c = ReadConvergence(Status({{"app-a", "up", kNew, ""},
                                                {"app-b", "draining", kNew, ""},
                                                {"app-c", "up", kOld, ""},
                                                {"app-d", "up", kOld, "checkout: disk full"},
                                                {"app-e", "down", "", ""}}),
                                        kShop, kNew);
  ASSERT_EQ(c.servers.size(), 5u);
  EXPECT_EQ(c.total(), 4);
  EXPECT_EQ(c.converged(), 2);
  EXPECT_EQ(c.failed(), 1);
  EXPECT_FALSE(c.settled());  // app-c may still catch up
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.servers[2].outcome, ServerOutcome::kBehind);
  EXPECT_EQ(c.servers[3].outcome, ServerOutcome::kFailed);
  EXPECT_EQ(c.servers[3].error, "checkout: disk full");
  EXPECT_FALSE(c.servers[4].counted());
}

TEST(ConvergenceTest, AnErrorFromBeforeTheDeployIsNotThisDeploysFailure) {
  const json before = Status({{"app-a", "up", kOld, "activate: exit 1"}});
  const auto errors = ReadDeployErrors(before, kShop);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors.at("app-a"), "activate: exit 1");
  EXPECT_EQ(ReadConvergence(before, kShop, kNew, errors).servers[0].outcome,
            ServerOutcome::kBehind);
  const json later = Status({{"app-a", "up", kOld, "activate: exit 2"}});
  EXPECT_EQ(ReadConvergence(later, kShop, kNew, errors).servers[0].outcome, ServerOutcome::kFailed);
  const json done = Status({{"app-a", "up", kNew, "activate: exit 1"}});
  EXPECT_EQ(ReadConvergence(done, kShop, kNew, errors).servers[0].outcome, ServerOutcome::kCurrent);
}

TEST(ConvergenceTest, SettledWhenEveryCountedServerIsCurrentOrFailed) {
  const Convergence c = ReadConvergence(Status({{"app-a", "up", kNew, ""},
                                                {"app-b", "up", kOld, "no space"},
                                                {"app-c", "down", "", ""}}),
                                        kShop, kNew);
  EXPECT_TRUE(c.settled());
  EXPECT_FALSE(c.ok());
  const Convergence all = ReadConvergence(Status({{"app-a", "up", kNew, ""}}), kShop, kNew);
  EXPECT_TRUE(all.settled());
  EXPECT_TRUE(all.ok());
}

TEST(ConvergenceTest, MalformedStatusNeverThrows) {
  for (
      const char* text :
      {"null", "[]", R"({"servers": 3})", R"({"servers": [1, null, "x"]})",
       R"({"servers": [{"id": 4, "state": [], "deployed": {"production/webapp/default/shop": 7}}]})",
       R"({"servers": [{"deployed": []}]})"}) {
    EXPECT_NO_THROW({
      const Convergence c = ReadConvergence(json::parse(text), kShop, kNew);
      RenderConvergenceLine(c);
      RenderConvergenceSummary(c, true);
      ReadDeployErrors(json::parse(text), kShop);
    }) << text;
  }
}

TEST(ProgressRenderingTest, UploadLineInMebibytes) {
  EXPECT_EQ(RenderUploadLine(12'897'485, 52'428'800), "uploading 12.3/50.0 MiB");
  EXPECT_EQ(RenderUploadLine(0, 0), "uploading 0.0/0.0 MiB");
}

TEST(ProgressRenderingTest, ConvergenceLineMarksEachCountedServer) {
  const Convergence c = ReadConvergence(Status({{"app-a", "up", kNew, ""},
                                                {"app-b", "draining", kNew, ""},
                                                {"app-c", "up", "", ""},
                                                {"app-d", "up", kOld, ""},
                                                {"app-e", "up", kOld, "disk full"},
                                                {"app-f", "down", "", ""}}),
                                        kShop, kNew);
  EXPECT_EQ(RenderConvergenceLine(c),
            "converged 2/5: app-a \u2713 app-b \u2713 app-c \u2026 app-d \u2026 app-e \u2717");
}

TEST(ProgressRenderingTest, SummaryTableSaysWhoIsCurrentFailedOrBehind) {
  const Convergence c = ReadConvergence(Status({{"app-a", "up", kNew, ""},
                                                {"app-b", "up", kOld, "checkout: no space"},
                                                {"app-c", "up", kOld, ""},
                                                {"app-d", "down", "", ""}}),
                                        kShop, kNew);
  const std::string summary = RenderConvergenceSummary(c, true);
  EXPECT_EQ(Lines(summary)[0].rfind("SERVER", 0), 0u) << summary;
  const std::string a = LineStartingWith(summary, "app-a ");
  EXPECT_NE(a.find(" up "), std::string::npos) << a;
  EXPECT_NE(a.find(" 1111111111 "), std::string::npos) << a;
  EXPECT_TRUE(a.ends_with(" current")) << a;
  EXPECT_TRUE(LineStartingWith(summary, "app-b ").ends_with(" failed: checkout: no space"))
      << summary;
  EXPECT_NE(LineStartingWith(summary, "app-b ").find(" aaaaaaaaaa "), std::string::npos);
  EXPECT_TRUE(LineStartingWith(summary, "app-c ").ends_with(" behind")) << summary;
  EXPECT_TRUE(LineStartingWith(summary, "app-d ").ends_with(" not waited for (down)")) << summary;
  EXPECT_EQ(Lines(summary).back(), "1/3 servers converged; not converged (timed out): app-b app-c");
}

TEST(ProgressRenderingTest, StoredLineForNewUnchangedAndRollback) {
  const json stored = {{"deployment", kShop}, {"commit", kNew},
                       {"tree", kOld},        {"unchanged", false},
                       {"version", "1.2"},    {"files", 3},
                       {"bytes", 1572864},    {"stored_on", {"app-a", "app-b"}}};
  EXPECT_EQ(RenderStoredLine(stored, "shop"),
            "stored production/webapp/default/shop as 1111111111 (version 1.2), 3 files, 1.5 MiB, "
            "on app-a app-b");
  json unchanged = stored;
  unchanged["unchanged"] = true;
  EXPECT_EQ(RenderStoredLine(unchanged, "shop"), "unchanged: shop is already 1111111111");
  const json rollback = {{"deployment", kShop}, {"commit", kNew}, {"to", kOld}, {"tree", kOld}};
  EXPECT_EQ(RenderStoredLine(rollback, "shop"),
            "rolled back production/webapp/default/shop to aaaaaaaaaa as 1111111111");
}

TEST(EventLinesTest, OneJsonObjectPerLineWithAnEventField) {
  EXPECT_EQ(UploadedEvent(1234), "{\"bytes\":1234,\"event\":\"uploaded\"}\n");
  const json stored = json::parse(
      StoredEvent({{"deployment", kShop}, {"commit", kNew}, {"unchanged", true}, {"files", 3}}));
  EXPECT_EQ(
      stored,
      (json{{"event", "stored"}, {"deployment", kShop}, {"commit", kNew}, {"unchanged", true}}));

  ServerProgress server{"app-b", "up", kOld, "checkout: no space", ServerOutcome::kFailed};
  const std::string line = ServerEvent(server);
  ASSERT_TRUE(line.ends_with("\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const json event = json::parse(line);
  EXPECT_EQ(event["event"], "server");
  EXPECT_EQ(event["id"], "app-b");
  EXPECT_EQ(event["commit"], kOld);
  EXPECT_EQ(event["state"], "failed");
  EXPECT_EQ(event["error"], "checkout: no space");

  const Convergence c =
      ReadConvergence(Status({{"app-a", "up", kNew, ""}, {"app-b", "up", kOld, ""}}), kShop, kNew);
  EXPECT_EQ(
      json::parse(DoneEvent(c, true)),
      (json{
          {"event", "done"}, {"converged", 1}, {"total", 2}, {"ok", false}, {"timed_out", true}}));
}

TEST(EventLinesTest, ErrorsThatAreNotUtf8AreReplacedNotThrown) {
  ServerProgress server{"app-a", "up", "", "\xff\xfe: name is not UTF-8", ServerOutcome::kFailed};
  std::string line;
  EXPECT_NO_THROW(line = ServerEvent(server));
  EXPECT_NE(line.find("name is not UTF-8"), std::string::npos) << line;
}

TEST(EventLinesTest, ChangedServersAreTheNewAndTheDifferent) {
  const Convergence before =
      ReadConvergence(Status({{"app-a", "up", kOld, ""}, {"app-b", "up", kOld, ""}}), kShop, kNew);
  const Convergence now = ReadConvergence(
      Status({{"app-a", "up", kNew, ""}, {"app-b", "up", kOld, ""}, {"app-c", "up", "", ""}}),
      kShop, kNew);
  const auto changed = ChangedServers(before, now);
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_EQ(changed[0].id, "app-a");
  EXPECT_EQ(changed[0].outcome, ServerOutcome::kCurrent);
  EXPECT_EQ(changed[1].id, "app-c");
  EXPECT_TRUE(ChangedServers(now, now).empty());
}

TEST(DeploymentsTableTest, ListsVersionsWithTheCurrentOneMarked) {
  const json deployments = json::parse(R"({"deployments":[{
    "name":"production/webapp/default/shop","webapp":"shop","stage":"production",
    "host":"default","current":"aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd",
    "versions":[
      {"commit":"1111111111222222222233333333334444444444","tree":"t1","author":"ann <ann@h>",
       "time_unix_s":1714564800,"message":"new cart\nsecond line","version":"1.3"},
      {"commit":"aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd","tree":"t0","author":"bob <bob@h>",
       "time_unix_s":1714478400,"message":"first","version":null}]}]})");
  const std::string table = RenderDeploymentsTable(deployments);
  EXPECT_EQ(Lines(table)[0], "production/webapp/default/shop  (current aaaaaaaaaa)") << table;
  const std::string newer = LineStartingWith(table, "     1111111111");
  EXPECT_NE(newer.find("1.3"), std::string::npos) << table;
  EXPECT_NE(newer.find("2024-05-01T12:00:00Z"), std::string::npos) << newer;
  EXPECT_NE(newer.find("ann <ann@h>"), std::string::npos) << newer;
  EXPECT_TRUE(newer.ends_with("new cart")) << newer;
  const std::string current = LineStartingWith(table, "  *  aaaaaaaaaa");
  EXPECT_NE(current.find("2024-04-30T12:00:00Z"), std::string::npos) << table;
  EXPECT_TRUE(current.ends_with("first")) << current;
  EXPECT_EQ(RenderDeploymentsTable(json::parse(R"({"deployments":[]})")), "no deployments\n");
  EXPECT_NO_THROW(RenderDeploymentsTable(json::parse(R"({"deployments":[1,{"versions":7}]})")));
}

}  // namespace
}  // namespace cb
