#include "sidecar/memcache/commands.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace cb::memcache {

// Readable failures (found by argument-dependent lookup).
void PrintTo(const Outcome& outcome, std::ostream* os) {
  *os << "Outcome{reply=\"" << outcome.reply << "\" found=" << outcome.found << " write=";
  if (!outcome.write) {
    *os << "none";
  } else {
    *os << "{value=\"" << outcome.write->value << "\" flags=" << outcome.write->flags
        << " expiry=" << outcome.write->expiry_unix_ms << " deleted=" << outcome.write->deleted
        << " version=" << outcome.write->version.clock << "/" << outcome.write->version.server
        << "}";
  }
  *os << "}";
}

namespace {

constexpr int64_t kNow = 1'700'000'000'000;  // unix ms
constexpr int64_t kNowSeconds = kNow / 1000;
const CacheLimits kLimits{};

store::Record Live(std::string value, uint32_t flags = 0, int64_t expiry = 0) {
  store::Record record;
  record.value = std::move(value);
  record.flags = flags;
  record.expiry_unix_ms = expiry;
  record.version = store::Version{12345, 2};
  return record;
}

store::Record Written(std::string value, uint32_t flags = 0, int64_t expiry = 0) {
  store::Record record;
  record.value = std::move(value);
  record.flags = flags;
  record.expiry_unix_ms = expiry;
  return record;  // version null: the caller stamps it
}

store::Record Tombstone() {
  store::Record record;
  record.deleted = true;
  return record;
}

Request Storage(Command command, std::string data, uint32_t flags = 0, int64_t exptime = 0) {
  Request request;
  request.command = command;
  request.keys = {"k"};
  request.flags = flags;
  request.exptime = exptime;
  request.bytes = data.size();
  request.data = std::move(data);
  return request;
}

Request Key(Command command) {
  Request request;
  request.command = command;
  request.keys = {"k"};
  return request;
}

Request Arith(Command command, uint64_t delta) {
  Request request = Key(command);
  request.delta = delta;
  return request;
}

Outcome Out(std::string reply, std::optional<store::Record> write = std::nullopt,
            bool found = false) {
  return Outcome{std::move(reply), std::move(write), found};
}

// The ways a key can be absent.
std::vector<std::optional<store::Record>> Absents() {
  store::Record expired = Live("old", 0, kNow);
  store::Record long_expired = Live("old", 0, 1);
  store::Record deleted = Tombstone();
  deleted.version = store::Version{99, 0};
  return {std::nullopt, expired, long_expired, deleted};
}

// --- SplitKey ---

TEST(MemcacheSplitKeyTest, KnownCachePrefix) {
  auto is_cache = [](std::string_view name) { return name == "session" || name == "default"; };
  EXPECT_EQ(SplitKey("session:abc", is_cache), (KeyTarget{"session", "abc"}));
  EXPECT_EQ(SplitKey("session:a:b", is_cache), (KeyTarget{"session", "a:b"}))
      << "split at the first ':'";
  EXPECT_EQ(SplitKey("session:", is_cache), (KeyTarget{"session", ""}));
  EXPECT_EQ(SplitKey("default:x", is_cache), (KeyTarget{"default", "x"}));
}

TEST(MemcacheSplitKeyTest, EverythingElseGoesToDefaultWhole) {
  auto is_cache = [](std::string_view name) { return name == "session"; };
  EXPECT_EQ(SplitKey("plain", is_cache), (KeyTarget{"default", "plain"}));
  EXPECT_EQ(SplitKey("user:42", is_cache), (KeyTarget{"default", "user:42"}));
  EXPECT_EQ(SplitKey(":x", is_cache), (KeyTarget{"default", ":x"}));
  EXPECT_EQ(SplitKey("Session:x", is_cache), (KeyTarget{"default", "Session:x"}))
      << "cache names are case-sensitive";
}

TEST(MemcacheSplitKeyTest, AsksOnlyWhenThereIsAColon) {
  int calls = 0;
  auto is_cache = [&](std::string_view) {
    ++calls;
    return true;
  };
  SplitKey("nocolon", is_cache);
  EXPECT_EQ(calls, 0);
  SplitKey("a:b:c", is_cache);
  EXPECT_EQ(calls, 1);
}

// --- expiry ---

TEST(MemcacheExpiryTest, MemcachedRules) {
  EXPECT_EQ(ExpiryFromExptime(0, kNow), 0) << "never";
  EXPECT_EQ(ExpiryFromExptime(1, kNow), kNow + 1000);
  EXPECT_EQ(ExpiryFromExptime(2592000, kNow), kNow + 2592000LL * 1000) << "30 days: relative";
  EXPECT_EQ(ExpiryFromExptime(2592001, kNow), 2592001LL * 1000) << "beyond: absolute (past)";
  EXPECT_EQ(ExpiryFromExptime(kNowSeconds + 60, kNow), kNow + 60000) << "absolute future";
  EXPECT_EQ(ExpiryFromExptime(-1, kNow), 1) << "negative: expired";
  EXPECT_EQ(ExpiryFromExptime(INT64_MIN, kNow), 1);
  EXPECT_EQ(ExpiryFromExptime(INT64_MAX, kNow), INT64_MAX) << "clamped";
}

TEST(MemcacheExpiryTest, ExpiredExptimesGiveRecordsGoneNow) {
  for (int64_t exptime : {int64_t{-1}, int64_t{2592001}, kNowSeconds - 1, kNowSeconds}) {
    store::Record record = Written("v", 0, ExpiryFromExptime(exptime, kNow));
    EXPECT_TRUE(record.IsGoneAt(kNow)) << exptime;
  }
  EXPECT_FALSE(Written("v", 0, ExpiryFromExptime(kNowSeconds + 1, kNow)).IsGoneAt(kNow));
}

// --- set / add / replace ---

TEST(MemcacheExecuteTest, SetStoresWithFlagsAndExpiry) {
  EXPECT_EQ(Execute(Storage(Command::kSet, "hello", 7, 60), std::nullopt, kNow, kLimits),
            Out("STORED\r\n", Written("hello", 7, kNow + 60000)));
  EXPECT_EQ(Execute(Storage(Command::kSet, "new"), Live("old", 3), kNow, kLimits),
            Out("STORED\r\n", Written("new")));
}

TEST(MemcacheExecuteTest, NoreplySuppressesTheReplyButNotTheWrite) {
  Request request = Storage(Command::kSet, "v");
  request.noreply = true;
  EXPECT_EQ(Execute(request, std::nullopt, kNow, kLimits), Out("", Written("v")));
  Request incr = Arith(Command::kIncr, 1);
  incr.noreply = true;
  EXPECT_EQ(Execute(incr, Live("1"), kNow, kLimits), Out("", Written("2")));
  Request missing = Key(Command::kDelete);
  missing.noreply = true;
  EXPECT_EQ(Execute(missing, std::nullopt, kNow, kLimits), Out(""));
}

TEST(MemcacheExecuteTest, SetWithNegativeExptimeHidesTheKey) {
  Outcome outcome = Execute(Storage(Command::kSet, "v", 0, -1), Live("old"), kNow, kLimits);
  EXPECT_EQ(outcome.reply, "STORED\r\n");
  ASSERT_TRUE(outcome.write);
  EXPECT_TRUE(outcome.write->IsGoneAt(kNow));
}

TEST(MemcacheExecuteTest, AddOnlyWhenAbsent) {
  EXPECT_EQ(Execute(Storage(Command::kAdd, "v"), Live("old"), kNow, kLimits),
            Out("NOT_STORED\r\n"));
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(Storage(Command::kAdd, "v", 1), absent, kNow, kLimits),
              Out("STORED\r\n", Written("v", 1)));
  }
}

