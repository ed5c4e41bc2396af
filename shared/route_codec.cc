#include "shared/route_codec.h"

#include <array>
#include <cstdint>

namespace cb {
namespace {

constexpr std::array<int8_t, 256> MakeIndexTable() {
  std::array<int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (std::size_t i = 0; i < kRouteAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kRouteAlphabet[i])] = static_cast<int8_t>(i);
  }
  return table;
}
constexpr std::array<int8_t, 256> kIndexOfChar = MakeIndexTable();

// RFC 6265 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
constexpr bool IsCookieOctet(unsigned char c) {
  return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

constexpr bool IsOptionalWhiteSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimWhiteSpace(std::string_view text) {
  while (!text.empty() && IsOptionalWhiteSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsOptionalWhiteSpace(text.back())) text.remove_suffix(1);
  return text;
}

// A cookie value as sent, without its optional pair of double quotes; empty when
// the quoting is unbalanced or the value is not a usable session id.
std::string_view UsableCookieValue(std::string_view raw) {
  if (!raw.empty() && raw.front() == '"') {
    if (raw.size() < 2 || raw.back() != '"') return {};
    raw = raw.substr(1, raw.size() - 2);
  }
  return IsValidSessionId(raw) ? raw : std::string_view{};
}

}  // namespace

char RouteCharForIndex(int index) {
  if (index < 0 || index >= kMaxServers) return '\0';
  return kRouteAlphabet[static_cast<std::size_t>(index)];
}

std::string_view RouteCharTextForIndex(int index) {
  if (index < 0 || index >= kMaxServers) return {};
  return kRouteAlphabet.substr(static_cast<std::size_t>(index), 1);
}

int IndexForRouteChar(char c) { return kIndexOfChar[static_cast<unsigned char>(c)]; }

bool IsValidSessionId(std::string_view value) {
  if (value.empty() || value.size() > kMaxSessionIdLength) return false;
  for (char c : value) {
    if (!IsCookieOctet(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsCookieName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
    if (std::string_view("()<>@,;:\\\"/[]?={}").find(c) != std::string_view::npos) return false;
  }
  return true;
}

int RouteIndexOfSession(std::string_view session_id) {
  return session_id.empty() ? -1 : IndexForRouteChar(session_id.front());
}

std::string_view SessionIdFromCookieHeader(std::string_view cookie_header,
                                           std::string_view cookie_name) {
  if (cookie_name.empty()) return {};
  while (!cookie_header.empty()) {
    const std::size_t end = cookie_header.find(';');
    const std::string_view pair = cookie_header.substr(0, end);
    cookie_header =
        end == std::string_view::npos ? std::string_view{} : cookie_header.substr(end + 1);

    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos) continue;
    if (TrimWhiteSpace(pair.substr(0, equals)) != cookie_name) continue;
    const std::string_view value = UsableCookieValue(TrimWhiteSpace(pair.substr(equals + 1)));
    if (!value.empty()) return value;
  }
  return {};
}

std::string_view SessionIdFromPath(std::string_view path, std::string_view parameter) {
  if (parameter.empty()) return {};
  path = path.substr(0, path.find_first_of("?#"));
  std::size_t search_from = 0;
  while (true) {
    const std::size_t semicolon = path.find(';', search_from);
    if (semicolon == std::string_view::npos) return {};
    std::string_view rest = path.substr(semicolon + 1);
    search_from = semicolon + 1;
    if (rest.size() <= parameter.size() || rest.substr(0, parameter.size()) != parameter ||
        rest[parameter.size()] != '=') {
      continue;
    }
    rest.remove_prefix(parameter.size() + 1);
    const std::string_view value = rest.substr(0, rest.find_first_of(";/"));
    if (IsValidSessionId(value)) return value;
  }
}

}  // namespace cb
