// libFuzzer target: session-id extraction (shared/route_codec.h) and the routing
// decision (shared/routing.h) on untrusted Cookie headers and request paths.
//
// Input layout (every split is taken from the input, so any byte string is valid):
//   byte 0        control: bit 7 set = the cookie/parameter name is the fixed
//                 "JSESSIONID" (and "jsessionid" for paths); otherwise the low 5 bits
//                 are the length of a fuzzed name that follows
//   name bytes    (only when bit 7 is clear)
//   the rest      the Cookie header, also used as the request path; its last 21
//                 bytes (when there are that many past the first 21) are also read
//                 as the routing parameters: random (8), exclude mask (8), clock
//                 offset (4) and view choice (1)
//
// Invariants (a violation traps): a returned session id is empty or a sub-range of
// the input buffer itself, and satisfies IsValidSessionId; RouteIndexOfSession is -1
// or the index of the id's first character (as a char and as text); ChooseServer
// returns -1 exactly with kNoServer, otherwise a server that is up (or draining, for
// a sticky or backup choice) in the view and not excluded.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "shared/cluster_view.h"
#include "shared/rendezvous.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/server_set.h"

namespace {

#define FUZZ_CHECK(condition)           \
  do {                                  \
    if (!(condition)) __builtin_trap(); \
  } while (0)

constexpr int64_t kNow = 1'700'000'000'000;  // a fixed wall clock (ms)

// True when `part` is empty or lies entirely inside `whole` (by address).
bool IsInside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  const auto begin = reinterpret_cast<uintptr_t>(whole.data());
  const auto end = begin + whole.size();
  const auto part_begin = reinterpret_cast<uintptr_t>(part.data());
  return part_begin >= begin && part_begin <= end && part.size() <= end - part_begin;
}

void SetServer(cb::ClusterView& view, int index, cb::ServerState state, uint32_t weight,
               int64_t up_since) {
  cb::ViewServer& server = view.server(index);
  server.state = static_cast<uint8_t>(state);
  server.index = static_cast<uint8_t>(index);
  server.weight = weight;
  server.up_since_unix_ms = up_since;
  char id[16] = {};
  id[0] = 's';
  id[1] = static_cast<char>('0' + index / 10);
  id[2] = static_cast<char>('0' + index % 10);
  (void)server.SetId(id);
}

