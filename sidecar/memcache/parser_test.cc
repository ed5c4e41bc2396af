#include "sidecar/memcache/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace cb::memcache {

// Readable failures (found by argument-dependent lookup, so not in the unnamed
// namespace).
void PrintTo(const Request& request, std::ostream* os) {
  *os << "Request{" << CommandName(request.command) << " keys=[";
  for (const std::string& key : request.keys) *os << '"' << key << "\" ";
  *os << "] flags=" << request.flags << " exptime=" << request.exptime << " bytes=" << request.bytes
      << " data=\"" << request.data << "\" cas=" << request.cas_unique << " delta=" << request.delta
      << " verbosity=" << request.verbosity << " noreply=" << request.noreply
      << " more_keys=" << request.more_keys << " too_large=" << request.value_too_large
      << " cache=\"" << request.cache
      << "\" delay=" << (request.delay ? std::to_string(*request.delay) : "none") << "}";
}

void PrintTo(const ProtocolError& error, std::ostream* os) {
  *os << "ProtocolError{\"" << error.reply << "\" close=" << error.close << "}";
}

namespace {

ParserLimits SmallLimits() {
  ParserLimits limits;
  limits.max_line_bytes = 64;
  limits.max_retrieval_line_bytes = 256;
  limits.max_value_bytes = 100;
  return limits;
}

std::vector<ParseResult> FeedWhole(std::string_view input, const ParserLimits& limits) {
  RequestParser parser(limits);
  std::vector<ParseResult> results = parser.Feed(input);
  EXPECT_LE(parser.buffered_bytes(), BufferBound(limits));
  return results;
}

std::vector<ParseResult> FeedBytewise(std::string_view input, const ParserLimits& limits) {
  RequestParser parser(limits);
  std::vector<ParseResult> results;
  for (char c : input) {
    for (ParseResult& result : parser.Feed(std::string_view(&c, 1))) {
      results.push_back(std::move(result));
    }
    EXPECT_LE(parser.buffered_bytes(), BufferBound(limits));
  }
  return results;
}

std::vector<ParseResult> FeedRandomly(std::string_view input, const ParserLimits& limits,
                                      uint32_t seed) {
  RequestParser parser(limits);
  std::vector<ParseResult> results;
  std::mt19937 random(seed);
  while (!input.empty()) {
    const std::size_t size =
        std::min<std::size_t>(input.size(), std::uniform_int_distribution<>(1, 40)(random));
    for (ParseResult& result : parser.Feed(input.substr(0, size))) {
      results.push_back(std::move(result));
    }
    input.remove_prefix(size);
    EXPECT_LE(parser.buffered_bytes(), BufferBound(limits));
  }
  return results;
}

// Parses `input` whole, byte by byte and in random pieces; all must agree.
std::vector<ParseResult> Parse(std::string_view input, const ParserLimits& limits = {}) {
  std::vector<ParseResult> whole = FeedWhole(input, limits);
  EXPECT_EQ(FeedBytewise(input, limits), whole) << "byte-at-a-time feeding differs";
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    EXPECT_EQ(FeedRandomly(input, limits, seed), whole) << "random pieces differ, seed " << seed;
  }
  return whole;
}

// The one request `input` must parse to.
Request One(std::string_view input, const ParserLimits& limits = {}) {
  std::vector<ParseResult> results = Parse(input, limits);
  EXPECT_EQ(results.size(), 1u) << input;
  if (results.size() != 1 || !std::holds_alternative<Request>(results[0])) {
    ADD_FAILURE() << "not a single request: " << input;
    return Request();
  }
  return std::get<Request>(results[0]);
}

// The one error `input` must parse to.
ProtocolError OneError(std::string_view input, const ParserLimits& limits = {}) {
  std::vector<ParseResult> results = Parse(input, limits);
  EXPECT_EQ(results.size(), 1u) << input;
  if (results.size() != 1 || !std::holds_alternative<ProtocolError>(results[0])) {
    ADD_FAILURE() << "not a single error: " << input;
    return ProtocolError();
  }
  return std::get<ProtocolError>(results[0]);
}

const ProtocolError kError{"ERROR\r\n", false};
const ProtocolError kBadFormat{"CLIENT_ERROR bad command line format\r\n", false};
const ProtocolError kBadFormatClose{"CLIENT_ERROR bad command line format\r\n", true};
const ProtocolError kSilent{"", false};
const ProtocolError kLineTooLong{"CLIENT_ERROR line too long\r\n", true};
const ProtocolError kBadDataChunk{"CLIENT_ERROR bad data chunk\r\n", true};
const ProtocolError kInvalidExptime{"CLIENT_ERROR invalid exptime argument\r\n", false};
const ProtocolError kInvalidDelta{"CLIENT_ERROR invalid numeric delta argument\r\n", false};

Request Make(Command command, std::vector<std::string> keys) {
  Request request;
  request.command = command;
  request.keys = std::move(keys);
  return request;
}

