#include "sidecar/cache/spoke_cache.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "sidecar/store/record_codec.h"

namespace cb::cache {
namespace {

store::Record Value(std::string value, uint64_t clock = 1) {
  store::Record record;
  record.value = std::move(value);
  record.version = store::Version{clock, 0};
  return record;
}

TEST(SpokeCacheTest, RemembersAndForgets) {
  SpokeCache cache(1000);
  EXPECT_EQ(cache.Find("session", "a"), nullptr);
  cache.Remember("session", "a", Value("one", 5));
  const store::Record* found = cache.Find("session", "a");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->value, "one");
  EXPECT_EQ(found->version.clock, 5u);
  EXPECT_EQ(cache.Find("objects", "a"), nullptr);  // caches are apart
  cache.Remember("session", "a", Value("two", 6));
  EXPECT_EQ(cache.Find("session", "a")->value, "two");
  EXPECT_EQ(cache.size(), 1u);
  cache.Forget("session", "a");
  EXPECT_EQ(cache.Find("session", "a"), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
  cache.Forget("session", "never");  // nothing to forget: no harm
}

TEST(SpokeCacheTest, BytesCountNameSeparatorKeyAndValue) {
  SpokeCache cache(1000);
  cache.Remember("session", "key", Value("12345"));
  EXPECT_EQ(cache.bytes(), 7u + 1u + 3u + 5u);
  cache.Remember("objects", "", Value("x"));
  EXPECT_EQ(cache.bytes(), 16u + 7u + 1u + 0u + 1u);
  cache.Remember("session", "key", Value(""));
  EXPECT_EQ(cache.bytes(), 11u + 9u);
}

TEST(SpokeCacheTest, LeastRecentlyUsedGoesFirst) {
  // Each entry: "c" + '\0' + one-byte key + 7-byte value = 10 bytes.
  SpokeCache cache(30);
  cache.Remember("c", "1", Value("aaaaaaa"));
  cache.Remember("c", "2", Value("bbbbbbb"));
  cache.Remember("c", "3", Value("ccccccc"));
  EXPECT_EQ(cache.bytes(), 30u);
  ASSERT_NE(cache.Find("c", "1"), nullptr);  // 1 is now the most recent
  cache.Remember("c", "4", Value("ddddddd"));
  EXPECT_EQ(cache.Find("c", "2"), nullptr);
  EXPECT_NE(cache.Find("c", "1"), nullptr);
  EXPECT_NE(cache.Find("c", "3"), nullptr);
  EXPECT_NE(cache.Find("c", "4"), nullptr);
  EXPECT_EQ(cache.bytes(), 30u);
}

TEST(SpokeCacheTest, RecordLargerThanTheWholeCacheIsNotKept) {
  SpokeCache cache(20);
  cache.Remember("c", "small", Value("v"));
  cache.Remember("c", "big", Value(std::string(50, 'x')));
  EXPECT_EQ(cache.Find("c", "big"), nullptr);
  EXPECT_NE(cache.Find("c", "small"), nullptr);
  // Replacing a kept copy with one too large drops the old copy too.
  cache.Remember("c", "small", Value(std::string(50, 'x')));
  EXPECT_EQ(cache.Find("c", "small"), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(SpokeCacheTest, ForgetCacheForgetsThatCacheOnly) {
  SpokeCache cache(1000);
  cache.Remember("session", "a", Value("1"));
  cache.Remember("session", "b", Value("2"));
  cache.Remember("sessions", "a", Value("3"));
  cache.Remember("objects", "session", Value("4"));
  cache.ForgetCache("session");
  EXPECT_EQ(cache.Find("session", "a"), nullptr);
  EXPECT_EQ(cache.Find("session", "b"), nullptr);
  EXPECT_NE(cache.Find("sessions", "a"), nullptr);
  EXPECT_NE(cache.Find("objects", "session"), nullptr);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.bytes(), (8u + 1u + 1u + 1u) + (7u + 1u + 7u + 1u));
}

TEST(SpokeCacheTest, RememberingACopyOfItsOwnEntryIsSafe) {
  SpokeCache cache(1000);
  cache.Remember("c", "k", Value("value", 3));
  cache.Remember("c", "k", *cache.Find("c", "k"));
  ASSERT_NE(cache.Find("c", "k"), nullptr);
  EXPECT_EQ(cache.Find("c", "k")->value, "value");
  EXPECT_EQ(cache.bytes(), 1u + 1u + 1u + 5u);
}

protocol::CacheOpReply Reply(std::string line, bool found = false, bool unchanged = false,
                             std::string record = "") {
  protocol::CacheOpReply reply;
  reply.id = 7;
  reply.reply = std::move(line);
  reply.found = found;
  reply.unchanged = unchanged;
  reply.record = std::move(record);
  return reply;
}

TEST(SpokeCacheTest, OwnersFoundRecordIsKept) {
  SpokeCache cache(1000);
  const store::Record record = Value("fresh", 9);
  const protocol::CacheOpReply reply = Reply("", true, false, store::EncodeRecord(record));
  const protocol::CacheOpReply seen =
      cache.OnOwnerReply("c", "k", memcache::Command::kGet, std::nullopt, reply);
  EXPECT_EQ(seen.record, reply.record);
  EXPECT_TRUE(seen.found);
  ASSERT_NE(cache.Find("c", "k"), nullptr);
  EXPECT_EQ(cache.Find("c", "k")->value, "fresh");
  EXPECT_EQ(cache.validated(), 0u);
}

TEST(SpokeCacheTest, UnchangedBecomesTheFullReplyFromTheCopy) {
  SpokeCache cache(1000);
  const store::Record copy = Value("held", 4);
  cache.Remember("c", "k", copy);
  const protocol::CacheOpReply seen =
      cache.OnOwnerReply("c", "k", memcache::Command::kGets, copy, Reply("", true, true));
  EXPECT_EQ(seen.id, 7u);
  EXPECT_TRUE(seen.found);
  EXPECT_FALSE(seen.unchanged);
  EXPECT_EQ(seen.record, store::EncodeRecord(copy));
  EXPECT_EQ(cache.validated(), 1u);
  EXPECT_NE(cache.Find("c", "k"), nullptr);
}

TEST(SpokeCacheTest, MissErrorOrWriteForgetsTheCopy) {
  SpokeCache cache(1000);
  const store::Record copy = Value("held", 4);
  cache.Remember("c", "k", copy);
  EXPECT_EQ(cache.OnOwnerReply("c", "k", memcache::Command::kGet, copy, Reply("")).found, false);
  EXPECT_EQ(cache.Find("c", "k"), nullptr);

  cache.Remember("c", "k", copy);
  const protocol::CacheOpReply error = Reply("SERVER_ERROR no triad server is ready\r\n");
  EXPECT_EQ(cache.OnOwnerReply("c", "k", memcache::Command::kGet, copy, error).reply, error.reply);
  EXPECT_EQ(cache.Find("c", "k"), nullptr);

  cache.Remember("c", "k", copy);
  EXPECT_EQ(cache.OnOwnerReply("c", "k", memcache::Command::kSet, std::nullopt, Reply("STORED\r\n"))
                .reply,
            "STORED\r\n");
  EXPECT_EQ(cache.Find("c", "k"), nullptr);
  // gat changes the record (its expiry, its version): the copy goes too.
  cache.Remember("c", "k", copy);
  cache.OnOwnerReply("c", "k", memcache::Command::kGat, std::nullopt,
                     Reply("", true, false, store::EncodeRecord(Value("held", 5))));
  EXPECT_EQ(cache.Find("c", "k"), nullptr);
  EXPECT_EQ(cache.validated(), 0u);
}

}  // namespace
}  // namespace cb::cache
