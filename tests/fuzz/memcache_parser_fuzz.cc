// libFuzzer target: the memcached text protocol parser (sidecar/memcache/parser.h),
// the command semantics run on what it yields (commands.h), and the store's record
// decoder (sidecar/store/record_codec.h), all on untrusted bytes.
//
// Input layout: byte 0 is a chunk size (1..256) for feeding; the rest is the
// client's byte stream, also decoded as one stored record.
//
// Invariants (a violation traps): feeding in chunks yields exactly what feeding at
// once does; the parser never holds more than its documented bound; every reply
// ends with "\r\n"; Execute never throws and a record it writes is within the
// cache's limit or a tombstone; a decoded record re-encodes to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "sidecar/memcache/commands.h"
#include "sidecar/memcache/parser.h"
#include "sidecar/store/record_codec.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = static_cast<std::size_t>(data[0]) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  cb::memcache::ParserLimits limits;
  limits.max_line_bytes = 64;
  limits.max_retrieval_line_bytes = 128;
  limits.max_value_bytes = 256;
  limits.max_keys_per_request = 3;
  const std::size_t bound = cb::memcache::BufferBound(limits);

  cb::memcache::RequestParser whole(limits);
  const std::vector<cb::memcache::ParseResult> at_once = whole.Feed(stream);
  cb::memcache::RequestParser pieces(limits);
  std::vector<cb::memcache::ParseResult> chunked;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    std::vector<cb::memcache::ParseResult> got = pieces.Feed(stream.substr(at, chunk));
    Check(pieces.buffered_bytes() <= bound);
    chunked.insert(chunked.end(), got.begin(), got.end());
  }
  Check(chunked == at_once);

  cb::store::Record current;
  current.value = "12";
  current.version = {1, 0};
  const cb::memcache::CacheLimits cache_limits{200};
  for (const cb::memcache::ParseResult& result : at_once) {
    if (const auto* error = std::get_if<cb::memcache::ProtocolError>(&result)) {
      Check(error->reply.empty() || error->reply.ends_with("\r\n"));
      continue;
    }
    const auto& request = std::get<cb::memcache::Request>(result);
    for (const std::optional<cb::store::Record>& existing :
         {std::optional<cb::store::Record>(), std::optional<cb::store::Record>(current)}) {
      const cb::memcache::Outcome outcome =
          cb::memcache::Execute(request, existing, 1'700'000'000'000, cache_limits);
      Check(outcome.reply.empty() || outcome.reply.ends_with("\r\n"));
      if (outcome.write) {
        Check(outcome.write->deleted ||
              outcome.write->value.size() <= cache_limits.max_entry_bytes);
      }
    }
  }

  cb::Result<cb::store::Record> record = cb::store::DecodeRecord(stream);
  if (record.ok()) Check(cb::store::EncodeRecord(*record) == stream);
  return 0;
}