// --- retrieval ---

TEST(MemcacheParserTest, RetrievalsAndReads) {
  for (Command command : {Command::kGet, Command::kGets}) {
    EXPECT_TRUE(IsRead(command)) << CommandName(command);
    EXPECT_TRUE(IsRetrieval(command)) << CommandName(command);
  }
  for (Command command : {Command::kGat, Command::kGats}) {
    EXPECT_FALSE(IsRead(command)) << CommandName(command);
    EXPECT_TRUE(IsRetrieval(command)) << CommandName(command);
  }
  for (Command command : {Command::kSet, Command::kTouch, Command::kFlushAll, Command::kStats}) {
    EXPECT_FALSE(IsRead(command)) << CommandName(command);
    EXPECT_FALSE(IsRetrieval(command)) << CommandName(command);
  }
}

TEST(MemcacheParserTest, GetOneKey) { EXPECT_EQ(One("get foo\r\n"), Make(Command::kGet, {"foo"})); }

TEST(MemcacheParserTest, GetSeveralKeysKeepsOrderAndDuplicates) {
  EXPECT_EQ(One("get a b:c session:x a\r\n"), Make(Command::kGet, {"a", "b:c", "session:x", "a"}));
}

TEST(MemcacheParserTest, GetsManyKeys) {
  std::string line = "gets";
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("key" + std::to_string(i));
    line += " " + keys.back();
  }
  EXPECT_EQ(One(line + "\r\n"), Make(Command::kGets, keys));
}

TEST(MemcacheParserTest, GatAndGatsTakeExptimeFirst) {
  Request gat = Make(Command::kGat, {"a", "b"});
  gat.exptime = 300;
  EXPECT_EQ(One("gat 300 a b\r\n"), gat);
  Request gats = Make(Command::kGats, {"a"});
  gats.exptime = -1;
  EXPECT_EQ(One("gats -1 a\r\n"), gats);
}

TEST(MemcacheParserTest, GatWithoutKeysIsAnEmptyRequest) {
  // memcached answers a bare "gat <exptime>" with END.
  Request gat = Make(Command::kGat, {});
  gat.exptime = 10;
  EXPECT_EQ(One("gat 10\r\n"), gat);
}

TEST(MemcacheParserTest, GatBadExptime) {
  EXPECT_EQ(OneError("gat soon a\r\n"), kInvalidExptime);
  EXPECT_EQ(OneError("gats 1.5 a\r\n"), kInvalidExptime);
}

TEST(MemcacheParserTest, GetWithoutKeyIsError) {
  EXPECT_EQ(OneError("get\r\n"), kError);
  EXPECT_EQ(OneError("gets   \r\n"), kError);
  EXPECT_EQ(OneError("gat\r\n"), kError);
}

TEST(MemcacheParserTest, SpacesAreCollapsedAndBareNewlineEndsALine) {
  EXPECT_EQ(One("  get   a    b  \n"), Make(Command::kGet, {"a", "b"}));
}

// --- retrieval lines of many keys: streamed, in requests of max_keys_per_request ---

// The requests a line of `keys` must come as, `per` keys each.
std::vector<ParseResult> Pieces(Command command, const std::vector<std::string>& keys,
                                std::size_t per, int64_t exptime = 0) {
  std::vector<ParseResult> pieces;
  for (std::size_t at = 0; at < keys.size(); at += per) {
    const auto end = keys.begin() + static_cast<std::ptrdiff_t>(std::min(at + per, keys.size()));
    Request piece = Make(command, std::vector<std::string>(keys.begin() + at, end));
    piece.exptime = exptime;
    piece.more_keys = at + per < keys.size();
    pieces.emplace_back(std::move(piece));
  }
  return pieces;
}

std::vector<std::string> NumberedKeys(int count, const std::string& prefix = "k") {
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i) keys.push_back(prefix + std::to_string(i));
  return keys;
}

std::string Line(std::string_view head, const std::vector<std::string>& keys) {
  std::string line(head);
  for (const std::string& key : keys) line += " " + key;
  return line + "\r\n";
}

TEST(MemcacheParserTest, GetOfTwentyThousandKeysIsAcceptedInRequestsOfAHundred) {
  // php-memcached's getMulti, pymemcache's get_many: a 140 KB line.
  const std::vector<std::string> keys = NumberedKeys(20000);
  const std::string line = Line("get", keys);
  ASSERT_GT(line.size(), 100u * 1024);
  std::vector<ParseResult> results = Parse(line + "version\r\n");
  std::vector<ParseResult> expected = Pieces(Command::kGet, keys, 100);
  ASSERT_EQ(expected.size(), 200u);
  expected.emplace_back(Make(Command::kVersion, {}));
  EXPECT_EQ(results, expected);
}

