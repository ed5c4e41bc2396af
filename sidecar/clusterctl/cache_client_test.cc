#include "sidecar/clusterctl/cache_client.h"

#include <gtest/gtest.h>

namespace cb {
namespace {

TEST(CacheClientTest, BuildsRequestsWithTheCachePrefix) {
  EXPECT_EQ(*BuildCacheRequest(CacheVerb::kGet, "session", "abc"), "get session:abc\r\n");
  EXPECT_EQ(*BuildCacheRequest(CacheVerb::kDelete, "default", "k"), "delete default:k\r\n");
  EXPECT_EQ(*BuildCacheRequest(CacheVerb::kSet, "session", "abc", "hi there", 60),
            "set session:abc 0 60 8\r\nhi there\r\n");
  EXPECT_FALSE(BuildCacheRequest(CacheVerb::kGet, "session", "").ok());
  EXPECT_FALSE(BuildCacheRequest(CacheVerb::kGet, "session", "a b").ok());
  EXPECT_FALSE(BuildCacheRequest(CacheVerb::kGet, "session", std::string(250, 'k')).ok());
}

TEST(CacheClientTest, KnowsWhenAReplyIsWhole) {
  EXPECT_FALSE(CacheReplyComplete(CacheVerb::kGet, "VALUE session:a 0 5\r\nhel"));
  EXPECT_FALSE(CacheReplyComplete(CacheVerb::kGet, "VALUE session:a 0 5\r\nhello\r\n"));
  EXPECT_TRUE(CacheReplyComplete(CacheVerb::kGet, "VALUE session:a 0 5\r\nhello\r\nEND\r\n"));
  EXPECT_TRUE(CacheReplyComplete(CacheVerb::kGet, "END\r\n"));
  EXPECT_FALSE(CacheReplyComplete(CacheVerb::kSet, "STOR"));
  EXPECT_TRUE(CacheReplyComplete(CacheVerb::kSet, "SERVER_ERROR no triad server is ready\r\n"));
}

TEST(CacheClientTest, ParsesValuesMissesAndErrors) {
  Result<std::optional<std::string>> hit =
      ParseCacheReply(CacheVerb::kGet, "VALUE session:a 0 6\r\nx\r\ny z\r\nEND\r\n");
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  EXPECT_EQ(**hit, "x\r\ny z");  // the data may hold "\r\n"
  EXPECT_FALSE(ParseCacheReply(CacheVerb::kGet, "END\r\n")->has_value());
  EXPECT_TRUE(ParseCacheReply(CacheVerb::kSet, "STORED\r\n").ok());
  EXPECT_EQ(ParseCacheReply(CacheVerb::kDelete, "NOT_FOUND\r\n").status().code(),
            Status::Code::kNotFound);
  Result<std::optional<std::string>> error =
      ParseCacheReply(CacheVerb::kSet, "SERVER_ERROR object too large for cache\r\n");
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().message(), "SERVER_ERROR object too large for cache");
  EXPECT_FALSE(ParseCacheReply(CacheVerb::kGet, "VALUE session:a 0 9\r\nshort\r\nEND\r\n").ok());
}

}  // namespace
}  // namespace cb
