#include "shared/request_policy.h"

#include <type_traits>

#include "shared/route_codec.h"

namespace cb {

// The modules keep it in request memory that is freed without running destructors.
static_assert(std::is_trivially_destructible_v<RequestPolicy>);

std::string_view ReasonName(RouteReason reason) {
  switch (reason) {
    case RouteReason::kSticky:
      return "sticky";
    case RouteReason::kBackup:
      return "backup";
    case RouteReason::kBalanced:
      return "balanced";
    case RouteReason::kNoServer:
      return "fallback";
  }
  return "fallback";
}

bool StaysHeldOut(const Balancer& balancer, int index, int64_t failed_unix_ms) {
  const int64_t up_since_unix_ms = balancer.UpSinceUnixMs(index);
  return up_since_unix_ms <= 0 || failed_unix_ms >= up_since_unix_ms;
}

void RequestPolicy::StartTries(const Balancer& balancer) {
  if (!balancer.usable()) own_balancing_ = true;
}

int RequestPolicy::MaxTries(const Balancer& balancer, ServerSet unreachable) const {
  return own_balancing_ ? 0 : balancer.Candidates().Without(unreachable).size();
}

RouteChoice RequestPolicy::ChooseAvoiding(Balancer& balancer, std::string_view session,
                                          ServerSet unreachable, ServerSet held_out,
                                          int64_t now_unix_ms) const {
  const ServerSet excluded = tried_ | unreachable;
  RouteChoice choice = balancer.Choose(session, excluded | held_out, now_unix_ms);
  if (choice.index < 0 && !held_out.empty())
    choice = balancer.Choose(session, excluded, now_unix_ms);
  return choice;
}

NoServerAction RequestPolicy::WhenNoServer(const Balancer& balancer) const noexcept {
  if (tried_.empty()) return NoServerAction::kOwnBalancing;
  return balancer.usable() ? NoServerAction::kGiveUp : NoServerAction::kOwnBalancingUntried;
}

int RequestPolicy::OwnServerWithoutView(std::string_view session) const {
  return tried_.empty() ? RouteIndexOfSession(session) : -1;
}

void RequestPolicy::StartTry(RouteChoice choice) noexcept {
  tried_.Add(choice.index);
  latest_ = choice;
  if (choice.reason == RouteReason::kNoServer) own_balancing_ = true;
}

std::string RequestPolicy::InsertCookie(Balancer& balancer, std::string_view session) const {
  if (latest_.index < 0) return {};
  return balancer.InsertCookieFor(session, latest_.index);
}

bool RequestPolicy::TakeFreshConnectionRetry() {
  if (retried_on_fresh_connection_) return false;
  retried_on_fresh_connection_ = true;
  tried_.Remove(latest_.index);
  return true;
}

}  // namespace cb