TEST(MemcacheParserTest, ManyKeysSplitAtTheLimitWhateverTheLineLength) {
  ParserLimits limits = SmallLimits();  // 64-byte lines: short and long lines alike
  limits.max_keys_per_request = 3;
  for (int count : {1, 2, 3, 4, 6, 7, 40}) {
    const std::vector<std::string> keys = NumberedKeys(count);
    EXPECT_EQ(Parse(Line("gets", keys), limits), Pieces(Command::kGets, keys, 3)) << count;
    EXPECT_EQ(Parse(Line("gat 60", keys), limits), Pieces(Command::kGat, keys, 3, 60)) << count;
  }
  // A trailing space or spaces after the last key change nothing.
  const std::vector<std::string> keys = NumberedKeys(3);
  EXPECT_EQ(Parse("get k0 k1   k2   \r\n", limits), Pieces(Command::kGet, keys, 3));
}

void ExpectBadKeyEndsTheLine(const ParserLimits& limits);

TEST(MemcacheParserTest, BadKeyInALongLineEndsItAfterTheRequestsBeforeIt) {
  // Lines buffered whole (2048 bytes), and the same lines streamed (64 bytes).
  ParserLimits streamed = SmallLimits();
  streamed.max_retrieval_line_bytes = 4096;
  for (ParserLimits limits : {ParserLimits(), streamed}) {
    SCOPED_TRACE(limits.max_line_bytes);
    limits.max_keys_per_request = 3;
    ExpectBadKeyEndsTheLine(limits);
  }
}

void ExpectBadKeyEndsTheLine(const ParserLimits& limits) {
  std::vector<std::string> keys = NumberedKeys(7);
  keys[4] = std::string(251, 'x');
  // k0..k2 were yielded; k3 and the bad key are not; the rest of the line is ignored.
  std::vector<ParseResult> expected = Pieces(Command::kGet, NumberedKeys(3), 3);
  std::get<Request>(expected[0]).more_keys = true;
  expected.emplace_back(kBadFormat);
  expected.emplace_back(Make(Command::kGet, {"next"}));
  EXPECT_EQ(Parse(Line("get", keys) + "get next\r\n", limits), expected);
  // A key with a control character, the "\r" of a line that ends in "\r\r\n".
  EXPECT_EQ(Parse("get k0 k1 k2 k3 k4\r\r\nget next\r\n", limits), expected);
  // A gat whose exptime is too long to be a number.
  EXPECT_EQ(Parse("gat " + std::string(300, '1') + " a b c d e\r\nget next\r\n", limits),
            (std::vector<ParseResult>{kInvalidExptime, Make(Command::kGet, {"next"})}));
}

TEST(MemcacheParserTest, RetrievalLineOverItsLimitIsCutOffAfterTheKeysBeforeIt) {
  ParserLimits limits = SmallLimits();  // retrieval lines up to 256 bytes
  limits.max_keys_per_request = 10;
  const std::vector<std::string> keys = NumberedKeys(100, "key");
  const std::string line = Line("get", keys);
  ASSERT_GT(line.size(), 256u + 2);
  std::vector<ParseResult> results = Parse(line, limits);
  ASSERT_GE(results.size(), 2u);
  EXPECT_EQ(results.back(), ParseResult(kLineTooLong));
  // Whole requests of ten keys from the line's first 256 bytes, in order, then the error.
  std::size_t yielded = 0;
  for (std::size_t i = 0; i + 1 < results.size(); ++i) {
    const Request& piece = std::get<Request>(results[i]);
    EXPECT_TRUE(piece.more_keys);
    ASSERT_EQ(piece.keys.size(), 10u);
    for (const std::string& key : piece.keys) EXPECT_EQ(key, keys[yielded++]);
  }
  EXPECT_LE(yielded * 6, 256u);
  EXPECT_GE(yielded, 30u);
}

TEST(MemcacheParserTest, TooLongAfterABadKeyClosesWithoutASecondErrorLine) {
  ParserLimits limits = SmallLimits();                // retrieval lines up to 256 bytes
  std::string line = "get " + std::string(251, 'k');  // ended within the limit
  while (line.size() < 300) line += " a";
  line += "\r\n";
  EXPECT_EQ(Parse(line, limits), (std::vector<ParseResult>{kBadFormat, ProtocolError{"", true}}));
}

TEST(MemcacheParserTest, EndlessGetLineIsStreamedWithBoundedMemoryAndCutOffAtTheLimit) {
  const ParserLimits limits;  // 1 MiB retrieval lines
  RequestParser parser(limits);
  std::size_t fed = 0;
  std::size_t keys = 0;
  bool closed = false;
  EXPECT_TRUE(parser.Feed("get").empty());
  fed += 3;
  const std::string chunk = " key-" + std::string(45, 'x');  // 50 bytes
  while (!closed && fed < 4 * limits.max_retrieval_line_bytes) {
    for (ParseResult& result : parser.Feed(chunk)) {
      if (auto* request = std::get_if<Request>(&result)) {
        EXPECT_TRUE(request->more_keys);
        keys += request->keys.size();
      } else {
        EXPECT_EQ(std::get<ProtocolError>(result), kLineTooLong);
        closed = true;
      }
    }
    fed += chunk.size();
    ASSERT_LE(parser.buffered_bytes(), BufferBound(limits));
  }
  EXPECT_TRUE(closed);
  // Cut off by the chunk that took the line past its limit (and its "\r").
  EXPECT_GT(fed, limits.max_retrieval_line_bytes + 1);
  EXPECT_LE(fed, limits.max_retrieval_line_bytes + 1 + chunk.size());
  // Every key ended by a space within the limit, in whole requests of 100.
  EXPECT_EQ(keys, (limits.max_retrieval_line_bytes + 1 - 3) / chunk.size() / 100 * 100);
}

