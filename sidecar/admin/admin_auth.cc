#include "sidecar/admin/admin_auth.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

namespace cb::admin {
namespace {

constexpr std::size_t kMaxUserLength = 64;
constexpr std::chrono::seconds kFirstDelay{1};
constexpr std::chrono::seconds kMaxDelay{5 * 60};
// Verified credentials skip argon2id for this long; a removed user or changed
// password takes effect on the next start anyway (the file is read once).
constexpr std::chrono::seconds kCacheLifetime{60};
constexpr std::size_t kMaxCachedCredentials = 1024;
constexpr std::size_t kMaxClients = 4096;
// Authorization headers longer than this are not credentials anyone typed.
constexpr std::size_t kMaxAuthorizationLength = 4096;

Status InitSodium() {
  // sodium_init() is itself safe to call from several threads, and again.
  static const int result = sodium_init();
  if (result < 0) return Status::IoError("libsodium could not be initialised");
  return Status::Ok();
}

bool IsValidUserName(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserLength) return false;
  return std::all_of(user.begin(), user.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' ||
           c == '-';
  });
}

// Whether `hash` is a libsodium argon2id hash string it can verify against.
bool IsArgon2idHash(const std::string& hash) {
  if (hash.rfind("$argon2id$", 0) != 0 || hash.size() >= crypto_pwhash_STRBYTES) return false;
  // -1: not a valid hash string; 0 or 1: valid, with these or other limits.
  return crypto_pwhash_str_needs_rehash(hash.c_str(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != -1;
}

bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// A hash of a random password, verified against for unknown users. One per
// process: computing it costs as much as a verification.
Result<std::string> DummyHash() {
  static const Result<std::string> hash = []() -> Result<std::string> {
    std::array<unsigned char, 32> password{};
    randombytes_buf(password.data(), password.size());
    char text[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(text, reinterpret_cast<const char*>(password.data()), password.size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
      return Status::IoError("argon2id: out of memory");
    }
    return std::string(text);
  }();
  return hash;
}

using CredentialKey = std::array<unsigned char, crypto_generichash_BYTES>;

struct ClientState {
  int failures = 0;  // in a row
  Authenticator::Clock::time_point blocked_until{};
  Authenticator::Clock::time_point last_seen{};
};

struct Credentials {
  std::string user;
  std::string password;
};

}  // namespace

struct Authenticator::State {
  std::map<std::string, std::string, std::less<>> hashes;  // user -> argon2id hash
  // Verified against for unknown users, so that the time of an answer does not
  // tell which user names exist.
  std::string dummy_hash;
  std::array<unsigned char, crypto_generichash_KEYBYTES> cache_key{};
  std::map<CredentialKey, Clock::time_point> verified;  // -> when it expires
  std::map<std::string, ClientState, std::less<>> clients;

  CredentialKey KeyOf(const Credentials& credentials) const {
    // User names have no ':', so "user:password" is unambiguous.
    std::string text = credentials.user + ":" + credentials.password;
    CredentialKey key{};
    crypto_generichash(key.data(), key.size(), reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), cache_key.data(), cache_key.size());
    sodium_memzero(text.data(), text.size());
    return key;
  }

  void Remember(const CredentialKey& key, Clock::time_point now) {
    if (verified.size() >= kMaxCachedCredentials) {
      std::erase_if(verified, [now](const auto& entry) { return entry.second <= now; });
    }
    // Still full of live entries: start over; the cost is one verification each.
    if (verified.size() >= kMaxCachedCredentials) verified.clear();
    verified[key] = now + kCacheLifetime;
  }

  bool RecentlyVerified(const CredentialKey& key, Clock::time_point now) {
    auto it = verified.find(key);
    if (it == verified.end()) return false;
    if (it->second <= now) {
      verified.erase(it);
      return false;
    }
    return true;
  }

  ClientState& Client(std::string_view address, Clock::time_point now) {
    auto it = clients.find(address);
    if (it == clients.end()) {
      if (clients.size() >= kMaxClients) {
        clients.erase(std::min_element(
            clients.begin(), clients.end(),
            [](const auto& a, const auto& b) { return a.second.last_seen < b.second.last_seen; }));
      }
      it = clients.emplace(std::string(address), ClientState{}).first;
    }
    it->second.last_seen = now;
    return it->second;
  }
};

namespace {

// The credentials of an HTTP Basic Authorization value, or why there are none.
Result<Credentials> ParseBasic(std::string_view authorization) {
  constexpr std::string_view kScheme = "Basic ";
  if (!StartsWithIgnoringCase(authorization, kScheme)) {
    return Status::InvalidArgument("not Basic credentials");
  }
  if (authorization.size() > kMaxAuthorizationLength) {
    return Status::InvalidArgument("credentials too long");
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return Status::InvalidArgument("empty Basic credentials");

  std::string decoded(token.size(), '\0');
  std::size_t decoded_size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                        token.data(), token.size(), nullptr, &decoded_size, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != token.data() + token.size()) {
    return Status::InvalidArgument("Basic credentials are not valid base64");
  }
  decoded.resize(decoded_size);
  const std::size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    sodium_memzero(decoded.data(), decoded.size());
    return Status::InvalidArgument("Basic credentials without ':'");
  }
  Credentials credentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
  sodium_memzero(decoded.data(), decoded.size());
  return credentials;
}

}  // namespace

