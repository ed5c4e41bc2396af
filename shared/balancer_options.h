// What an operator configures for one balanced group of servers (an nginx
// upstream block): where the view is, how sessions are recognised, and the cookie
// of the insert mode. Parsed from "key=value" words so that the nginx directive,
// the httpd directive and the tests share one grammar and one set of messages.
#ifndef CLUSTER_BALANCE_SHARED_BALANCER_OPTIONS_H_
#define CLUSTER_BALANCE_SHARED_BALANCER_OPTIONS_H_

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "shared/route_codec.h"
#include "shared/status.h"
#include "shared/sticky_cookie.h"

namespace cb {

enum class StickyMode {
  kRoute,   // Resin's: the session id's first character is its server's route character
  kInsert,  // the module sets its own cookie holding the route character
};

struct BalancerOptions {
  std::string view_path;
  StickyMode mode = StickyMode::kRoute;
  std::string session_cookie{kDefaultSessionCookie};
  std::string path_parameter{kDefaultPathParameter};  // empty: ";name=" is not looked at
  StickyCookie insert_cookie;
  // Warm-up of servers that come up, overriding the view's (the cluster file's
  // slow_start); none: the view's.
  std::optional<std::chrono::milliseconds> slow_start;
  // During a rollout, new sessions go only to the servers that run the newest
  // version of `webapp` (routing.h); "" names the view's only deployment.
  bool current_version_only = false;
  std::string webapp;
};

// `words` are the arguments of `cluster_balance`: the view file path first, then
// any of mode=route|insert, cookie=NAME, path_parameter=NAME|off,
// slow_start=DURATION|view (at most 24h, as in the cluster file),
// current_version_only=on|off, webapp=NAME (a deployment's webapp, or its full name
// stage/webapp/host/name). A word may not repeat. InvalidArgument names the word and what is wrong
// ("mode=learn" says that the learn mode does not exist and what to use).
Status ParseBalancerWords(std::span<const std::string_view> words, BalancerOptions& options);

// `words` are the arguments of `cluster_balance_cookie` (sticky_cookie.h's options);
// the result is validated as a whole.
Status ParseStickyCookieWords(std::span<const std::string_view> words, StickyCookie& cookie);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_BALANCER_OPTIONS_H_
