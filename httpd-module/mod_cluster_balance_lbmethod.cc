// httpd glue: the lbmethod provider "cluster". mod_proxy_balancer asks its finder
// for the member of each try of a request, after its own stickysession lookup
// found none, under the balancer's lock: the finder never blocks. It reads the
// view's memory mapping (Balancer::Refresh), never waits on the sidecar, and
// converts the request's RequestPolicy (shared/request_policy.h) answers to the
// balancer's members. When the view has no say, httpd's own balancing chooses
// among the members by their states (mod_proxy's ap_proxy_balancer_get_best_worker).

#include <apr_optional.h>
#include <apr_strings.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "httpd-module/mod_cluster_balance_glue.h"

APLOG_USE_MODULE(cluster_balance);

namespace cb::httpd {
namespace {

APR_OPTIONAL_FN_TYPE(proxy_balancer_get_best_worker) * get_best_worker = nullptr;

bool Tried(const RequestState* state, const proxy_worker* worker) {
  if (state == nullptr) return false;
  const auto end = state->tried_workers.begin() + state->tried_count;
  return std::find(state->tried_workers.begin(), end, worker) != end;
}

void RememberTry(RequestState& state, const proxy_worker* worker) {
  if (!Tried(&state, worker) && state.tried_count < static_cast<int>(state.tried_workers.size())) {
    state.tried_workers[static_cast<std::size_t>(state.tried_count++)] = worker;
  }
}

// httpd's own balancing: among the usable members (get_best_worker applies their
// states, lbsets and hot standbys), the one with the fewest elections for its
// load factor, never one this request tried.
int IsBestOwnChoice(proxy_worker* current, proxy_worker* best, void* baton) {
  if (Tried(static_cast<const RequestState*>(baton), current)) return 0;
  if (best == nullptr) return 1;
  const auto weight = [](const proxy_worker* worker) {
    return static_cast<uint64_t>(std::max(1, worker->s->lbfactor));
  };
  return static_cast<uint64_t>(current->s->elected) * weight(best) <
         static_cast<uint64_t>(best->s->elected) * weight(current);
}

// The chosen server's route character (and why) for the backend and the logs:
// the route header, and CLUSTER_ROUTE and CLUSTER_ROUTE_REASON in the request's
// environment (for Header, LogFormat and RewriteCond). A client's own header of
// that name never reaches the backend.
void Report(request_rec* r, const RequestState& state) {
  const cb::RouteChoice reported = state.policy.Reported();
  const std::string_view route = cb::RouteCharTextForIndex(reported.index);
  // Names outlive the request (literals, the configuration's strings); values are
  // copied into the request's pool.
  const auto set = [&](apr_table_t* table, const char* name, std::string_view value) {
    if (value.empty()) {
      apr_table_unset(table, name);
    } else {
      apr_table_setn(table, name, apr_pstrmemdup(r->pool, value.data(), value.size()));
    }
  };
  if (state.section != nullptr && !state.section->route_header.empty()) {
    set(r->headers_in, state.section->route_header.c_str(), route);
  }
  set(r->subprocess_env, "CLUSTER_ROUTE", route);
  set(r->subprocess_env, "CLUSTER_ROUTE_REASON",
      route.empty() ? std::string_view{} : cb::ReasonName(reported.reason));
}

// The finder's answer: the try starts (the insert cookie's filter reads it).
proxy_worker* Answer(request_rec* r, RequestState& state, proxy_worker* worker) {
  if (worker == nullptr) return nullptr;
  RememberTry(state, worker);
  state.in_try = true;
  Report(r, state);
  if (state.section != nullptr && state.section->options.mode == cb::StickyMode::kInsert) {
    AddCookieFilter(r, state);
  }
  return worker;
}

// httpd's own balancing (RequestPolicy::own_balancing and WhenNoServer): the
// session's own member when there is one and httpd would use it
// (RequestPolicy::OwnServerWithoutView), else IsBestOwnChoice.
proxy_worker* OwnBalancing(proxy_balancer* balancer, request_rec* r, RequestState* state,
                           const Members* members, const cb::Balancer* view) {
  proxy_worker* worker = nullptr;
  if (state != nullptr && members != nullptr && view != nullptr) {
    const int own_index = state->policy.OwnServerWithoutView(SessionOf(r, *state, *view));
    proxy_worker* own = members->WorkerOf(own_index);
    if (own != nullptr && PROXY_WORKER_IS_USABLE(own) && !Tried(state, own)) worker = own;
  }
  if (worker == nullptr && get_best_worker != nullptr) {
    worker = get_best_worker(balancer, r, IsBestOwnChoice, state);
  }
  if (state == nullptr || worker == nullptr) return worker;
  state->policy.StartTry(
      {members == nullptr ? -1 : members->IndexOf(worker), cb::RouteReason::kNoServer});
  return Answer(r, *state, worker);
}

// When the view offers no (further) member: RequestPolicy::WhenNoServer. Giving up
// answers no member: mod_proxy_balancer answers 503, as after its own balancing.
proxy_worker* WithoutView(proxy_balancer* balancer, request_rec* r, RequestState& state,
                          const Members& members, const cb::Balancer& view) {
  if (state.policy.WhenNoServer(view) == cb::NoServerAction::kGiveUp) return nullptr;
  // Both kinds of own balancing skip the members this request tried.
  return OwnBalancing(balancer, r, &state, &members, &view);
}

// A member in httpd's error state that the view shows came up after its failure
// gets requests again at once, not after httpd's retry timeout (as mod_proxy's
// own forced recovery does).
void ReviveIfBack(proxy_worker* worker, int index, const cb::Balancer& view) {
  if (PROXY_WORKER_IS_ERROR(worker) && !PROXY_WORKER_IS_HCFAILED(worker) &&
      !cb::StaysHeldOut(view, index,
                        static_cast<int64_t>(apr_time_as_msec(worker->s->error_time)))) {
    worker->s->status &= ~PROXY_WORKER_IN_ERROR;
  }
}

proxy_worker* ChooseMember(proxy_balancer* balancer, request_rec* r, RequestState& state,
                           const Section& section) {
  cb::Balancer& view = ThreadBalancer(section);
  if (!state.tries_started) {
    view.Refresh(NowMonotonicMs());
    section.LogNotices(view, r);
    state.policy.StartTries(view);
    state.tries_started = true;
  }
  const Members members(balancer, view);
  if (state.policy.own_balancing()) return OwnBalancing(balancer, r, &state, &members, &view);
  const cb::RouteChoice choice = state.policy.ChooseNext(
      view, SessionOf(r, state, view), members.Unreachable(view),
      [&] { return members.HeldOut(view); }, NowUnixMs());
  proxy_worker* worker = members.WorkerOf(choice.index);
  if (worker == nullptr) return WithoutView(balancer, r, state, members, view);
  ReviveIfBack(worker, choice.index, view);
  state.policy.StartTry(choice);
  return Answer(r, state, worker);
}

void LogOnceWithoutSection(const proxy_balancer* balancer, request_rec* r) {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    LogWhat(APLOG_WARNING, r, balancer->s->name,
            "lbmethod=cluster without ClusterBalance in its <Proxy> section: httpd's own "
            "balancing chooses");
  }
}

proxy_worker* FindMember(proxy_balancer* balancer, request_rec* r) noexcept {
  RequestState* state = nullptr;
  try {
    const Section* section = SectionOf(balancer);
    if (section == nullptr) {
      LogOnceWithoutSection(balancer, r);
    } else {
      state = StateOf(r, balancer, section);
    }
    if (state == nullptr) return OwnBalancing(balancer, r, nullptr, nullptr, nullptr);
    return ChooseMember(balancer, r, *state, *section);
  } catch (...) {
    LogException(r, "choosing a member");
  }
  // Failing open: httpd's own balancing over the members this request did not try.
  try {
    if (state != nullptr) state->policy.StartTry({-1, cb::RouteReason::kNoServer});
    return get_best_worker == nullptr ? nullptr
                                      : get_best_worker(balancer, r, IsBestOwnChoice, state);
  } catch (...) {
    LogException(r, "balancing without the view");
    return nullptr;
  }
}

apr_status_t Reset(proxy_balancer*, server_rec*) noexcept { return APR_SUCCESS; }
apr_status_t Age(proxy_balancer*, server_rec*) noexcept { return APR_SUCCESS; }

}  // namespace

// updatelbstatus is left to mod_proxy_balancer: it runs only for its own
// stickysession matches.
const proxy_balancer_method kClusterMethod = {
    "cluster", FindMember, nullptr, Reset, Age, nullptr,
};

bool FindProxyFunctions() {
  get_best_worker = APR_RETRIEVE_OPTIONAL_FN(proxy_balancer_get_best_worker);
  return get_best_worker != nullptr;
}

}  // namespace cb::httpd