TEST(MemcacheParserTest, BufferBoundCoversLinesValuesAndKeys) {
  ParserLimits limits;
  limits.max_line_bytes = 10;
  limits.max_value_bytes = 20;
  limits.max_keys_per_request = 1;
  EXPECT_EQ(BufferBound(limits), 2 * kMaxKeyBytes + 2);
  limits.max_value_bytes = 100000;
  EXPECT_EQ(BufferBound(limits), 100002u);
  limits.max_line_bytes = 200000;
  EXPECT_EQ(BufferBound(limits), 200001u);
}

// --- keys ---

TEST(MemcacheParserTest, KeyOf250BytesIsAccepted) {
  const std::string key(250, 'k');
  EXPECT_EQ(One("get " + key + "\r\n"), Make(Command::kGet, {key}));
  Request set = One("set " + key + " 0 0 1\r\nx\r\n");
  EXPECT_EQ(set.keys, std::vector<std::string>{key});
}

TEST(MemcacheParserTest, KeyOf251BytesIsRefused) {
  const std::string key(251, 'k');
  EXPECT_EQ(OneError("get " + key + "\r\n"), kBadFormat);
  EXPECT_EQ(OneError("get ok " + key + "\r\n"), kBadFormat)
      << "one bad key fails a get of up to max_keys_per_request keys";
  EXPECT_EQ(OneError("delete " + key + "\r\n"), kBadFormat);
  EXPECT_EQ(OneError("incr " + key + " 1\r\n"), kBadFormat);
  EXPECT_EQ(OneError("touch " + key + " 1\r\n"), kBadFormat);
  // The data block is swallowed, so what follows is read as a command.
  std::vector<ParseResult> results = Parse("set " + key + " 0 0 5\r\nhello\r\nget a\r\n");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0], ParseResult(kBadFormat));
  EXPECT_EQ(results[1], ParseResult(Make(Command::kGet, {"a"})));
}

TEST(MemcacheParserTest, KeyWithControlCharacterIsRefused) {
  for (std::string key : {std::string("a\tb"), std::string("a\x01"), std::string("\x7f"),
                          std::string("a\0b", 3), std::string("a\rb")}) {
    EXPECT_EQ(OneError("get " + key + "\r\n"), kBadFormat) << key;
    std::vector<ParseResult> results = Parse("set " + key + " 0 0 2\r\nab\r\nversion\r\n");
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[0], ParseResult(kBadFormat));
    EXPECT_EQ(results[1], ParseResult(Make(Command::kVersion, {})));
  }
}

TEST(MemcacheParserTest, Utf8KeyIsAccepted) {
  EXPECT_EQ(One("get caf\xc3\xa9\r\n"), Make(Command::kGet, {"caf\xc3\xa9"}));
}

// --- storage ---

TEST(MemcacheParserTest, SetWithData) {
  Request expected = Make(Command::kSet, {"foo"});
  expected.flags = 42;
  expected.exptime = 3600;
  expected.bytes = 5;
  expected.data = "hello";
  EXPECT_EQ(One("set foo 42 3600 5\r\nhello\r\n"), expected);
}

TEST(MemcacheParserTest, EveryStorageCommand) {
  for (auto [name, command] :
       {std::pair{"set", Command::kSet}, std::pair{"add", Command::kAdd},
        std::pair{"replace", Command::kReplace}, std::pair{"append", Command::kAppend},
        std::pair{"prepend", Command::kPrepend}}) {
    Request expected = Make(command, {"k"});
    expected.flags = 1;
    expected.exptime = 2;
    expected.bytes = 3;
    expected.data = "abc";
    EXPECT_EQ(One(std::string(name) + " k 1 2 3\r\nabc\r\n"), expected) << name;
    expected.noreply = true;
    EXPECT_EQ(One(std::string(name) + " k 1 2 3 noreply\r\nabc\r\n"), expected) << name;
  }
}

TEST(MemcacheParserTest, CasCarriesItsUnique) {
  Request expected = Make(Command::kCas, {"k"});
  expected.bytes = 2;
  expected.data = "hi";
  expected.cas_unique = 18446744073709551615u;
  EXPECT_EQ(One("cas k 0 0 2 18446744073709551615\r\nhi\r\n"), expected);
  expected.noreply = true;
  EXPECT_EQ(One("cas k 0 0 2 18446744073709551615 noreply\r\nhi\r\n"), expected);
}

