#include "sidecar/store/record_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sidecar/store/hybrid_clock.h"

namespace cb::store {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // a Unix time in ms

Version At(int64_t physical_ms, uint32_t server = 1, uint32_t logical = 0) {
  return Version{HybridClock::Compose(physical_ms, logical), server};
}

Record Value(std::string value, Version version, int64_t expiry_unix_ms = 0) {
  Record record;
  record.value = std::move(value);
  record.version = version;
  record.expiry_unix_ms = expiry_unix_ms;
  record.flags = 3;
  return record;
}

Record Tombstone(Version version) {
  Record record;
  record.version = version;
  record.deleted = true;
  return record;
}

class RecordStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "store_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string Dir(const std::string& name = "store") const { return (root_ / name).string(); }

  std::unique_ptr<RecordStore> OpenOrDie(const std::string& dir,
                                         const RecordStoreOptions& options = {}) {
    Result<std::unique_ptr<RecordStore>> store = RecordStore::Open(dir, options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static bool ApplyOrDie(RecordStore& store, std::string_view cache, std::string_view key,
                         const Record& record) {
    Result<bool> applied = store.Apply(cache, key, record);
    EXPECT_TRUE(applied.ok()) << applied.status().ToString();
    return applied.ok() && *applied;
  }

  static std::optional<Record> GetOrDie(const RecordStore& store, std::string_view cache,
                                        std::string_view key) {
    Result<std::optional<Record>> got = store.Get(cache, key);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::nullopt;
  }

  std::filesystem::path root_;
};

TEST_F(RecordStoreTest, GetReturnsWhatApplyStored) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  EXPECT_EQ(GetOrDie(*store, "session", "k"), std::nullopt);
  const Record record = Value(std::string("bytes\0with nul", 14), At(kT0), kT0 + 1000);
  EXPECT_TRUE(ApplyOrDie(*store, "session", "k", record));
  EXPECT_EQ(GetOrDie(*store, "session", "k"), record);
  EXPECT_EQ(GetOrDie(*store, "default", "k"), std::nullopt);  // caches are apart
  EXPECT_EQ(store->Stats("session"), (CacheStats{1, 0, 1 + 14, 0}));
}

TEST_F(RecordStoreTest, OnlyAHigherVersionReplacesTheStoredOne) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  EXPECT_TRUE(ApplyOrDie(*store, "c", "k", Value("v2", At(kT0, 2))));
  EXPECT_FALSE(ApplyOrDie(*store, "c", "k", Value("older", At(kT0, 1))));
  EXPECT_FALSE(ApplyOrDie(*store, "c", "k", Value("same version", At(kT0, 2))));
  EXPECT_EQ(GetOrDie(*store, "c", "k")->value, "v2");
  EXPECT_TRUE(ApplyOrDie(*store, "c", "k", Value("v3", At(kT0, 2, 1))));
  EXPECT_EQ(GetOrDie(*store, "c", "k")->value, "v3");
  EXPECT_EQ(store->Stats("c").records, 1u);
}

TEST_F(RecordStoreTest, TombstoneBeatsOlderWritesAndLosesToNewerOnes) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  EXPECT_TRUE(ApplyOrDie(*store, "c", "k", Value("v1", At(kT0))));
  EXPECT_TRUE(ApplyOrDie(*store, "c", "k", Tombstone(At(kT0 + 10))));
  EXPECT_FALSE(ApplyOrDie(*store, "c", "k", Value("late older write", At(kT0 + 5))));
  std::optional<Record> got = GetOrDie(*store, "c", "k");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->deleted);
  EXPECT_TRUE(got->IsGoneAt(kT0));
  EXPECT_EQ(store->Stats("c"), (CacheStats{0, 1, 0, 0}));

  EXPECT_TRUE(ApplyOrDie(*store, "c", "k", Value("newer", At(kT0 + 20))));
  EXPECT_EQ(GetOrDie(*store, "c", "k")->value, "newer");
  EXPECT_EQ(store->Stats("c"), (CacheStats{1, 0, 1 + 5, 0}));
}

