#include "shared/balancer_options.h"

#include <set>

#include "shared/cluster_view.h"
#include "shared/config_values.h"

namespace cb {
namespace {

constexpr std::string_view kExpected =
    "expected mode=, cookie=, path_parameter=, slow_start=, current_version_only= or webapp=";

// A deployment's webapp or full name as the view holds it: printable ASCII without
// spaces (names come from Git tags), short enough for the view's slot.
bool IsDeploymentName(std::string_view name) {
  if (name.empty() || name.size() >= kViewDeploymentNameCapacity) return false;
  for (char c : name) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

Status ParseBalancerWords(std::span<const std::string_view> words, BalancerOptions& options) {
  if (words.empty() || words.front().empty() || words.front().find('=') != std::string_view::npos) {
    return Status::InvalidArgument(
        "the first argument is the view file the sidecar publishes, e.g. "
        "/run/cluster-balance/view");
  }
  options.view_path = words.front();
  std::set<std::string_view> seen;
  std::string_view webapp_word;
  for (std::string_view word : words.subspan(1)) {
    const std::size_t equals = word.find('=');
    const std::string_view key = word.substr(0, equals);
    const std::string_view value =
        equals == std::string_view::npos ? std::string_view{} : word.substr(equals + 1);
    const auto invalid = [&](std::string_view what) {
      return Status::InvalidArgument("\"" + std::string(word) + "\": " + std::string(what));
    };
    if (equals == std::string_view::npos) {
      return invalid(kExpected);
    }
    if (!seen.insert(key).second) return invalid("given twice");
    if (key == "mode") {
      if (value == "route") {
        options.mode = StickyMode::kRoute;
      } else if (value == "insert") {
        options.mode = StickyMode::kInsert;
      } else if (value == "learn") {
        return invalid(
            "the learn mode is not implemented; use mode=route (session ids start with the "
            "route character) or mode=insert (the module sets its own cookie)");
      } else {
        return invalid("expected mode=route or mode=insert");
      }
    } else if (key == "cookie") {
      if (!IsCookieName(value)) return invalid("not a valid cookie name");
      options.session_cookie = value;
    } else if (key == "path_parameter") {
      if (value == "off") {
        options.path_parameter.clear();
      } else if (!IsCookieName(value)) {
        return invalid("not a valid parameter name (or off)");
      } else {
        options.path_parameter = value;
      }
    } else if (key == "slow_start") {
      if (value == "view") {
        options.slow_start.reset();
        continue;
      }
      Result<std::chrono::milliseconds> duration = ParseDuration(value);
      if (!duration.ok()) return invalid(duration.status().message());
      if (*duration > kMaxSlowStart) return invalid("must be at most 24h");
      options.slow_start = *duration;
    } else if (key == "current_version_only") {
      if (value == "on") {
        options.current_version_only = true;
      } else if (value == "off") {
        options.current_version_only = false;
      } else {
        return invalid("expected current_version_only=on or current_version_only=off");
      }
    } else if (key == "webapp") {
      if (!IsDeploymentName(value)) {
        return invalid("expected the name of a deployed webapp (printable, no spaces, at most " +
                       std::to_string(kViewDeploymentNameCapacity - 1) + " bytes)");
      }
      options.webapp = value;
      webapp_word = word;
    } else {
      return invalid("unknown; " + std::string(kExpected));
    }
  }
  if (!webapp_word.empty() && !options.current_version_only) {
    return Status::InvalidArgument("\"" + std::string(webapp_word) +
                                   "\": only used with current_version_only=on");
  }
  return Status::Ok();
}

Status ParseStickyCookieWords(std::span<const std::string_view> words, StickyCookie& cookie) {
  for (std::string_view word : words) {
    if (Status applied = ApplyStickyCookieOption(word, cookie); !applied.ok()) return applied;
  }
  return ValidateStickyCookie(cookie);
}

}  // namespace cb
