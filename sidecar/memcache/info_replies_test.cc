#include "sidecar/memcache/info_replies.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sidecar/memcache/version.h"

namespace cb::memcache {
namespace {

Request Of(Command command, std::vector<std::string> keys = {}, bool noreply = false) {
  Request request;
  request.command = command;
  request.keys = std::move(keys);
  request.noreply = noreply;
  return request;
}

// Stats that the test checks were (or were not) asked for.
struct StatsSource {
  int calls = 0;
  ServerStats stats;
  std::function<ServerStats()> Fn() {
    return [this] {
      ++calls;
      return stats;
    };
  }
};

TEST(InfoRepliesTest, VersionIsTheProjectVersion) {
  const std::string expected = "VERSION cluster-balance-" + std::string(kProjectVersion) + "\r\n";
  EXPECT_EQ(VersionReply(), expected);
  StatsSource source;
  EXPECT_EQ(InfoReply(Of(Command::kVersion), source.Fn()), expected);
  EXPECT_EQ(source.calls, 0);
  // The client libraries read the version as one token.
  EXPECT_EQ(VersionReply().find(' ', 8), std::string::npos);
  EXPECT_FALSE(kProjectVersion.empty());
}

TEST(InfoRepliesTest, VerbosityIsOkOrSilent) {
  StatsSource source;
  EXPECT_EQ(InfoReply(Of(Command::kVerbosity), source.Fn()), "OK\r\n");
  EXPECT_EQ(InfoReply(Of(Command::kVerbosity, {}, true), source.Fn()), "");
  EXPECT_EQ(source.calls, 0);
}

TEST(InfoRepliesTest, StatsListsEveryCounterInMemcachedsOrder) {
  StatsSource source;
  source.stats = ServerStats{4242, 61, 1'700'000'000, 7, 300, 11, 5, 9, 2};
  EXPECT_EQ(InfoReply(Of(Command::kStats), source.Fn()),
            "STAT pid 4242\r\n"
            "STAT uptime 61\r\n"
            "STAT time 1700000000\r\n"
            "STAT version cluster-balance-" +
                std::string(kProjectVersion) +
                "\r\n"
                "STAT curr_items 7\r\n"
                "STAT bytes 300\r\n"
                "STAT cmd_get 11\r\n"
                "STAT cmd_set 5\r\n"
                "STAT get_hits 9\r\n"
                "STAT get_misses 2\r\n"
                "END\r\n");
  EXPECT_EQ(source.calls, 1);
}

TEST(InfoRepliesTest, StatsArguments) {
  StatsSource source;
  EXPECT_EQ(InfoReply(Of(Command::kStats, {"reset"}), source.Fn()), "RESET\r\n");
  for (const char* layout : {"settings", "items", "slabs", "sizes", "conns"}) {
    EXPECT_EQ(InfoReply(Of(Command::kStats, {layout}), source.Fn()), "END\r\n") << layout;
  }
  EXPECT_EQ(InfoReply(Of(Command::kStats, {"detail"}), source.Fn()), "ERROR\r\n");
  EXPECT_EQ(InfoReply(Of(Command::kStats, {"items", "extra"}), source.Fn()), "ERROR\r\n");
  EXPECT_EQ(source.calls, 0);
}

TEST(InfoRepliesTest, InfoCommands) {
  EXPECT_TRUE(IsInfoCommand(Command::kVersion));
  EXPECT_TRUE(IsInfoCommand(Command::kVerbosity));
  EXPECT_TRUE(IsInfoCommand(Command::kStats));
  for (Command other : {Command::kGet, Command::kSet, Command::kFlushAll, Command::kQuit}) {
    EXPECT_FALSE(IsInfoCommand(other)) << CommandName(other);
  }
}

}  // namespace
}  // namespace cb::memcache
