#include "sidecar/cache/applied_requests.h"

#include <gtest/gtest.h>

namespace cb::cache {
namespace {

protocol::RequestId Id(uint64_t sequence, uint32_t origin = 3, uint64_t incarnation = 7) {
  return protocol::RequestId{origin, incarnation, sequence};
}

TEST(AppliedRequestsTest, RemembersTheFirstAnswerOfEachId) {
  AppliedRequests applied(2000, 100);
  applied.Remember(Id(1), "STORED\r\n", 0);
  applied.Remember(Id(2), "43\r\n", 0);
  applied.Remember(Id(1), "NOT_STORED\r\n", 5);  // the same write again: the first answer stays
  ASSERT_NE(applied.Find(Id(1), 10), nullptr);
  EXPECT_EQ(*applied.Find(Id(1), 10), "STORED\r\n");
  EXPECT_EQ(*applied.Find(Id(2), 10), "43\r\n");
  EXPECT_EQ(applied.size(), 2u);
}

TEST(AppliedRequestsTest, IdsOfOtherServersAndStartsAreOtherWrites) {
  AppliedRequests applied(2000, 100);
  applied.Remember(Id(1, 3, 7), "STORED\r\n", 0);
  EXPECT_EQ(applied.Find(Id(1, 4, 7), 0), nullptr) << "another origin";
  EXPECT_EQ(applied.Find(Id(1, 3, 8), 0), nullptr) << "the origin's next start";
  EXPECT_NE(applied.Find(Id(1, 3, 7), 0), nullptr);
}

TEST(AppliedRequestsTest, NoIdIsNeverRemembered) {
  AppliedRequests applied(2000, 100);
  applied.Remember(protocol::RequestId{}, "STORED\r\n", 0);
  EXPECT_EQ(applied.size(), 0u);
  EXPECT_EQ(applied.Find(protocol::RequestId{}, 0), nullptr);
}

TEST(AppliedRequestsTest, ForgetsAfterTheTimeANoRetryCanComeLater) {
  AppliedRequests applied(2000, 100);
  applied.Remember(Id(1), "DELETED\r\n", 1000);
  applied.Remember(Id(2), "DELETED\r\n", 2500);
  EXPECT_NE(applied.Find(Id(1), 3000), nullptr) << "exactly the time: still kept";
  EXPECT_EQ(applied.Find(Id(1), 3001), nullptr);
  EXPECT_NE(applied.Find(Id(2), 3001), nullptr);
  EXPECT_EQ(applied.size(), 1u);
}

TEST(AppliedRequestsTest, AtMostMaxEntriesTheOldestGoFirstAndAreCounted) {
  AppliedRequests applied(60'000, 3);
  for (uint64_t sequence = 1; sequence <= 5; ++sequence) applied.Remember(Id(sequence), "ok", 0);
  EXPECT_EQ(applied.size(), 3u);
  EXPECT_EQ(applied.forgotten_early(), 2u);
  EXPECT_EQ(applied.Find(Id(1), 0), nullptr);
  EXPECT_EQ(applied.Find(Id(2), 0), nullptr);
  for (uint64_t sequence = 3; sequence <= 5; ++sequence) {
    EXPECT_NE(applied.Find(Id(sequence), 0), nullptr) << sequence;
  }
}

TEST(AppliedRequestsTest, AForgottenWriteIsRunAgainAndRememberedAnew) {
  AppliedRequests applied(2000, 100);
  applied.Remember(Id(1), "STORED\r\n", 0);
  applied.Forget(Id(1));
  EXPECT_EQ(applied.Find(Id(1), 10), nullptr);
  applied.Remember(Id(1), "SERVER_ERROR x\r\n", 1500);
  // The first entry's time passing does not take the second with it.
  ASSERT_NE(applied.Find(Id(1), 2500), nullptr);
  EXPECT_EQ(*applied.Find(Id(1), 2500), "SERVER_ERROR x\r\n");
  EXPECT_EQ(applied.Find(Id(1), 3501), nullptr);
  EXPECT_EQ(applied.forgotten_early(), 0u);
}

}  // namespace
}  // namespace cb::cache
