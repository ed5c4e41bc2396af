#include "shared/config_values.h"

#include <array>
#include <charconv>
#include <utility>

namespace cb {
namespace {

// Splits "123unit" into its number and unit; false when there is no leading number
// or it overflows 64 bits.
bool SplitNumber(std::string_view text, uint64_t& number, std::string_view& unit) {
  const char* end = text.data() + text.size();
  const auto [rest, error] = std::from_chars(text.data(), end, number);
  if (error != std::errc() || rest == text.data()) return false;
  unit = std::string_view(rest, static_cast<std::size_t>(end - rest));
  return true;
}

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool IsIpv6LiteralChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

std::string HostPort::ToString() const {
  const std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

Result<HostPort> ParseHostPort(std::string_view text) {
  const auto invalid = [&](std::string_view why) {
    return Status::InvalidArgument("address " + Quoted(text) + " " + std::string(why) +
                                   " (expected host:port, e.g. \"10.0.0.10:6800\" or "
                                   "\"[::1]:6800\")");
  };
  const std::size_t colon = text.rfind(':');
  // "[::1]": the last ':' is inside the brackets.
  if (colon == std::string_view::npos || (!text.empty() && text.back() == ']')) {
    return invalid("has no port");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);

  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return invalid("has an unbalanced '['");
    host = host.substr(1, host.size() - 2);
    // Brackets are for IPv6 only: "[10.0.0.1]" would print back without them.
    if (host.find(':') == std::string_view::npos) return invalid("has a malformed IPv6 literal");
    for (char c : host) {
      if (!IsIpv6LiteralChar(c)) return invalid("has a malformed IPv6 literal");
    }
  } else {
    if (host.empty()) return invalid("has no host");
    for (char c : host) {
      if (!IsHostNameChar(c)) return invalid("has a character not allowed in a host name");
    }
  }
  uint64_t port = 0;
  std::string_view unit;
  if (!SplitNumber(port_text, port, unit) || !unit.empty() || port == 0 || port > 65535) {
    return invalid("has a port outside 1..65535");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 4> kUnits = {{
      {"ms", 1},
      {"s", 1000},
      {"m", 60 * 1000},
      {"h", 60 * 60 * 1000},
  }};
  uint64_t number = 0;
  std::string_view unit;
  if (SplitNumber(text, number, unit)) {
    for (const auto& [name, factor] : kUnits) {
      if (unit != name) continue;
      if (number > kMaxDuration.count() / factor) {
        return Status::InvalidArgument("duration " + Quoted(text) + " is over the limit of " +
                                       FormatDuration(kMaxDuration) + " (10 years)");
      }
      return std::chrono::milliseconds(static_cast<int64_t>(number * factor));
    }
  }
  return Status::InvalidArgument("duration " + Quoted(text) +
                                 " is not a whole number with a unit ms, s, m or h (e.g. \"3s\")");
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms != 0 && ms % (60 * 60 * 1000) == 0) return std::to_string(ms / (60 * 60 * 1000)) + "h";
  if (ms != 0 && ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 5> kUnits = {{
      {"", 1},
      {"B", 1},
      {"KiB", uint64_t{1} << 10},
      {"MiB", uint64_t{1} << 20},
      {"GiB", uint64_t{1} << 30},
  }};
  uint64_t number = 0;
  std::string_view unit;
  if (SplitNumber(text, number, unit)) {
    for (const auto& [name, factor] : kUnits) {
      if (unit != name) continue;
      if (number > UINT64_MAX / factor) break;
      return number * factor;
    }
  }
  return Status::InvalidArgument("size " + Quoted(text) +
                                 " is not a whole number of bytes with an optional unit B, KiB, "
                                 "MiB or GiB (e.g. \"1MiB\")");
}

}  // namespace cb