TEST(MemcacheExecuteTest, ReplaceOnlyWhenPresent) {
  EXPECT_EQ(Execute(Storage(Command::kReplace, "v", 2), Live("old"), kNow, kLimits),
            Out("STORED\r\n", Written("v", 2)));
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(Storage(Command::kReplace, "v"), absent, kNow, kLimits),
              Out("NOT_STORED\r\n"));
  }
}

TEST(MemcacheExecuteTest, TooLargeValues) {
  const CacheLimits small{10};
  const std::string big(11, 'x');
  EXPECT_EQ(Execute(Storage(Command::kSet, std::string(10, 'x')), std::nullopt, kNow, small).reply,
            "STORED\r\n");
  // A failed set removes the old value, as memcached does.
  EXPECT_EQ(Execute(Storage(Command::kSet, big), Live("old"), kNow, small),
            Out("SERVER_ERROR object too large for cache\r\n", Tombstone()));
  EXPECT_EQ(Execute(Storage(Command::kSet, big), std::nullopt, kNow, small),
            Out("SERVER_ERROR object too large for cache\r\n"));
  for (Command command :
       {Command::kAdd, Command::kReplace, Command::kCas, Command::kAppend, Command::kPrepend}) {
    EXPECT_EQ(Execute(Storage(command, big), Live("old"), kNow, small),
              Out("SERVER_ERROR object too large for cache\r\n"));
  }
  // The parser's flag for a block it threw away.
  Request swallowed = Storage(Command::kAdd, "");
  swallowed.bytes = 5'000'000;
  swallowed.value_too_large = true;
  EXPECT_EQ(Execute(swallowed, std::nullopt, kNow, kLimits),
            Out("SERVER_ERROR object too large for cache\r\n"));
  swallowed.noreply = true;
  EXPECT_EQ(Execute(swallowed, std::nullopt, kNow, kLimits), Out(""));
}

