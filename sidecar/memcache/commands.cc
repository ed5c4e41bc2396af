#include "sidecar/memcache/commands.h"

#include <limits>
#include <utility>

#include "shared/cluster_config.h"

namespace cb::memcache {
namespace {

constexpr int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;  // memcached's REALTIME_MAXDELTA
constexpr int64_t kExpired = 1;

constexpr std::string_view kStored = "STORED";
constexpr std::string_view kNotStored = "NOT_STORED";
constexpr std::string_view kExists = "EXISTS";
constexpr std::string_view kNotFound = "NOT_FOUND";
constexpr std::string_view kDeleted = "DELETED";
constexpr std::string_view kTouched = "TOUCHED";
constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache";
constexpr std::string_view kNonNumeric =
    "CLIENT_ERROR cannot increment or decrement non-numeric value";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// A stored value as memcached's incr/decr reads it (strtoull, base 10).
std::optional<uint64_t> ParseCounter(std::string_view value) {
  std::size_t pos = 0;
  while (pos < value.size() && IsSpace(value[pos])) ++pos;
  if (pos < value.size() && value[pos] == '+') ++pos;
  const std::size_t digits_start = pos;
  uint64_t number = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (; pos < value.size() && value[pos] >= '0' && value[pos] <= '9'; ++pos) {
    const auto digit = static_cast<uint64_t>(value[pos] - '0');
    if (number > (kMax - digit) / 10) return std::nullopt;
    number = number * 10 + digit;
  }
  if (pos == digits_start) return std::nullopt;
  if (pos < value.size() && !IsSpace(value[pos])) return std::nullopt;
  return number;
}

store::Record Tombstone() {
  store::Record record;
  record.deleted = true;
  return record;
}

}  // namespace

KeyTarget SplitKey(std::string_view full_key,
                   const std::function<bool(std::string_view)>& is_cache) {
  const std::size_t colon = full_key.find(':');
  if (colon != std::string_view::npos) {
    const std::string_view cache = full_key.substr(0, colon);
    if (is_cache(cache)) return KeyTarget{cache, full_key.substr(colon + 1)};
  }
  return KeyTarget{kDefaultCache, full_key};
}

int64_t ExpiryFromExptime(int64_t exptime, int64_t now_unix_ms) {
  if (exptime == 0) return 0;
  if (exptime < 0) return kExpired;
  if (exptime <= kMaxRelativeExptime) return now_unix_ms + exptime * 1000;
  if (exptime > std::numeric_limits<int64_t>::max() / 1000) {
    return std::numeric_limits<int64_t>::max();
  }
  return exptime * 1000;
}

Outcome Execute(const Request& request, const std::optional<store::Record>& current,
                int64_t now_unix_ms, const CacheLimits& limits) {
  const store::Record* live =
      current.has_value() && !current->IsGoneAt(now_unix_ms) ? &*current : nullptr;
  Outcome outcome;
  auto reply = [&](std::string_view line) {
    if (request.noreply) return;
    outcome.reply.assign(line);
    outcome.reply.append("\r\n");
  };
  const bool too_large = request.value_too_large || request.data.size() > limits.max_entry_bytes;

  switch (request.command) {
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kCas: {
      if (too_large) {
        if (request.command == Command::kSet && live != nullptr) outcome.write = Tombstone();
        reply(kTooLarge);
        break;
      }
      if (request.command == Command::kAdd && live != nullptr) {
        reply(kNotStored);
        break;
      }
      if (request.command == Command::kReplace && live == nullptr) {
        reply(kNotStored);
        break;
      }
      if (request.command == Command::kCas) {
        if (live == nullptr) {
          reply(kNotFound);
          break;
        }
        if (request.cas_unique != live->version.CasToken()) {
          reply(kExists);
          break;
        }
      }
      store::Record record;
      record.value = request.data;
      record.flags = request.flags;
      record.expiry_unix_ms = ExpiryFromExptime(request.exptime, now_unix_ms);
      outcome.write = std::move(record);
      reply(kStored);
      break;
    }
    case Command::kAppend:
    case Command::kPrepend: {
      if (too_large) {
        reply(kTooLarge);
        break;
      }
      if (live == nullptr || live->value.size() + request.data.size() > limits.max_entry_bytes) {
        reply(kNotStored);
        break;
      }
      store::Record record = *live;
      record.version = store::Version();
      if (request.command == Command::kAppend) {
        record.value.append(request.data);
      } else {
        record.value.insert(0, request.data);
      }
      outcome.write = std::move(record);
      reply(kStored);
      break;
    }
    case Command::kDelete:
      if (live == nullptr) {
        reply(kNotFound);
        break;
      }
      outcome.write = Tombstone();
      reply(kDeleted);
      break;
    case Command::kTouch:
      if (live == nullptr) {
        reply(kNotFound);
        break;
      }
      outcome.write = *live;
      outcome.write->version = store::Version();
      outcome.write->expiry_unix_ms = ExpiryFromExptime(request.exptime, now_unix_ms);
      reply(kTouched);
      break;
    case Command::kIncr:
    case Command::kDecr: {
      if (live == nullptr) {
        reply(kNotFound);
        break;
      }
      const std::optional<uint64_t> value = ParseCounter(live->value);
      if (!value) {
        reply(kNonNumeric);
        break;
      }
      uint64_t result = *value;
      if (request.command == Command::kIncr) {
        result += request.delta;  // wraps around, as memcached's does
      } else {
        result = request.delta > result ? 0 : result - request.delta;
      }
      const std::string text = std::to_string(result);
      outcome.write = *live;
      outcome.write->version = store::Version();
      outcome.write->value = text;
      reply(text);
      break;
    }
    case Command::kGet:
    case Command::kGets:
      outcome.found = live != nullptr;
      break;
    case Command::kGat:
    case Command::kGats:
      if (live == nullptr) break;
      outcome.write = *live;
      outcome.write->version = store::Version();
      outcome.write->expiry_unix_ms = ExpiryFromExptime(request.exptime, now_unix_ms);
      outcome.found = true;
      break;
    default:
      outcome.reply = "ERROR\r\n";
      break;
  }
  return outcome;
}

std::string ServerErrorReply(std::string_view why) {
  return "SERVER_ERROR " + std::string(why) + "\r\n";
}

void AppendValue(std::string& out, std::string_view key, const store::Record& record,
                 bool with_cas) {
  out.append("VALUE ");
  out.append(key);
  out.push_back(' ');
  out.append(std::to_string(record.flags));
  out.push_back(' ');
  out.append(std::to_string(record.value.size()));
  if (with_cas) {
    out.push_back(' ');
    out.append(std::to_string(record.version.CasToken()));
  }
  out.append("\r\n");
  out.append(record.value);
  out.append("\r\n");
}

std::string ValueLines(std::span<const ValueHit> hits, bool with_cas, bool more_keys) {
  std::string out;
  for (const ValueHit& hit : hits) {
    if (hit.record != nullptr) AppendValue(out, hit.key, *hit.record, with_cas);
  }
  if (!more_keys) out.append("END\r\n");
  return out;
}

}  // namespace cb::memcache