TEST_F(RecordStoreTest, RejectsBadArgumentsWithoutWriting) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  Result<bool> null_version = store->Apply("c", "k", Value("v", Version{}));
  ASSERT_FALSE(null_version.ok());
  EXPECT_EQ(null_version.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(store->Apply("", "k", Value("v", At(kT0))).ok());
  EXPECT_FALSE(store->Apply(std::string(256, 'c'), "k", Value("v", At(kT0))).ok());
  EXPECT_TRUE(store->Apply(std::string(255, 'c'), "k", Value("v", At(kT0))).ok());
  EXPECT_FALSE(store->Get("", "k").ok());
  EXPECT_FALSE(store->FlushCache("c", Version{}).ok());

  // One bad write in a batch: nothing of the batch is written.
  const Record good = Value("v", At(kT0));
  const Record bad = Value("v", Version{});
  const std::vector<RecordWrite> writes = {{"b", "k1", &good}, {"b", "k2", &bad}};
  EXPECT_FALSE(store->ApplyBatch(writes).ok());
  EXPECT_EQ(GetOrDie(*store, "b", "k1"), std::nullopt);
  EXPECT_EQ(store->Stats("b"), CacheStats{});
}

// The records several writers might produce for a few keys, tombstones included,
// with repeats (a retry delivers the same record twice).
std::vector<std::pair<std::string, Record>> Contenders() {
  std::vector<std::pair<std::string, Record>> all;
  for (int k = 0; k < 6; ++k) {
    const std::string key = "key-" + std::to_string(k);
    for (int w = 0; w < 5; ++w) {
      const Version version = At(kT0 + (w * 7 + k * 3) % 11, static_cast<uint32_t>(w % 3), w);
      if ((w + k) % 4 == 0) {
        all.emplace_back(key, Tombstone(version));
      } else {
        all.emplace_back(key, Value("k" + std::to_string(k) + "w" + std::to_string(w), version,
                                    w == 2 ? kT0 + 500 : 0));
      }
    }
    all.push_back(all.back());
  }
  return all;
}

std::map<std::string, Record> Winners(const std::vector<std::pair<std::string, Record>>& all) {
  std::map<std::string, Record> winners;
  for (const auto& [key, record] : all) {
    auto [it, inserted] = winners.emplace(key, record);
    if (!inserted && it->second.version < record.version) {
      it->second = record;
    }
  }
  return winners;
}

TEST_F(RecordStoreTest, HighestVersionWinsWhateverTheOrder) {
  const auto all = Contenders();
  const auto winners = Winners(all);
  std::mt19937 random(2024);
  std::optional<std::array<uint64_t, RecordStore::kBuckets>> first_digests;
  for (int round = 0; round < 12; ++round) {
    auto order = all;
    std::shuffle(order.begin(), order.end(), random);
    auto store = OpenOrDie(Dir("round-" + std::to_string(round)));
    ASSERT_TRUE(store);
    if (round % 2 == 0) {
      for (const auto& [key, record] : order) {
        ASSERT_TRUE(store->Apply("c", key, record).ok());
      }
    } else {  // the same, as batches of 4
      for (std::size_t i = 0; i < order.size(); i += 4) {
        std::vector<RecordWrite> batch;
        for (std::size_t j = i; j < std::min(order.size(), i + 4); ++j) {
          batch.push_back(RecordWrite{"c", order[j].first, &order[j].second});
        }
        ASSERT_TRUE(store->ApplyBatch(batch).ok());
      }
    }
    CacheStats expected;
    for (const auto& [key, record] : winners) {
      EXPECT_EQ(GetOrDie(*store, "c", key), record) << "round " << round << " " << key;
      if (record.deleted) {
        ++expected.tombstones;
      } else {
        ++expected.records;
        expected.bytes += key.size() + record.value.size();
      }
    }
    EXPECT_EQ(store->Stats("c"), expected) << round;
    const auto digests = store->BucketDigests("c");
    if (!first_digests) {
      first_digests = digests;
    }
    EXPECT_EQ(digests, *first_digests) << round;
  }
}