// --- append / prepend ---

TEST(MemcacheExecuteTest, AppendPrependKeepFlagsAndExpiry) {
  const store::Record current = Live("mid", 9, kNow + 5000);
  EXPECT_EQ(Execute(Storage(Command::kAppend, "+end", 1, 100), current, kNow, kLimits),
            Out("STORED\r\n", Written("mid+end", 9, kNow + 5000)));
  EXPECT_EQ(Execute(Storage(Command::kPrepend, "start+", 1, 100), current, kNow, kLimits),
            Out("STORED\r\n", Written("start+mid", 9, kNow + 5000)));
}

TEST(MemcacheExecuteTest, AppendToMissingIsNotStored) {
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(Storage(Command::kAppend, "x"), absent, kNow, kLimits),
              Out("NOT_STORED\r\n"));
    EXPECT_EQ(Execute(Storage(Command::kPrepend, "x"), absent, kNow, kLimits),
              Out("NOT_STORED\r\n"));
  }
}

TEST(MemcacheExecuteTest, AppendOverTheLimitIsNotStored) {
  const CacheLimits small{10};
  EXPECT_EQ(Execute(Storage(Command::kAppend, "67890"), Live("12345"), kNow, small).reply,
            "STORED\r\n");
  EXPECT_EQ(Execute(Storage(Command::kAppend, "67890X"), Live("12345"), kNow, small),
            Out("NOT_STORED\r\n"));
}

// --- cas ---

TEST(MemcacheExecuteTest, Cas) {
  const store::Record current = Live("old", 1);
  Request request = Storage(Command::kCas, "new", 4, 0);
  request.cas_unique = current.version.CasToken();
  EXPECT_EQ(Execute(request, current, kNow, kLimits), Out("STORED\r\n", Written("new", 4)));
  request.cas_unique += 1;
  EXPECT_EQ(Execute(request, current, kNow, kLimits), Out("EXISTS\r\n"));
  request.cas_unique = 0;
  EXPECT_EQ(Execute(request, current, kNow, kLimits), Out("EXISTS\r\n"));
  request.cas_unique = current.version.CasToken();
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(request, absent, kNow, kLimits), Out("NOT_FOUND\r\n"));
  }
}

TEST(MemcacheExecuteTest, CasAfterANewerWriteFails) {
  store::Record current = Live("v");
  Request request = Storage(Command::kCas, "mine");
  request.cas_unique = current.version.CasToken();
  current.version.clock += 1;  // someone wrote in between
  EXPECT_EQ(Execute(request, current, kNow, kLimits), Out("EXISTS\r\n"));
}

// --- delete / touch ---

TEST(MemcacheExecuteTest, DeleteWritesATombstone) {
  EXPECT_EQ(Execute(Key(Command::kDelete), Live("v", 3, kNow + 10), kNow, kLimits),
            Out("DELETED\r\n", Tombstone()));
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(Key(Command::kDelete), absent, kNow, kLimits), Out("NOT_FOUND\r\n"));
  }
}

TEST(MemcacheExecuteTest, Touch) {
  Request request = Key(Command::kTouch);
  request.exptime = 30;
  EXPECT_EQ(Execute(request, Live("v", 5, kNow + 1), kNow, kLimits),
            Out("TOUCHED\r\n", Written("v", 5, kNow + 30000)));
  request.exptime = 0;
  EXPECT_EQ(Execute(request, Live("v", 5, kNow + 1), kNow, kLimits),
            Out("TOUCHED\r\n", Written("v", 5, 0)));
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(request, absent, kNow, kLimits), Out("NOT_FOUND\r\n"));
  }
}

// --- incr / decr ---

TEST(MemcacheExecuteTest, IncrDecr) {
  EXPECT_EQ(Execute(Arith(Command::kIncr, 5), Live("10", 3, kNow + 9), kNow, kLimits),
            Out("15\r\n", Written("15", 3, kNow + 9)));
  EXPECT_EQ(Execute(Arith(Command::kDecr, 3), Live("10"), kNow, kLimits),
            Out("7\r\n", Written("7")));
  EXPECT_EQ(Execute(Arith(Command::kIncr, 0), Live("007"), kNow, kLimits),
            Out("7\r\n", Written("7")));
}