TEST(MemcacheParserTest, CasBadUniqueIsSwallowed) {
  std::vector<ParseResult> results = Parse("cas k 0 0 2 x\r\nhi\r\nversion\r\n");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0], ParseResult(kBadFormat));
  EXPECT_EQ(results[1], ParseResult(Make(Command::kVersion, {})));
  EXPECT_EQ(OneError("cas k 0 0 2 -1\r\nhi\r\n"), kBadFormat);
  EXPECT_EQ(OneError("cas k 0 0 2 18446744073709551616\r\nhi\r\n"), kBadFormat);
  // "noreply" in the unique's place is not a number; the error is silenced.
  EXPECT_EQ(OneError("cas k 0 0 2 noreply\r\nhi\r\n"), kSilent);
}

TEST(MemcacheParserTest, DataIsBinarySafe) {
  const std::string value("a\r\nb\0c\n\xff", 8);
  Request request = One("set k 0 0 8\r\n" + value + "\r\n");
  EXPECT_EQ(request.data, value);
  EXPECT_EQ(request.bytes, 8u);
}

TEST(MemcacheParserTest, EmptyValue) {
  Request request = One("set k 0 0 0\r\n\r\n");
  EXPECT_EQ(request.data, "");
  EXPECT_EQ(request.command, Command::kSet);
}

TEST(MemcacheParserTest, ExtraTokenThatIsNotNoreplyIsIgnoredAsMemcachedDoes) {
  Request request = One("set k 0 0 1 whatever\r\nx\r\n");
  EXPECT_FALSE(request.noreply);
  EXPECT_EQ(request.data, "x");
}

TEST(MemcacheParserTest, FlagsAndExptimeLimits) {
  EXPECT_EQ(One("set k 4294967295 0 1\r\nx\r\n").flags, 4294967295u);
  EXPECT_EQ(One("set k 0 -1 1\r\nx\r\n").exptime, -1);
  EXPECT_EQ(One("set k 0 9223372036854775807 1\r\nx\r\n").exptime, INT64_MAX);
  for (std::string line : {"set k 4294967296 0 1", "set k -1 0 1", "set k x 0 1", "set k 0 1.5 1",
                           "set k 0 9223372036854775808 1", "set k 0 - 1"}) {
    std::vector<ParseResult> results = Parse(line + "\r\nx\r\nget a\r\n");
    ASSERT_EQ(results.size(), 2u) << line;
    EXPECT_EQ(results[0], ParseResult(kBadFormat)) << line;
    EXPECT_EQ(results[1], ParseResult(Make(Command::kGet, {"a"}))) << line;
  }
}

TEST(MemcacheParserTest, NoreplySilencesSwallowedErrors) {
  std::vector<ParseResult> results = Parse("set k x 0 1 noreply\r\nx\r\nget a\r\n");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0], ParseResult(kSilent));
  EXPECT_EQ(results[1], ParseResult(Make(Command::kGet, {"a"})));
}