// View 0: every state, weights including 0, a server in slow start, gaps (absent
// slots). View 1: only draining and down servers. View 2: empty.
const cb::ClusterView* MakeViews() {
  static cb::ClusterView views[3];
  cb::ClusterView& mixed = views[0];
  mixed.slow_start_ms = 60'000;
  mixed.publisher_index = 0;
  SetServer(mixed, 0, cb::ServerState::kUp, 100, 0);
  SetServer(mixed, 1, cb::ServerState::kDraining, 100, 0);
  SetServer(mixed, 2, cb::ServerState::kDown, 100, 0);
  SetServer(mixed, 3, cb::ServerState::kUp, 0, 0);
  SetServer(mixed, 4, cb::ServerState::kUp, 1'000'000, kNow - 30'000);  // warming up
  SetServer(mixed, 7, cb::ServerState::kUp, 1, kNow + 5'000);           // up in the future
  SetServer(mixed, 26, cb::ServerState::kDown, 50, 0);                  // 'a'
  SetServer(mixed, 52, cb::ServerState::kUp, 250, 0);                   // '0'
  SetServer(mixed, 62, cb::ServerState::kDraining, 10, 0);              // '-'
  SetServer(mixed, 63, cb::ServerState::kUp, 4'000'000'000u, 0);        // '_'
  cb::ClusterView& no_up = views[1];
  SetServer(no_up, 0, cb::ServerState::kDraining, 100, 0);
  SetServer(no_up, 1, cb::ServerState::kDown, 100, 0);
  SetServer(no_up, 5, cb::ServerState::kDraining, 0, 0);
  for (const cb::ClusterView& view : views) FUZZ_CHECK(view.Validate().ok());
  return views;
}

uint64_t Load64(const uint8_t* bytes) {
  uint64_t value = 0;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

void CheckSessionId(std::string_view id, std::string_view input) {
  FUZZ_CHECK(IsInside(id, input));
  FUZZ_CHECK(id.empty() || cb::IsValidSessionId(id));
  const int route = cb::RouteIndexOfSession(id);
  FUZZ_CHECK(route >= -1 && route < cb::kMaxServers);
  if (id.empty()) {
    FUZZ_CHECK(route == -1);
  } else if (route >= 0) {
    FUZZ_CHECK(cb::RouteCharForIndex(route) == id.front());
    FUZZ_CHECK(cb::RouteCharTextForIndex(route) == id.substr(0, 1));
    FUZZ_CHECK(cb::IndexForRouteChar(id.front()) == route);
  }
}

uint64_t Weight(const cb::ClusterView& view, int index, int64_t now_unix_ms) {
  const cb::ViewServer& server = view.server(index);
  return cb::EffectiveWeight(server.weight, server.up_since_unix_ms, now_unix_ms,
                             view.slow_start_ms);
}

void CheckChoice(const cb::ClusterView& view, const cb::RoutingTable& table,
                 const cb::RouteRequest& request) {
  const cb::RouteChoice choice = table.Choose(request);
  if (choice.index == -1) {
    FUZZ_CHECK(choice.reason == cb::RouteReason::kNoServer);
    // Nothing was eligible: no up server with any weight outside the exclusion.
    bool any_usable = false;
    view.ServersIn(cb::ServerState::kUp).Without(request.exclude).ForEach([&](int index) {
      if (Weight(view, index, request.now_unix_ms) > 0) {
        any_usable = true;
      }
    });
    FUZZ_CHECK(!any_usable);
    return;
  }
  FUZZ_CHECK(choice.reason != cb::RouteReason::kNoServer);
  FUZZ_CHECK(choice.index >= 0 && choice.index < cb::kMaxServers);
  FUZZ_CHECK(!request.exclude.Contains(choice.index));
  const cb::ServerState state = view.state(choice.index);
  FUZZ_CHECK(state == cb::ServerState::kUp || state == cb::ServerState::kDraining);
  switch (choice.reason) {
    case cb::RouteReason::kSticky:
      FUZZ_CHECK(choice.index == cb::RouteIndexOfSession(request.session_id));
      break;
    case cb::RouteReason::kBackup: {
      FUZZ_CHECK(!request.session_id.empty());
      // Only when the session's own server cannot take it.
      const int route = cb::RouteIndexOfSession(request.session_id);
      const bool own_server_serves =
          route >= 0 && (view.state(route) == cb::ServerState::kUp ||
                         view.state(route) == cb::ServerState::kDraining);
      FUZZ_CHECK(!own_server_serves || request.exclude.Contains(route));
      // The rendezvous choice among eligible up servers; draining only when none is up.
      const cb::ServerSet up = view.ServersIn(cb::ServerState::kUp).Without(request.exclude);
      const cb::ServerSet draining =
          view.ServersIn(cb::ServerState::kDraining).Without(request.exclude);
      const uint64_t key_hash = cb::RendezvousKeyHash(request.session_id);
      FUZZ_CHECK(choice.index == cb::RendezvousFirst(key_hash, up.empty() ? draining : up));
      break;
    }
    case cb::RouteReason::kBalanced:
      FUZZ_CHECK(request.session_id.empty());
      // New sessions never go to a draining server or one of weight 0.
      FUZZ_CHECK(state == cb::ServerState::kUp);
      FUZZ_CHECK(Weight(view, choice.index, request.now_unix_ms) > 0);
      break;
    case cb::RouteReason::kNoServer:
      break;
  }
  // A pure function of the view and the request: the table and the one-off call agree.
  const cb::RouteChoice again = cb::ChooseServer(view, request);
  FUZZ_CHECK(again.index == choice.index && again.reason == choice.reason);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const cb::ClusterView* const views = MakeViews();
  static const cb::RoutingTable tables[3] = {cb::RoutingTable(views[0]), cb::RoutingTable(views[1]),
                                             cb::RoutingTable(views[2])};
  if (size == 0) return 0;
  // Everything below points into `data` itself (never a copy), so that ASan sees any
  // read past the input and IsInside() checks against the real buffer.
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const uint8_t control = data[0];
  std::string_view rest = input.substr(1);

  std::string_view cookie_name = cb::kDefaultSessionCookie;
  std::string_view parameter = cb::kDefaultPathParameter;
  if ((control & 0x80) == 0) {
    const std::size_t length = std::min<std::size_t>(control & 0x1f, rest.size());
    cookie_name = rest.substr(0, length);
    parameter = cookie_name;
    rest.remove_prefix(length);
  }

  const std::string_view from_cookie = cb::SessionIdFromCookieHeader(rest, cookie_name);
  CheckSessionId(from_cookie, rest);
  if (!from_cookie.empty()) FUZZ_CHECK(!cookie_name.empty());
  FUZZ_CHECK(cb::SessionIdFromCookieHeader(rest, cookie_name) == from_cookie);  // pure

  const std::string_view from_path = cb::SessionIdFromPath(rest, parameter);
  CheckSessionId(from_path, rest);
  if (!from_path.empty()) {
    // Only the path part (before '?' or '#') is searched, and the id never holds a
    // separator.
    const std::size_t path_end = rest.find_first_of("?#");
    FUZZ_CHECK(path_end == std::string_view::npos ||
               static_cast<std::size_t>(from_path.data() + from_path.size() - rest.data()) <=
                   path_end);
    FUZZ_CHECK(from_path.find_first_of(";/?#") == std::string_view::npos);
  }
  const std::string_view from_default_path = cb::SessionIdFromPath(rest);
  CheckSessionId(from_default_path, rest);

  // The whole input read as a session id, as a module does with a route cookie.
  CheckSessionId(cb::IsValidSessionId(input) ? input : std::string_view{}, input);
  const int raw_route = cb::RouteIndexOfSession(input);
  FUZZ_CHECK(raw_route == cb::IndexForRouteChar(input.front()));

  cb::RouteRequest request;
  request.now_unix_ms = kNow;
  int which = 0;
  if (rest.size() >= 42) {
    const auto* tail = reinterpret_cast<const uint8_t*>(rest.data() + rest.size() - 21);
    request.random = Load64(tail);
    request.exclude = cb::ServerSet::FromBits(Load64(tail + 8));
    uint32_t offset = 0;
    std::memcpy(&offset, tail + 16, sizeof(offset));
    // A realistic clock: within about +-12 days of the fixed one.
    request.now_unix_ms = kNow + static_cast<int32_t>(offset) / 2;
    which = tail[20] % 3;
  } else if (rest.size() >= 8) {
    request.random = Load64(reinterpret_cast<const uint8_t*>(rest.data()));
  }

  for (std::string_view session : {from_cookie, from_path, std::string_view{}}) {
    request.session_id = session;
    CheckChoice(views[which], tables[which], request);
  }
  return 0;
}