TEST(MemcacheExecuteTest, IncrWrapsAround) {
  EXPECT_EQ(Execute(Arith(Command::kIncr, 1), Live("18446744073709551615"), kNow, kLimits),
            Out("0\r\n", Written("0")));
  EXPECT_EQ(Execute(Arith(Command::kIncr, 18446744073709551615u), Live("2"), kNow, kLimits),
            Out("1\r\n", Written("1")));
}

TEST(MemcacheExecuteTest, DecrStopsAtZero) {
  EXPECT_EQ(Execute(Arith(Command::kDecr, 11), Live("10"), kNow, kLimits),
            Out("0\r\n", Written("0")));
  EXPECT_EQ(Execute(Arith(Command::kDecr, 18446744073709551615u), Live("5"), kNow, kLimits),
            Out("0\r\n", Written("0")));
}

TEST(MemcacheExecuteTest, DecrShortensTheStoredValue) {
  // memcached pads with spaces in place; the store keeps the plain number.
  EXPECT_EQ(Execute(Arith(Command::kDecr, 1), Live("100"), kNow, kLimits),
            Out("99\r\n", Written("99")));
}

TEST(MemcacheExecuteTest, CounterValuesMemcachedAccepts) {
  for (std::string value : {"12 ", "12  pad", " 12", "+12", "12\r\n", "\t12\t"}) {
    EXPECT_EQ(Execute(Arith(Command::kIncr, 1), Live(value), kNow, kLimits),
              Out("13\r\n", Written("13")))
        << '"' << value << '"';
  }
}

TEST(MemcacheExecuteTest, IncrOnNonNumeric) {
  const std::string error = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
  for (std::string value : {"", "abc", "12abc", "-1", "1.5", " ", "+", "0x10",
                            "18446744073709551616", "99999999999999999999999"}) {
    EXPECT_EQ(Execute(Arith(Command::kIncr, 1), Live(value), kNow, kLimits), Out(error))
        << '"' << value << '"';
    EXPECT_EQ(Execute(Arith(Command::kDecr, 1), Live(value), kNow, kLimits), Out(error))
        << '"' << value << '"';
  }
}

TEST(MemcacheExecuteTest, IncrOnMissing) {
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(Arith(Command::kIncr, 1), absent, kNow, kLimits), Out("NOT_FOUND\r\n"));
    EXPECT_EQ(Execute(Arith(Command::kDecr, 1), absent, kNow, kLimits), Out("NOT_FOUND\r\n"));
  }
}

// --- get / gat ---

TEST(MemcacheExecuteTest, GetOnlyLooks) {
  EXPECT_EQ(Execute(Key(Command::kGet), Live("v"), kNow, kLimits), Out("", std::nullopt, true));
  EXPECT_EQ(Execute(Key(Command::kGets), Live("v"), kNow, kLimits), Out("", std::nullopt, true));
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(Key(Command::kGet), absent, kNow, kLimits), Out(""));
  }
}

TEST(MemcacheExecuteTest, GatTouchesAndShows) {
  Request request = Key(Command::kGat);
  request.exptime = 100;
  EXPECT_EQ(Execute(request, Live("v", 8, kNow + 5), kNow, kLimits),
            Out("", Written("v", 8, kNow + 100000), true));
  request.command = Command::kGats;
  EXPECT_EQ(Execute(request, Live("v", 8), kNow, kLimits),
            Out("", Written("v", 8, kNow + 100000), true));
  for (const auto& absent : Absents()) {
    EXPECT_EQ(Execute(request, absent, kNow, kLimits), Out(""));
  }
}

TEST(MemcacheExecuteTest, RecordExpiringExactlyNowIsGone) {
  EXPECT_EQ(Execute(Key(Command::kGet), Live("v", 0, kNow), kNow, kLimits).found, false);
  EXPECT_EQ(Execute(Key(Command::kGet), Live("v", 0, kNow + 1), kNow, kLimits).found, true);
}

TEST(MemcacheExecuteTest, ConnectionCommandsAreNotKeyLevel) {
  for (Command command : {Command::kFlushAll, Command::kVersion, Command::kStats,
                          Command::kVerbosity, Command::kQuit}) {
    Request request;
    request.command = command;
    EXPECT_EQ(Execute(request, Live("v"), kNow, kLimits), Out("ERROR\r\n"));
  }
}

// --- VALUE lines ---

