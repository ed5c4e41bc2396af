#include "shared/sticky_cookie.h"

#include <chrono>

#include "shared/config_values.h"
#include "shared/route_codec.h"

namespace cb {
namespace {

constexpr std::size_t kTokenLength = 11;  // 66 bits of base64url; 64 come from `random`

// Attribute values end at ';' and must not carry control characters or spaces.
bool IsAttributeValue(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ';') return false;
  }
  return true;
}

Result<bool> ParseOnOff(std::string_view option, std::string_view value) {
  if (value == "on") return true;
  if (value == "off") return false;
  return Status::InvalidArgument(std::string(option) + ": expected on or off");
}

}  // namespace

Status ApplyStickyCookieOption(std::string_view option, StickyCookie& cookie) {
  const std::size_t equals = option.find('=');
  const std::string_view key = option.substr(0, equals);
  const std::string_view value =
      equals == std::string_view::npos ? std::string_view{} : option.substr(equals + 1);
  const bool has_value = equals != std::string_view::npos;
  const auto invalid = [&](std::string_view what) {
    return Status::InvalidArgument("cookie option \"" + std::string(option) +
                                   "\": " + std::string(what));
  };
  if (key == "secure" && !has_value) {
    cookie.secure = true;
  } else if (key == "name" && has_value) {
    if (!IsCookieName(value)) return invalid("not a valid cookie name");
    cookie.name = value;
  } else if (key == "path" && has_value) {
    if (value.empty() || value.front() != '/' || !IsAttributeValue(value)) {
      return invalid("a path starts with '/' and has no ';', space or control character");
    }
    cookie.path = value;
  } else if (key == "domain" && has_value) {
    if (!IsAttributeValue(value)) return invalid("a domain has no ';', space or control character");
    cookie.domain = value;
  } else if (key == "max_age" && has_value) {
    if (value == "off") {
      cookie.max_age_s = -1;
    } else {
      Result<std::chrono::milliseconds> duration = ParseDuration(value);
      if (!duration.ok()) return invalid(duration.status().message());
      // Max-Age counts whole seconds, and 0 tells the browser to delete the cookie.
      if (duration->count() < 1000 || duration->count() % 1000 != 0) {
        return invalid("a whole number of seconds, at least 1s (or off: a session cookie)");
      }
      cookie.max_age_s = std::chrono::duration_cast<std::chrono::seconds>(*duration).count();
    }
  } else if (key == "httponly" && has_value) {
    Result<bool> on = ParseOnOff(option, value);
    if (!on.ok()) return on.status();
    cookie.http_only = *on;
  } else if (key == "samesite" && has_value) {
    if (value == "strict") {
      cookie.same_site = SameSite::kStrict;
    } else if (value == "lax") {
      cookie.same_site = SameSite::kLax;
    } else if (value == "none") {
      cookie.same_site = SameSite::kNone;
    } else if (value == "off") {
      cookie.same_site = SameSite::kOff;
    } else {
      return invalid("expected strict, lax, none or off");
    }
  } else {
    return invalid(
        "unknown; expected name=, path=, domain=, max_age=, secure, httponly=on|off or "
        "samesite=strict|lax|none|off");
  }
  return Status::Ok();
}

Status ValidateStickyCookie(const StickyCookie& cookie) {
  if (!IsCookieName(cookie.name)) {
    return Status::InvalidArgument("cookie name \"" + cookie.name +
                                   "\" is not a valid cookie name");
  }
  if (cookie.path.empty() || cookie.path.front() != '/' || !IsAttributeValue(cookie.path)) {
    return Status::InvalidArgument("cookie path \"" + cookie.path +
                                   "\" must start with '/' and have no ';', space or control "
                                   "character");
  }
  if (!IsAttributeValue(cookie.domain)) {
    return Status::InvalidArgument("cookie domain \"" + cookie.domain +
                                   "\" has a ';', space or control character");
  }
  if (cookie.same_site == SameSite::kNone && !cookie.secure) {
    return Status::InvalidArgument(
        "cookie samesite=none needs secure (browsers drop such a cookie otherwise)");
  }
  return Status::Ok();
}

std::string StickyCookieValue(int index, uint64_t random, std::string_view previous) {
  std::string value(1, RouteCharForIndex(index));
  if (IsStickyCookieValue(previous)) {
    value.append(previous.substr(1));
    return value;
  }
  for (std::size_t i = 0; i < kTokenLength; ++i) {
    value.push_back(RouteCharForIndex(static_cast<int>(random & 63)));
    random >>= 6;
  }
  return value;
}

bool IsStickyCookieValue(std::string_view value) {
  if (value.size() != 1 + kTokenLength) return false;
  for (char c : value) {
    if (IndexForRouteChar(c) < 0) return false;
  }
  return true;
}

std::string SetCookieHeader(const StickyCookie& cookie, std::string_view value) {
  std::string header = cookie.name + "=" + std::string(value) + "; Path=" + cookie.path;
  if (!cookie.domain.empty()) header += "; Domain=" + cookie.domain;
  if (cookie.max_age_s >= 0) header += "; Max-Age=" + std::to_string(cookie.max_age_s);
  if (cookie.secure) header += "; Secure";
  if (cookie.http_only) header += "; HttpOnly";
  switch (cookie.same_site) {
    case SameSite::kOff:
      break;
    case SameSite::kStrict:
      header += "; SameSite=Strict";
      break;
    case SameSite::kLax:
      header += "; SameSite=Lax";
      break;
    case SameSite::kNone:
      header += "; SameSite=None";
      break;
  }
  return header;
}

}  // namespace cb