Authenticator::Authenticator(std::unique_ptr<State> state) : state_(std::move(state)) {}

Authenticator::~Authenticator() = default;

Result<std::unique_ptr<Authenticator>> Authenticator::FromUsersFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::NotFound(path + ": cannot open the admin users file");
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return Status::IoError(path + ": cannot read the admin users file");
  return FromText(text.str(), path);
}

Result<std::unique_ptr<Authenticator>> Authenticator::FromText(std::string_view text,
                                                               std::string_view source_name) {
  if (Status status = InitSodium(); !status.ok()) return status;
  const std::string source(source_name);
  auto state = std::make_unique<State>();
  std::map<std::string, int, std::less<>> first_line;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;

    const std::string where = source + ":" + std::to_string(line_number) + ": ";
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument(where +
                                     "expected user:hash, as `clusterctl passwd` prints it");
    }
    const std::string user(line.substr(0, colon));
    const std::string hash(line.substr(colon + 1));
    if (!IsValidUserName(user)) {
      return Status::InvalidArgument(where + "user name \"" + user +
                                     "\" is not 1..64 letters, digits, '.', '_', '@' or '-'");
    }
    if (!IsArgon2idHash(hash)) {
      return Status::InvalidArgument(where + "the password of \"" + user +
                                     "\" is not an argon2id hash (\"$argon2id$...\", as "
                                     "`clusterctl passwd` prints it)");
    }
    if (auto [it, inserted] = first_line.emplace(user, line_number); !inserted) {
      return Status::InvalidArgument(where + "user \"" + user + "\" again (first at line " +
                                     std::to_string(it->second) + ")");
    }
    state->hashes.emplace(user, hash);
  }
  if (state->hashes.empty()) {
    return Status::InvalidArgument(source +
                                   ": no users (add the lines `clusterctl passwd USER` prints)");
  }

  Result<std::string> dummy_hash = DummyHash();
  if (!dummy_hash.ok()) return dummy_hash.status();
  state->dummy_hash = *dummy_hash;
  randombytes_buf(state->cache_key.data(), state->cache_key.size());
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(state)));
}

AuthDecision Authenticator::Check(std::string_view client_address, std::string_view authorization,
                                  Clock::time_point now) {
  AuthDecision decision;
  ClientState& client = state_->Client(client_address, now);
  if (now < client.blocked_until) {
    decision.kind = AuthDecision::Kind::kRateLimited;
    decision.why = "too many failed attempts";
    // Rounded up: a client that waits this long is let through.
    const auto remaining = client.blocked_until - now;
    decision.retry_after = std::chrono::ceil<std::chrono::seconds>(remaining);
    return decision;
  }
  if (authorization.empty()) {
    // The first request of a browser or a script that has not sent credentials
    // yet: not an attempt, so not counted.
    decision.why = "no credentials";
    return decision;
  }

  bool allowed = false;
  Result<Credentials> credentials = ParseBasic(authorization);
  if (!credentials.ok()) {
    decision.why = credentials.status().message();
  } else if (!IsValidUserName(credentials->user)) {
    // Never a user, whatever the timing says; not repeated in the log as given.
    decision.why = "invalid user name";
  } else {
    decision.user = credentials->user;
    const CredentialKey key = state_->KeyOf(*credentials);
    if (state_->RecentlyVerified(key, now)) {
      allowed = true;
    } else {
      auto user = state_->hashes.find(credentials->user);
      const std::string& hash = user != state_->hashes.end() ? user->second : state_->dummy_hash;
      const bool matches = crypto_pwhash_str_verify(hash.c_str(), credentials->password.data(),
                                                    credentials->password.size()) == 0;
      if (user == state_->hashes.end()) {
        decision.why = "unknown user";
      } else if (!matches) {
        decision.why = "wrong password";
      } else {
        allowed = true;
        state_->Remember(key, now);
      }
    }
    sodium_memzero(credentials->password.data(), credentials->password.size());
  }

  if (allowed) {
    client = ClientState{0, {}, now};
    decision.kind = AuthDecision::Kind::kAllowed;
    decision.why.clear();
    return decision;
  }
  ++client.failures;
  if (client.failures >= kFreeFailures) {
    const int doublings = std::min(client.failures - kFreeFailures, 16);
    const std::chrono::seconds delay = std::min(kFirstDelay * (int64_t{1} << doublings), kMaxDelay);
    client.blocked_until = now + delay;
  }
  return decision;
}

Result<std::string> HashPasswordLine(std::string_view user, std::string_view password) {
  if (!IsValidUserName(user)) {
    return Status::InvalidArgument("user name \"" + std::string(user) +
                                   "\" is not 1..64 letters, digits, '.', '_', '@' or '-'");
  }
  if (password.empty()) return Status::InvalidArgument("the password is empty");
  if (Status status = InitSodium(); !status.ok()) return status;
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Status::IoError("argon2id: out of memory");
  }
  return std::string(user) + ":" + hash;
}

}  // namespace cb::admin
