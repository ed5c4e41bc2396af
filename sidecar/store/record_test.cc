#include "sidecar/store/record.h"

#include <gtest/gtest.h>

namespace cb::store {
namespace {

TEST(VersionTest, OrdersByClockThenServer) {
  EXPECT_LT((Version{5, 2}), (Version{6, 0}));
  EXPECT_LT((Version{5, 0}), (Version{5, 1}));
  EXPECT_LT(Version{}, (Version{1, 0}));
  EXPECT_TRUE(Version{}.is_null());
  EXPECT_EQ((Version{5, 1}), (Version{5, 1}));
}

TEST(VersionTest, CasTokensTellVersionsApartAndAreNeverZero) {
  EXPECT_EQ((Version{7, 1}).CasToken(), (Version{7, 1}).CasToken());
  EXPECT_NE((Version{7, 1}).CasToken(), (Version{7, 2}).CasToken());
  EXPECT_NE((Version{7, 1}).CasToken(), (Version{8, 1}).CasToken());
  EXPECT_NE(Version{}.CasToken(), 0u);
}

TEST(RecordTest, GoneWhenDeletedOrExpired) {
  Record record;
  EXPECT_FALSE(record.IsGoneAt(1'000));
  record.expiry_unix_ms = 2'000;
  EXPECT_FALSE(record.IsGoneAt(1'999));
  EXPECT_TRUE(record.IsGoneAt(2'000));
  record.expiry_unix_ms = 0;
  record.deleted = true;
  EXPECT_TRUE(record.IsGoneAt(0));
}

}  // namespace
}  // namespace cb::store