TEST(MemcacheParserTest, AbsurdLengthClosesTheConnection) {
  std::vector<ParseResult> results = Parse("set k 0 0 99999999999\r\nget a\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], ParseResult(kBadFormatClose));
  EXPECT_EQ(OneError("set k 0 0 2147483646\r\n"), kBadFormatClose) << "over INT_MAX - 2";
  // Closing errors are sent even under noreply.
  EXPECT_EQ(OneError("set k 0 0 99999999999 noreply\r\n"), kBadFormatClose);
}

TEST(MemcacheParserTest, NegativeOrNonNumericLengthClosesTheConnection) {
  EXPECT_EQ(OneError("set k 0 0 -1\r\nx\r\n"), kBadFormatClose);
  EXPECT_EQ(OneError("add k 0 0 five\r\nfive\r\n"), kBadFormatClose);
  EXPECT_EQ(OneError("append k 0 0 1x\r\nx\r\n"), kBadFormatClose);
  EXPECT_EQ(OneError("set k 0 0 noreply\r\nx\r\n"), kBadFormatClose);
}

TEST(MemcacheParserTest, WrongTokenCountForStorageClosesTheConnection) {
  const ProtocolError closing_error{"ERROR\r\n", true};
  EXPECT_EQ(OneError("set k 0 0\r\nx\r\n"), closing_error);
  EXPECT_EQ(OneError("set k 0 0 1 noreply extra\r\nx\r\n"), closing_error);
  EXPECT_EQ(OneError("cas k 0 0 1\r\nx\r\n"), closing_error);
  EXPECT_EQ(OneError("set\r\n"), closing_error);
}

TEST(MemcacheParserTest, MissingCrLfAfterDataIsABadDataChunk) {
  std::vector<ParseResult> results = Parse("set k 0 0 3\r\nabcde\r\nget a\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], ParseResult(kBadDataChunk));
  EXPECT_EQ(OneError("set k 0 0 3\r\nabc\n\n"), kBadDataChunk);
  EXPECT_EQ(OneError("set k 0 0 3 noreply\r\nabcXY"), kBadDataChunk) << "sent despite noreply";
}

TEST(MemcacheParserTest, DataBlockInProgressWaits) {
  RequestParser parser;
  EXPECT_TRUE(parser.Feed("set k 0 0 10\r\nhello").empty());
  EXPECT_EQ(parser.buffered_bytes(), 5u);
  EXPECT_TRUE(parser.Feed("world\r").empty());
  std::vector<ParseResult> results = parser.Feed("\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(std::get<Request>(results[0]).data, "helloworld");
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(MemcacheParserTest, TooLargeValueIsSwallowedAndFlagged) {
  const ParserLimits limits = SmallLimits();  // values up to 100 bytes
  const std::string value(5000, 'v');
  std::vector<ParseResult> results =
      Parse("set big 7 0 5000\r\n" + value + "\r\nset small 0 0 2\r\nok\r\n", limits);
  ASSERT_EQ(results.size(), 2u);
  Request too_large = Make(Command::kSet, {"big"});
  too_large.flags = 7;
  too_large.bytes = 5000;
  too_large.value_too_large = true;
  EXPECT_EQ(results[0], ParseResult(too_large));
  ASSERT_TRUE(std::holds_alternative<Request>(results[1]));
  EXPECT_EQ(std::get<Request>(results[1]).data, "ok");
}

TEST(MemcacheParserTest, TooLargeValueIsNotBuffered) {
  RequestParser parser(SmallLimits());
  EXPECT_TRUE(parser.Feed("set big 0 0 2147483645\r\n").empty());
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(parser.Feed(chunk).empty());
    ASSERT_EQ(parser.buffered_bytes(), 0u);
  }
}

TEST(MemcacheParserTest, ValueAtTheLimitIsKept) {
  const ParserLimits limits = SmallLimits();
  const std::string value(100, 'v');
  Request request = One("set k 0 0 100\r\n" + value + "\r\n", limits);
  EXPECT_FALSE(request.value_too_large);
  EXPECT_EQ(request.data, value);
  EXPECT_TRUE(One("set k 0 0 101\r\n" + value + "v\r\n", limits).value_too_large);
}

// --- other key commands ---

TEST(MemcacheParserTest, DeleteForms) {
  Request expected = Make(Command::kDelete, {"k"});
  EXPECT_EQ(One("delete k\r\n"), expected);
  EXPECT_EQ(One("delete k 0\r\n"), expected);
  expected.noreply = true;
  EXPECT_EQ(One("delete k noreply\r\n"), expected);
  EXPECT_EQ(One("delete k 0 noreply\r\n"), expected);
}

TEST(MemcacheParserTest, DeleteBadForms) {
  const ProtocolError usage{
      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n", false};
  EXPECT_EQ(OneError("delete k 10\r\n"), usage);
  EXPECT_EQ(OneError("delete k 1 noreply\r\n"), kSilent);
  EXPECT_EQ(OneError("delete k 0 x\r\n"), usage);
  EXPECT_EQ(OneError("delete\r\n"), kError);
  EXPECT_EQ(OneError("delete k 0 noreply x\r\n"), kError);
}

TEST(MemcacheParserTest, IncrDecr) {
  Request incr = Make(Command::kIncr, {"n"});
  incr.delta = 18446744073709551615u;
  EXPECT_EQ(One("incr n 18446744073709551615\r\n"), incr);
  Request decr = Make(Command::kDecr, {"n"});
  decr.delta = 5;
  decr.noreply = true;
  EXPECT_EQ(One("decr n 5 noreply\r\n"), decr);
}

TEST(MemcacheParserTest, IncrBadDelta) {
  EXPECT_EQ(OneError("incr n abc\r\n"), kInvalidDelta);
  EXPECT_EQ(OneError("incr n -1\r\n"), kInvalidDelta);
  EXPECT_EQ(OneError("decr n 18446744073709551616\r\n"), kInvalidDelta);
  EXPECT_EQ(OneError("incr n x noreply\r\n"), kSilent);
  EXPECT_EQ(OneError("incr n\r\n"), kError);
  EXPECT_EQ(OneError("incr n 1 noreply x\r\n"), kError);
}

TEST(MemcacheParserTest, Touch) {
  Request touch = Make(Command::kTouch, {"k"});
  touch.exptime = 60;
  EXPECT_EQ(One("touch k 60\r\n"), touch);
  touch.noreply = true;
  EXPECT_EQ(One("touch k 60 noreply\r\n"), touch);
  EXPECT_EQ(OneError("touch k later\r\n"), kInvalidExptime);
  EXPECT_EQ(OneError("touch k\r\n"), kError);
}

// --- connection-level commands ---

TEST(MemcacheParserTest, FlushAllForms) {
  auto flush = [](std::string cache, std::optional<int64_t> delay, bool noreply) {
    Request request = Make(Command::kFlushAll, {});
    request.cache = std::move(cache);
    request.delay = delay;
    request.noreply = noreply;
    return request;
  };
  EXPECT_EQ(One("flush_all\r\n"), flush("default", std::nullopt, false));
  EXPECT_EQ(One("flush_all 10\r\n"), flush("default", 10, false));
  EXPECT_EQ(One("flush_all noreply\r\n"), flush("default", std::nullopt, true));
  EXPECT_EQ(One("flush_all 0 noreply\r\n"), flush("default", 0, true));
  EXPECT_EQ(One("flush_all session\r\n"), flush("session", std::nullopt, false));
  EXPECT_EQ(One("flush_all session 5 noreply\r\n"), flush("session", 5, true));
  EXPECT_EQ(One("flush_all 123 0\r\n"), flush("123", 0, false)) << "a cache named by digits";
  EXPECT_EQ(OneError("flush_all session soon\r\n"), kInvalidExptime);
  EXPECT_EQ(OneError("flush_all a 1 2\r\n"), kError);
  EXPECT_EQ(OneError("flush_all a 1 2 noreply\r\n"), kError);
}

TEST(MemcacheParserTest, VersionStatsQuitVerbosity) {
  EXPECT_EQ(One("version\r\n"), Make(Command::kVersion, {}));
  EXPECT_EQ(One("stats\r\n"), Make(Command::kStats, {}));
  EXPECT_EQ(One("stats slabs\r\n"), Make(Command::kStats, {"slabs"}));
  Request verbosity = Make(Command::kVerbosity, {});
  verbosity.verbosity = 1;
  EXPECT_EQ(One("verbosity 1\r\n"), verbosity);
  verbosity.noreply = true;
  EXPECT_EQ(One("verbosity 1 noreply\r\n"), verbosity);
  EXPECT_EQ(OneError("verbosity high\r\n"), kBadFormat);
  EXPECT_EQ(OneError("verbosity\r\n"), kError);
}

TEST(MemcacheParserTest, QuitIgnoresEverythingAfter) {
  RequestParser parser;
  std::vector<ParseResult> results = parser.Feed("get a\r\nquit\r\nget b\r\n");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1], ParseResult(Make(Command::kQuit, {})));
  EXPECT_TRUE(parser.closed());
  EXPECT_TRUE(parser.Feed("get c\r\n").empty());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

// --- garbage ---

TEST(MemcacheParserTest, UnknownCommandsAreErrors) {
  EXPECT_EQ(OneError("bogus\r\n"), kError);
  EXPECT_EQ(OneError("GET a\r\n"), kError) << "commands are case-sensitive";
  EXPECT_EQ(OneError("mg foo v\r\n"), kError) << "no meta commands";
  EXPECT_EQ(OneError("\r\n"), kError);
  EXPECT_EQ(OneError("\n"), kError);
  EXPECT_EQ(OneError("   \r\n"), kError);
  EXPECT_EQ(OneError("g\r\n"), kError);
}

TEST(MemcacheParserTest, ErrorsDoNotStopTheConnection) {
  std::vector<ParseResult> results = Parse("bogus\r\nget a\r\n\r\nincr\r\nversion\r\n");
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[0], ParseResult(kError));
  EXPECT_EQ(results[1], ParseResult(Make(Command::kGet, {"a"})));
  EXPECT_EQ(results[2], ParseResult(kError));
  EXPECT_EQ(results[3], ParseResult(kError));
  EXPECT_EQ(results[4], ParseResult(Make(Command::kVersion, {})));
}

TEST(MemcacheParserTest, HttpRequestClosesSilently) {
  std::vector<ParseResult> results = Parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], ParseResult(ProtocolError{"", true}));
}