TEST_F(RecordStoreTest, ApplyBatchComparesWritesOfTheSameKeyInOrder) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  ASSERT_TRUE(ApplyOrDie(*store, "c", "stored", Value("v5", At(kT0 + 5))));
  const Record v3 = Value("v3", At(kT0 + 3));
  const Record v7 = Value("v7", At(kT0 + 7));
  const Record v6 = Value("v6", At(kT0 + 6));
  const Record t9 = Tombstone(At(kT0 + 9));
  const std::vector<RecordWrite> writes = {{"c", "stored", &v3}, {"c", "new", &v7},
                                           {"c", "new", &v6},    {"c", "stored", &v6},
                                           {"c", "new", &t9},    {"c", "new", &v7}};
  Result<std::vector<bool>> applied = store->ApplyBatch(writes);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, (std::vector<bool>{false, true, false, true, true, false}));
  EXPECT_EQ(GetOrDie(*store, "c", "stored"), v6);
  EXPECT_EQ(GetOrDie(*store, "c", "new"), t9);
  EXPECT_EQ(store->Stats("c"), (CacheStats{1, 1, 6 + 2, 0}));
  Result<std::vector<bool>> none = store->ApplyBatch({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(RecordStoreTest, ReopenKeepsEverything) {
  const auto all = Contenders();
  std::array<uint64_t, RecordStore::kBuckets> digests{};
  CacheStats stats;
  {
    auto store = OpenOrDie(Dir());
    ASSERT_TRUE(store);
    for (const auto& [key, record] : all) {
      ASSERT_TRUE(store->Apply("c", key, record).ok());
    }
    ASSERT_TRUE(ApplyOrDie(*store, "session", "s", Value("x", At(kT0))));
    digests = store->BucketDigests("c");
    stats = store->Stats("c");
  }
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  for (const auto& [key, record] : Winners(all)) {
    EXPECT_EQ(GetOrDie(*store, "c", key), record) << key;
  }
  EXPECT_EQ(GetOrDie(*store, "session", "s")->value, "x");
  EXPECT_EQ(store->BucketDigests("c"), digests);
  EXPECT_EQ(store->Stats("c"), stats);
  EXPECT_EQ(store->Caches(), (std::vector<std::string>{"c", "session"}));
}

TEST_F(RecordStoreTest, SecondOpenOfTheSameDirFailsNamingIt) {
  auto first = OpenOrDie(Dir());
  ASSERT_TRUE(first);
  Result<std::unique_ptr<RecordStore>> second = RecordStore::Open(Dir());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_NE(second.status().message().find("store " + Dir() + ": cannot open"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("another process"), std::string::npos)
      << second.status().message();
  first.reset();
  EXPECT_TRUE(RecordStore::Open(Dir()).ok());  // the lock goes with the store
}

TEST_F(RecordStoreTest, OpenFailsWhileAnotherProcessHoldsTheLock) {
  { ASSERT_TRUE(OpenOrDie(Dir())); }
  const std::string lock_path = Dir() + "/LOCK";
  int ready[2];
  int release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // only async-signal-safe calls from here on
    const int fd = open(lock_path.c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    char byte = (fd >= 0 && fcntl(fd, F_SETLK, &lock) == 0) ? 'y' : 'n';
    if (write(ready[1], &byte, 1) != 1) _exit(2);
    if (read(release[0], &byte, 1) < 0) _exit(3);
    _exit(0);
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  EXPECT_EQ(byte, 'y');
  Result<std::unique_ptr<RecordStore>> store = RecordStore::Open(Dir());
  EXPECT_FALSE(store.ok());
  if (!store.ok()) {
    EXPECT_NE(store.status().message().find(Dir()), std::string::npos);
    EXPECT_NE(store.status().message().find("cluster-sidecar"), std::string::npos)
        << store.status().message();
  }
  ASSERT_EQ(write(release[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) close(fd);
  EXPECT_TRUE(RecordStore::Open(Dir()).ok());
}

TEST_F(RecordStoreTest, OpenFailsNamingAPathItCannotCreate) {
  Result<std::unique_ptr<RecordStore>> store = RecordStore::Open(Dir("missing/parent/store"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kIoError);
  EXPECT_NE(store.status().message().find(Dir("missing/parent/store")), std::string::npos)
      << store.status().message();
}

TEST_F(RecordStoreTest, GarbageInOneEntryAffectsThatKeyOnly) {
  const Record good = Value("good", At(kT0));
  std::array<uint64_t, RecordStore::kBuckets> digests{};
  {
    auto store = OpenOrDie(Dir());
    ASSERT_TRUE(store);
    ASSERT_TRUE(ApplyOrDie(*store, "c", "a", good));
    ASSERT_TRUE(ApplyOrDie(*store, "c", "z", good));
    digests = store->BucketDigests("c");
  }
  {
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), Dir(), &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    ASSERT_TRUE(
        db->Put(leveldb::WriteOptions(), RecordStore::StorageKey("c", "bad"), "\x01garbage").ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), RecordStore::StorageKey("c", "bad2"), "").ok());
  }
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  Result<std::optional<Record>> bad = store->Get("c", "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kIoError);
  EXPECT_NE(bad.status().message().find("key \"bad\""), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(GetOrDie(*store, "c", "a"), good);
  EXPECT_EQ(GetOrDie(*store, "c", "z"), good);
  EXPECT_EQ(store->Stats("c"), (CacheStats{2, 0, 2 * 5, 2}));
  EXPECT_EQ(store->BucketDigests("c"), digests);  // unreadable entries are not in the digests

  // The sweep and the bucket listing step over them.
  Result<SweepResult> swept = store->SweepExpired(kT0 + 100'000'000, 100);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->examined, 4u);
  EXPECT_EQ(swept->corrupt, 2u);
  EXPECT_EQ(swept->removed, 0u);
  int listed = 0;
  ASSERT_TRUE(store
                  ->ForEachInBucket("c", RecordStore::BucketOf("bad"),
                                    [&](std::string_view key, const Record&) {
                                      EXPECT_NE(key, "bad");
                                      ++listed;
                                      return true;
                                    })
                  .ok());

  // Any record repairs the entry, whatever its version.
  EXPECT_TRUE(ApplyOrDie(*store, "c", "bad", Value("fixed", At(1))));
  EXPECT_EQ(GetOrDie(*store, "c", "bad")->value, "fixed");
  EXPECT_EQ(store->Stats("c"), (CacheStats{3, 0, 2 * 5 + 3 + 5, 1}));
  ASSERT_TRUE(store->FlushCache("c", At(kT0 + 1)).ok());  // flush replaces the other
  EXPECT_EQ(store->Stats("c"), (CacheStats{0, 4, 0, 0}));
}

TEST_F(RecordStoreTest, SweepRemovesGoneRecordsAfterTheGraceInBoundedSteps) {
  constexpr int64_t kGrace = 60'000;
  auto store = OpenOrDie(Dir(), RecordStoreOptions{.tombstone_grace_ms = kGrace});
  ASSERT_TRUE(store);
  int keys = 0;
  for (int i = 0; i < 50; ++i) {  // expire at kT0
    ASSERT_TRUE(
        ApplyOrDie(*store, "session", "exp-" + std::to_string(i), Value("v", At(kT0 - 1000), kT0)));
    ++keys;
  }
  for (int i = 0; i < 20; ++i) {  // deleted at kT0 + 30 s
    ASSERT_TRUE(ApplyOrDie(*store, "default", "del-" + std::to_string(i),
                           Tombstone(At(kT0 + 30'000, 2, 5))));
    ++keys;
  }
  for (int i = 0; i < 13; ++i) {  // never expire, or much later
    ASSERT_TRUE(ApplyOrDie(*store, i % 2 ? "session" : "default",
                           std::string("live-") + static_cast<char>('a' + i),
                           Value("v", At(kT0), i % 3 ? 0 : kT0 + 10'000'000)));
    ++keys;
  }

  // Runs passes of steps of at most 7 until one wraps; returns what was removed.
  auto pass = [&](int64_t now) {
    std::size_t examined = 0;
    std::size_t removed = 0;
    for (int calls = 0; calls < 100; ++calls) {
      Result<SweepResult> step = store->SweepExpired(now, 7);
      EXPECT_TRUE(step.ok());
      if (!step.ok()) break;
      EXPECT_LE(step->examined, 7u);
      EXPECT_LE(step->removed, step->examined);
      examined += step->examined;
      removed += step->removed;
      if (step->wrapped) break;
    }
    return std::make_pair(examined, removed);
  };

  EXPECT_EQ(pass(kT0 + kGrace - 1), std::make_pair(std::size_t(keys), std::size_t{0}));
  EXPECT_EQ(store->Stats("session").records, 50u + 6u);

  // The expired records have been gone for the grace; the tombstones not yet.
  Result<SweepResult> first = store->SweepExpired(kT0 + kGrace, 7);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->examined, 7u);
  EXPECT_FALSE(first->wrapped);
  const auto rest = pass(kT0 + kGrace);
  EXPECT_EQ(first->examined + rest.first, std::size_t(keys));  // resumed, nothing twice
  EXPECT_EQ(first->removed + rest.second, 50u);
  EXPECT_EQ(store->Stats("session"), (CacheStats{6, 0, 6 * (6 + 1), 0}));
  EXPECT_EQ(store->Stats("default").tombstones, 20u);
  EXPECT_EQ(GetOrDie(*store, "session", "exp-3"), std::nullopt);
  EXPECT_TRUE(GetOrDie(*store, "default", "del-3")->deleted);

  // A tombstone still present refuses a late older write...
  EXPECT_FALSE(ApplyOrDie(*store, "default", "del-4", Value("late", At(kT0 + 29'000))));
  // ...and is removed once it has been gone for the grace.
  EXPECT_EQ(pass(kT0 + 30'000 + kGrace), std::make_pair(std::size_t(keys - 50), std::size_t{20}));
  EXPECT_EQ(store->Stats("default"), (CacheStats{7, 0, 7 * (6 + 1), 0}));
  EXPECT_EQ(pass(kT0 + 10'000'000 + kGrace).second, 5u);  // the later expiries
  EXPECT_EQ(store->Caches(), (std::vector<std::string>{"default", "session"}));
  EXPECT_EQ(store->Stats("default").records + store->Stats("session").records, 8u);
}

TEST_F(RecordStoreTest, SweepStateSurvivesAsDigestsOfAStoreThatNeverHadTheRecords) {
  auto swept = OpenOrDie(Dir("swept"), RecordStoreOptions{.tombstone_grace_ms = 0});
  auto never = OpenOrDie(Dir("never"));
  ASSERT_TRUE(swept && never);
  for (int i = 0; i < 40; ++i) {
    const std::string key = "k" + std::to_string(i);
    const Record record = Value("v", At(kT0 + i), i % 4 == 0 ? kT0 : 0);
    ASSERT_TRUE(ApplyOrDie(*swept, "c", key, record));
    if (i % 4 != 0) {
      ASSERT_TRUE(ApplyOrDie(*never, "c", key, record));
    }
  }
  EXPECT_NE(swept->BucketDigests("c"), never->BucketDigests("c"));
  Result<SweepResult> result = swept->SweepExpired(kT0, 1000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->removed, 10u);
  EXPECT_TRUE(result->wrapped);
  EXPECT_EQ(swept->BucketDigests("c"), never->BucketDigests("c"));
  EXPECT_EQ(swept->Stats("c"), never->Stats("c"));
}

TEST_F(RecordStoreTest, BucketDigestsMatchForTheSameRecordsAndDifferOtherwise) {
  auto a = OpenOrDie(Dir("a"));
  auto b = OpenOrDie(Dir("b"));
  ASSERT_TRUE(a && b);
  std::vector<std::pair<std::string, Record>> records;
  for (int i = 0; i < 300; ++i) {
    records.emplace_back("key" + std::to_string(i),
                         i % 10 == 0 ? Tombstone(At(kT0 + i, 1)) : Value("v", At(kT0 + i, 2)));
  }
  for (const auto& [key, record] : records) {
    ASSERT_TRUE(a->Apply("c", key, record).ok());
  }
  std::mt19937 random(7);
  std::shuffle(records.begin(), records.end(), random);
  for (const auto& [key, record] : records) {
    ASSERT_TRUE(b->Apply("c", key, record).ok());
  }
  for (uint32_t bucket = 0; bucket < RecordStore::kBuckets; ++bucket) {
    EXPECT_EQ(a->BucketDigest("c", bucket), b->BucketDigest("c", bucket)) << bucket;
  }
  EXPECT_EQ(a->BucketDigest("other cache", 0), 0u);

  // One newer record on b: exactly its bucket differs.
  ASSERT_TRUE(ApplyOrDie(*b, "c", "key17", Value("v", At(kT0 + 1000, 2))));
  const uint32_t changed = RecordStore::BucketOf("key17");
  for (uint32_t bucket = 0; bucket < RecordStore::kBuckets; ++bucket) {
    if (bucket == changed) {
      EXPECT_NE(a->BucketDigest("c", bucket), b->BucketDigest("c", bucket));
    } else {
      EXPECT_EQ(a->BucketDigest("c", bucket), b->BucketDigest("c", bucket)) << bucket;
    }
  }

  // Repair as anti-entropy would: b sends the differing bucket, a applies it.
  ASSERT_TRUE(b->ForEachInBucket("c", changed, [&](std::string_view key, const Record& record) {
                 EXPECT_TRUE(a->Apply("c", key, record).ok());
                 return true;
               }).ok());
  EXPECT_EQ(a->BucketDigests("c"), b->BucketDigests("c"));
  EXPECT_EQ(GetOrDie(*a, "c", "key17")->version, At(kT0 + 1000, 2));
}

TEST_F(RecordStoreTest, ForEachInBucketListsExactlyThatBucket) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  std::map<uint32_t, std::set<std::string>> expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(ApplyOrDie(*store, "c", key, Value(key, At(kT0 + i))));
    expected[RecordStore::BucketOf(key)].insert(key);
  }
  ASSERT_TRUE(ApplyOrDie(*store, "d", "k1", Value("other cache", At(kT0))));
  std::size_t total = 0;
  for (uint32_t bucket = 0; bucket < RecordStore::kBuckets; ++bucket) {
    std::set<std::string> listed;
    uint64_t digest = 0;
    ASSERT_TRUE(store
                    ->ForEachInBucket("c", bucket,
                                      [&](std::string_view key, const Record& record) {
                                        EXPECT_EQ(record.value, key);
                                        listed.emplace(key);
                                        digest += RecordStore::DigestEntry(key, record.version);
                                        return true;
                                      })
                    .ok());
    EXPECT_EQ(listed, expected[bucket]) << bucket;
    EXPECT_EQ(digest, store->BucketDigest("c", bucket)) << bucket;
    total += listed.size();
  }
  EXPECT_EQ(total, 1000u);

  int calls = 0;
  const uint32_t busy = expected.begin()->first;
  ASSERT_TRUE(store
                  ->ForEachInBucket("c", busy,
                                    [&](std::string_view, const Record&) {
                                      ++calls;
                                      return false;
                                    })
                  .ok());
  EXPECT_EQ(calls, 1);
  Status out_of_range = store->ForEachInBucket(
      "c", RecordStore::kBuckets, [](std::string_view, const Record&) { return true; });
  EXPECT_EQ(out_of_range.code(), Status::Code::kInvalidArgument);
}

// A listing resumed after each key it stopped at, one key per call, visits every
// key of the bucket once, in order, and nothing of the next bucket.
TEST_F(RecordStoreTest, ForEachInBucketAfterResumesWhereAListingStopped) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  std::map<uint32_t, std::vector<std::string>> by_bucket;
  for (int i = 0; i < 600; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(ApplyOrDie(*store, "c", key, Value(key, At(kT0 + i))));
    by_bucket[RecordStore::BucketOf(key)].push_back(key);
  }
  const uint32_t bucket = by_bucket.begin()->first;
  std::vector<std::string> expected = by_bucket.begin()->second;
  std::sort(expected.begin(), expected.end());
  ASSERT_GE(expected.size(), 2u);

  std::vector<std::string> listed;
  auto one = [&](std::string_view key, const Record&) {
    listed.emplace_back(key);
    return false;  // one key per call, as a paged pull takes them
  };
  ASSERT_TRUE(store->ForEachInBucket("c", bucket, one).ok());
  for (std::size_t calls = 0; calls < expected.size() + 1; ++calls) {
    const std::size_t before = listed.size();
    ASSERT_TRUE(store->ForEachInBucketAfter("c", bucket, listed.back(), one).ok());
    if (listed.size() == before) break;
  }
  EXPECT_EQ(listed, expected);

  // After a key that is not stored: the keys that sort after it.
  std::vector<std::string> rest;
  ASSERT_TRUE(store
                  ->ForEachInBucketAfter("c", bucket, expected[0] + '\0',
                                         [&](std::string_view key, const Record&) {
                                           rest.emplace_back(key);
                                           return true;
                                         })
                  .ok());
  EXPECT_EQ(rest, std::vector<std::string>(expected.begin() + 1, expected.end()));
}

TEST_F(RecordStoreTest, FlushTombstonesOneCacheAndLeavesTheOthers) {
  auto store = OpenOrDie(Dir(), RecordStoreOptions{.flush_batch_records = 3});
  ASSERT_TRUE(store);
  for (int i = 0; i < 10; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(ApplyOrDie(*store, "a", key, Value("a", At(kT0 + i))));
    ASSERT_TRUE(ApplyOrDie(*store, "ab", key, Value("ab", At(kT0 + i))));
    ASSERT_TRUE(ApplyOrDie(*store, "session", key, Value("s", At(kT0 + i))));
  }
  ASSERT_TRUE(ApplyOrDie(*store, "a", "k0", Tombstone(At(kT0 + 20))));  // older tombstone
  ASSERT_TRUE(ApplyOrDie(*store, "a", "new", Value("after", At(kT0 + 200))));
  const CacheStats ab_stats = store->Stats("ab");
  const auto ab_digests = store->BucketDigests("ab");
  const auto session_digests = store->BucketDigests("session");

  const Version flush = At(kT0 + 100, 3);
  ASSERT_TRUE(store->FlushCache("a", flush).ok());
  for (int i = 0; i < 10; ++i) {
    const std::string key = "k" + std::to_string(i);
    std::optional<Record> got = GetOrDie(*store, "a", key);
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->deleted);
    EXPECT_EQ(got->version, flush);
    EXPECT_EQ(GetOrDie(*store, "ab", key)->value, "ab");
    EXPECT_EQ(GetOrDie(*store, "session", key)->value, "s");
  }
  EXPECT_EQ(GetOrDie(*store, "a", "new")->value, "after");  // written after the flush
  EXPECT_EQ(store->Stats("a"), (CacheStats{1, 10, 3 + 5, 0}));
  EXPECT_EQ(store->Stats("ab"), ab_stats);
  EXPECT_EQ(store->BucketDigests("ab"), ab_digests);
  EXPECT_EQ(store->BucketDigests("session"), session_digests);

  // A late older write of a flushed key is refused; flushing again changes nothing.
  EXPECT_FALSE(ApplyOrDie(*store, "a", "k5", Value("late", At(kT0 + 50))));
  const auto flushed = store->BucketDigests("a");
  ASSERT_TRUE(store->FlushCache("a", flush).ok());
  EXPECT_EQ(store->BucketDigests("a"), flushed);
  ASSERT_TRUE(store->FlushCache("no such cache", flush).ok());

  // Two replicas that flush with the same version agree even if one held an
  // older tombstone where the other held a value.
  auto other = OpenOrDie(Dir("other"));
  ASSERT_TRUE(other);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(ApplyOrDie(*other, "a", "k" + std::to_string(i), Value("a", At(kT0 + i))));
  }
  ASSERT_TRUE(ApplyOrDie(*other, "a", "new", Value("after", At(kT0 + 200))));
  ASSERT_TRUE(other->FlushCache("a", flush).ok());
  EXPECT_EQ(other->BucketDigests("a"), store->BucketDigests("a"));
}

TEST_F(RecordStoreTest, ListsTheCachesPresent) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->Caches().empty());
  ASSERT_TRUE(ApplyOrDie(*store, "session", "s", Value("12345", At(kT0))));
  ASSERT_TRUE(ApplyOrDie(*store, "default", "d", Tombstone(At(kT0))));
  ASSERT_TRUE(ApplyOrDie(*store, "pages", "p1", Value("1", At(kT0))));
  ASSERT_TRUE(ApplyOrDie(*store, "pages", "p2", Value("22", At(kT0))));
  EXPECT_EQ(store->Caches(), (std::vector<std::string>{"default", "pages", "session"}));
  std::map<std::string, CacheStats> seen;
  store->ForEachCache(
      [&](const std::string& cache, const CacheStats& stats) { seen.emplace(cache, stats); });
  EXPECT_EQ(seen, (std::map<std::string, CacheStats>{{"default", {0, 1, 0, 0}},
                                                     {"pages", {2, 0, 2 + 1 + 2 + 2, 0}},
                                                     {"session", {1, 0, 1 + 5, 0}}}));
}

TEST_F(RecordStoreTest, BinaryKeysAndCacheNamesStayApart) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  const std::string nul_key("a\0b", 3);
  ASSERT_TRUE(ApplyOrDie(*store, "c", nul_key, Value("nul", At(kT0))));
  ASSERT_TRUE(ApplyOrDie(*store, "c", "a", Value("a", At(kT0))));
  ASSERT_TRUE(ApplyOrDie(*store, "c", "", Value("empty key", At(kT0))));
  ASSERT_TRUE(ApplyOrDie(*store, std::string("c\0", 2), "a", Value("other cache", At(kT0))));
  EXPECT_EQ(GetOrDie(*store, "c", nul_key)->value, "nul");
  EXPECT_EQ(GetOrDie(*store, "c", "a")->value, "a");
  EXPECT_EQ(GetOrDie(*store, "c", "")->value, "empty key");
  EXPECT_EQ(GetOrDie(*store, std::string("c\0", 2), "a")->value, "other cache");
  EXPECT_EQ(store->Stats("c").records, 3u);
}

}  // namespace
}  // namespace cb::store

namespace cb::store {
namespace {

uint64_t LiveSessions(RecordStore& store, char route, int64_t now) {
  return store.LiveKeysByFirstByte(now)[static_cast<unsigned char>(route)];
}

TEST_F(RecordStoreTest, CountsLiveSessionsByFirstByteThroughEveryChange) {
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  EXPECT_TRUE(ApplyOrDie(*store, "session", "Aone", Value("x", At(kT0), kT0 + 1000)));
  EXPECT_TRUE(ApplyOrDie(*store, "session", "Atwo", Value("x", At(kT0), kT0 + 5000)));
  EXPECT_TRUE(ApplyOrDie(*store, "session", "Bone", Value("x", At(kT0))));
  EXPECT_TRUE(ApplyOrDie(*store, "other", "Athree", Value("x", At(kT0))));  // not counted
  EXPECT_EQ(LiveSessions(*store, 'A', kT0), 2u);
  EXPECT_EQ(LiveSessions(*store, 'B', kT0), 1u);
  // Touched: its new expiry counts.
  EXPECT_TRUE(ApplyOrDie(*store, "session", "Aone", Value("x", At(kT0 + 1), kT0 + 9000)));
  EXPECT_EQ(LiveSessions(*store, 'A', kT0 + 2000), 2u);
  // Deleted, then expired.
  EXPECT_TRUE(ApplyOrDie(*store, "session", "Aone", Tombstone(At(kT0 + 2))));
  EXPECT_EQ(LiveSessions(*store, 'A', kT0 + 2000), 1u);
  EXPECT_EQ(LiveSessions(*store, 'A', kT0 + 5000), 0u);
  // Flushed.
  ASSERT_TRUE(store->FlushCache("session", At(kT0 + 3)).ok());
  EXPECT_EQ(LiveSessions(*store, 'B', kT0 + 5000), 0u);
}

TEST_F(RecordStoreTest, LiveSessionCountsSurviveReopenAndSweep) {
  {
    auto store = OpenOrDie(Dir());
    ASSERT_TRUE(store);
    EXPECT_TRUE(ApplyOrDie(*store, "session", "Cone", Value("x", At(kT0), kT0 + 1000)));
    EXPECT_TRUE(ApplyOrDie(*store, "session", "Ctwo", Value("x", At(kT0))));
  }
  auto store = OpenOrDie(Dir());
  ASSERT_TRUE(store);
  EXPECT_EQ(LiveSessions(*store, 'C', kT0), 2u);
  ASSERT_TRUE(store->SweepExpired(kT0 + 100'000'000, 100).ok());  // removes Cone
  EXPECT_EQ(store->Stats("session").records, 1u);
  EXPECT_EQ(LiveSessions(*store, 'C', kT0 + 100'000'000), 1u);
}

}  // namespace
}  // namespace cb::store