TEST(MemcacheValueLinesTest, GetFormat) {
  const store::Record a = Live("hello", 42);
  const store::Record b = Live(std::string("bin\0\r\n", 6), 0);
  const ValueHit hits[] = {{"session:a", &a}, {"missing", nullptr}, {"b", &b}};
  EXPECT_EQ(ValueLines(hits, false),
            "VALUE session:a 42 5\r\nhello\r\n"
            "VALUE b 0 6\r\n" +
                std::string("bin\0\r\n", 6) + "\r\nEND\r\n");
}

TEST(MemcacheValueLinesTest, GetsAddsTheCasUnique) {
  const store::Record a = Live("v", 1);
  const ValueHit hits[] = {{"a", &a}};
  EXPECT_EQ(ValueLines(hits, true),
            "VALUE a 1 1 " + std::to_string(a.version.CasToken()) + "\r\nv\r\nEND\r\n");
}

TEST(MemcacheValueLinesTest, MoreKeysOfTheLineLeaveOutTheEnd) {
  store::Record record;
  record.value = "v";
  const ValueHit hits[] = {{"a", &record}, {"b", nullptr}};
  EXPECT_EQ(ValueLines(hits, false, true), "VALUE a 0 1\r\nv\r\n");
  EXPECT_EQ(ValueLines({}, false, true), "");
}

TEST(MemcacheValueLinesTest, NoHitsIsJustEnd) {
  EXPECT_EQ(ValueLines({}, false), "END\r\n");
  const ValueHit misses[] = {{"a", nullptr}, {"b", nullptr}};
  EXPECT_EQ(ValueLines(misses, true), "END\r\n");
}

TEST(MemcacheValueLinesTest, AppendValueAppends) {
  std::string out = "prefix|";
  AppendValue(out, "k", Live("", 4294967295u), false);
  EXPECT_EQ(out, "prefix|VALUE k 4294967295 0\r\n\r\n");
}

// --- parser and commands together ---

TEST(MemcacheServerErrorTest, NamesWhy) {
  EXPECT_EQ(ServerErrorReply("cannot store the record"),
            "SERVER_ERROR cannot store the record\r\n");
}

TEST(MemcacheEndToEndTest, SessionOfRequests) {
  std::map<std::string, store::Record> store;
  uint64_t clock = 0;
  auto is_cache = [](std::string_view name) { return name == "session"; };
  RequestParser parser;
  std::string replies;
  const std::string input =
      "set session:a 5 0 2\r\nhi\r\n"
      "append session:a 0 0 3\r\n!!!\r\n"
      "incr n 1\r\n"
      "set n 0 0 2\r\n41\r\n"
      "incr n 1\r\n"
      "get session:a n other\r\n"
      "delete n\r\n"
      "get n\r\n";
  for (const ParseResult& result : parser.Feed(input)) {
    if (const auto* error = std::get_if<ProtocolError>(&result)) {
      replies += error->reply;
      continue;
    }
    const Request& request = std::get<Request>(result);
    if (request.command == Command::kGet) {
      std::vector<ValueHit> hits;
      for (const std::string& key : request.keys) {
        const KeyTarget target = SplitKey(key, is_cache);
        const std::string store_key = std::string(target.cache) + "/" + std::string(target.key);
        auto it = store.find(store_key);
        std::optional<store::Record> current;
        if (it != store.end()) current = it->second;
        const Outcome outcome = Execute(request, current, kNow, kLimits);
        hits.push_back({key, outcome.found ? &it->second : nullptr});
      }
      replies += ValueLines(hits, false);
      continue;
    }
    const KeyTarget target = SplitKey(request.keys.at(0), is_cache);
    const std::string store_key = std::string(target.cache) + "/" + std::string(target.key);
    std::optional<store::Record> current;
    if (auto it = store.find(store_key); it != store.end()) current = it->second;
    Outcome outcome = Execute(request, current, kNow, kLimits);
    if (outcome.write) {
      outcome.write->version = store::Version{++clock, 0};
      store[store_key] = *outcome.write;
    }
    replies += outcome.reply;
  }
  EXPECT_EQ(replies,
            "STORED\r\n"
            "STORED\r\n"
            "NOT_FOUND\r\n"
            "STORED\r\n"
            "42\r\n"
            "VALUE session:a 5 5\r\nhi!!!\r\nVALUE n 0 2\r\n42\r\nEND\r\n"
            "DELETED\r\n"
            "END\r\n");
  EXPECT_TRUE(store.count("session/a"));
  EXPECT_TRUE(store.count("default/n"));
}

}  // namespace
}  // namespace cb::memcache