TEST(MemcacheParserTest, PipelinedRequestsInOneFeed) {
  const std::string input =
      "set a 1 0 3\r\none\r\n"
      "get a b\r\n"
      "add b 0 0 3 noreply\r\ntwo\r\n"
      "incr c 7\r\n"
      "delete a noreply\r\n"
      "touch b 10\r\n"
      "gats 5 b\r\n"
      "flush_all\r\n"
      "bogus\r\n"
      "version\r\n";
  std::vector<ParseResult> results = Parse(input);
  ASSERT_EQ(results.size(), 10u);
  std::vector<Command> commands;
  for (const ParseResult& result : results) {
    if (std::holds_alternative<Request>(result)) {
      commands.push_back(std::get<Request>(result).command);
    }
  }
  EXPECT_EQ(commands,
            (std::vector<Command>{Command::kSet, Command::kGet, Command::kAdd, Command::kIncr,
                                  Command::kDelete, Command::kTouch, Command::kGats,
                                  Command::kFlushAll, Command::kVersion}));
  EXPECT_EQ(results[8], ParseResult(kError));
}

TEST(MemcacheParserTest, EndlessLineIsCutOffWithBoundedMemory) {
  const ParserLimits limits;  // 2048-byte lines
  RequestParser parser(limits);
  bool closed = false;
  for (int i = 0; i < 100000 && !closed; ++i) {
    std::vector<ParseResult> results = parser.Feed("x");
    ASSERT_LE(parser.buffered_bytes(), limits.max_line_bytes + 1);
    if (!results.empty()) {
      ASSERT_EQ(results.size(), 1u);
      EXPECT_EQ(results[0], ParseResult(kLineTooLong));
      closed = true;
      EXPECT_EQ(i, 2049) << "cut off as soon as the line is known to be too long";
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(parser.closed());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_TRUE(parser.Feed("get a\r\n").empty());
}

TEST(MemcacheParserTest, EndlessLineInOneHugeFeed) {
  RequestParser parser;
  std::vector<ParseResult> results = parser.Feed(std::string(10 * 1024 * 1024, 'y'));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], ParseResult(kLineTooLong));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(MemcacheParserTest, LineAtTheLimit) {
  const ParserLimits limits = SmallLimits();  // 64 bytes; 256 for get lines
  const std::string at_limit = "version" + std::string(64 - 7, ' ');
  EXPECT_EQ(One(at_limit + "\r\n", limits), Make(Command::kVersion, {}));
  EXPECT_EQ(OneError(at_limit + " \r\n", limits), kLineTooLong);
  EXPECT_EQ(OneError(at_limit + " \n", limits), kLineTooLong);
  // A line of exactly the limit ended by a bare "\n" is fine too.
  EXPECT_EQ(One(at_limit + "\n", limits), Make(Command::kVersion, {}));
}

TEST(MemcacheParserTest, LongGetLinesMayUseTheRetrievalLimit) {
  const ParserLimits limits = SmallLimits();
  std::string line = "get";
  std::vector<std::string> keys;
  while (line.size() + 4 <= 256) {
    keys.push_back("k" + std::to_string(keys.size() % 10) + "x");
    line += " " + keys.back();
  }
  ASSERT_GT(line.size(), 64u);
  EXPECT_EQ(One(line + "\r\n", limits), Make(Command::kGet, keys));
  EXPECT_EQ(OneError(line + std::string(256 - line.size() + 1, 'z') + "\r\n", limits),
            kLineTooLong);
  // The same length is too long for any other command.
  const std::string set_line = "set " + std::string(100, 'k') + " 0 0 1";
  EXPECT_EQ(OneError(set_line + "\r\nx\r\n", limits), kLineTooLong);
}

TEST(MemcacheParserTest, RetrievalLimitIsAtLeastTheLineLimit) {
  ParserLimits limits;
  limits.max_line_bytes = 300;
  limits.max_retrieval_line_bytes = 10;
  const std::string key(250, 'a');
  EXPECT_EQ(One("get " + key + "\r\n", limits), Make(Command::kGet, {key}));
}

TEST(MemcacheParserTest, LongLineOfLeadingSpaces) {
  const ParserLimits limits = SmallLimits();
  EXPECT_EQ(OneError(std::string(200, ' ') + "get a\r\n", limits), kLineTooLong);
}

TEST(MemcacheParserTest, BinaryJunkNeverGrowsMemoryAndSplitsAgree) {
  const ParserLimits limits = SmallLimits();
  std::mt19937 random(12345);
  for (int round = 0; round < 200; ++round) {
    std::string junk(std::uniform_int_distribution<>(1, 2000)(random), '\0');
    for (char& c : junk) c = static_cast<char>(std::uniform_int_distribution<>(0, 255)(random));
    // Sprinkle line ends and known commands so that some lines parse.
    for (int i = 0; i < 5; ++i) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, junk.size())(random);
      static const char* kPieces[] = {
          "\r\n",  "\n",          "get a\r\n", "set k 0 0 3\r\n", "set k 0 0 99\r\n",
          "incr ", " noreply\r\n"};
      junk.insert(at, kPieces[std::uniform_int_distribution<>(0, 6)(random)]);
    }
    Parse(junk, limits);
  }
}

TEST(MemcacheParserTest, MemcachedBinaryProtocolIsGarbage) {
  // A binary-protocol GET header (magic 0x80): no line end, so it waits, then
  // the line limit cuts it off.
  std::string header(24, '\0');
  header[0] = static_cast<char>(0x80);
  RequestParser parser;
  EXPECT_TRUE(parser.Feed(header).empty());
  std::vector<ParseResult> results = parser.Feed(std::string(3000, '\0'));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], ParseResult(kLineTooLong));
}

TEST(MemcacheParserTest, CommandNames) {
  EXPECT_EQ(CommandName(Command::kFlushAll), "flush_all");
  EXPECT_EQ(CommandName(Command::kGats), "gats");
}

}  // namespace
}  // namespace cb::memcache
