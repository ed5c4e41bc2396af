#include "shared/balancer.h"

#include <cstddef>
#include <optional>
#include <utility>

#include "shared/route_codec.h"
#include "shared/sticky_cookie.h"

namespace cb {

Balancer::Balancer(BalancerOptions options, std::vector<SocketAddress> configured, uint64_t seed)
    : options_(std::move(options)),
      tracker_(options_.view_path, std::move(configured)),
      random_state_(seed) {
  if (options_.slow_start) {
    tracker_.OverrideSlowStart(static_cast<uint32_t>(options_.slow_start->count()));
  }
  if (options_.current_version_only) tracker_.PreferCurrentVersion(options_.webapp);
}

std::string_view Balancer::SessionFromCookieHeader(std::string_view cookie_header) const {
  if (options_.mode == StickyMode::kRoute) {
    return SessionIdFromCookieHeader(cookie_header, options_.session_cookie);
  }
  const std::string_view value =
      SessionIdFromCookieHeader(cookie_header, options_.insert_cookie.name);
  return IsStickyCookieValue(value) ? value : std::string_view{};
}

std::string_view Balancer::SessionFromPath(std::string_view path) const {
  if (options_.mode != StickyMode::kRoute || options_.path_parameter.empty()) return {};
  return SessionIdFromPath(path, options_.path_parameter);
}

RouteChoice Balancer::Choose(std::string_view session, ServerSet exclude, int64_t now_unix_ms) {
  return tracker_.Choose(session, exclude, now_unix_ms, NextRandom());
}

std::string Balancer::InsertCookieFor(std::string_view session, int answered) {
  if (options_.mode != StickyMode::kInsert || RouteCharForIndex(answered) == '\0') return {};
  if (!session.empty()) {
    const int pinned = RouteIndexOfSession(session);
    // Without a view nothing says the pinned server is gone: keep the pin.
    if (pinned == answered || !tracker_.usable() || tracker_.Serves(pinned)) {
      if (options_.insert_cookie.max_age_s < 0) return {};
      return SetCookieHeader(options_.insert_cookie, session);
    }
  }
  return SetCookieHeader(options_.insert_cookie,
                         StickyCookieValue(answered, NextRandom(), session));
}

// splitmix64: fast, and good enough for spreading new sessions and cookie tokens
// (the tokens are not secrets: they only pick a backup).
uint64_t Balancer::NextRandom() {
  uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace cb
